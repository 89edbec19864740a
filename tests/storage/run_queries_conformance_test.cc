// RunQueries (storage/run_queries.h) on both dialects: the same run written into a SQLite
// books.db and a PostgreSQL database (a throwaway cluster, tests/support/pg_cluster.h), then
// every question `status` and `report` ask must give the right answer on each and the same
// answer on both. Opened through OpenRunQueries, as the commands open them. The PostgreSQL
// database collates by ICU's en-US, so text orders that follow the database's collation
// instead of bytes (as SQLite's) show.
//
// "states": books in every state, written through the StateStore and BookCatalog ports (pending,
// released, checked, downloaded, uploaded with and without bytes, leased, failed and retrying,
// dead by permanent failure and dead by max_attempts, awaiting conversion, GRIN's convert
// failures, enriched, known missing). Times there are the writers' clocks, so time answers are
// checked against the moments around the fill; the slowest books' lease times are pinned by SQL.
// "history": events and jobs at fixed times, written by the same SQL on both, for the time grid
// (millisecond offsets, truncation toward zero before t0, exact bucket edges), ties by byte
// order, SQLite's NULL-first ordering and the completions-since arithmetic.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/base/clock.h"
#include "engine/book_catalog.h"
#include "engine/state_store.h"
#include "storage/open_run_queries.h"
#include "storage/postgres/pg_book_catalog.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/sqlite_book_catalog.h"
#include "storage/sqlite_state_store.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

// One dialect's run: its location, its ports, and raw SQL (the subset both dialects read alike).
struct Side {
  std::string name;
  std::string location;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<BookCatalog> catalog;
  std::function<void(const std::string&)> exec;
  std::unique_ptr<RunQueries> q;

  void Open() {
    REQUIRE(store->Flush().ok());
    auto r = OpenRunQueries(location);
    REQUIRE_MESSAGE(r.ok(), name << ": " << r.status().ToString());
    q = std::move(r).value();
  }
};

