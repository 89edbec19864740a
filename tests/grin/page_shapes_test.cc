// The corpus of GRIN page shapes in tests/grin/pages (our own samples of what the live site
// serves, docs/grin-protocol.md: List pages, `_barcode_search` TSV): each page parsed, each value asserted.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/grin/html_list.h"
#include "engine/grin/text_formats.h"
#include "engine/grin/workflows.h"

namespace grin::grin_client {
namespace {

std::string Page(const std::string& name) {
  const std::string path = std::string(GRIN_SOURCE_DIR) + "/tests/grin/pages/" + name;
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot read " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const std::string kUrl = "https://h/libraries/TEST/_all_books?result_count=5";

// Parses a page with the streaming parser, collecting each row's barcode (for directory TEST)
// and its cells by key.
struct Parsed {
  Status status;
  std::vector<std::string> barcodes;
  std::vector<std::string> keys;
  std::vector<ListRow> rows;
  std::string next_url;
  int64_t skipped = 0;
};
Parsed Parse(const std::string& name) {
  Parsed out;
  HtmlListParser p(kUrl, [&](const ListRow& r) {
    out.barcodes.push_back(r.Barcode("TEST"));
    out.rows.push_back(r);
    return Status::Ok();
  });
  const std::string html = Page(name);
  out.status = p.Feed(html.data(), html.size());
  if (out.status.ok()) out.status = p.Finish();
  out.keys = p.keys();
  out.next_url = p.next_url();
  out.skipped = p.skipped_rows();
  return out;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("page shapes: a Barcode cell holding a link gives the barcode, never the href") {
  Parsed p = Parse("barcode_cell_link.html");
  REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
  CHECK(p.barcodes == std::vector<std::string>{"39015000000001", "39015000000002"});
  REQUIRE(p.rows.size() == 2);
  for (auto& r : p.rows) r.keys = &p.keys;
  CHECK(p.rows[0].Get("title") == "A Treatise & Notes");
  CHECK(p.rows[0].Get("barcode") == "39015000000001");
  CHECK(p.rows[1].Get("barcode") == "39015000000002");
  CHECK(p.rows[0].Href("google_books") == "http://books.google.com/books?id=AAA1");
  CHECK(p.rows[0].Href("barcode") == "_barcode_search?execute_query=true&barcodes=39015000000001");
  auto b = BookFromRow(p.rows[0], kUrl, "TEST");
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK(b->barcode == "39015000000001");
  CHECK(b->title == "A Treatise & Notes");
  CHECK(b->scanned_date == "2009-01-09T11:24:00");
  CHECK(b->google_books_link == "http://books.google.com/books?id=AAA1");
  CHECK(b->grin_state == "CONVERTED");
}

TEST_CASE("page shapes: a Filename cell holding a link gives the barcode, never the href") {
  Parsed p = Parse("filename_cell_link.html");
  REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
  CHECK(p.barcodes == std::vector<std::string>{"39015000000011", "39015000000012"});
  for (auto& r : p.rows) r.keys = &p.keys;
  CHECK(p.rows[1].Get("filename") == "TEST_39015000000012.tar.gz.gpg");
}

TEST_CASE("page shapes: select-all and totals rows are skipped and counted") {
  Parsed p = Parse("select_all_and_totals_rows.html");
  REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
  CHECK(p.barcodes == std::vector<std::string>{"39015000000021", "39015000000022"});
  CHECK(p.skipped == 2);
  for (auto& r : p.rows) r.keys = &p.keys;
  CHECK(p.rows[1].Get("state") == "CHECKED_IN");
}

TEST_CASE("page shapes: no readable row, or no results table, is an error naming the page") {
  Parsed none = Parse("no_readable_rows.html");
  CHECK(none.status.code() == StatusCode::kDataLoss);
  CHECK(none.status.message().find(kUrl) != std::string::npos);
  CHECK(none.status.message().find("none of its 2 rows") != std::string::npos);
  CHECK(none.status.message().find("Select all") != std::string::npos);
  Parsed login = Parse("no_results_table.html");
  CHECK(login.status.code() == StatusCode::kDataLoss);
  CHECK(login.status.message().find(kUrl) != std::string::npos);
  CHECK(login.status.message().find("no results table") != std::string::npos);
  Parsed empty = Parse("empty_list.html");
  CHECK_MESSAGE(empty.status.ok(), empty.status.ToString());
  CHECK(empty.barcodes.empty());
  CHECK(empty.keys == std::vector<std::string>{"", "barcode", "title"});
}

TEST_CASE("page shapes: heading labels inside sort links come from the label text") {
  Parsed p = Parse("sort_link_headings.html");
  REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
  CHECK(p.keys == std::vector<std::string>{"", "barcode", "title", "scanned_date",
                                           "analyzed_date", "state", "ocrd_date"});
  REQUIRE(p.rows.size() == 1);
  p.rows[0].keys = &p.keys;
  auto b = BookFromRow(p.rows[0], kUrl, "TEST");
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK(b->barcode == "39015000000031");
  CHECK(b->title == "Sorted Book");
  CHECK(b->scanned_date == "2012-03-04T05:06:00");
  CHECK(b->analyzed_date == "2012-03-05T07:08:00");
  CHECK(b->ocr_date == "2012-03-06T09:10:00");
  CHECK(b->grin_state == "PREVIOUSLY_DOWNLOADED");
}

TEST_CASE("page shapes: the Next link in any case, with or without an arrow") {
  for (const char* name : {"next_lower_case.html", "next_gt_entity.html", "next_gt_raw.html",
                           "next_upper.html", "next_plain.html"}) {
    INFO(name);
    Parsed p = Parse(name);
    REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
    CHECK(p.barcodes == std::vector<std::string>{"39015000000041"});
    CHECK(p.next_url == "https://h/libraries/TEST/_all_books?result_count=1&first=1");
  }
}

TEST_CASE("page shapes: every shape at once") {
  Parsed p = Parse("combined.html");
  REQUIRE_MESSAGE(p.status.ok(), p.status.ToString());
  CHECK(p.keys == std::vector<std::string>{"", "barcode", "title", "converted_date",
                                           "google_books", "state"});
  CHECK(p.barcodes == std::vector<std::string>{"39015000000051", "39015000000052"});
  CHECK(p.skipped == 3);  // select-all, the impossible barcode, totals
  CHECK(p.next_url == "https://h/libraries/TEST/_all_books?result_count=5&first=5");
  for (auto& r : p.rows) r.keys = &p.keys;
  auto b = BookFromRow(p.rows[0], kUrl, "TEST");
  REQUIRE(b.ok());
  CHECK(b->title == "Fifty-One");
  CHECK(b->converted_date == "2013-05-01T01:01:00");
  CHECK(b->google_books_link == "https://books.google.com/books?id=B51");
  CHECK(b->grin_state == "CONVERTED");
  auto b2 = BookFromRow(p.rows[1], kUrl, "TEST");
  REQUIRE(b2.ok());
  CHECK(b2->title == "Fifty-Two");
  CHECK(b2->google_books_link == "");
}

TEST_CASE("page shapes: _barcode_search with an empty-barcode row keeps the other rows") {
  auto r = ParseBarcodeSearchReply(Page("barcode_search_empty_barcode.txt"),
                                   "_barcode_search (3 barcodes)");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE(r->rows.size() == 2);
  CHECK(r->rows[0].barcode == "39015000000061");
  CHECK(r->rows[1].barcode == "39015000000062");
  CHECK(r->rows[0].columns == std::vector<std::pair<std::string, std::string>>{
                                  {"scanned_date", "2009-12-23T18:41:00"},
                                  {"grin_state", "CONVERTED"},
                                  {"grin_viewability", "VIEW_FULL"}});
  CHECK(r->skipped_rows == 1);
  REQUIRE(r->skipped_samples.size() == 1);
  CHECK(r->skipped_samples[0].find("VIEW_NONE") != std::string::npos);
  // A reply that is not GRIN's TSV still fails, naming the request.
  auto bad = ParseBarcodeSearchReply("<html>oops</html>\n", "_barcode_search (3 barcodes)");
  CHECK(bad.status().code() == StatusCode::kDataLoss);
  CHECK(bad.status().message().find("_barcode_search (3 barcodes)") != std::string::npos);
}

TEST_CASE("page shapes: _converted text lines without .tar.gz.gpg are not entries") {
  std::vector<std::string> converted, in_process;
  int64_t ignored = 0;
  LineSplitter lines([&](std::string_view line) {
    std::string bc = BarcodeOfListEntry("converted", line, "TEST");
    if (bc.empty()) {
      ++ignored;
    } else {
      converted.push_back(bc);
    }
    bc = BarcodeOfListEntry("in_process", line, "TEST");
    if (!bc.empty()) in_process.push_back(bc);
    return Status::Ok();
  });
  const std::string body = Page("converted_junk_lines.txt");
  REQUIRE(lines.Feed(body.data(), body.size()).ok());
  REQUIRE(lines.Finish().ok());
  CHECK(converted == std::vector<std::string>{"39015000000071", "39015000000072",
                                              "39015000000074"});
  CHECK(ignored == 4);  // "Filename", a bare barcode, markup, "Total: 3"
  // _in_process takes bare barcodes and file names alike, but never markup or totals.
  CHECK(std::count(in_process.begin(), in_process.end(), "39015000000073") == 1);
  CHECK(std::count(in_process.begin(), in_process.end(), "39015000000072") == 1);
  for (const auto& bc : in_process) CHECK(PlausibleBarcode(bc));
  CHECK(PlausibleBarcode("39015000000071"));
  CHECK_FALSE(PlausibleBarcode("Total: 3"));
  CHECK_FALSE(PlausibleBarcode("<html><body>oops</body></html>"));
  CHECK_FALSE(PlausibleBarcode(""));
}

}  // TEST_SUITE

}  // namespace grin::grin_client
