#include "engine/archive/tar_listing.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "engine/base/format.h"

namespace grin::archive {
namespace {

struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

char TypeOf(struct archive_entry* e) {
  switch (archive_entry_filetype(e)) {
    case AE_IFREG: return archive_entry_hardlink(e) ? 'h' : 'f';
    case AE_IFDIR: return 'd';
    case AE_IFLNK: return 'l';
  }
  return '?';
}


}  // namespace

Result<TarListing> ListTarFile(const std::string& path, size_t max_entries) {
  std::unique_ptr<struct archive, ReadFree> a(archive_read_new());
  if (!a) return Status::Internal("libarchive: out of memory");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return Status::NotFound(path + ": " + archive_error_string(a.get()));
  }
  TarListing out;
  struct archive_entry* e = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      const char* why = archive_error_string(a.get());
      return Status::DataLoss(path + ": not a readable tar stream after " +
                              std::to_string(out.members) + " members: " +
                              (why ? why : "unknown error"));
    }
    ++out.members;
    if (out.entries.size() < max_entries) {
      const char* name = archive_entry_pathname(e);
      out.entries.push_back({name ? name : "", TypeOf(e),
                             archive_entry_size_is_set(e) ? archive_entry_size(e) : 0,
                             archive_entry_mtime_is_set(e) ? archive_entry_mtime(e) : 0});
    }
    if (out.format.empty()) {
      const char* f = archive_format_name(a.get());
      out.format = f ? f : "";
    }
    archive_read_data_skip(a.get());
  }
  for (int i = archive_filter_count(a.get()) - 1; i >= 0; --i) {
    const char* f = archive_filter_name(a.get(), i);
    if (!f || std::string(f) == "none") continue;
    if (!out.filters.empty()) out.filters += ",";
    out.filters += f;
  }
  return out;
}

std::string FormatTarListing(const TarListing& l) {
  std::string out = "# " + std::to_string(l.members) + " members, format \"" + l.format +
                    "\", filters \"" + l.filters + "\"\n";
  for (const auto& e : l.entries) {
    char when[32] = "?";
    std::time_t t = static_cast<std::time_t>(e.mtime);
    std::tm tm{};
    if (gmtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    out += std::string(1, e.type) + " " + std::to_string(e.size) + " " + when + " " +
           EscapeNonPrintable(e.name, /*escape_high=*/false) + "\n";
  }
  if (l.members > static_cast<int64_t>(l.entries.size())) {
    out += "# ... " + std::to_string(l.members - static_cast<int64_t>(l.entries.size())) +
           " more\n";
  }
  return out;
}

}  // namespace grin::archive