// A new database of the shared cluster whose default collation is ICU's en-US (where "alpha"
// sorts before "Zeta", unlike bytes), so the byte orders of the answers are the queries' own.
std::string IcuDatabase() {
  static int n = 0;
  const std::string name = "rq_icu_" + std::to_string(++n);
  auto c = pg::PgConnection::Connect(grin::testing::SharedPgCluster()->conninfo(), "cluster");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  Status made = (*c)->ExecScript("CREATE DATABASE " + name +
                                 " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                                 "LOCALE 'C'");
  REQUIRE_MESSAGE(made.ok(), made.ToString());
  const std::string uri = grin::testing::SharedPgCluster()->ConnInfo(name);
  auto check = pg::PgConnection::Connect(uri, "icu");
  REQUIRE(check.ok());
  auto order = (*check)->Exec("SELECT 'alpha' < 'Zeta'");
  REQUIRE(order.ok());
  REQUIRE(order->Int(0, 0) == 1);
  return uri;
}

// SQLite and, when the PostgreSQL server binaries are there, PostgreSQL.
struct Sides {
  TempDir dir;
  std::vector<Side> all;

  Sides() {
    Side s;
    s.name = "sqlite";
    s.location = dir.file("books.db");
    StateStoreOptions o;
    o.max_attempts = 2;
    o.backoff_base_micros = o.backoff_max_micros = 1000;
    auto store = SqliteStateStore::Open(s.location, o);
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    s.store = std::move(store).value();
    auto cat = SqliteBookCatalog::Open(s.location);
    REQUIRE_MESSAGE(cat.ok(), cat.status().ToString());
    s.catalog = std::move(cat).value();
    const std::string path = s.location;
    s.exec = [path](const std::string& sql) {
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      db.exec("PRAGMA busy_timeout = 10000");
      db.exec(sql);
    };
    all.push_back(std::move(s));

    if (!grin::testing::PgCluster::Available().ok()) {
      MESSAGE("skipped the PostgreSQL side: "
              << grin::testing::PgCluster::Available().message());
      return;
    }
    Side p;
    p.name = "postgres";
    p.location = IcuDatabase();
    PgStateStoreOptions po;
    po.max_attempts = 2;
    po.backoff_base_micros = po.backoff_max_micros = 1000;
    po.heartbeat_interval_micros = 0;
    po.lease_ttl_micros = 3'600'000'000;
    po.seed = 7;
    auto pstore = PgStateStore::Open(p.location, po);
    REQUIRE_MESSAGE(pstore.ok(), pstore.status().ToString());
    p.store = std::move(pstore).value();
    auto pcat = PgBookCatalog::Open(p.location);
    REQUIRE_MESSAGE(pcat.ok(), pcat.status().ToString());
    p.catalog = std::move(pcat).value();
    const std::string conninfo = p.location;
    p.exec = [conninfo](const std::string& sql) {
      auto c = pg::PgConnection::Connect(conninfo, "test");
      REQUIRE_MESSAGE(c.ok(), c.status().ToString());
      Status done = (*c)->ExecScript(sql);
      REQUIRE_MESSAGE(done.ok(), done.ToString());
    };
    all.push_back(std::move(p));
  }
};

std::string Barcode(int i) { return (i < 10 ? "B0" : "B") + std::to_string(i); }

// The "states" run, the same calls on each side; returns nothing, the expectations are below.
void FillStates(Side& s) {
  CAPTURE(s.name);
  std::vector<CollectedBook> books;
  for (int i = 1; i <= 13; ++i) {
    CollectedBook b;
    b.barcode = Barcode(i);
    b.title = "Book " + std::to_string(i);
    b.grin_state = "CONVERTED";
    books.push_back(b);
  }
  REQUIRE(s.catalog->ApplyCollectedPage(books, false, CollectCursor{"lib", "", 1, 13, false}).ok());
  // Enriched (B01), known missing (B13).
  REQUIRE(s.catalog->ApplyEnrichment({{"B01", {{"grin_viewability", "VIEW_FULL"}}}}, {"B13"}).ok());
  // GRIN's _failed list: two with one info, one each with two others ("Bad scan" sorts
  // before "a torn page" by bytes, after it in en-US), one with none given.
  auto listed = s.catalog->ReplaceConvertFailures({{"B11", "2026-01-02", "Page missing", "p. 7"},
                                                   {"B12", "2026-01-02", "Page missing", ""},
                                                   {"B03", "2026-01-03", "Bad scan", ""},
                                                   {"B05", "2026-01-04", "", ""},
                                                   {"B06", "2026-01-04", "a torn page", ""}});
  REQUIRE(listed.ok());
  CHECK(*listed == 5);

  // Dead by rule: B10 fails max_attempts (2) times.
  REQUIRE(s.store->Enqueue({"B10"}).ok());
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<WorkItem> items;
    for (int tries = 0; tries < 200 && items.empty(); ++tries) {
      if (tries > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      items = s.store->Claim(Stage::kPending, 1).value();
    }
    REQUIRE(items.size() == 1);
    REQUIRE(s.store->Fail(items[0], ErrorClass::kRetryable, "timeout", "").ok());
  }

  std::vector<std::string> rest;
  for (int i : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12}) rest.push_back(Barcode(i));
  REQUIRE(s.store->Enqueue(rest).value() == 11);
  auto items = s.store->Claim(Stage::kPending, 20).value();
  REQUIRE(items.size() == 11);
  auto item = [&](const std::string& b) {
    for (const auto& it : items) {
      if (it.barcode == b) return it;
    }
    FAIL("no item " << b);
    return WorkItem{};
  };
  REQUIRE(s.store->Release(item("B01")).ok());
  REQUIRE(s.store->Complete(item("B02"), Stage::kChecked).ok());
  REQUIRE(s.store->Complete(item("B03"), Stage::kDownloaded).ok());
  REQUIRE(s.store->Complete(item("B04"), Stage::kUploaded, "completed", R"({"bytes": 100})").ok());
  REQUIRE(s.store->Complete(item("B05"), Stage::kUploaded, "completed", R"({"bytes": 20})").ok());
  REQUIRE(s.store->Complete(item("B06"), Stage::kUploaded).ok());
  // B07 stays leased.
  REQUIRE(s.store->Fail(item("B08"), ErrorClass::kRetryable, "timeout", "").ok());
  REQUIRE(s.store->Fail(item("B09"), ErrorClass::kPermanent, "not_found", "").ok());
  REQUIRE(s.store->Await(item("B11"), "not_converted", R"({"grin": "NOT_CONVERTED"})").ok());
  REQUIRE(s.store->Fail(item("B12"), ErrorClass::kRetryable, "Unknown", "").ok());
  REQUIRE(s.store->Flush().ok());
  // The slowest books' last leases, pinned: B05 9 s, B04 and B06 5 s (a tie).
  s.exec("UPDATE jobs SET leased_at = 1000000000000, updated_at = 1000009000000 "
         "WHERE barcode = 'B05';"
         "UPDATE jobs SET leased_at = 1000000000000, updated_at = 1000005000000 "
         "WHERE barcode IN ('B04', 'B06')");
}

