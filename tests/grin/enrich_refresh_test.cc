// Issue 16 item 9: enrichment goes stale. Books GRIN did not know are asked again with backoff
// (1, 2, 4, 8, 16, then 30 days), `enrich --refresh [--older-than DAYS]` asks enriched books
// again, and the summary says how many were refreshed / asked again / still unknown. Against the
// fake GRIN over HTTPS, whose books change between runs.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <sstream>

#include "engine/base/clock.h"
#include "engine/grin/workflows.h"
#include "storage/sqlite_book_catalog.h"
#include "tests/grin/cli_env.h"
#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
namespace {

using testing::FakeOptions;
using testing::GrinEnv;

constexpr int64_t kDay = 86'400;

std::string Text(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  if (!q.executeStep() || q.getColumn(0).isNull()) return "";
  return q.getColumn(0).getString();
}
int64_t Scalar(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

struct Catalog {
  Catalog(GrinEnv& env) : path(env.tmp.file("books.db")) {
    auto c = storage::SqliteBookCatalog::Open(path, &clock);
    REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    catalog = std::move(c).value();
    REQUIRE(CollectAllBooks(*env.client, *catalog, CollectOptions{}).ok());
  }
  FakeClock clock;
  std::string path;
  std::unique_ptr<storage::SqliteBookCatalog> catalog;
};

EnrichStats Enrich(GrinEnv& env, Catalog& cat, EnrichOptions o = {}) {
  o.convert_failures = false;
  auto s = EnrichBooks(*env.client, *cat.catalog, o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return *s;
}

TEST_SUITE("unit") {

TEST_CASE("enrich refresh: migration 0009 gives books already missing their first wait") {
  grin::testing::TempDir tmp;
  const std::string path = tmp.file("books.db");
  FakeClock clock;
  {
    auto c = storage::SqliteBookCatalog::Open(path, &clock);
    REQUIRE(c.ok());
    CollectedBook a, b;
    a.barcode = "A1";
    b.barcode = "B1";
    REQUIRE((*c)->ApplyCollectedPage({a, b}, false, CollectCursor{"TEST", "", 0, 0, false}).ok());
    REQUIRE((*c)->ApplyEnrichment({{"A1", {{"grin_state", "CONVERTED"}}}}, {"B1"}).ok());
  }
  {
    // The database as 0008 left it: no backoff columns, missing books without a next ask.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("DROP INDEX book_enrichment_missing_due; DROP INDEX books_enriched;"
            "ALTER TABLE book_enrichment DROP COLUMN next_ask_at;"
            "ALTER TABLE book_enrichment DROP COLUMN missing_count;"
            // ... nor what 0011 added.
            "DROP TRIGGER books_count_insert; DROP TRIGGER books_count_delete;"
            "DROP TABLE book_count; DROP INDEX books_convert_failed;"
            "DROP TRIGGER events_uploaded_per_second; DROP TABLE uploaded_per_second;"
            "PRAGMA user_version = 8");
  }
  auto c = storage::SqliteBookCatalog::Open(path, &clock);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  CHECK(Text(path, "SELECT missing_count || ' ' || next_ask_at FROM book_enrichment "
                   "WHERE barcode = 'B1'") ==
        "1 " + FormatIsoUtc(clock.NowMicros() + kDay * 1'000'000));
  CHECK(Text(path, "SELECT missing_count || ' ' || COALESCE(next_ask_at, '-') FROM "
                   "book_enrichment WHERE barcode = 'A1'") == "0 -");
  CHECK((*c)->PendingEnrichment("", 10)->empty());
  clock.AdvanceSeconds(kDay + 1);
  CHECK(*(*c)->PendingEnrichment("", 10) == std::vector<std::string>{"B1"});
}

}  // TEST_SUITE

TEST_SUITE("integration") {

TEST_CASE("enrich refresh: books GRIN did not know are asked again with backoff, up to 30 days") {
  GrinEnv env(FakeOptions(60), false);
  fake::Corpus* corpus = env.server->corpus("TEST");
  REQUIRE(corpus->SetUnknownToSearch(5, true));
  REQUIRE(corpus->SetUnknownToSearch(6, true));
  const std::string b5 = fake::Corpus::BarcodeAt(5), b6 = fake::Corpus::BarcodeAt(6);
  Catalog cat(env);
  EnrichStats s = Enrich(env, cat);
  CHECK(s.asked == 60);
  CHECK(s.found == 58);
  CHECK(s.missing == 2);
  CHECK(s.missing_asked == 0);
  // Not asked again before its time.
  CHECK(Enrich(env, cat).asked == 0);
  // Waits of 1, 2, 4, 8, 16 days, then 30 (capped), each after one more 'missing' answer.
  const int64_t waits[] = {1, 2, 4, 8, 16, 30, 30};
  int64_t last = cat.clock.NowMicros();
  for (size_t k = 0; k < std::size(waits); ++k) {
    CAPTURE(k);
    const std::string sql = "SELECT round(julianday(next_ask_at) - julianday(last_attempt_at)) "
                            "FROM book_enrichment WHERE barcode = '" + b6 + "'";
    CHECK(Scalar(cat.path, sql) == waits[k]);
    cat.clock.SetMicros(last + (waits[k] * kDay - 60) * 1'000'000);
    CHECK(Enrich(env, cat).asked == 0);  // a minute early: not yet
    cat.clock.SetMicros(last + (waits[k] * kDay + 60) * 1'000'000);
    last = cat.clock.NowMicros();
    s = Enrich(env, cat);
    CHECK(s.asked == 2);
    CHECK(s.missing_asked == 2);
    CHECK(s.still_missing == 2);
    CHECK(s.missing_found == 0);
    CHECK(Scalar(cat.path, "SELECT missing_count FROM book_enrichment WHERE barcode = '" + b6 +
                               "'") == static_cast<int64_t>(k + 2));
  }
  // GRIN knows book 5 now: the next due ask finds it; 6 stays unknown.
  REQUIRE(corpus->SetUnknownToSearch(5, false));
  cat.clock.AdvanceSeconds(31 * kDay);
  s = Enrich(env, cat);
  CHECK(s.missing_asked == 2);
  CHECK(s.missing_found == 1);
  CHECK(s.still_missing == 1);
  CHECK(Text(cat.path, "SELECT state || '/' || missing_count || '/' || "
                       "COALESCE(next_ask_at, 'none') FROM book_enrichment WHERE barcode = '" +
                           b5 + "'") == "found/0/none");
  CHECK_FALSE(Text(cat.path, "SELECT grin_viewability FROM books WHERE barcode = '" + b5 + "'")
                  .empty());
  auto m = cat.catalog->MissingEnrichment();
  REQUIRE(m.ok());
  CHECK(m->books == 1);
  CHECK(m->next_ask_at == FormatIsoUtc(cat.clock.NowMicros() + 30 * kDay * 1'000'000));
}

TEST_CASE("enrich refresh: --refresh re-asks enriched books, --older-than only the stale ones") {
  GrinEnv env(FakeOptions(40), false);
  fake::Corpus* corpus = env.server->corpus("TEST");
  Catalog cat(env);
  REQUIRE(Enrich(env, cat).found == 40);
  const std::string b3 = fake::Corpus::BarcodeAt(3);
  const std::string viewability_sql =
      "SELECT grin_state || '/' || grin_viewability FROM books WHERE barcode = '" + b3 + "'";
  const std::string before = Text(cat.path, viewability_sql);
  REQUIRE(corpus->SetSearchOverride(3, "IN_PROCESS", "VIEW_CHANGED"));
  // A plain enrich leaves enriched books alone: the row is stale.
  CHECK(Enrich(env, cat).asked == 0);
  CHECK(Text(cat.path, viewability_sql) == before);
  cat.clock.AdvanceSeconds(10 * kDay);
  EnrichOptions refresh;
  refresh.refresh = true;
  EnrichStats s = Enrich(env, cat, refresh);
  CHECK(s.asked == 40);
  CHECK(s.refresh_asked == 40);
  CHECK(s.refreshed == 40);
  CHECK(Text(cat.path, viewability_sql) == "IN_PROCESS/VIEW_CHANGED");
  CHECK(env.server->BarcodeCounters("TEST", b3).searched == 2);

  // Ten days later, 15 books are refreshed (--limit); a day after that, --older-than 5 days
  // asks only the 25 others.
  cat.clock.AdvanceSeconds(10 * kDay);
  refresh.limit = 15;
  CHECK(Enrich(env, cat, refresh).refreshed == 15);
  cat.clock.AdvanceSeconds(kDay);
  refresh.limit = 0;
  refresh.refresh_before = FormatIsoUtc(cat.clock.NowMicros() - 5 * kDay * 1'000'000);
  s = Enrich(env, cat, refresh);
  CHECK(s.refresh_asked == 25);
  CHECK(s.refreshed == 25);
  CHECK(env.server->BarcodeCounters("TEST", fake::Corpus::BarcodeAt(0)).searched == 3);
  CHECK(env.server->BarcodeCounters("TEST", fake::Corpus::BarcodeAt(14)).searched == 3);
  CHECK(env.server->BarcodeCounters("TEST", fake::Corpus::BarcodeAt(15)).searched == 3);
  // A book missing at a refresh waits with backoff like any other; --refresh asks it anyway.
  REQUIRE(corpus->SetUnknownToSearch(7, true));
  refresh.refresh_before = "";
  s = Enrich(env, cat, refresh);
  CHECK(s.missing == 1);
  CHECK(Enrich(env, cat).asked == 0);
  s = Enrich(env, cat, refresh);
  CHECK(s.asked == 40);
  CHECK(s.missing_asked == 1);
  CHECK(s.still_missing == 1);
}

}  // TEST_SUITE

}  // namespace
}  // namespace grin::grin_client

