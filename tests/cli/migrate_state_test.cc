// grin-jobs migrate-state end to end: a run made by `init` and a small `sync` against the fake
// GRIN into local storage, moved to a throwaway PostgreSQL cluster; what `status` counts on the
// SQLite run equals what the PostgreSQL store counts; run_config.json records the new place and
// books.db stays; a second run says it is already done; a password in the URL, a held run lock,
// and a run already moved elsewhere are refused with one line.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/run_lock.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::pipeline::testing {
namespace {

using cli::testing::OneLine;
using nlohmann::json;

json StatusJson(const std::string& run) {
  auto r = Cli({"status", "--run-dir", run, "--json"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return json::parse(r.out);
}

json RunConfigJson(const std::string& run) {
  return json::parse(grin::testing::ReadFile(run + "/run_config.json"));
}

int64_t PgInt(const std::string& uri, const std::string& sql) {
  auto c = storage::pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  auto r = (*c)->Exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->Int(0, 0);
}

TEST_CASE("migrate-state: a synced run moves to PostgreSQL and its counts stay the same") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(30);
  auto sync = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  REQUIRE(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'") == 8);
  const json before = StatusJson(env.run);
  const int64_t events = env.Sql("SELECT count(*) FROM events");
  const std::string uri = grin::testing::FreshDatabase();

  SUBCASE("refusals first: each one line, nothing recorded, the target untouched") {
    auto pw = Cli({"migrate-state", "--run-dir", env.run, "--to",
                   "postgresql://grin:secret@127.0.0.1/postgres"});
    CHECK(pw.code == cli::kExitUsage);
    CHECK(OneLine(pw.err));
    CHECK(pw.err.find("secret") == std::string::npos);
    CHECK(pw.err.find(".pgpass") != std::string::npos);

    auto not_pg = Cli({"migrate-state", "--run-dir", env.run, "--to", "mysql://x/y"});
    CHECK(not_pg.code == cli::kExitUsage);
    CHECK(OneLine(not_pg.err));

    {
      // A sync holding the run: the lock is taken, the copy refused.
      auto held = storage::RunLock::Acquire(env.run + "/books.db");
      REQUIRE(held.ok());
      auto busy = Cli({"migrate-state", "--run-dir", env.run, "--to", uri});
      CHECK(busy.code == cli::kExitLocked);
      CHECK(OneLine(busy.err));
    }
    CHECK_FALSE(RunConfigJson(env.run).contains("state"));
    CHECK(PgInt(uri, "SELECT to_regclass('jobs') IS NULL") == 1);  // not even the schema
  }

  SUBCASE("the move, its summary, then counts through the PostgreSQL store") {
    auto r = Cli({"migrate-state", "--run-dir", env.run, "--to", uri});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("verified") != std::string::npos);
    CHECK(r.out.find("  jobs ") != std::string::npos);
    CHECK(r.out.find("  events ") != std::string::npos);
    CHECK(r.out.find("  books ") != std::string::npos);
    CHECK(RunConfigJson(env.run)["state"] == uri);
    // books.db stays, as it was.
    CHECK(std::filesystem::exists(env.run + "/books.db"));
    CHECK(env.Sql("SELECT count(*) FROM events") == events);
    CHECK(env.Sql("SELECT count(*) FROM jobs") == before["jobs"].get<int64_t>());

    // What status said of the SQLite run, the PostgreSQL store says of its copy.
    storage::PgStateStoreOptions o;
    o.heartbeat_interval_micros = 0;
    {
      auto pg = storage::PgStateStore::Open(uri, o);
      REQUIRE_MESSAGE(pg.ok(), pg.status().ToString());
      auto counts = (*pg)->Counts();
      REQUIRE(counts.ok());
      CHECK(counts->total == before["jobs"].get<int64_t>());
      CHECK(counts->at[0] == before["stages"]["pending"].get<int64_t>());
      CHECK(counts->at[1] == before["stages"]["checked"].get<int64_t>());
      CHECK(counts->at[2] == before["stages"]["downloaded"].get<int64_t>());
      CHECK(counts->at[3] == before["stages"]["uploaded"].get<int64_t>());
      CHECK(counts->at[3] == 8);
      CHECK(counts->leased == before["leased"].get<int64_t>());
      CHECK(counts->retrying == before["retrying"].get<int64_t>());
      CHECK(counts->dead == before["dead"].get<int64_t>());
      CHECK(counts->awaiting == before["awaiting_conversion"].get<int64_t>());
    }
    CHECK(PgInt(uri, "SELECT count(*) FROM books") == before["books"].get<int64_t>());
    CHECK(PgInt(uri, "SELECT n FROM book_count") == before["books"].get<int64_t>());
    // The copied events, plus the store's own run row's none: the open above adds no event.
    CHECK(PgInt(uri, "SELECT count(*) FROM events") == events);

    // Again: already done, nothing changes.
    auto again = Cli({"migrate-state", "--run-dir", env.run, "--to", uri});
    CHECK(again.code == 0);
    CHECK(again.out.find("already done") != std::string::npos);
    CHECK(PgInt(uri, "SELECT count(*) FROM events") == events);

    // Elsewhere: the run's state has moved already.
    auto other = Cli({"migrate-state", "--run-dir", env.run, "--to",
                      grin::testing::FreshDatabase()});
    CHECK(other.code != 0);
    CHECK(OneLine(other.err));
    CHECK(other.err.find("already at") != std::string::npos);
  }
}

TEST_CASE("migrate-state: the top-level help lists the command by its whole name") {
  auto top = Cli({"--help"});
  REQUIRE(top.code == 0);
  CHECK(top.out.find("\n  migrate-state  Move a run's state") != std::string::npos);
  CHECK(top.out.find("\n  sync") != std::string::npos);
}

TEST_CASE("migrate-state: a target that already holds a run is refused and nothing is recorded") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv a(10);
  REQUIRE(Cli(a.SyncArgs({"--queue", "converted", "--limit", "2"})).code == 0);
  const std::string uri = grin::testing::FreshDatabase();
  REQUIRE(Cli({"migrate-state", "--run-dir", a.run, "--to", uri}).code == 0);

  SyncEnv b(10, 0.6, /*seed=*/9);
  REQUIRE(Cli(b.SyncArgs({"--queue", "converted", "--limit", "2"})).code == 0);
  auto r = Cli({"migrate-state", "--run-dir", b.run, "--to", uri});
  CHECK(r.code != 0);
  CHECK(OneLine(r.err));
  CHECK(r.err.find("already holds a run") != std::string::npos);
  CHECK_FALSE(RunConfigJson(b.run).contains("state"));
}

}  // namespace
}  // namespace grin::pipeline::testing
