// migrate-state's copy (storage/postgres/pg_import): a SQLite run built through the real ports,
// with books in every state, copied into a throwaway PostgreSQL cluster; every table compared row
// for row by queries of this test's own; the PostgreSQL store then carries on where SQLite left
// off; a copy that fails midway leaves the target without rows; a target holding a run is refused
// unless it holds this one.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/database.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_import.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/sqlite_book_catalog.h"
#include "storage/sqlite_state_store.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/storage/pg_test_sql.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::FreshDatabase;
using grin::testing::PgConnect;
using grin::testing::TempDir;
using pg::PgConnection;
using Row = std::vector<std::optional<std::string>>;

std::string Bc(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "IMP%04d", i);
  return b;
}

// What the test kept of the SQLite run: the leases a dead process held.
struct Built {
  WorkItem leased_pending;  // IMP0010
  WorkItem leased_checked;  // IMP0011, with a checkpoint
  std::string checkpoint_11 = R"({"offset":1234,"etag":"\"abc\""})";
  std::string checkpoint_15 = R"({"offset":99})";
  std::string carry_5 = R"({"upload_id":"u-5","parts":[1,2]})";
};

// 30 books through the real catalog and state store ports, in every state a run knows.
Built BuildRun(const std::string& path) {
  Built out;
  {
    auto catalog = SqliteBookCatalog::Open(path).value();
    std::vector<CollectedBook> books;
    for (int i = 0; i < 30; ++i) {
      CollectedBook b;
      b.barcode = Bc(i);
      // Values COPY must escape, and text beyond ASCII.
      b.title = i == 1   ? "Tab\there, newline\nthere, back\\slash, \"quoted\", CR\r."
                : i == 2 ? "Ünïcödé — 書名"
                         : "Title " + b.barcode;
      b.scanned_date = "2024-01-0" + std::to_string(1 + i % 9);
      b.grin_state = i % 3 == 0 ? "CONVERTED" : "NEW";
      if (i == 3) b.google_books_link = "";  // stays NULL
      books.push_back(b);
    }
    CollectCursor cursor{"TEST", "https://grin.example/TEST/_all_books?page=2", 1, 30, false};
    REQUIRE(catalog->ApplyCollectedPage(books, false, cursor).ok());
    REQUIRE(catalog
                ->ApplyEnrichment({{Bc(0), {{"grin_viewability", "VIEW_FULL"}}},
                                   {Bc(1), {{"grin_viewability", "VIEW_SNIPPET"}}}},
                                  {Bc(5), Bc(6)})
                .ok());
    REQUIRE(catalog->RecordEnrichmentFailure({Bc(7)}, "batch failed: HTTP 503").ok());
    REQUIRE(catalog
                ->RecordConversionRequests({{Bc(8), "requested", "Success", {}},
                                            {Bc(9), "not_allowed", "Not allowed", {}}})
                .ok());
    REQUIRE(catalog->ReplaceConvertFailures({{Bc(10), "2024-02-01", "Bad scan", "p. 3"}}).ok());
  }
  StateStoreOptions opt;
  opt.max_attempts = 2;
  opt.backoff_base_micros = 1;
  opt.backoff_max_micros = 1;
  auto store = SqliteStateStore::Open(path, opt).value();
  std::vector<std::string> all;
  for (int i = 0; i < 30; ++i) all.push_back(Bc(i));
  REQUIRE(store->Enqueue(all).value() == 30);
  auto by_barcode = [](std::vector<WorkItem> items) {
    std::map<std::string, WorkItem> m;
    for (auto& w : items) m[w.barcode] = w;
    return m;
  };
  auto pending = by_barcode(store->Claim(Stage::kPending, 100).value());
  REQUIRE(pending.size() == 30);
  for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15}) {
    REQUIRE(store->Complete(pending[Bc(i)], Stage::kChecked).ok());
  }
  out.leased_pending = pending[Bc(10)];  // stays leased: its process "dies"
  REQUIRE(store->Fail(pending[Bc(12)], ErrorClass::kRetryable, "http_503", R"({"code":503})").ok());
  REQUIRE(store->Fail(pending[Bc(13)], ErrorClass::kPermanent, "not_found", "").ok());
  REQUIRE(store->Await(pending[Bc(14)], "conversion_requested", R"({"grin":"Success"})").ok());
  for (int i = 16; i < 30; ++i) REQUIRE(store->Release(pending[Bc(i)]).ok());

  auto checked = by_barcode(store->Claim(Stage::kChecked, 100).value());
  REQUIRE(checked.size() == 12);
  for (int i : {0, 1, 2, 3, 4, 6, 7}) {
    REQUIRE(store->Complete(checked[Bc(i)], Stage::kDownloaded).ok());
  }
  Completion carry{checked[Bc(5)], Stage::kDownloaded, "completed", R"({"bytes":10})", {},
                   out.carry_5};
  auto carried = store->CompleteMany({carry}).value();
  REQUIRE(carried.at(0).ok());
  for (int i : {8, 9}) REQUIRE(store->Release(checked[Bc(i)]).ok());
  REQUIRE(store->SaveCheckpoint(checked[Bc(11)], out.checkpoint_11).ok());
  out.leased_checked = checked[Bc(11)];  // leased, with a checkpoint
  REQUIRE(store->SaveCheckpoint(checked[Bc(15)], out.checkpoint_15).ok());
  REQUIRE(store->Release(checked[Bc(15)]).ok());

  auto downloaded = by_barcode(store->Claim(Stage::kDownloaded, 100).value());
  REQUIRE(downloaded.size() == 8);
  std::vector<Completion> done;
  for (int i = 0; i < 5; ++i) {
    Completion c{downloaded[Bc(i)], Stage::kUploaded, "completed", R"({"size":4096})", {}, ""};
    c.book_fields = {{"storage_path", "raw/" + Bc(i) + ".tar.gz.gpg"},
                     {"encrypted_etag", "\"etag-" + std::to_string(i) + "\""},
                     {"is_decrypted", i % 2 ? "1" : "0"},
                     {"marc_title", "MARC title\t" + std::to_string(i)}};
    done.push_back(c);
  }
  auto done_status = store->CompleteMany(done).value();
  for (const Status& s : done_status) REQUIRE(s.ok());
  for (int i : {5, 6, 7}) REQUIRE(store->Release(downloaded[Bc(i)]).ok());
  REQUIRE(store->AppendEvent("", "run", "note", R"({"text":"line\nbreak"})").ok());
  REQUIRE(store->Flush().ok());
  return out;  // the store closes: IMP0010 and IMP0011 stay leased in the file
}