bool SameFailure(const FailureSummary& a, const FailureSummary& b) {
  return std::tie(a.stage, a.reason, a.error_class, a.dead, a.count) ==
         std::tie(b.stage, b.reason, b.error_class, b.dead, b.count);
}
std::string Show(const std::vector<BucketCount>& v) {
  std::string s;
  for (const auto& b : v) {
    s += "[" + std::to_string(b.bucket) + " " + std::to_string(b.events) + " " +
         std::to_string(b.bytes) + "]";
  }
  return s;
}

TEST_CASE("run queries: books in every state give the right and the same answers on both") {
  Sides sides;
  const int64_t before = SystemClock::Default()->NowMicros() - 1'000'000;
  for (auto& s : sides.all) FillStates(s);
  const int64_t after = SystemClock::Default()->NowMicros() + 1'000'000;
  for (auto& s : sides.all) s.Open();
  const double grid_t0 = std::floor(static_cast<double>(before) / 1e6);

  for (auto& s : sides.all) {
    CAPTURE(s.name);
    RunQueries& q = *s.q;
    CHECK(q.what() == (s.name == "sqlite" ? s.location : pg::RedactConninfo(s.location)));

    // Counts: B01 released, B07 leased, B08 and B12 retrying, B09 and B10 dead and B11
    // awaiting all sit at pending; B02 checked; B03 downloaded; B04-B06 uploaded.
    auto c = q.Counts().value();
    CHECK(c.total == 12);
    CHECK(c.at[0] == 7);
    CHECK(c.at[1] == 1);
    CHECK(c.at[2] == 1);
    CHECK(c.at[3] == 3);
    CHECK(c.leased == 1);
    CHECK(c.retrying == 2);
    CHECK(c.dead == 2);
    CHECK(c.awaiting == 1);
    CHECK(c.awaiting_since_micros >= before);
    CHECK(c.awaiting_since_micros <= after);

    // Failures: most first, then stage and reason by bytes ("Unknown" before "not_found"; the
    // two timeout rows tie on all three).
    auto f = q.Failures().value();
    REQUIRE(f.size() == 4);
    CHECK(SameFailure(f[0], {"pending", "Unknown", "retryable", false, 1}));
    CHECK(SameFailure(f[1], {"pending", "not_found", "permanent", true, 1}));
    std::vector<FailureSummary> timeouts = {f[2], f[3]};
    std::sort(timeouts.begin(), timeouts.end(),
              [](const auto& a, const auto& b) { return a.dead < b.dead; });
    CHECK(SameFailure(timeouts[0], {"pending", "timeout", "retryable", false, 1}));
    CHECK(SameFailure(timeouts[1], {"pending", "timeout", "retryable", true, 1}));

    // The three completions (each an uploaded event), all since `before`, none after `after`.
    auto since = q.CompletedSince(before).value();
    CHECK(since.count == 3);
    CHECK(since.first_micros >= before);
    CHECK(since.first_micros <= after);
    auto none = q.CompletedSince(after).value();
    CHECK(none.count == 0);
    CHECK(none.first_micros == 0);

    CHECK(q.BookCount().value() == 13);
    auto cf = q.ConvertFailed(10).value();
    CHECK(cf.books == 5);
    REQUIRE(cf.by_info.size() == 4);
    CHECK(cf.by_info[0] == std::make_pair(std::string("Page missing"), int64_t{2}));
    CHECK(cf.by_info[1] == std::make_pair(std::string(""), int64_t{1}));
    CHECK(cf.by_info[2] == std::make_pair(std::string("Bad scan"), int64_t{1}));
    CHECK(cf.by_info[3] == std::make_pair(std::string("a torn page"), int64_t{1}));
    auto cf1 = q.ConvertFailed(1).value();
    CHECK(cf1.books == 5);
    CHECK(cf1.by_info.size() == 1);

    // The report: completions and failures of the fill, on an hour's grid from `before`.
    auto span = q.CompletionOrFailureSpan().value();
    REQUIRE(span.has_value());
    CHECK(span->first_s >= static_cast<double>(before) / 1e6);
    CHECK(span->last_s >= span->first_s);
    CHECK(span->last_s <= static_cast<double>(after) / 1e6);
    auto buckets = q.CompletionsPerBucket({grid_t0, 3600}).value();
    CHECK(Show(buckets) == "[0 3 120]");
    auto reasons = q.TopFailureReasons({grid_t0, 3600}, 8, 3).value();
    REQUIRE(reasons.size() == 3);
    CHECK(reasons[0].reason == "timeout");
    CHECK(reasons[0].events == 3);  // B10 failed, B10 dead, B08 failed
    CHECK(Show(reasons[0].per_bucket) == "[0 3 0]");
    CHECK(reasons[0].examples == std::vector<std::string>{"B10", "B08"});
    CHECK(reasons[1].reason == "Unknown");
    CHECK(reasons[1].examples == std::vector<std::string>{"B12"});
    CHECK(reasons[2].reason == "not_found");
    CHECK(reasons[2].events == 1);
    auto recent = q.RecentCompletionsIn(3600).value();
    CHECK(recent.books == 3);
    CHECK(recent.span_s >= 0);
    CHECK(recent.span_s <= static_cast<double>(after - before) / 1e6);
    auto awaiting = q.LongestAwaiting(10).value();
    REQUIRE(awaiting.size() == 1);
    CHECK(awaiting[0].barcode == "B11");
    CHECK(awaiting[0].since_micros == c.awaiting_since_micros);
    auto slow = q.SlowestBooks(10).value();
    REQUIRE(slow.size() == 3);
    CHECK(slow[0].barcode == "B05");
    CHECK(slow[0].title == "Book 5");
    CHECK(slow[0].seconds == 9.0);
    CHECK(slow[0].bytes == 20);
    CHECK(slow[1].barcode == "B04");
    CHECK(slow[1].seconds == 5.0);
    CHECK(slow[1].bytes == 100);
    CHECK(slow[2].barcode == "B06");
    CHECK(slow[2].bytes == 0);
    CHECK(q.SlowestBooks(1).value().size() == 1);
  }

  if (sides.all.size() < 2) return;
  // The same answers on both, field for field (times of the fill aside: each side's own clock).
  RunQueries& a = *sides.all[0].q;
  RunQueries& b = *sides.all[1].q;
  auto ca = a.Counts().value(), cb = b.Counts().value();
  CHECK(ca.total == cb.total);
  for (int i = 0; i < kStageCount; ++i) CHECK(ca.at[i] == cb.at[i]);
  CHECK(std::tie(ca.leased, ca.retrying, ca.dead, ca.awaiting) ==
        std::tie(cb.leased, cb.retrying, cb.dead, cb.awaiting));
  auto fa = a.Failures().value(), fb = b.Failures().value();
  REQUIRE(fa.size() == fb.size());
  for (size_t i = 0; i < 2; ++i) CHECK(SameFailure(fa[i], fb[i]));  // the rest tie
  CHECK(a.BookCount().value() == b.BookCount().value());
  CHECK(a.ConvertFailed(10).value().by_info == b.ConvertFailed(10).value().by_info);
  CHECK(Show(a.CompletionsPerBucket({grid_t0, 3600}).value()) ==
        Show(b.CompletionsPerBucket({grid_t0, 3600}).value()));
  auto ra = a.TopFailureReasons({grid_t0, 3600}, 8, 3).value();
  auto rb = b.TopFailureReasons({grid_t0, 3600}, 8, 3).value();
  REQUIRE(ra.size() == rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK(ra[i].reason == rb[i].reason);
    CHECK(ra[i].events == rb[i].events);
    CHECK(Show(ra[i].per_bucket) == Show(rb[i].per_bucket));
    CHECK(ra[i].examples == rb[i].examples);
  }
  auto sa = a.SlowestBooks(10).value(), sb = b.SlowestBooks(10).value();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CHECK(std::tie(sa[i].barcode, sa[i].title, sa[i].seconds, sa[i].bytes) ==
          std::tie(sb[i].barcode, sb[i].title, sb[i].seconds, sb[i].bytes));
  }
}

