// Fuzz target: GRIN's HTML list pages (_all_books, _converted, _in_process, _failed, _available)
// through the production streaming parser (engine/grin/html_list), fed in input-derived chunks
// as the transport delivers them, then each row through BookFromRow (collect's mapping) and the
// whole-page ParseListPage. Checks the parser's contract: every row handed out has a readable
// barcode.

#include <cstdlib>

#include "engine/grin/html_list.h"
#include "engine/grin/workflows.h"
#include "tests/fuzz/fuzz_util.h"

using grin::Status;
using namespace grin::grin_client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string url = "https://books.google.com/libraries/TEST/_all_books?result_count=50";
  HtmlListParser parser(url, [&](const ListRow& row) {
    const std::string barcode = row.Barcode();
    if (!ReadableBarcode(barcode)) std::abort();  // the parser promised a readable barcode
    (void)row.Barcode("TEST");
    (void)row.Text();
    (void)row.Get("title");
    (void)row.Href("google_books");
    (void)BookFromRow(row, url, "TEST");
    return Status::Ok();
  });
  bool ok = true;
  grin::fuzz::FeedChunked(data, size, [&](const uint8_t* p, size_t n) {
    ok = parser.Feed(reinterpret_cast<const char*>(p), n).ok();
    return ok;
  });
  if (ok) (void)parser.Finish();
  (void)parser.next_url();
  (void)parser.skipped_samples();

  ParsedListPage page;
  (void)ParseListPage(grin::fuzz::AsView(data, size), url, &page);
  for (const auto& b : page.barcodes) {
    if (!ReadableBarcode(b)) std::abort();
  }
  return 0;
}
