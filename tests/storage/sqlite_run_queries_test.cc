// SqliteRunQueries (the report's SQL) on a real, migrated run database holding known jobs, books
// and events, and ReadDatabaseHealth (doctor's database check) on sound, newer, damaged and
// foreign files.
#include "storage/sqlite_run_queries.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "schema/migrations.h"
#include "storage/database.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

// 2026-01-01T00:00:00Z in unix seconds: events below are at kBase + offset.
constexpr double kBase = 1767225600;

struct Run {
  TempDir dir;
  std::string path = dir.file("books.db");
  std::unique_ptr<SQLite::Database> db;

  Run() {
    auto d = OpenDatabase(path, {});
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    db = std::move(d).value();
  }
  // An event `offset` (e.g. "00:01:15.500") after kBase; detail "" for none.
  void Event(const std::string& offset, const std::string& barcode, const std::string& stage,
             const std::string& outcome, const std::string& detail = "") {
    SQLite::Statement q(*db, "INSERT INTO events(at, barcode, stage, outcome, detail) "
                             "VALUES (?1, nullif(?2, ''), ?3, ?4, nullif(?5, ''))");
    q.bind(1, "2026-01-01T" + offset + "Z");
    q.bind(2, barcode);
    q.bind(3, stage);
    q.bind(4, outcome);
    q.bind(5, detail);
    q.exec();
  }
  // A job; leased_at and failed_at of -1 stay NULL.
  void Job(const std::string& barcode, const std::string& stage, const std::string& status,
           int64_t leased_at, int64_t updated_at, int64_t failed_at = -1) {
    SQLite::Statement q(*db, "INSERT INTO jobs(barcode, stage, status, leased_at, failed_at, "
                             "created_at, updated_at) VALUES (?1, ?2, ?3, nullif(?4, -1), "
                             "nullif(?5, -1), 1, ?6)");
    q.bind(1, barcode);
    q.bind(2, stage);
    q.bind(3, status);
    q.bind(4, leased_at);
    q.bind(5, failed_at);
    q.bind(6, updated_at);
    q.exec();
  }
  void Book(const std::string& barcode, const std::string& title) {
    SQLite::Statement q(*db, "INSERT INTO books(barcode, title, created_at, updated_at) "
                             "VALUES (?1, nullif(?2, ''), 't', 't')");
    q.bind(1, barcode);
    q.bind(2, title);
    q.exec();
  }
  std::unique_ptr<SqliteRunQueries> Queries() {
    auto q = SqliteRunQueries::Open(path);
    REQUIRE_MESSAGE(q.ok(), q.status().ToString());
    return std::move(q).value();
  }
};

// Three completions (one at a millisecond offset), events that are not completions at the
// uploaded stage or that are at other stages, and two failures.
void AddCompletionsAndFailures(Run& run) {
  run.Event("00:16:40.250", "B1", "uploaded", "ok", R"({"bytes": 100})");
  run.Event("00:16:50", "B2", "uploaded", "ok", R"({"bytes": 20})");
  run.Event("00:17:55", "B3", "uploaded", "adopted");  // no bytes
  run.Event("00:17:56", "B4", "uploaded", "released", R"({"bytes": 7})");
  run.Event("00:17:57", "B5", "uploaded", "dead_crash_loop");
  run.Event("00:17:58", "B6", "downloaded", "ok", R"({"bytes": 9})");
  run.Event("00:15:00", "B7", "checked", "ok");  // before everything: not in the span
  run.Event("00:18:50", "B8", "downloaded", "failed", R"({"reason": "timeout"})");
  run.Event("00:16:00", "B9", "pending", "dead", R"({"reason": "not_found"})");
}

TEST_CASE("report queries: the span and the completions per bucket come from the events") {
  Run run;
  auto empty = run.Queries();
  CHECK_FALSE(empty->CompletionOrFailureSpan().value().has_value());
  CHECK(empty->CompletionsPerBucket({kBase, 60}).value().empty());
  CHECK(empty->BookCount().value() == 0);

  AddCompletionsAndFailures(run);
  run.Book("B1", "One");
  run.Book("B2", "");
  auto q = run.Queries();
  CHECK(q->BookCount().value() == 2);
  auto span = q->CompletionOrFailureSpan().value();
  REQUIRE(span.has_value());
  CHECK(span->first_s == doctest::Approx(kBase + 960));  // the dead event at 00:16:00
  CHECK(span->last_s == doctest::Approx(kBase + 1130));  // the failure at 00:18:50

  // Buckets of 60 s from 00:16:00: 00:16:40.250 and 00:16:50 in 0, 00:17:55 in 1.
  auto buckets = q->CompletionsPerBucket({kBase + 960, 60}).value();
  REQUIRE(buckets.size() == 2);
  CHECK(buckets[0].bucket == 0);
  CHECK(buckets[0].events == 2);
  CHECK(buckets[0].bytes == 120);
  CHECK(buckets[1].bucket == 1);
  CHECK(buckets[1].events == 1);
  CHECK(buckets[1].bytes == 0);
  // Milliseconds count: a grid from 00:16:40.300 puts the first completion 0.05 s before it.
  auto shifted = q->CompletionsPerBucket({kBase + 1000.3, 10}).value();
  REQUIRE(shifted.size() == 2);
  CHECK(shifted[0].bucket == 0);  // CAST truncates toward zero: -0.005 is bucket 0
  CHECK(shifted[0].events == 2);  // 00:16:40.250 and 00:16:50 (0.97)
  CHECK(shifted[1].bucket == 7);  // 00:17:55: 74.7 s on
}