// 2026-01-01T00:00:00Z in unix seconds: the history's events are at kBase + offset.
constexpr double kBase = 1767225600;

struct HistoryEvent {
  double t;  // seconds after kBase (milliseconds at most)
  const char* at;
  const char* barcode;  // "" = NULL
  const char* stage;
  const char* outcome;
  const char* detail;  // "" = NULL
};
// Written in this order (event ids follow it). Completions: B12 (before the grid's t0: bucket
// -2), B11 (0.49 buckets before t0: bucket 0, CAST truncates toward zero), B1 (a millisecond
// offset), B2, B3 (no bytes), B10 (exactly on a bucket edge). Not completions: B4 released, B5
// dead_crash_loop (both at uploaded: they count for CompletedSince), B6, B7 at other stages.
// Failures: timeout twice (B8 written before B16, though later), Zeta twice by one book, alpha,
// not_found, and one with no reason: "Zeta" < "timeout" and "(none)" < "alpha" by bytes.
const std::vector<HistoryEvent> kHistory = {
    {1000.25, "2026-01-01T00:16:40.250Z", "B1", "uploaded", "ok", R"({"bytes": 100})"},
    {1010, "2026-01-01T00:16:50Z", "B2", "uploaded", "ok", R"({"bytes": 20})"},
    {1075, "2026-01-01T00:17:55.000Z", "B3", "uploaded", "adopted", ""},
    {1076, "2026-01-01T00:17:56Z", "B4", "uploaded", "released", R"({"bytes": 7})"},
    {1077, "2026-01-01T00:17:57.000Z", "B5", "uploaded", "dead_crash_loop", ""},
    {1078, "2026-01-01T00:17:58Z", "B6", "downloaded", "ok", R"({"bytes": 9})"},
    {900, "2026-01-01T00:15:00Z", "B7", "checked", "ok", ""},
    {1130, "2026-01-01T00:18:50Z", "B8", "downloaded", "failed", R"({"reason": "timeout"})"},
    {960, "2026-01-01T00:16:00Z", "B9", "pending", "dead", R"({"reason": "not_found"})"},
    {1080, "2026-01-01T00:18:00.000Z", "B10", "uploaded", "completed", R"({"bytes": 5})"},
    {930.5, "2026-01-01T00:15:30.500Z", "B11", "uploaded", "completed", R"({"bytes": 1})"},
    {840, "2026-01-01T00:14:00Z", "B12", "uploaded", "completed", ""},
    {1020, "2026-01-01T00:17:00.000Z", "B13", "checked", "failed", R"({"reason": "Zeta"})"},
    {1021, "2026-01-01T00:17:01Z", "B14", "checked", "failed", R"({"reason": "alpha"})"},
    {1050, "2026-01-01T00:17:30Z", "B16", "pending", "failed", R"({"reason": "timeout"})"},
    {1060, "2026-01-01T00:17:40Z", "B17", "pending", "failed", ""},
    {1065, "2026-01-01T00:17:45.999Z", "B13", "checked", "dead", R"({"reason": "Zeta"})"},
    {1066, "2026-01-01T00:17:46Z", "", "pending", "failed", R"({"reason": "alpha"})"},
};