namespace grin::cli {
namespace {

using testing::FakeRun;
using testing::Cli;
using testing::Run;

TEST_SUITE("integration") {

TEST_CASE("cli: enrich --refresh, --older-than, and unknown books asked again in a later run") {
  FakeRun env(30);
  const std::string run = env.run;
  auto& server = env.server;
  Run r;
  const std::string db = run + "/books.db";
  fake::Corpus* corpus = server->corpus("TEST");
  REQUIRE(corpus->SetUnknownToSearch(2, true));

  r = Cli({"collect", "--run-dir", run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  r = Cli({"enrich", "--run-dir", run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("29 enriched, 1 unknown to GRIN") != std::string::npos);
  CHECK(r.out.find("1 books unknown to GRIN wait to be asked again") != std::string::npos);

  r = Cli({"enrich", "--run-dir", run, "--older-than", "3"});
  CHECK(r.code == kExitUsage);
  CHECK(r.err.find("--older-than needs --refresh") != std::string::npos);

  // GRIN changes a book and learns the unknown one; a plain run asks neither yet.
  REQUIRE(corpus->SetSearchOverride(4, "", "VIEW_CHANGED"));
  REQUIRE(corpus->SetUnknownToSearch(2, false));
  r = Cli({"enrich", "--run-dir", run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK((r.out.rfind("0 books asked", 0) == 0 || r.out.find("\n0 books asked") != std::string::npos));
  // Enriched just now: not older than 3 days.
  r = Cli({"enrich", "--run-dir", run, "--refresh", "--older-than", "3"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("\n0 enriched books asked again") != std::string::npos);

  // A day goes by for the unknown book: the next plain run asks it again and finds it.
  {
    SQLite::Database w(db, SQLite::OPEN_READWRITE);
    w.exec("UPDATE book_enrichment SET next_ask_at = '2000-01-01T00:00:00Z' "
           "WHERE state = 'missing'");
  }
  r = Cli({"enrich", "--run-dir", run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("1 books GRIN did not know asked again: 1 known now, 0 still unknown") !=
        std::string::npos);

  r = Cli({"enrich", "--run-dir", run, "--refresh"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("30 enriched books asked again (--refresh): 30 refreshed") !=
        std::string::npos);
  SQLite::Database rd(db, SQLite::OPEN_READONLY);
  SQLite::Statement q(rd, "SELECT grin_viewability FROM books WHERE barcode = ?1");
  q.bind(1, fake::Corpus::BarcodeAt(4));
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "VIEW_CHANGED");
}

}  // TEST_SUITE

}  // namespace
}  // namespace grin::cli
