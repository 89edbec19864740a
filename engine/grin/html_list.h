#pragma once
// Streaming parser for GRIN's HTML list pages (_all_books, _converted, _in_process, _failed,
// _available), docs/grin-protocol.md, List pages. Built on libxml2's HTML push parser with SAX callbacks, so a
// page is parsed as its bytes arrive and never held whole: feed it the body in chunks.
//
// What it understands:
//   - the data table is the first <table> holding a <tr class="heading">; each heading cell's
//     label is the text of its <span class="hd3"> (else the cell's text), never a link's URL:
//     labels may sit inside sort links (the first cell, over the checkbox column, is empty);
//   - every later <tr> with at least two cells is a row; each cell gives its whitespace-collapsed
//     text and, separately, the href of its first <a>; <input name="barcodes" value=...> gives
//     the checkbox barcode;
//   - a row without a readable barcode (a select-all or totals row, an impossible value) is
//     skipped and counted, never fatal; a page with rows of which none is readable is an error;
//   - the "Next" link: text containing "next" in any case, ">" or "»" (&raquo;) (e.g. "Next &gt;",
//     "next page"), href with first= or ctoken=, resolved against the page URL (relative,
//     root-relative or absolute);
//   - the "Your request is unavailable" page (reported as unavailable(), not as rows).
// Columns are addressed by normalised label (lower case, spaces and '-' to '_', "'" dropped:
// "OCR'd Date" -> "ocrd_date"), never by position.
//
// Thread safety: one parser per page, used by one thread at a time.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"

namespace grin::grin_client {

// "OCR'd Date" -> "ocrd_date".
std::string NormalizeLabel(std::string_view label);

// Resolves href against the URL of the page it appeared on.
std::string ResolveUrl(std::string_view page_url, std::string_view href);

// A barcode as GRIN lists it: a non-empty token of letters, digits, '_', '-' and '.' (the parser's
// test of a row; BookFromRow and the queues apply PlausibleBarcode on top).
bool ReadableBarcode(std::string_view s);

// One table row, addressed by normalised column key.
struct ListRow {
  const std::vector<std::string>* keys = nullptr;  // normalised labels, aligned with cells
  std::vector<std::string> cells;   // each cell's whitespace-collapsed text (never an href)
  std::vector<std::string> hrefs;   // each cell's first <a href>, or "" (aligned with cells)
  std::string checkbox;  // value of the row's barcodes checkbox, or ""

  // The cell text / link under `key`, or "" if the page has no such column.
  const std::string& Get(std::string_view key) const;
  const std::string& Href(std::string_view key) const;
  bool Has(std::string_view key) const;
  // The row's barcode, never taken from an href: the checkbox value, else the text of the
  // barcode column, else the text of the filename column. A file name loses ".tar.gz.gpg" and,
  // if dir is given, a "<DIR>_" prefix.
  std::string Barcode(std::string_view dir = "") const;
  // The row's cell texts joined by " | ", at most ~200 bytes: for warnings.
  std::string Text() const;
};

class HtmlListParser {
 public:
  // on_row runs for each data row as it is parsed; a non-OK return stops parsing and becomes the
  // result of Feed/Finish. page_url names the page in errors and resolves the Next link.
  using RowFn = std::function<Status(const ListRow& row)>;
  HtmlListParser(std::string page_url, RowFn on_row);
  ~HtmlListParser();
  HtmlListParser(const HtmlListParser&) = delete;
  HtmlListParser& operator=(const HtmlListParser&) = delete;

  Status Feed(const char* data, size_t len);
  // Ends the page. kDataLoss naming the page if it is neither a list page (no tr.heading table)
  // nor the unavailable page, or if it has rows but none with a readable barcode.
  Status Finish();

  bool unavailable() const;
  // Normalised column keys of the data table (first is "" for the checkbox column).
  const std::vector<std::string>& keys() const;
  // Absolute URL of the next page, or "" on the last page.
  const std::string& next_url() const;
  int64_t rows() const;
  // Rows skipped for want of a readable barcode, and the Text() of the first few of them.
  int64_t skipped_rows() const;
  const std::vector<std::string>& skipped_samples() const;
  static constexpr size_t kMaxSkippedSamples = 5;

  struct State;  // SAX state; public only for the C callbacks in the .cc

 private:
  std::unique_ptr<State> s_;
};

// Convenience: parses a whole page in memory, collecting rows as copies.
struct ParsedListPage {
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> rows;   // cell texts aligned with keys
  std::vector<std::vector<std::string>> hrefs;  // cell links aligned with keys ("" = none)
  std::vector<std::string> barcodes;            // ListRow::Barcode() of each row
  int64_t skipped_rows = 0;
  std::string next_url;
  bool unavailable = false;
};
Status ParseListPage(std::string_view html, const std::string& page_url, ParsedListPage* out);

}  // namespace grin::grin_client
