// collect / enrich / request end to end: fake GRIN over HTTPS -> client -> SQLite catalog.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

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

}  // namespace

TEST_SUITE("integration") {

TEST_CASE("collect: 100,001 books in 10,000-row pages, ISO dates, then idempotent") {
  GrinEnv env(FakeOptions(100'001), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  CollectOptions o;
  o.page_size = 10'000;
  auto stats = CollectAllBooks(*env.client, *catalog, o);
  REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
  CHECK(stats->pages == 11);
  CHECK(stats->counts.inserted == 100'001);
  CHECK(stats->finished);
  CHECK(*catalog->CountBooks() == 100'001);
  fake::BookRecord b = env.server->corpus("TEST")->Get(77'777);
  {
    SQLite::Database d(db, SQLite::OPEN_READONLY);
    SQLite::Statement q(d, "SELECT title, scanned_date, grin_state, google_books_link FROM books "
                           "WHERE barcode = ?");
    q.bind(1, b.barcode);
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getString() == b.title);
    CHECK(q.getColumn(1).getString() == GrinDateToIso(fake::FormatGrinDate(b.scanned)));
    CHECK(q.getColumn(2).getString() == b.state);
    CHECK(q.getColumn(3).getString() == b.google_books_link);
  }
  CHECK(Scalar(db, "SELECT count(*) FROM collect_cursor") == 0);
  auto again = CollectAllBooks(*env.client, *catalog, o);
  REQUIRE(again.ok());
  CHECK(again->counts.inserted == 0);
  CHECK(again->counts.unchanged == 100'001);
}

TEST_CASE("collect: 0 and 1 books, shuffled and extra HTML columns map by label") {
  for (std::string cols : {"default", "shuffle", "extra"}) {
    for (int64_t n : {0, 1, 5}) {
      auto o = FakeOptions(n);
      o.html_columns = cols;
      GrinEnv env(o, false);
      auto catalog = OpenCatalog(env.tmp.file("books.db"));
      auto stats = CollectAllBooks(*env.client, *catalog, CollectOptions{});
      REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
      CHECK(stats->counts.inserted == n);
      if (n > 0) {
        fake::BookRecord b = env.server->corpus("TEST")->Get(n - 1);
        SQLite::Database d(env.tmp.file("books.db"), SQLite::OPEN_READONLY);
        SQLite::Statement q(d, "SELECT title, ocr_date, grin_state FROM books WHERE barcode = ?");
        q.bind(1, b.barcode);
        REQUIRE(q.executeStep());
        CHECK(q.getColumn(0).getString() == b.title);
        CHECK(q.getColumn(1).getString() == GrinDateToIso(fake::FormatGrinDate(b.ocr)));
        CHECK(q.getColumn(2).getString() == b.state);
      }
    }
  }
}

TEST_CASE("collect: token expiry mid-collect is survived (refresh + retry)") {
  for (std::string mode : {"401", "302"}) {
    auto o = FakeOptions(1000);
    o.auth_failure = mode;
    GrinEnv env(o, false);
    auto catalog = OpenCatalog(env.tmp.file("books.db"));
    CollectOptions co;
    co.page_size = 100;
    co.progress = [&](int64_t pages, int64_t) {
      if (pages == 3 || pages == 7) env.server->AdvanceClock(3601);  // every token expires
    };
    auto stats = CollectAllBooks(*env.client, *catalog, co);
    REQUIRE_MESSAGE(stats.ok(), stats.status().ToString());
    CHECK(stats->counts.inserted == 1000);
    CHECK(env.tokens->refreshes() >= 3);
    CHECK(env.server->Stats().auth_failures >= 2);
  }
}

TEST_CASE("collect: an interrupted collect resumes from its cursor, --refresh updates fields") {
  GrinEnv env(FakeOptions(950), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  CollectOptions co;
  co.page_size = 100;
  co.max_pages = 4;
  auto first = CollectAllBooks(*env.client, *catalog, co);
  REQUIRE(first.ok());
  CHECK(first->counts.inserted == 400);
  CHECK_FALSE(first->finished);
  CHECK(Scalar(db, "SELECT pages_done FROM collect_cursor") == 4);
  env.server->ResetStats();
  co.max_pages = 0;
  auto rest = CollectAllBooks(*env.client, *catalog, co);
  REQUIRE(rest.ok());
  CHECK(rest->resumed);
  CHECK(rest->counts.inserted == 550);
  CHECK(rest->pages == 6);  // pages 5..10 only: nothing fetched twice
  CHECK(env.server->Stats().endpoints["all_books"].requests == 6);

  // A book converts; --refresh picks up its converted date and state.
  env.server->corpus("TEST")->Reconvert(5, env.server->NowSeconds());
  co.refresh = true;
  auto refreshed = CollectAllBooks(*env.client, *catalog, co);
  REQUIRE(refreshed.ok());
  CHECK(refreshed->counts.updated >= 1);
  CHECK(refreshed->counts.inserted == 0);
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  SQLite::Statement q(d, "SELECT grin_state, converted_date FROM books WHERE barcode = ?");
  q.bind(1, fake::Corpus::BarcodeAt(5));
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "CONVERTED");
  CHECK_FALSE(q.getColumn(1).getString().empty());
}

TEST_CASE("collect: a malformed page writes nothing of itself and names itself, rerun resumes") {
  // (A page with one odd row is not malformed: see live_shapes_test.cc.)
  GrinEnv env(FakeOptions(500), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  fake::FaultRule garbled;
  garbled.endpoint = "all_books";
  garbled.action = "malformed";
  garbled.nth = 3;
  env.server->AddFault(garbled);
  CollectOptions co;
  co.page_size = 100;
  auto r = CollectAllBooks(*env.client, *catalog, co);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kDataLoss);
  CHECK(r.status().message().find("first=200") != std::string::npos);
  CHECK(r.status().message().find("no results table") != std::string::npos);
  CHECK(*catalog->CountBooks() == 200);  // pages 1 and 2 only
  CHECK(Scalar(db, "SELECT pages_done FROM collect_cursor") == 2);

  r = CollectAllBooks(*env.client, *catalog, co);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->resumed);
  CHECK(*catalog->CountBooks() == 500);
}

TEST_CASE("enrich: found, missing and failed groups, failures retried on the next run") {
  GrinEnv env(FakeOptions(1200), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  REQUIRE(CollectAllBooks(*env.client, *catalog, CollectOptions{}).ok());
  CollectCursor none;
  none.library_directory = "TEST";
  CollectedBook unknown;
  unknown.barcode = "NOSUCH0001";
  REQUIRE(catalog->ApplyCollectedPage({unknown}, false, none).ok());

  fake::FaultRule f;
  f.endpoint = "barcode_search";
  f.status = 400;  // permanent: the transport does not retry it
  f.nth = 2;
  env.server->AddFault(f);
  EnrichOptions eo;
  eo.db_batch = 1000;
  eo.concurrency = 3;
  auto s = EnrichBooks(*env.client, *catalog, eo);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  CHECK(s->asked == 1201);
  CHECK(s->failed_groups == 1);
  CHECK(s->missing == 1);
  CHECK(s->found == 1200 - s->failed_barcodes);
  CHECK(Scalar(db, "SELECT count(*) FROM book_enrichment WHERE state = 'failed'") ==
        s->failed_barcodes);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE enrichment_timestamp IS NULL") ==
        s->failed_barcodes + 1);

  auto again = EnrichBooks(*env.client, *catalog, eo);
  REQUIRE(again.ok());
  CHECK(again->asked == s->failed_barcodes);  // the missing one is not asked again
  CHECK(again->found == s->failed_barcodes);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE enrichment_timestamp IS NULL") == 1);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE grin_viewability IS NULL "
                   "AND barcode <> 'NOSUCH0001'") == 0);
  // Each URL stayed within the bound (the fake answers 414 above 8,192; ours is 7,500).
  CHECK(env.server->Stats().endpoints["barcode_search"].by_status.count(414) == 0);
}

TEST_CASE("enrich: a malformed TSV reply fails its group, names it, and writes nothing") {
  GrinEnv env(FakeOptions(50), false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  REQUIRE(CollectAllBooks(*env.client, *catalog, CollectOptions{}).ok());
  fake::FaultRule f;
  f.endpoint = "barcode_search";
  f.action = "malformed";
  f.times = 1;
  env.server->AddFault(f);
  auto s = EnrichBooks(*env.client, *catalog, EnrichOptions{});
  REQUIRE(s.ok());
  CHECK(s->failed_groups == 1);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE enrichment_timestamp IS NOT NULL") == 0);
  CHECK(Scalar(db, "SELECT count(*) FROM book_enrichment WHERE state = 'failed' AND "
                   "last_error LIKE '%_barcode_search%Barcode%'") == 50);
  s = EnrichBooks(*env.client, *catalog, EnrichOptions{});
  REQUIRE(s.ok());
  CHECK(s->found == 50);
}

TEST_CASE("request: batches classified and recorded, 429 stops with the free space reported") {
  auto o = FakeOptions(300);
  o.corpus.frac_converted = 0.1;
  o.corpus.frac_in_process = 0.02;
  o.corpus.frac_failed = 0;
  o.corpus.frac_not_allowed = 0.05;
  o.corpus.queue_max = 50;
  GrinEnv env(o, false);
  const std::string db = env.tmp.file("books.db");
  auto catalog = OpenCatalog(db);
  REQUIRE(CollectAllBooks(*env.client, *catalog, CollectOptions{}).ok());
  RequestOptions ro;
  ro.limit = 20;
  ro.batch = 7;
  auto r = RequestConversions(*env.client, *catalog, ro);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK_FALSE(r->queue_full);
  CHECK(r->outcomes["requested"] == 20);
  CHECK(Scalar(db, "SELECT count(*) FROM books WHERE processing_request_timestamp IS NOT NULL") == 20);
  CHECK(Scalar(db, "SELECT count(*) FROM events WHERE stage = 'conversion' AND outcome = 'requested'") == 20);
  CHECK(r->free_after == kQueueCap - r->in_process_before - 20);

  ro.limit = 200;
  auto full = RequestConversions(*env.client, *catalog, ro);
  REQUIRE(full.ok());
  CHECK(full->queue_full);
  CHECK(env.server->corpus("TEST")->Count(fake::ConvertStatus::kInProcess) <= 50);
  CHECK(env.server->Stats().endpoints["process"].by_status.count(429) == 1);
}

}  // TEST_SUITE

}  // namespace grin::grin_client