std::string Quoted(const char* s) { return *s ? "'" + std::string(s) + "'" : "NULL"; }

void FillHistory(Side& s) {
  std::string sql;
  for (const auto& e : kHistory) {
    sql += "INSERT INTO events(at, barcode, stage, outcome, detail) VALUES ('" +
           std::string(e.at) + "', " + Quoted(e.barcode) + ", '" + e.stage + "', '" + e.outcome +
           "', " + Quoted(e.detail) + ");";
  }
  // Awaiting jobs: one with no failed_at (SQLite sorts NULL first), a tie at 5 by barcode.
  // Uploaded jobs for the slowest: a tie at 2 s by barcode, one with no lease, one untitled.
  sql += R"sql(
INSERT INTO jobs(barcode, stage, status, leased_at, failed_at, created_at, updated_at) VALUES
  ('W3', 'pending', 'awaiting', NULL, 5, 1, 1),
  ('W2', 'pending', 'awaiting', NULL, NULL, 1, 1),
  ('W1', 'checked', 'awaiting', NULL, 5, 1, 1),
  ('W0', 'pending', 'awaiting', NULL, 4, 1, 1),
  ('B1', 'uploaded', 'ready', 1000000, NULL, 1, 3000000),
  ('B2', 'uploaded', 'ready', 1000000, NULL, 1, 3000000),
  ('B10', 'uploaded', 'ready', 1000000, NULL, 1, 3500001),
  ('B11', 'uploaded', 'ready', NULL, NULL, 1, 9000000),
  ('B3', 'downloaded', 'ready', 1000000, NULL, 1, 90000000);
INSERT INTO books(barcode, title, created_at, updated_at) VALUES
  ('B1', 'One', 't', 't'), ('B2', NULL, 't', 't'), ('B10', 'Ten', 't', 't');
)sql";
  s.exec(sql);
}