// Every row of a table as text, in key order, read by this test (not by pg_import).
std::vector<std::string> SqliteColumns(SQLite::Database& db, const std::string& table) {
  std::vector<std::string> cols;
  SQLite::Statement q(db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid");
  q.bind(1, table);
  while (q.executeStep()) cols.push_back(q.getColumn(0).getString());
  return cols;
}

std::string Join(const std::vector<std::string>& cols) {
  std::string s;
  for (const auto& c : cols) s += (s.empty() ? "" : ", ") + c;
  return s;
}

std::vector<Row> SqliteRows(SQLite::Database& db, const std::string& table,
                            const std::vector<std::string>& cols) {
  std::vector<Row> out;
  SQLite::Statement q(db, "SELECT " + Join(cols) + " FROM " + table + " ORDER BY 1");
  while (q.executeStep()) {
    Row r;
    for (int i = 0; i < q.getColumnCount(); ++i) {
      if (q.getColumn(i).isNull()) {
        r.push_back(std::nullopt);
      } else {
        r.push_back(q.getColumn(i).getString());
      }
    }
    out.push_back(r);
  }
  return out;
}

std::vector<Row> PgRows(PgConnection& c, const std::string& table,
                        const std::vector<std::string>& cols) {
  // The first column is every table's key: text keys in byte order, as SQLite sorts them.
  auto key_type = c.Exec(
      "SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND "
      "column_name = $2",
      {table, cols[0]});
  REQUIRE(key_type.ok());
  Result<pg::PgResult> r = Status::Internal("unset");
  if (key_type->rows() == 1 && key_type->Text(0, 0) != "text") {
    r = c.Exec("SELECT " + Join(cols) + " FROM " + table + " ORDER BY 1");
  } else {
    r = c.Exec("SELECT " + Join(cols) + " FROM " + table + " ORDER BY " + cols[0] + " COLLATE \"C\"");
  }
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  std::vector<Row> out;
  for (int i = 0; i < r->rows(); ++i) {
    Row row;
    for (int j = 0; j < r->columns(); ++j) {
      if (r->IsNull(i, j)) {
        row.push_back(std::nullopt);
      } else {
        row.push_back(r->Text(i, j));
      }
    }
    out.push_back(row);
  }
  return out;
}

// Every table of the SQLite run equals its PostgreSQL copy row for row, but for the leased jobs,
// which the import makes ready (retry after failed attempts) without their run, token kept.
void CheckSameRows(const std::string& path, const std::string& uri,
                   const std::set<std::string>& leased) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  auto c = PgConnect(uri);
  std::vector<std::string> tables;
  SQLite::Statement q(db,
                      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                      "'sqlite%' ORDER BY name");
  while (q.executeStep()) tables.push_back(q.getColumn(0).getString());
  REQUIRE(tables.size() >= 11);  // every table of schema/migrations as of 0011
  for (const auto& t : tables) {
    CAPTURE(t);
    auto cols = SqliteColumns(db, t);
    auto want = SqliteRows(db, t, cols);
    auto got = PgRows(*c, t, cols);
    if (t == "jobs") {
      size_t st = 0, run = 0, att = 0;
      for (size_t i = 0; i < cols.size(); ++i) {
        if (cols[i] == "status") st = i;
        if (cols[i] == "lease_run") run = i;
        if (cols[i] == "attempts") att = i;
      }
      int seen = 0;
      for (auto& r : want) {
        if (*r[st] == "leased") {
          CHECK(leased.count(*r[1]));
          r[st] = *r[att] == "0" ? "ready" : "retry";
          r[run] = std::nullopt;
          ++seen;
        }
      }
      CHECK(seen == static_cast<int>(leased.size()));
    }
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i] == want[i]);
    }
  }
}

