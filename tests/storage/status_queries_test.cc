// The queries behind `grin-jobs status` that read kept counts instead of counting rows
// (schema 0011): each must equal counting the tables directly, on a real SQLite file.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>

#include <random>

#include "engine/base/clock.h"
#include "storage/sqlite_state_store.h"
#include "storage/state_reader.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

TEST_CASE("completions since a moment equal counting the uploaded events, at any split second") {
  TempDir dir;
  const std::string path = dir.file("books.db");
  FakeClock clock(1'700'000'000'123'456);
  const int64_t start = clock.NowMicros();
  std::vector<int64_t> times;
  {
    StateStoreOptions o;
    o.clock = &clock;
    auto store = SqliteStateStore::Open(path, o).value();
    std::mt19937 rng(7);
    std::vector<std::string> barcodes;
    for (int i = 0; i < 60; ++i) barcodes.push_back("RATE" + std::to_string(1000 + i));
    REQUIRE(store->Enqueue(barcodes).ok());
    for (int i = 0; i < 300; ++i) {
      // Several events in one second, seconds with none, whole seconds exactly.
      clock.AdvanceMicros(i % 17 == 0 ? 1'000'000 - clock.NowMicros() % 1'000'000
                                      : static_cast<int64_t>(rng() % 700'000));
      times.push_back(clock.NowMicros());
      if (i % 5 == 0 && i / 5 < 60) {
        // A real completion (the writer's multi-row event insert).
        auto items = store->Claim(Stage::kPending, 1).value();
        REQUIRE(items.size() == 1);
        REQUIRE(store->Complete(items[0], Stage::kUploaded).ok());
      } else {
        REQUIRE(store->AppendEvent("RATE" + std::to_string(i), i % 3 ? "uploaded" : "checked",
                                   "completed", "")
                    .ok());
      }
      REQUIRE(store->Flush().ok());
    }
  }
  auto reader = StateReader::Open(path).value();
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement direct(db, R"(
      SELECT count(*), coalesce(CAST(strftime('%s', min(at)) AS INTEGER), 0) * 1000000
                       + coalesce(CAST(substr(min(at), 21, 3) AS INTEGER), 0) * 1000
      FROM events NOT INDEXED WHERE stage = 'uploaded' AND at >= ?1)");
  std::vector<int64_t> since = {0, start - 5'000'000, clock.NowMicros() + 1};
  for (int64_t t : times) {
    for (int64_t d : {-1'000, -1, 0, 1, 999, 1'000}) since.push_back(t + d);
    since.push_back(t / 1'000'000 * 1'000'000);  // the whole second
  }
  int nonzero = 0;
  for (int64_t s : since) {
    CAPTURE(s);
    direct.reset();
    direct.bind(1, FormatIsoUtcMillis(s));
    REQUIRE(direct.executeStep());
    auto r = reader->CompletedSince(s);
    REQUIRE(r.ok());
    CHECK(r->count == direct.getColumn(0).getInt64());
    CHECK(r->first_micros == direct.getColumn(1).getInt64());
    if (r->count > 0) ++nonzero;
  }
  CHECK(nonzero > 100);
}

TEST_CASE("the book count equals counting the books through inserts, conflicts and deletes") {
  TempDir dir;
  const std::string path = dir.file("books.db");
  {
    StateStoreOptions o;
    auto store = SqliteStateStore::Open(path, o).value();  // creates the schema
  }
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  auto reader = StateReader::Open(path).value();
  auto check = [&] {
    CHECK(reader->Books().value() ==
          db.execAndGet("SELECT count(*) FROM books NOT INDEXED").getInt64());
  };
  check();
  db.exec("INSERT INTO books(barcode, created_at, updated_at) VALUES ('A1', 't', 't'), "
          "('A2', 't', 't'), ('A3', 't', 't')");
  check();
  db.exec("INSERT INTO books(barcode, created_at, updated_at) VALUES ('A1', 't', 't'), "
          "('A4', 't', 't') ON CONFLICT(barcode) DO NOTHING");
  check();
  db.exec("INSERT INTO books(barcode, created_at, updated_at) VALUES ('A2', 't', 't') "
          "ON CONFLICT(barcode) DO UPDATE SET title = 'x'");
  db.exec("INSERT OR IGNORE INTO books(barcode, created_at, updated_at) VALUES ('A3', 't', 't')");
  CHECK_THROWS(db.exec("INSERT INTO books(barcode, created_at, updated_at) "
                       "VALUES ('A5', 't', 't'), ('A1', 't', 't')"));  // the statement undone
  check();
  db.exec("DELETE FROM books WHERE barcode IN ('A1', 'A9')");
  check();
  CHECK(reader->Books().value() == 3);
}

}  // namespace
}  // namespace grin::storage
