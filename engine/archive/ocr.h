#pragma once
// OCR text to JSONL: one JSON string per page, line N is page N, gaps filled with "", invalid
// UTF-8 replaced by U+FFFD, gzip-compressed at level 1 — the reference tool's
// `<BARCODE>_ocr.jsonl.gz` (docs/compatibility.md, OCR text), byte for byte what Python's
// json.dumps(text, ensure_ascii=False) per line would give.
//
// OcrJsonlWriter builds the same file with bounded memory, streaming each page through as the
// archive delivers it; OcrPages (all text held, then built) is the simple reference it is
// tested against.
//
// Thread safety: plain functions; OcrPages and OcrJsonlWriter are used by one thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <vector>

#include "engine/base/result.h"

namespace grin::archive {

// Page numbers GRIN uses: 1..999,999 (as the reference tool accepts).
inline constexpr uint32_t kMaxPageNumber = 999'999;

// "00000042.txt" -> 42. nullopt unless the name is exactly 8 ASCII digits + ".txt" and the number
// is within 1..kMaxPageNumber.
std::optional<uint32_t> OcrPageNumber(std::string_view basename);

// Replaces each maximal invalid UTF-8 subsequence with U+FFFD (the Unicode "best practice",
// which is also what Python's errors="replace" does).
std::string SanitizeUtf8(std::string_view in);

// Appends `"..."`, escaping as json.dumps(ensure_ascii=False): \" \\ \n \r \t \b \f and
// \u00XX for other control characters; everything else (valid UTF-8) verbatim.
void AppendJsonString(std::string* out, std::string_view utf8);
// The same without the surrounding quotes.
void AppendJsonEscaped(std::string* out, std::string_view utf8);

// gzip (RFC 1952) of data at the given zlib level.
Result<std::string> GzipCompress(std::string_view data, int level);
// Inverse, for tests and tools; fails on corrupt input or output over max_bytes.
Result<std::string> GzipDecompress(std::string_view data, size_t max_bytes);

class OcrPages {
 public:
  // Records page text (raw bytes). A repeated page number is an error (kDataLoss).
  Status Add(uint32_t page, std::string text);
  // Highest page number (lines in the JSONL); 0 if none.
  uint32_t page_count() const { return pages_.empty() ? 0 : pages_.rbegin()->first; }
  // Pages that had a member (page_count() minus gaps).
  size_t present() const { return pages_.size(); }
  uint64_t text_bytes() const { return bytes_; }
  // The JSONL text (uncompressed) and its gzip at level 1.
  std::string BuildJsonl() const;
  Result<std::string> BuildJsonlGz() const;

 private:
  std::map<uint32_t, std::string> pages_;
  uint64_t bytes_ = 0;
};

// The finished OCR file: in memory, or spilled to a file the caller now owns.
struct OcrJsonlGz {
  std::string data;   // the gzip, unless spilled
  std::string path;   // the file holding it when spilled ("" = in `data`)
  uint64_t size = 0;  // compressed bytes (either way)
};

// OcrJsonlWriter: the JSONL gzip of OcrPages::BuildJsonlGz (the same JSONL; the gzip differs
// in its blocks), built while the pages arrive, in any order, without holding their text. Each
// page's JSON line is deflated on its own (a fresh deflate stream, ended with a sync flush);
// Finish() writes the segments in page order (gaps as `""`) between a gzip header and trailer
// (CRCs combined), which is a valid single-member gzip (the way pigz joins blocks).
// Memory: the compressed segments are held in memory up to `memory_bytes`; past that they go to
// `<spill_path>.part` and the result to `spill_path` (spill_path "" = never spill, so memory is
// then bounded only by the compressed size). The text itself is never held: a page streams
// through in pieces (at most 3 bytes are kept back so a UTF-8 sequence is never split).
class OcrJsonlWriter {
 public:
  OcrJsonlWriter(std::string spill_path, uint64_t memory_bytes);
  ~OcrJsonlWriter();  // removes its spill files unless Finish() handed the result over
  OcrJsonlWriter(const OcrJsonlWriter&) = delete;
  OcrJsonlWriter& operator=(const OcrJsonlWriter&) = delete;

  // One page: BeginPage, its text in any number of pieces (raw bytes), EndPage. A page number
  // seen before is kDataLoss; a spill write failure is kResourceExhausted naming the file.
  Status BeginPage(uint32_t page);
  Status PageText(std::string_view piece);
  Status EndPage();
  Status Add(uint32_t page, std::string_view text);  // all three at once

  uint32_t page_count() const { return index_.empty() ? 0 : index_.rbegin()->first; }
  size_t present() const { return index_.size(); }
  uint64_t text_bytes() const { return text_bytes_; }
  // The most bytes of compressed output held in memory at once (before Finish).
  uint64_t peak_memory_bytes() const { return peak_memory_; }

  Result<OcrJsonlGz> Finish();

 private:
  struct Segment {
    uint64_t offset = 0;  // in the segment space (memory or the .part file)
    uint64_t length = 0;  // compressed
    uint32_t crc = 0;     // of the uncompressed line
    uint64_t raw = 0;     // uncompressed bytes
  };
  Status Deflate(std::string_view in, int flush);  // into the current segment
  Status Emit(const char* data, size_t n);
  Status EscapeAndDeflate(std::string_view raw, bool final_piece);

  std::string spill_path_;
  uint64_t memory_bytes_;
  void* zs_ = nullptr;  // z_stream
  std::map<uint32_t, Segment> index_;
  Segment gap_;          // the `""` line, deflated once
  std::string gap_data_;
  Segment* open_ = nullptr;
  std::string pending_;  // a UTF-8 sequence cut by the piece boundary
  std::string scratch_, escaped_;
  std::string mem_;      // segments, until spilled
  int fd_ = -1;          // <spill_path>.part once spilled
  uint64_t written_ = 0; // segment space used
  uint64_t text_bytes_ = 0;
  uint64_t peak_memory_ = 0;
  bool handed_over_ = false;
  bool spilled_result_ = false;
};

}  // namespace grin::archive