int64_t PgCount(PgConnection& c, const std::string& sql) {
  auto r = c.Exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->Int(0, 0);
}

// No table of the target has a row (a failed import leaves nothing behind).
void CheckTargetEmpty(const std::string& uri) {
  auto c = PgConnect(uri);
  for (const char* t : {"books", "runs", "jobs", "events", "job_checkpoints", "collect_cursor",
                        "book_enrichment", "conversion_request", "uploaded_per_second"}) {
    CAPTURE(t);
    CHECK(PgCount(*c, std::string("SELECT count(*) FROM ") + t) == 0);
  }
  CHECK(PgCount(*c, "SELECT coalesce(sum(n), 0) FROM job_counts") == 0);
  CHECK(PgCount(*c, "SELECT n FROM book_count") == 0);
}

std::set<std::string> Barcodes(const std::vector<WorkItem>& items) {
  std::set<std::string> s;
  for (const auto& w : items) s.insert(w.barcode);
  return s;
}

TEST_CASE("pg import: every table copied row for row, then the PostgreSQL store carries on") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  Built built = BuildRun(path);
  const std::string uri = FreshDatabase();

  auto report = ImportSqliteRun(path, uri);
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK_FALSE(report->already_done);
  CHECK(report->leases_released == 2);
  std::map<std::string, int64_t> rows;
  for (const auto& t : report->tables) rows[t.table] = t.rows;
  CHECK(rows["books"] == 30);
  CHECK(rows["jobs"] == 30);
  CHECK(rows["job_checkpoints"] == 3);  // IMP0011's, IMP0015's and IMP0005's carry
  CHECK(rows["book_count"] == 1);
  CheckSameRows(path, uri, {Bc(10), Bc(11)});

  // The PostgreSQL store continues exactly: no finished stage is done again.
  PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;
  o.backoff_base_micros = 1;
  o.backoff_max_micros = 1;
  auto pg = PgStateStore::Open(uri, o).value();
  int64_t sqlite_max_run = 0;
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    sqlite_max_run = db.execAndGet("SELECT max(run_id) FROM runs").getInt64();
  }
  CHECK(pg->run_id() > sqlite_max_run);  // ids continue after the copied ones
  auto counts = pg->Counts().value();
  CHECK(counts.at[0] == 18);  // pending: 10, 12, 13, 14, 16..29
  CHECK(counts.at[1] == 4);   // checked: 8, 9, 11, 15
  CHECK(counts.at[2] == 3);   // downloaded: 5, 6, 7
  CHECK(counts.at[3] == 5);   // uploaded: 0..4
  CHECK(counts.leased == 0);
  CHECK(counts.dead == 1);
  CHECK(counts.retrying == 1);
  CHECK(counts.awaiting == 1);

  // The dead process's late writes are refused: its leases are gone, their tokens kept.
  CHECK(pg->Complete(built.leased_pending, Stage::kChecked).code() == StatusCode::kConflict);
  CHECK(pg->SaveCheckpoint(built.leased_checked, "{}").code() == StatusCode::kConflict);

  std::set<std::string> want_pending = {Bc(10), Bc(12)};
  for (int i = 16; i < 30; ++i) want_pending.insert(Bc(i));
  auto p = pg->Claim(Stage::kPending, 100).value();
  CHECK(Barcodes(p) == want_pending);
  for (const auto& w : p) {
    if (w.barcode == Bc(10)) CHECK(w.lease_token == built.leased_pending.lease_token + 1);
    if (w.barcode == Bc(12)) CHECK(w.attempts == 1);
  }
  auto ck = pg->Claim(Stage::kChecked, 100).value();
  CHECK(Barcodes(ck) == std::set<std::string>{Bc(8), Bc(9), Bc(11), Bc(15)});
  for (const auto& w : ck) {
    if (w.barcode == Bc(11)) {
      CHECK(w.checkpoint == built.checkpoint_11);
      CHECK(w.lease_token == built.leased_checked.lease_token + 1);
    }
    if (w.barcode == Bc(15)) CHECK(w.checkpoint == built.checkpoint_15);
  }
  auto dl = pg->Claim(Stage::kDownloaded, 100).value();
  CHECK(Barcodes(dl) == std::set<std::string>{Bc(5), Bc(6), Bc(7)});
  for (const auto& w : dl) {
    if (w.barcode == Bc(5)) CHECK(w.checkpoint == built.carry_5);
  }
  CHECK(pg->Claim(Stage::kPending, 100).value().empty());
  // New rows take ids after the copied ones.
  REQUIRE(pg->Enqueue({"IMPNEW01"}).value() == 1);
  REQUIRE(pg->AppendEvent("IMPNEW01", "run", "note", "").ok());
  auto c = PgConnect(uri);
  CHECK(PgCount(*c, "SELECT job_id FROM jobs WHERE barcode = 'IMPNEW01'") == 31);
  {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    int64_t max_event = db.execAndGet("SELECT max(event_id) FROM events").getInt64();
    int64_t events = db.execAndGet("SELECT count(*) FROM events").getInt64();
    // The events written since (claims, the note) follow the copied ones, none in between.
    CHECK(PgCount(*c, "SELECT count(*) FROM events WHERE event_id <= " +
                          std::to_string(max_event)) == events);
    CHECK(PgCount(*c, "SELECT min(event_id) FROM events WHERE event_id > " +
                          std::to_string(max_event)) == max_event + 1);
    CHECK(PgCount(*c, "SELECT count(*) FROM events WHERE barcode = 'IMPNEW01'") == 1);
  }
  CHECK(PgCount(*c, "SELECT n FROM book_count") == 30);  // triggers back on after the copy
}

