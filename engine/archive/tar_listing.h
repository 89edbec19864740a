#pragma once
// The member list of a tar.gz file (names, types, sizes, dates) without extracting anything:
// for `grin-jobs doctor --capture`, which records what GRIN's archives hold. Member names are
// reported as they are in the archive and never used as paths.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::archive {

struct TarEntry {
  std::string name;   // as stored (may be hostile: never a path here)
  char type = '?';    // 'f' regular file, 'd' directory, 'l' symlink, 'h' hard link, '?' other
  int64_t size = 0;
  int64_t mtime = 0;  // Unix seconds
};

struct TarListing {
  std::vector<TarEntry> entries;  // the first max_entries members
  int64_t members = 0;            // all members read
  std::string format;             // libarchive's name for the format ("GNU tar format", ...)
  std::string filters;            // the compression layers ("gzip")
};

// Lists the tar(.gz) file at path. kDataLoss if it is not a readable tar stream (the message
// names the file and libarchive's reason); kNotFound if it cannot be opened.
Result<TarListing> ListTarFile(const std::string& path, size_t max_entries = 10'000);

// "f 12345 2026-01-02T03:04:05Z 00000001.jp2" per entry, names with control bytes escaped.
std::string FormatTarListing(const TarListing& listing);

}  // namespace grin::archive
