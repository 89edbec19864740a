#pragma once
// OCR text to JSONL: one JSON string per page, line N is page N, gaps filled with "", invalid
// UTF-8 replaced by U+FFFD, gzip-compressed at level 1 — the reference tool's
// `<BARCODE>_ocr.jsonl.gz` (reference-tool.md §5.3), byte for byte what Python's
// json.dumps(text, ensure_ascii=False) per line would give.
//
// Thread safety: plain functions; OcrPages is a value type used by one thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace grin::archive