TEST_CASE("report queries: failure reasons by events, with buckets and first examples") {
  Run run;
  run.Event("00:00:01", "R2", "pending", "failed", R"({"reason": "timeout"})");
  run.Event("00:00:02", "R1", "pending", "failed", R"({"reason": "timeout"})");
  run.Event("00:01:30", "R2", "checked", "dead", R"({"reason": "timeout"})");
  run.Event("00:02:00", "R3", "pending", "dead", R"({"reason": "bad_archive"})");
  run.Event("00:02:01", "R4", "pending", "failed", R"({"reason": "bad_archive"})");
  run.Event("00:02:02", "R5", "pending", "failed", R"({"reason": "bad_archive"})");
  run.Event("00:03:00", "R6", "pending", "failed");  // no reason
  run.Event("00:03:01", "", "pending", "failed", R"({"reason": "zz_no_book"})");
  run.Event("00:03:02", "R7", "pending", "retried", R"({"reason": "timeout"})");  // not failed
  auto q = run.Queries();
  const EventGrid grid{kBase, 60};

  auto top = q->TopFailureReasons(grid, 8, 3).value();
  REQUIRE(top.size() == 4);
  // 3 and 3 events: ties by reason.
  CHECK(top[0].reason == "bad_archive");
  CHECK(top[0].events == 3);
  CHECK(top[1].reason == "timeout");
  CHECK(top[1].events == 3);
  CHECK(top[2].reason == "(none)");
  CHECK(top[3].reason == "zz_no_book");
  CHECK(top[3].examples.empty());  // events without a barcode give no example
  CHECK(top[0].examples == std::vector<std::string>{"R3", "R4", "R5"});
  CHECK(top[1].examples == std::vector<std::string>{"R2", "R1"});  // first failure first, once
  REQUIRE(top[1].per_bucket.size() == 2);
  CHECK(top[1].per_bucket[0].bucket == 0);
  CHECK(top[1].per_bucket[0].events == 2);
  CHECK(top[1].per_bucket[1].bucket == 1);
  CHECK(top[1].per_bucket[1].events == 1);
  REQUIRE(top[0].per_bucket.size() == 1);
  CHECK(top[0].per_bucket[0].bucket == 2);

  auto limited = q->TopFailureReasons(grid, 2, 1).value();
  REQUIRE(limited.size() == 2);
  CHECK(limited[1].reason == "timeout");
  CHECK(limited[0].examples == std::vector<std::string>{"R3"});
}

TEST_CASE("report queries: the recent rate's window ends at the last completion") {
  Run run;
  auto none = run.Queries()->RecentCompletionsIn(3600).value();
  CHECK(none.books == 0);
  CHECK(none.span_s == 0);

  AddCompletionsAndFailures(run);
  auto q = run.Queries();
  // Completions at 1000.25, 1010 and 1075 s past kBase.
  auto all = q->RecentCompletionsIn(3600).value();  // longer than the run: from the first
  CHECK(all.books == 3);
  CHECK(all.span_s == doctest::Approx(74.75));
  auto last = q->RecentCompletionsIn(30).value();
  CHECK(last.books == 1);
  CHECK(last.span_s == doctest::Approx(30));
  auto two = q->RecentCompletionsIn(65).value();  // from 1010: includes it
  CHECK(two.books == 2);
}

