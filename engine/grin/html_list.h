#pragma once
// Streaming parser for GRIN's HTML list pages (_all_books, _converted, _in_process, _failed,
// _available), grin-protocol.md §4. Built on libxml2's HTML push parser with SAX callbacks, so a
// page is parsed as its bytes arrive and never held whole: feed it the body in chunks.
//
// What it understands:
//   - the data table is the first <table> holding a <tr class="heading">; each heading cell's
//     text is a column label (the first, over the checkbox column, is empty);
//   - every later <tr> with at least two cells is a row; a cell holding <a href> yields the href,
//     otherwise its whitespace-collapsed text; <input name="barcodes" value=...> gives the
//     checkbox barcode;
//   - the "Next" link (text containing "Next" or ">", href with first= or ctoken=), resolved
//     against the page URL (relative, root-relative or absolute);
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

// One table row, addressed by normalised column key.
struct ListRow {
  const std::vector<std::string>* keys = nullptr;  // normalised labels, aligned with cells
  std::vector<std::string> cells;
  std::string checkbox;  // value of the row's barcodes checkbox, or ""

  // The cell under `key`, or "" if the page has no such column.
  const std::string& Get(std::string_view key) const;
  bool Has(std::string_view key) const;
  // The row's barcode: the barcode column, else the filename column minus ".tar.gz.gpg" (and a
  // "<DIR>_" prefix if dir is given), else the checkbox value.
  std::string Barcode(std::string_view dir = "") const;
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
  // nor the unavailable page, or if a data row lacks a barcode.
  Status Finish();

  bool unavailable() const;
  // Normalised column keys of the data table (first is "" for the checkbox column).
  const std::vector<std::string>& keys() const;
  // Absolute URL of the next page, or "" on the last page.
  const std::string& next_url() const;
  int64_t rows() const;

  struct State;  // SAX state; public only for the C callbacks in the .cc

 private:
  std::unique_ptr<State> s_;
};

// Convenience: parses a whole page in memory, collecting rows as copies.
struct ParsedListPage {
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> rows;  // cells aligned with keys
  std::vector<std::string> barcodes;           // ListRow::Barcode() of each row
  std::string next_url;
  bool unavailable = false;
};
Status ParseListPage(std::string_view html, const std::string& page_url, ParsedListPage* out);

}  // namespace grin::grin_client