TEST_CASE("pg import: a second import of the same run is already done, another run is refused") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  BuildRun(path);
  const std::string uri = FreshDatabase();
  REQUIRE(ImportSqliteRun(path, uri).ok());
  auto again = ImportSqliteRun(path, uri);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(again->already_done);
  CHECK(again->leases_released == 0);

  // Another run (a different SQLite file) into the same target: refused, target untouched.
  const std::string other = dir.file("other.db");
  {
    auto store = SqliteStateStore::Open(other, {}).value();
    REQUIRE(store->Enqueue({"OTHER001"}).ok());
  }
  auto refused = ImportSqliteRun(other, uri);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kAlreadyExists);
  CHECK(refused.status().message().find("already holds a run") != std::string::npos);
  CHECK(refused.status().message().find('\n') == std::string::npos);
  auto c = PgConnect(uri);
  CHECK(PgCount(*c, "SELECT count(*) FROM jobs WHERE barcode = 'OTHER001'") == 0);
  CHECK(VerifyRun(path, uri).ok());
}

TEST_CASE("pg import: a row PostgreSQL refuses midway leaves the target without rows") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  BuildRun(path);

  SUBCASE("a checkpoint of no job (foreign key)") {
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      db.exec("PRAGMA foreign_keys = OFF");
      db.exec("INSERT INTO job_checkpoints(barcode, stage, data, updated_at) "
              "VALUES ('NOSUCHJOB', 'checked', '{}', 1)");
    }
    const std::string uri = FreshDatabase();
    auto r = ImportSqliteRun(path, uri);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kConflict);
    CHECK(r.status().message().find("job_checkpoints") != std::string::npos);
    CheckTargetEmpty(uri);
    // Resumable: with the row fixed, the same target takes the run.
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      db.exec("DELETE FROM job_checkpoints WHERE barcode = 'NOSUCHJOB'");
    }
    auto ok = ImportSqliteRun(path, uri);
    REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
    CheckSameRows(path, uri, {Bc(10), Bc(11)});
  }
  SUBCASE("a title that is not UTF-8") {
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      db.exec("UPDATE books SET title = CAST(x'ff41' AS TEXT) WHERE barcode = 'IMP0020'");
    }
    const std::string uri = FreshDatabase();
    auto r = ImportSqliteRun(path, uri);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("books") != std::string::npos);
    CheckTargetEmpty(uri);
  }
}

