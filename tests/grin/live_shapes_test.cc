// The live site's page shapes served by the fake GRIN (its page-shape switches) over HTTPS:
// collect, enrich and the text queues run over them end to end.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <set>

#include "engine/grin/workflows.h"
#include "storage/sqlite_book_catalog.h"
#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
using testing::FakeOptions;
using testing::GrinEnv;

namespace {

std::unique_ptr<storage::SqliteBookCatalog> OpenCatalog(const std::string& path) {
  auto c = storage::SqliteBookCatalog::Open(path);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

int64_t Scalar(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// A client on the env's transport and tokens that logs into `log`.
std::unique_ptr<GrinClient> LoggingClient(GrinEnv& env, Logger* log) {
  ClientOptions co = env.client->options();
  co.logger = log;
  return std::make_unique<GrinClient>(env.transport.get(), env.tokens.get(), co);
}

fake::FakeGrinOptions LiveShapes(int64_t books) {
  auto o = FakeOptions(books);
  o.barcode_cell_links = true;
  o.select_all_row = true;
  o.sort_link_headings = true;
  o.next_link_text = "next page";
  return o;
}

}  // namespace

TEST_SUITE("integration") {

TEST_CASE("live shapes: collect over linked cells, select-all rows, sort-link labels, next page") {
  GrinEnv env(LiveShapes(250), false);
  CaptureLogger log;
  auto client = LoggingClient(env, &log);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  CollectOptions co;
  co.page_size = 100;
  auto stats = CollectAllBooks(*client, *catalog, co);
  REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
  CHECK(stats->pages == 3);
  CHECK(stats->counts.inserted == 250);
  CHECK(stats->finished);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE title IS NULL OR title = '' OR "
                   "grin_state IS NULL OR grin_state = '' OR scanned_date IS NULL") == 0);
  fake::BookRecord b = env.server->corpus("TEST")->Get(123);
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  SQLite::Statement q(d, "SELECT title, scanned_date, grin_state, google_books_link FROM books "
                         "WHERE barcode = ?");
  q.bind(1, b.barcode);
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == b.title);
  CHECK(q.getColumn(1).getString() == GrinDateToIso(fake::FormatGrinDate(b.scanned)));
  CHECK(q.getColumn(2).getString() == b.state);
  CHECK(q.getColumn(3).getString() == b.google_books_link);
  // Two rows without a barcode per page (select-all, totals), each warned about.
  CHECK(log.Count("grin.list.row_skipped") == 6);
}

TEST_CASE("live shapes: the _converted HTML pages with linked Filename cells") {
  auto o = LiveShapes(400);
  GrinEnv env(o, false);
  std::set<std::string> want;
  int64_t total = 0;
  for (int64_t i : env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, -1,
                                                     &total)) {
    want.insert(fake::Corpus::BarcodeAt(i));
  }
  REQUIRE(want.size() > 30);
  std::set<std::string> got;
  int64_t skipped = 0;
  Status s = env.client->ForEachListPage(env.client->ListUrl("converted", 30),
                                         [&](const ListPage& page) {
                                           for (const auto& row : page.rows) {
                                             got.insert(row.Barcode("TEST"));
                                             CHECK(row.Get("filename").find(".tar.gz.gpg") !=
                                                   std::string::npos);
                                           }
                                           skipped += page.skipped_rows;
                                           return Status::Ok();
                                         });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(got == want);
  CHECK(skipped == 2 * ((total + 29) / 30));
}

TEST_CASE("live shapes: every spelling of the Next link is followed") {
  for (std::string text :
       {"next page", "Next", "NEXT", "Next >", "Next &gt;", "Next page &raquo;"}) {
    INFO(text);
    auto o = FakeOptions(250);
    o.next_link_text = text;
    GrinEnv env(o, false);
    auto catalog = OpenCatalog(env.tmp.file("books.db"));
    CollectOptions co;
    co.page_size = 100;
    auto stats = CollectAllBooks(*env.client, *catalog, co);
    REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
    CHECK(stats->counts.inserted == 250);
    CHECK(stats->pages == 3);
  }
}

