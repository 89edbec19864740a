#pragma once
// ArchiveExtractor: reads a GRIN book archive (tar.gz) straight from a byte stream — nothing is
// unpacked to disk — and collects what the pipeline needs from it:
//   - OCR pages `NNNNNNNN.txt` -> JSONL (line N = page N, gaps ""), gzip level 1; page count;
//   - the METS file `<DIR>_<BARCODE>.xml`, checked to be METS, -> MARC fields;
//   - `checksum.md5` verified against the MD5 of every member read.
//
// Hostile or broken archives fail the book with a clear reason (kDataLoss, or kResourceExhausted
// for limits): member names that are absolute or contain "..", symlinks, hard links, devices and
// other non-regular members, sparse members, duplicate names, members or totals over the limits,
// decompression ratios over the limit (bombs), malformed XML, entity declarations.
//
// Push model: bytes are pushed with Write() as they arrive; libarchive pulls them on a worker
// thread through a bounded pipe, so memory is bounded by the pipe, the text members kept (METS,
// checksum list), the OCR JSONL's compressed form (spilled to a file past
// ExtractOptions::ocr_memory_bytes; page text streams through) and the limits below — not by
// the archive size.
//
// Thread safety: Write/Finish from one thread. The worker owns all libarchive state.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/archive/marc.h"
#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::archive {

struct ExtractLimits {
  uint64_t max_member_bytes = 16ull << 30;  // one member (a page image)
  uint64_t max_total_bytes = 64ull << 30;   // the whole uncompressed tar stream
  // Decompression bomb guard: once the tar stream passes ratio_floor_bytes, it may not exceed
  // max_ratio times the compressed bytes read. Real books: ~1.1 (JP2) to ~10 (hOCR only).
  double max_ratio = 100.0;
  uint64_t ratio_floor_bytes = 64ull << 20;
  uint64_t max_text_page_bytes = 16ull << 20;  // one NNNNNNNN.txt
  uint64_t max_ocr_bytes = 1ull << 30;         // all OCR text of one book
  uint64_t max_xml_bytes = 64ull << 20;        // the METS member
  uint64_t max_checksum_bytes = 16ull << 20;   // checksum.md5
  uint64_t max_members = 2'000'000;
};

struct ExtractOptions {
  // The book's barcode: the METS member is `<DIR>_<BARCODE>.xml`. Empty: any `<A>_<B>.xml`.
  std::string barcode;
  ExtractLimits limits;
  bool verify_checksums = true;
  bool require_ocr = true;   // no OCR page at all fails the book (as the reference tool)
  bool require_marc = true;  // no METS with a MARC record fails the book
  // Inflate the gzip layer with ISA-L (gzip_inflater.h) when the build has it; false: leave it
  // to libarchive's zlib filter (the old path, kept for benchmark comparisons).
  bool fast_gzip = true;
  // The OCR JSONL gzip is built while the pages stream by (ocr.h, OcrJsonlWriter): at most
  // ocr_memory_bytes of it are held in memory; past that it is spilled to ocr_spill_path (and
  // `<ocr_spill_path>.part` meanwhile). "" = keep it in memory whatever its size.
  std::string ocr_spill_path;
  uint64_t ocr_memory_bytes = 16ull << 20;
};

struct ChecksumReport {
  bool present = false;   // checksum.md5 was in the archive
  size_t listed = 0;      // lines in it
  size_t verified = 0;    // listed members whose MD5 matched
  std::vector<std::string> mismatched;  // listed, read, different MD5
  std::vector<std::string> missing;     // listed, not in the archive
  std::vector<std::string> unlisted;    // read, not listed (informational)
};

struct Extraction {
  uint32_t page_count = 0;        // lines in the JSONL = highest page number
  uint32_t ocr_pages_present = 0; // pages that had a .txt member
  std::string ocr_jsonl_gz;       // gzip level 1 of the JSONL, unless spilled:
  std::string ocr_jsonl_gz_path;  // the file holding it instead (the caller removes it)
  uint64_t ocr_jsonl_gz_bytes = 0;     // its size either way
  uint64_t ocr_peak_memory_bytes = 0;  // most of it held in memory at once
  std::optional<MarcRecord> marc;
  std::string mets_member;        // name of the METS member used
  uint64_t members = 0;           // regular members read
  uint64_t tar_bytes = 0;         // uncompressed tar stream size
  uint64_t compressed_bytes = 0;  // bytes pushed
  ChecksumReport checksums;
  std::vector<std::string> warnings;  // e.g. skipped .txt names, extra XML files
};

class ArchiveExtractor {
 public:
  explicit ArchiveExtractor(ExtractOptions options);
  // Aborts the worker if Finish() was not called.
  ~ArchiveExtractor();
  ArchiveExtractor(const ArchiveExtractor&) = delete;
  ArchiveExtractor& operator=(const ArchiveExtractor&) = delete;

  // Pushes the next bytes of the tar.gz. Blocks while the pipe is full. Returns the failure
  // early if extraction already failed (the caller may stop sending).
  Status Write(const uint8_t* data, size_t n);
  // End of input: waits for the worker and returns the result or the reason the book failed.
  Result<Extraction> Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace grin::archive