TEST_CASE("pg import: a table or column PostgreSQL has no place for is refused before copying") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  BuildRun(path);
  std::string doctor, name;
  SUBCASE("a table") {
    doctor = "CREATE TABLE local_notes(id INTEGER PRIMARY KEY, note TEXT)";
    name = "local_notes";
  }
  SUBCASE("a column") {
    doctor = "ALTER TABLE books ADD COLUMN shelf TEXT";
    name = "books.shelf";
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(doctor);
  }
  const std::string uri = FreshDatabase();
  auto r = ImportSqliteRun(path, uri);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find(name) != std::string::npos);
  CheckTargetEmpty(uri);
}

TEST_CASE("pg import: the connection cut during the copy leaves the target without rows") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  BuildRun(path);
  {
    // Enough events that their COPY lasts a while.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "INSERT INTO events(at, barcode, stage, outcome) SELECT "
            "'2024-01-01T00:00:00.000Z', 'IMP0020', 'pending', 'note' FROM n");
  }
  const std::string uri = FreshDatabase();
  auto admin = PgConnect(uri);
  std::atomic<bool> done{false};
  Result<ImportReport> result = Status::Internal("not run");
  std::thread importer([&] {
    result = ImportSqliteRun(path, uri);
    done = true;
  });
  // The server ends the importing backend while it copies (as a restart or a network cut would).
  int64_t killed = 0;
  while (!done && killed == 0) {
    auto r = admin->Exec(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE query LIKE 'COPY %' AND state = 'active' AND pid <> pg_backend_pid()");
    REQUIRE(r.ok());
    killed = r->Int(0, 0);
  }
  importer.join();
  REQUIRE(killed == 1);
  REQUIRE_FALSE(result.ok());
  CHECK_MESSAGE(result.status().code() == StatusCode::kUnavailable, result.status().ToString());
  CHECK(result.status().message().find('\n') == std::string::npos);
  CheckTargetEmpty(uri);
  // And the same target takes the run afterwards.
  auto again = ImportSqliteRun(path, uri);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(VerifyRun(path, uri).ok());
}