TEST_CASE("run queries: the event history on a time grid gives the right and the same answers") {
  Sides sides;
  for (auto& s : sides.all) {
    FillHistory(s);
    s.Open();
  }
  const EventGrid grid{kBase + 960, 60};
  for (auto& s : sides.all) {
    CAPTURE(s.name);
    RunQueries& q = *s.q;
    auto span = q.CompletionOrFailureSpan().value();
    REQUIRE(span.has_value());
    CHECK(span->first_s == kBase + 840);   // B12's completion
    CHECK(span->last_s == kBase + 1130);  // B8's failure
    CHECK(Show(q.CompletionsPerBucket(grid).value()) == "[-2 1 0][0 3 121][1 1 0][2 1 5]");
    // A grid from 00:16:40.300: B1 is 0.05 s before it (bucket 0), B11 far before (-7).
    CHECK(Show(q.CompletionsPerBucket({kBase + 1000.3, 10}).value()) ==
          "[-16 1 0][-6 1 1][0 2 120][7 2 5]");

    auto reasons = q.TopFailureReasons(grid, 4, 1).value();
    REQUIRE(reasons.size() == 4);
    CHECK(reasons[0].reason == "Zeta");
    CHECK(reasons[0].events == 2);
    CHECK(Show(reasons[0].per_bucket) == "[1 2 0]");
    CHECK(reasons[0].examples == std::vector<std::string>{"B13"});
    CHECK(reasons[1].reason == "alpha");  // 2 events, one of them with no barcode
    CHECK(reasons[1].events == 2);
    CHECK(reasons[1].examples == std::vector<std::string>{"B14"});
    CHECK(reasons[2].reason == "timeout");
    CHECK(reasons[2].events == 2);
    CHECK(Show(reasons[2].per_bucket) == "[1 1 0][2 1 0]");
    CHECK(reasons[3].reason == "(none)");
    auto all_reasons = q.TopFailureReasons(grid, 8, 3).value();
    REQUIRE(all_reasons.size() == 5);
    CHECK(all_reasons[2].examples == std::vector<std::string>{"B8", "B16"});  // by event id
    CHECK(all_reasons[4].reason == "not_found");

    // The last completion is B10 at 1080; a minute before it: B3 (1075) and B10.
    auto recent = q.RecentCompletionsIn(60).value();
    CHECK(recent.books == 2);
    CHECK(recent.span_s == 60);
    auto all_recent = q.RecentCompletionsIn(1e6).value();
    CHECK(all_recent.books == 6);
    CHECK(all_recent.span_s == 240);

    // Completions since a moment: every uploaded-stage event at or after it (any outcome).
    for (double t : {0.0, 839.999, 840.0, 930.5, 930.501, 1000.0, 1000.25, 1000.251, 1076.0,
                     1077.5, 1080.0, 1080.001, 5000.0}) {
      CAPTURE(t);
      int64_t want = 0;
      double first = 0;
      for (const auto& e : kHistory) {
        if (std::string(e.stage) == "uploaded" && e.t >= t) {
          if (want == 0 || e.t < first) first = e.t;
          ++want;
        }
      }
      auto micros = [](double x) {  // exact: whole seconds and milliseconds apart
        return static_cast<int64_t>(kBase) * 1'000'000 + std::llround(x * 1000) * 1000;
      };
      auto got = q.CompletedSince(micros(t)).value();
      CHECK(got.count == want);
      CHECK(got.first_micros == (want ? micros(first) : 0));
    }

    auto awaiting = q.LongestAwaiting(3).value();
    REQUIRE(awaiting.size() == 3);
    CHECK(awaiting[0].barcode == "W2");
    CHECK(awaiting[0].since_micros == 0);
    CHECK(awaiting[1].barcode == "W0");
    CHECK(awaiting[2].barcode == "W1");
    CHECK(awaiting[2].since_micros == 5);

    auto slow = q.SlowestBooks(10).value();
    REQUIRE(slow.size() == 3);
    CHECK(slow[0].barcode == "B10");
    CHECK(slow[0].seconds == 2.500001);
    CHECK(slow[0].title == "Ten");
    CHECK(slow[0].bytes == 5);
    CHECK(slow[1].barcode == "B1");
    CHECK(slow[1].seconds == 2.0);
    CHECK(slow[1].bytes == 100);
    CHECK(slow[2].barcode == "B2");
    CHECK(slow[2].title == "");
    CHECK(q.BookCount().value() == 3);
  }
}

TEST_CASE("run queries: OpenRunQueries tells the locations apart and names what is missing") {
  TempDir dir;
  auto empty = OpenRunQueries("");
  CHECK(empty.status().code() == StatusCode::kInvalidArgument);
  auto missing = OpenRunQueries(dir.file("nope.db"));
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(IsPostgresLocation("postgresql://h/db"));
  CHECK(IsPostgresLocation("postgres://h/db"));
  CHECK_FALSE(IsPostgresLocation(dir.file("postgresql.db")));
  PG_SKIP_WITHOUT_POSTGRES();
  // A database with no run in it; the password never shows.
  std::string uri = grin::testing::FreshDatabase();
  const std::string with_password =
      "postgresql://grin:s3cret@" + uri.substr(std::string("postgresql://grin@").size());
  auto none = OpenRunQueries(with_password);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == StatusCode::kNotFound);
  CHECK(none.status().message().find("s3cret") == std::string::npos);
  CHECK(none.status().message().find("init --state") != std::string::npos);
}

}  // namespace
}  // namespace grin::storage
