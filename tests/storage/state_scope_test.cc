// The SQLite state store: crash streaks reset by completion, claim scopes (sync --barcodes), and
// a full database reported as kNoSpace through the writer thread.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <set>

#include "storage/sqlite_state_store.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

struct Fixture {
  TempDir dir;
  FakeClock clock;
  std::string path = dir.file("books.db");
  StateStoreOptions Options() {
    StateStoreOptions o;
    o.clock = &clock;
    o.seed = 7;
    return o;
  }
  std::unique_ptr<SqliteStateStore> Open(StateStoreOptions o) {
    auto s = SqliteStateStore::Open(path, o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }
  std::unique_ptr<SqliteStateStore> Open() { return Open(Options()); }
  std::string Text(const std::string& sql) {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    return db.execAndGet(sql).getString();
  }
};

std::set<std::string> Barcodes(const std::vector<WorkItem>& items) {
  std::set<std::string> out;
  for (const auto& w : items) out.insert(w.barcode);
  return out;
}

TEST_CASE("completing a stage ends a book's crash streak") {
  Fixture f;
  // Four crashes in a row with the book in flight and nothing else done (the process "dies":
  // the store closes with the lease held).
  for (int i = 0; i < 4; ++i) {
    auto store = f.Open();
    if (i == 0) REQUIRE(store->Enqueue({"STREAK01"}).ok());
    REQUIRE(store->Claim(Stage::kPending, 1).value().size() == 1);
    f.clock.AdvanceMicros(1000);
  }
  {
    auto store = f.Open();
    auto items = store->Claim(Stage::kPending, 1).value();
    REQUIRE(items.size() == 1);
    REQUIRE(store->Complete(items[0], Stage::kChecked).ok());
  }
  CHECK(f.Text("SELECT status || ':' || recoveries FROM jobs") == "ready:0");
  // Five more crashes at the next stage: a streak of 5 is not past max_recoveries (5). Before,
  // the lifetime count reached 9 and the book went dead.
  for (int i = 0; i < 5; ++i) {
    auto store = f.Open();
    REQUIRE(store->Claim(Stage::kChecked, 1).value().size() == 1);
    f.clock.AdvanceMicros(1000);
  }
  auto store = f.Open();
  store.reset();
  CHECK(f.Text("SELECT status || ':' || recoveries FROM jobs") == "ready:5");
}

TEST_CASE("a lease taken back from a run that made progress after the claim restarts the streak") {
  Fixture f;
  for (int i = 0; i < 8; ++i) {
    auto store = f.Open();
    if (i == 0) REQUIRE(store->Enqueue({"STREAK01"}).ok());
    REQUIRE(store->Enqueue({"OTHER" + std::to_string(100 + i)}).ok());
    auto first = store->Claim(Stage::kPending, 1).value();
    REQUIRE(first.size() == 1);
    REQUIRE(first[0].barcode == "STREAK01");
    f.clock.AdvanceMicros(1000);
    auto other = store->Claim(Stage::kPending, 1).value();
    REQUIRE(other.size() == 1);
    REQUIRE(store->Complete(other[0], Stage::kUploaded).ok());
  }
  auto store = f.Open();
  store.reset();
  CHECK(f.Text("SELECT status || ':' || recoveries FROM jobs WHERE barcode = 'STREAK01'") ==
        "ready:1");
}

TEST_CASE("a scope limits Claim and Counts to the named books, and lifts") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"SCOPE001", "SCOPE002", "SCOPE003", "SCOPE004", "SCOPE005"}).ok());
  REQUIRE(store->SetScope({"SCOPE002", "SCOPE004", "UNKNOWN99"}).ok());
  auto c = store->Counts().value();
  CHECK(c.total == 2);
  CHECK(c.at[0] == 2);
  auto items = store->Claim(Stage::kPending, 10).value();
  CHECK(Barcodes(items) == std::set<std::string>{"SCOPE002", "SCOPE004"});
  REQUIRE(store->Complete(items[0], Stage::kUploaded).ok());
  c = store->Counts().value();
  CHECK(c.at[3] == 1);
  CHECK(c.leased == 1);
  CHECK(store->Claim(Stage::kPending, 10).value().empty());
  REQUIRE(store->SetScope({}).ok());
  CHECK(store->Counts().value().total == 5);
  CHECK(Barcodes(store->Claim(Stage::kPending, 10).value()) ==
        std::set<std::string>{"SCOPE001", "SCOPE003", "SCOPE005"});
  CHECK(store->SetScope({"bad barcode!"}).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("scoped Counts count a named book awaiting conversion as awaiting, not open") {
  // A sync of named books whose book went to wait for GRIN's conversion must end: the pipeline
  // ends when total - uploaded - dead - awaiting is 0 (it hung when the scoped count left
  // awaiting out).
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"WAIT0001", "WAIT0002", "WAIT0003"}).ok());
  REQUIRE(store->SetScope({"WAIT0001", "WAIT0002"}).ok());
  auto items = store->Claim(Stage::kPending, 10).value();
  REQUIRE(items.size() == 2);
  REQUIRE(store->Await(items[0], "conversion_requested", "{}").ok());
  REQUIRE(store->Complete(items[1], Stage::kUploaded).ok());
  auto c = store->Counts().value();
  CHECK(c.total == 2);
  CHECK(c.awaiting == 1);
  CHECK(c.awaiting_since_micros > 0);
  CHECK(c.total - c.at[3] - c.dead - c.awaiting == 0);
}

TEST_CASE("a full database is kNoSpace to the writer's callers, and the store stays usable") {
  Fixture f;
  {
    auto store = f.Open();
    REQUIRE(store->Enqueue({"FULL0001"}).ok());
  }
  int64_t pages = 0;
  {
    SQLite::Database db(f.path, SQLite::OPEN_READONLY);
    pages = db.execAndGet("PRAGMA page_count").getInt64();
  }
  StateStoreOptions o = f.Options();
  o.max_pages = pages + 2;
  auto store = f.Open(o);
  std::vector<std::string> many;
  for (int i = 0; i < 20000; ++i) many.push_back("FULLBOOK" + std::to_string(100000 + i));
  auto added = store->Enqueue(many);
  REQUIRE_FALSE(added.ok());
  CHECK(added.status().code() == StatusCode::kNoSpace);
  CHECK(added.status().message().find("disk full") != std::string::npos);
  CHECK(added.status().message().find(f.path) != std::string::npos);
  // Nothing of the failed batch was kept; small writes that fit still work.
  CHECK(store->Counts().value().total == 1);
  auto items = store->Claim(Stage::kPending, 1).value();
  REQUIRE(items.size() == 1);
  CHECK(store->Complete(items[0], Stage::kChecked).ok());
}

}  // namespace
}  // namespace grin::storage