TEST_CASE("pg import: verification names the table whose rows differ") {
  PG_SKIP_WITHOUT_POSTGRES();
  TempDir dir;
  const std::string path = dir.file("books.db");
  BuildRun(path);
  const std::string uri = FreshDatabase();
  REQUIRE(ImportSqliteRun(path, uri).ok());
  auto verified = VerifyRun(path, uri);
  REQUIRE_MESSAGE(verified.ok(), verified.status().ToString());
  auto c = PgConnect(uri);
  struct Case {
    const char* doctor;
    const char* undo;
    const char* table;
  } cases[] = {
      {"UPDATE books SET title = 'changed' WHERE barcode = 'IMP0003'",
       "UPDATE books SET title = 'Title IMP0003' WHERE barcode = 'IMP0003'", "table books:"},
      {"UPDATE job_checkpoints SET data = '{\"offset\":98}' WHERE barcode = 'IMP0015'",
       "UPDATE job_checkpoints SET data = '{\"offset\":99}' WHERE barcode = 'IMP0015'",
       "table job_checkpoints:"},
      {"UPDATE jobs SET lease_token = lease_token + 1 WHERE barcode = 'IMP0010'",
       "UPDATE jobs SET lease_token = lease_token - 1 WHERE barcode = 'IMP0010'", "table jobs:"},
      {"UPDATE job_counts SET n = n + 1 WHERE stage = 'checked'",
       "UPDATE job_counts SET n = n - 1 WHERE stage = 'checked'", "table job_counts:"},
      {"DELETE FROM uploaded_per_second", nullptr, "table uploaded_per_second:"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.doctor);
    REQUIRE(c->Exec(k.doctor).ok());
    auto v = VerifyRun(path, uri);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().code() == StatusCode::kDataLoss);
    CHECK(v.status().message().rfind(k.table, 0) == 0);
    if (k.undo) {
      REQUIRE(c->Exec(k.undo).ok());
      CHECK(VerifyRun(path, uri).ok());
    }
  }
  // A changed run is not "already done": a second import refuses it.
  auto again = ImportSqliteRun(path, uri);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == StatusCode::kAlreadyExists);
}

TEST_CASE("pg import: a connection string with a password is recognised") {
  CHECK(ConninfoHasPassword("postgresql://grin:secret@db.example.org/grin_jobs"));
  CHECK(ConninfoHasPassword("postgresql://grin@db.example.org/grin_jobs?password=secret"));
  CHECK(ConninfoHasPassword("host=db user=grin password=secret dbname=grin_jobs"));
  CHECK_FALSE(ConninfoHasPassword("postgresql://grin@db.example.org:5432/grin_jobs"));
  CHECK_FALSE(ConninfoHasPassword("host=db user=grin dbname=grin_jobs"));
}

}  // namespace
}  // namespace grin::storage
