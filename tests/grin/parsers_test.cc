// Unit tests of the GRIN formats: HTML list pages, text lists, TSV, _process replies, dates.
#include <doctest/doctest.h>

#include "engine/grin/html_list.h"
#include "engine/grin/text_formats.h"

namespace grin::grin_client {

TEST_SUITE("unit") {

TEST_CASE("labels normalise as GT does") {
  CHECK(NormalizeLabel("OCR'd Date") == "ocrd_date");
  CHECK(NormalizeLabel("  Convert  Failed-Info ") == "convert_failed_info");
  CHECK(NormalizeLabel("Barcode") == "barcode");
}

TEST_CASE("Next hrefs resolve against the page URL in every form") {
  const std::string page = "https://127.0.0.1:8443/libraries/TEST/_all_books?result_count=10";
  CHECK(ResolveUrl(page, "_all_books?first=10") ==
        "https://127.0.0.1:8443/libraries/TEST/_all_books?first=10");
  CHECK(ResolveUrl(page, "/libraries/TEST/_all_books?first=10") ==
        "https://127.0.0.1:8443/libraries/TEST/_all_books?first=10");
  CHECK(ResolveUrl(page, "https://other:1/x?first=1") == "https://other:1/x?first=1");
  CHECK(ResolveUrl(page, "?first=20") ==
        "https://127.0.0.1:8443/libraries/TEST/_all_books?first=20");
}

TEST_CASE("dates become ISO 8601") {
  CHECK(GrinDateToIso("2009/12/23 18:41") == "2009-12-23T18:41:00");
  CHECK(GrinDateToIso("2009-12-23 18:41") == "2009-12-23T18:41:00");
  CHECK(GrinDateToIso("2009/12/23") == "2009-12-23T00:00:00");
  CHECK(GrinDateToIso("") == "");
  CHECK(GrinDateToIso("sometime") == "sometime");
}

TEST_CASE("HTML list: columns by label, shuffled and extra columns, links, entities, Next") {
  const std::string html = R"(<html><body>
<table><tr><td>layout table</td></tr></table>
<table class="results"><tr class="heading"><td></td>
  <td><span class="hd3">State</span></td><td><span class="hd3">Notes</span></td>
  <td><span class="hd3">Barcode</span></td><td><span class="hd3">Google Books</span></td>
  <td><span class="hd3">Title</span></td><td><span class="hd3">Scanned Date</span></td></tr>
<tbody>
<tr><td><input type="checkbox" name="barcodes" value="B1"></td><td>CONVERTED</td><td>&nbsp;</td>
  <td>B1</td><td><a href="http://books.google.com/books?id=1">View</a></td>
  <td>Smith &amp; Sons   <b>Études</b></td><td>2009/01/09 11:24</td></tr>
<tr><td>short</td></tr>
<tr><td><input type="checkbox" name="barcodes" value="B2"></td><td>NEW</td><td></td><td>B2</td></tr>
</tbody></table>
<div><a href="_all_books?result_count=2&amp;first=2">Next &gt;</a></div></body></html>)";
  ParsedListPage page;
  REQUIRE(ParseListPage(html, "https://h/libraries/T/_all_books?result_count=2", &page).ok());
  REQUIRE(page.keys.size() == 7);
  CHECK(page.keys[0] == "");
  CHECK(page.keys[3] == "barcode");
  REQUIRE(page.rows.size() == 2);
  CHECK(page.barcodes == std::vector<std::string>{"B1", "B2"});
  CHECK(page.rows[0][4] == "View");  // a cell's value is its text; its link is apart
  CHECK(page.hrefs[0][4] == "http://books.google.com/books?id=1");
  CHECK(page.hrefs[0][3] == "");
  CHECK(page.rows[0][5] == "Smith & Sons Études");
  CHECK(page.rows[0][2] == "");
  CHECK(page.rows[1].size() == 7);  // padded
  CHECK(page.next_url == "https://h/libraries/T/_all_books?result_count=2&first=2");
}

TEST_CASE("HTML list: a page without a results table is an error naming the page") {
  ParsedListPage page;
  Status s = ParseListPage("<html><body><p>Sign in</p></body></html>", "https://h/p1", &page);
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK(s.message().find("https://h/p1") != std::string::npos);
  s = ParseListPage("<html><body>Your request is unavailable. Try later.</body></html>",
                    "https://h/p2", &page);
  CHECK(s.ok());
  CHECK(page.unavailable);
}

TEST_CASE("HTML list: streaming in tiny chunks gives the same rows") {
  std::string html = "<table><tr class=\"heading\"><td></td><td>Barcode</td><td>Title</td></tr>";
  for (int i = 0; i < 50; ++i) {
    html += "<tr><td><input name=\"barcodes\" value=\"X" + std::to_string(i) + "\"></td><td>X" +
            std::to_string(i) + "</td><td>t&#233;" + std::to_string(i) + "</td></tr>";
  }
  html += "</table>";
  std::vector<std::string> got;
  HtmlListParser p("u", [&](const ListRow& r) {
    got.push_back(r.Barcode() + "=" + r.Get("title"));
    return Status::Ok();
  });
  for (size_t i = 0; i < html.size(); i += 7) {
    REQUIRE(p.Feed(html.data() + i, std::min<size_t>(7, html.size() - i)).ok());
  }
  REQUIRE(p.Finish().ok());
  REQUIRE(got.size() == 50);
  CHECK(got[49] == "X49=té49");
}

TEST_CASE("text lists: CRLF, blank lines, file names, prefixes, extra fields") {
  std::vector<std::string> got;
  LineSplitter s([&](std::string_view l) {
    got.push_back(BarcodeFromListLine(l, "TEST"));
    return Status::Ok();
  });
  const std::string body = "A1.tar.gz.gpg\r\nTEST_A2.tar.gz.gpg\r\n\r\nA3\tfailed\tinfo\nA4";
  REQUIRE(s.Feed(body.data(), 9).ok());
  REQUIRE(s.Feed(body.data() + 9, body.size() - 9).ok());
  REQUIRE(s.Finish().ok());
  CHECK(got == std::vector<std::string>{"A1", "A2", "A3", "A4"});
}

TEST_CASE("TSV by header name: shuffled, missing and extra columns, short rows") {
  TsvTable t;
  REQUIRE(t.SetHeader("Barcode\tFuture\tState\tScanned Date", "x").ok());
  auto cells = t.Split("B1\tzz\tCONVERTED");
  REQUIRE(cells.size() == 4);
  CHECK(cells[3] == "");
  auto cols = MapEnrichmentRow(t, t.Split("B1\tzz\tNEW\t2008/02/20 12:00\textra"));
  CHECK(cols == std::vector<std::pair<std::string, std::string>>{
                    {"scanned_date", "2008-02-20T12:00:00"}, {"grin_state", "NEW"}});
  CHECK(t.SetHeader("<html>oops", "_barcode_search (3 barcodes)").code() == StatusCode::kDataLoss);
}

TEST_CASE("_process replies: text and HTML, every status class") {
  auto rows = ParseProcessReply(
      "Barcode\tStatus\nA\tSuccess\nB\tAlready being converted\nC\tAlready available for "
      "download\nD\tNot allowed to be downloaded\nE\tOther error\nF\tQuota weirdness\n",
      "p");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 6);
  CHECK((*rows)[0].outcome == ProcessOutcome::kRequested);
  CHECK((*rows)[1].outcome == ProcessOutcome::kAlreadyInProcess);
  CHECK((*rows)[2].outcome == ProcessOutcome::kAlreadyAvailable);
  CHECK((*rows)[3].outcome == ProcessOutcome::kNotAllowed);
  CHECK((*rows)[4].outcome == ProcessOutcome::kOther);
  CHECK((*rows)[5].outcome == ProcessOutcome::kOther);
  CHECK(ParseProcessReply("Barcode,Status\n", "p").status().code() == StatusCode::kDataLoss);
  auto html = ParseProcessReply(
      "<html><body><div id=\"Main\"><table><tr><td>Barcode</td><td>Status</td></tr>"
      "<tr><td>A</td><td><div><pre>Success</pre></div></td></tr></table></div></body></html>",
      "p");
  REQUIRE(html.ok());
  REQUIRE(html->size() == 1);
  CHECK((*html)[0].barcode == "A");
  CHECK((*html)[0].outcome == ProcessOutcome::kRequested);
}

}  // TEST_SUITE

}  // namespace grin::grin_client