TEST_CASE("live shapes: a full page without a Next link is warned about") {
  GrinEnv env(FakeOptions(250), false);
  fake::FaultRule f;
  f.endpoint = "all_books";
  f.action = "drop_next";
  f.nth = 2;
  env.server->AddFault(f);
  CaptureLogger log;
  auto client = LoggingClient(env, &log);
  auto catalog = OpenCatalog(env.tmp.file("books.db"));
  CollectOptions co;
  co.page_size = 100;
  auto stats = CollectAllBooks(*client, *catalog, co);
  REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
  CHECK(stats->counts.inserted == 200);
  CHECK(log.Count("grin.list.full_page_without_next") == 1);
  // A short last page is the normal end of a list: no warning.
  CaptureLogger quiet;
  auto client2 = LoggingClient(env, &quiet);
  env.server->ClearFaults();
  co.restart = true;
  REQUIRE(CollectAllBooks(*client2, *catalog, co).ok());
  CHECK(quiet.Count("grin.list.full_page_without_next") == 0);
}

TEST_CASE("live shapes: one odd row never fails a collect, an unreadable page does") {
  GrinEnv env(FakeOptions(500), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  fake::FaultRule bad;
  bad.endpoint = "all_books";
  bad.action = "bad_row";
  bad.nth = 3;
  env.server->AddFault(bad);
  CaptureLogger log;
  auto client = LoggingClient(env, &log);
  CollectOptions co;
  co.page_size = 100;
  auto r = CollectAllBooks(*client, *catalog, co);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(*catalog->CountBooks() == 499);
  CHECK(log.Count("grin.list.row_skipped") == 1);
  bool named = false;
  for (const auto& e : log.entries()) {
    if (e.event != "grin.list.row_skipped") continue;
    for (const auto& [k, v] : e.fields) named |= v.find("bad barcode!") != std::string::npos;
  }
  CHECK(named);
}

TEST_CASE("live shapes: _barcode_search with an empty-barcode row enriches the rest") {
  auto o = FakeOptions(120);
  o.search_empty_barcode_row = true;
  GrinEnv env(o, false);
  CaptureLogger log;
  auto client = LoggingClient(env, &log);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  REQUIRE(CollectAllBooks(*client, *catalog, CollectOptions{}).ok());
  EnrichOptions eo;
  eo.db_batch = 50;
  auto s = EnrichBooks(*client, *catalog, eo, &log);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  CHECK(s->failed_groups == 0);
  CHECK(s->found == 120);
  CHECK(s->missing == 0);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE grin_viewability IS NULL") == 0);
  CHECK(log.Count("grin.barcode_search.row_skipped") == static_cast<size_t>(s->requests));
}

TEST_CASE("live shapes: _converted text lines that are not file names are ignored and counted") {
  auto o = FakeOptions(300);
  o.converted_junk_lines = true;
  o.crlf = true;
  GrinEnv env(o, false);
  CaptureLogger log;
  auto client = LoggingClient(env, &log);
  std::set<std::string> want;
  int64_t total = 0;
  fake::Corpus* corpus = env.server->corpus("TEST");
  for (int64_t i : corpus->List(fake::ConvertStatus::kConverted, 0, -1, &total)) {
    want.insert(fake::Corpus::BarcodeAt(i));
  }
  REQUIRE(want.size() > 20);
  std::set<std::string> got;
  REQUIRE(client->ForEachTextLine("converted", "", [&](const std::string& bc) {
    got.insert(bc);
    return Status::Ok();
  }).ok());
  CHECK(got == want);
  REQUIRE(log.Count("grin.text_list.lines_ignored") == 1);
  for (const auto& e : log.entries()) {
    if (e.event != "grin.text_list.lines_ignored") continue;
    bool counted = false;
    for (const auto& [k, v] : e.fields) counted |= (k == "count" && std::stoll(v) >= 3);
    CHECK(counted);
  }
  // Lists whose lines may be bare barcodes are read as before.
  int64_t in_process = 0;
  REQUIRE(client->ForEachTextLine("in_process", "", [&](const std::string&) {
    ++in_process;
    return Status::Ok();
  }).ok());
  CHECK(in_process == env.server->corpus("TEST")->Count(fake::ConvertStatus::kInProcess));
}

}  // TEST_SUITE

}  // namespace grin::grin_client
