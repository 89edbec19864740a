#pragma once
// GRIN's plain-text formats (docs/grin-protocol.md: List pages, `_barcode_search` TSV,
// Conversion requests): one-item-per-line lists, header-mapped
// TSV (_barcode_search mode=full), the _process reply, and the date format.
//
// Thread safety: pure functions and single-threaded value types.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"

namespace grin::grin_client {

// "2009/12/23 18:41" -> "2009-12-23T18:41:00"; also accepts '-' separators and a date without a
// time ("2009/12/23" -> "2009-12-23T00:00:00"). "" stays "". Anything else is returned as given
// (GRIN's format is not documented; better keep an odd value than lose it).
std::string GrinDateToIso(std::string_view grin_date);

// Splits a byte stream into lines: "\n" or "\r\n", each line right-trimmed of "\r" and spaces,
// blank lines skipped. Feed() may be called with arbitrary chunk boundaries.
class LineSplitter {
 public:
  using LineFn = std::function<Status(std::string_view line)>;
  explicit LineSplitter(LineFn fn) : fn_(std::move(fn)) {}
  Status Feed(const char* data, size_t len);
  Status Finish();
  // Bytes of the line not finished yet (held until its end arrives).
  size_t partial_size() const { return partial_.size(); }

 private:
  Status Emit(std::string_view line);
  LineFn fn_;
  std::string partial_;
};

// The barcode of one text-list line: the first tab-separated field, without ".tar.gz.gpg" and
// without a "<DIR>_" prefix (when dir is given).
std::string BarcodeFromListLine(std::string_view line, std::string_view dir = "");

// 3 to 50 letters, digits, '_' or '-': what a barcode can be (and all a file or key may hold).
bool PlausibleBarcode(std::string_view barcode);

// The barcode of one line of the text form of `list` ("converted", "in_process", "failed",
// "available", ...), or "" if the line is not an entry of the list. _converted lists archives:
// only "<BARCODE>.tar.gz.gpg" lines (optionally "<DIR>_"-prefixed) are entries, so a header, a
// total, markup or a bare barcode is not. Other lists accept a bare barcode or a file name (first
// tab-separated field). Either way the barcode must be plausible.
std::string BarcodeOfListEntry(std::string_view list, std::string_view line,
                               std::string_view dir = "");

// A TSV table addressed by header name: missing columns read as "", short rows are padded, long
// rows truncated, unknown columns ignored.
class TsvTable {
 public:
  // kDataLoss (naming `what`) unless the header has a "Barcode" column.
  Status SetHeader(std::string_view line, const std::string& what);
  bool has_header() const { return !names_.empty(); }
  // Splits a data row into cells aligned with the header.
  std::vector<std::string> Split(std::string_view line) const;
  // Index of a column, or -1.
  int Index(std::string_view name) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

// What became of one barcode sent to _process (docs/compatibility.md, Conversion request
// outcomes).
enum class ProcessOutcome { kRequested, kAlreadyInProcess, kAlreadyAvailable, kNotAllowed, kOther };
std::string_view ProcessOutcomeName(ProcessOutcome o);  // "requested", "in_process", ...
// GT's classifier, extended: "success" -> requested; "already" + "process"/"being converted" ->
// in process; "already" + "available" -> available; "not allowed" -> not allowed; else other.
ProcessOutcome ClassifyProcessStatus(std::string_view status);

struct ProcessRow {
  std::string barcode;  // trimmed of surrounding white space
  std::string status;   // GRIN's text, as given (trimmed)
  ProcessOutcome outcome = ProcessOutcome::kOther;
  // Columns beyond Barcode and Status, {header, value}, kept as GRIN sent them.
  std::vector<std::pair<std::string, std::string>> extra;
};
// Parses the text reply (a header naming Barcode and Status columns, in any order and case,
// possibly with more columns, then rows) or, if it starts with '<', the HTML one (status in
// div#Main table rows, td[2]//pre). Barcodes are trimmed (GRIN may pad them); rows without a
// barcode are skipped. kDataLoss naming `what` if the header lacks Barcode or Status.
Result<std::vector<ProcessRow>> ParseProcessReply(std::string_view body, const std::string& what);

// A _barcode_search ... mode=full reply (docs/grin-protocol.md, `_barcode_search` TSV): a header naming a Barcode column,
// then one row per book found. A row without a plausible barcode (empty, or not a barcode) is
// skipped and counted, never fatal: one odd row must not fail a whole batch.
struct BarcodeSearchReply {
  struct Row {
    std::string barcode;
    std::vector<std::pair<std::string, std::string>> columns;  // MapEnrichmentRow
  };
  std::vector<Row> rows;
  int64_t skipped_rows = 0;
  std::vector<std::string> skipped_samples;  // the first few skipped lines (tabs shown as " | ")
};
// kDataLoss naming `what` if the reply is empty or its header has no Barcode column.
Result<BarcodeSearchReply> ParseBarcodeSearchReply(std::string_view body, const std::string& what);

// _barcode_search columns -> books table columns (docs/compatibility.md, The books table). Dates are converted to
// ISO 8601. Returns {db_column, value} for each mapped column present in the header.
std::vector<std::pair<std::string, std::string>> MapEnrichmentRow(
    const TsvTable& table, const std::vector<std::string>& cells);

}  // namespace grin::grin_client