TEST_CASE("report queries: the longest-waiting and the slowest books") {
  Run run;
  run.Job("W3", "pending", "awaiting", -1, 5, 3000);
  run.Job("W1", "pending", "awaiting", -1, 5, 1000);
  run.Job("W2", "checked", "awaiting", -1, 5, 1000);
  run.Job("W0", "pending", "awaiting", -1, 5);  // no failed_at: sorts first, since 0
  run.Job("D1", "pending", "dead", -1, 5, 10);  // dead, not waiting
  // Stored books: leased_at to updated_at, micros.
  run.Job("S1", "uploaded", "ready", 1'000'000, 3'500'000);   // 2.5 s
  run.Job("S2", "uploaded", "ready", 1'000'000, 11'000'000);  // 10 s
  run.Job("S3", "uploaded", "ready", 2'000'000, 12'000'000);  // 10 s, ties by barcode
  run.Job("S4", "uploaded", "ready", -1, 99'000'000);         // never leased: left out
  run.Job("S5", "downloaded", "ready", 0, 99'000'000);        // not stored: left out
  run.Book("S2", "Second");
  run.Event("00:00:01", "S2", "uploaded", "ok", R"({"bytes": 11})");
  run.Event("00:00:02", "S2", "uploaded", "ok", R"({"bytes": 22})");  // the last one counts
  run.Event("00:00:03", "S2", "downloaded", "ok", R"({"bytes": 33})");
  auto q = run.Queries();

  auto waiting = q->LongestAwaiting(10).value();
  REQUIRE(waiting.size() == 4);
  CHECK(waiting[0].barcode == "W0");
  CHECK(waiting[0].since_micros == 0);
  CHECK(waiting[1].barcode == "W1");
  CHECK(waiting[1].since_micros == 1000);
  CHECK(waiting[2].barcode == "W2");
  CHECK(waiting[3].barcode == "W3");
  CHECK(q->LongestAwaiting(2).value().size() == 2);

  auto slow = q->SlowestBooks(10).value();
  REQUIRE(slow.size() == 3);
  CHECK(slow[0].barcode == "S2");
  CHECK(slow[0].title == "Second");
  CHECK(slow[0].seconds == doctest::Approx(10));
  CHECK(slow[0].bytes == 22);
  CHECK(slow[1].barcode == "S3");
  CHECK(slow[1].title == "");
  CHECK(slow[1].bytes == 0);
  CHECK(slow[2].barcode == "S1");
  CHECK(slow[2].seconds == doctest::Approx(2.5));
  auto one = q->SlowestBooks(1).value();
  REQUIRE(one.size() == 1);
  CHECK(one[0].barcode == "S2");
}

TEST_CASE("report queries: a folder without a run database is kNotFound naming the file") {
  TempDir dir;
  auto q = SqliteRunQueries::Open(dir.file("books.db"));
  REQUIRE_FALSE(q.ok());
  CHECK(q.status().code() == StatusCode::kNotFound);
  CHECK(q.status().message().find(dir.file("books.db")) != std::string::npos);
}

TEST_CASE("database health: a sound run, a newer schema, a damaged page, not a database") {
  SUBCASE("a sound, current run") {
    Run run;
    run.db.reset();
    auto h = ReadDatabaseHealth(run.path);
    REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    CHECK(h->quick_check == "ok");
    CHECK(h->schema_version == schema::LatestVersion());
    CHECK(h->latest_version == schema::LatestVersion());
  }
  SUBCASE("a newer schema is read, not refused") {
    Run run;
    run.db->exec("PRAGMA user_version = " + std::to_string(schema::LatestVersion() + 5));
    run.db.reset();
    auto h = ReadDatabaseHealth(run.path);
    REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    CHECK(h->schema_version == schema::LatestVersion() + 5);
  }
  SUBCASE("a damaged page") {
    Run run;
    {
      SQLite::Statement ins(*run.db,
                            "INSERT INTO jobs(barcode, created_at, updated_at) VALUES (?,1,1)");
      for (int i = 0; i < 3000; ++i) {
        ins.bind(1, "BC" + std::to_string(100000 + i));
        ins.exec();
        ins.reset();
      }
    }
    run.db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    run.db->exec("PRAGMA journal_mode = DELETE");
    run.db.reset();
    std::string bytes = grin::testing::ReadFile(run.path);
    REQUIRE(bytes.size() > 40000);
    for (size_t i = 20000; i < 36000; ++i) bytes[i] = static_cast<char>(i * 7);
    grin::testing::WriteFile(run.path, bytes);
    auto h = ReadDatabaseHealth(run.path);
    REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    CHECK(h->quick_check != "ok");
    CHECK(h->quick_check.find("Page") != std::string::npos);
  }
  SUBCASE("not a database: one line naming the file") {
    TempDir dir;
    const std::string path = dir.file("books.db");
    grin::testing::WriteFile(path, "this is not a database" + std::string(8192, 'x'));
    auto h = ReadDatabaseHealth(path);
    REQUIRE_FALSE(h.ok());
    CHECK(h.status().code() == StatusCode::kDataLoss);
    CHECK(h.status().message().rfind(path + ": ", 0) == 0);
    CHECK(h.status().message().find('\n') == std::string::npos);
  }
}

}  // namespace
}  // namespace grin::storage
