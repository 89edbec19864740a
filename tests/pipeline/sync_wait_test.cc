// A sync with nothing claimable but work left waits for work (StateStore::WaitForWork) instead
// of polling. On PostgreSQL (a throwaway cluster with pg_stat_statements, against the fake GRIN
// over HTTPS into a local storage folder): every book left is leased by a worker that died (a
// store that claimed them and stopped heartbeating); the sync takes them back as their lease
// lapses, by the database's clock, and finishes soon after; while it waits it sends few
// statements (the old pipeline asked for claims every 200 ms per stage and counted jobs every
// 50 ms). On SQLite (one process holds the run): the store's wait wakes on its own writes at
// once and when a retry falls due, and ends at once on a stop.
#include <atomic>
#include <chrono>
#include <thread>

#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/sqlite_state_store.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::pipeline::testing {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

double Ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A cluster of this binary's own that records every statement (pg_stat_statements).
grin::testing::PgCluster* CountingCluster() {
  static std::unique_ptr<grin::testing::PgCluster> cluster = [] {
    grin::testing::PgClusterOptions o;
    o.settings = {"shared_preload_libraries = 'pg_stat_statements'"};
    auto started = grin::testing::PgCluster::Start(o);
    REQUIRE_MESSAGE(started.ok(), started.status().ToString());
    return std::move(*started);
  }();
  return cluster.get();
}

std::vector<std::string> ConvertedBarcodes(SyncEnv& env) {
  int64_t total = 0;
  std::vector<std::string> out;
  for (int64_t i : env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1000,
                                                    &total)) {
    out.push_back(fake::Corpus::BarcodeAt(i));
  }
  return out;
}

TEST_CASE("sync on PostgreSQL: books leased by a dead worker are taken back when the lease "
          "lapses, and the wait sends few statements") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(16, 0.5, 41);
  auto db = CountingCluster()->CreateDatabase("wait_dead");
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  const std::string uri = *db;
  const std::string dir = env.InitRun((env.tmp.path() / "pgrun").string(), uri);
  auto conn = storage::pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  auto sql = [&](const std::string& q) {
    auto r = (*conn)->Exec(q);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->rows() > 0 && !r->IsNull(0, 0) ? r->Int(0, 0) : int64_t{0};
  };
  sql("CREATE EXTENSION pg_stat_statements");

  // A worker claims every converted book and dies: no heartbeat, its leases lapse in 3 s.
  const auto books = ConvertedBarcodes(env);
  REQUIRE(books.size() >= 4);
  storage::PgStateStoreOptions dead_o;
  dead_o.heartbeat_interval_micros = 0;
  dead_o.lease_ttl_micros = 3'000'000;
  auto dead = storage::PgStateStore::Open(uri, dead_o);
  REQUIRE_MESSAGE(dead.ok(), dead.status().ToString());
  REQUIRE((*dead)->Enqueue(books).value() == static_cast<int64_t>(books.size()));
  REQUIRE((*dead)->Claim(Stage::kPending, 1000)->size() == books.size());
  const auto expires = Steady::now() + std::chrono::microseconds(sql(
      "SELECT (extract(epoch FROM max(lease_expires_at) - clock_timestamp()) * 1e6)::bigint "
      "FROM jobs WHERE status = 'leased'"));
  const int64_t expiry_ms = sql(  // by the database's clock, as the events' times
      "SELECT (extract(epoch FROM max(lease_expires_at)) * 1e3)::bigint FROM jobs "
      "WHERE status = 'leased'");
  sql("SELECT 1 FROM pg_stat_statements_reset()");

  auto sync = Cli({"sync", "--run-dir", dir, "--workers", "4", "--grin-rate", "0", "--queue",
                   "converted", "--skip-csv-export"});
  const auto ended = Steady::now();
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  CHECK(sql("SELECT count(*) FROM uploaded") == static_cast<int64_t>(books.size()));
  CHECK(sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed'") ==
        static_cast<int64_t>(books.size()));
  // The sync took the books back as soon as the leases lapsed (the old one at its next poll,
  // up to 200 ms later) and ended soon after (then: the books' work, well under a second).
  const double after_ms = Ms(ended - expires);
  const int64_t reclaim_ms =
      sql("SELECT (extract(epoch FROM min(at::timestamptz)) * 1e3)::bigint FROM events "
          "WHERE outcome = 'reclaimed'") - expiry_ms;
  // Statements the sync sent: its claims and its job counts (the dead worker sent none since).
  const int64_t claims = sql(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
      "WHERE query LIKE '%FOR UPDATE SKIP LOCKED%' AND query LIKE '%leased_at%'");
  const int64_t counts = sql(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
      "WHERE query LIKE 'SELECT stage, n FROM job_counts%'");
  const int64_t waits = sql(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
      "WHERE query LIKE '%lease_expires_at) - now()%'");
  MESSAGE("leases taken back " << reclaim_ms << " ms after they lapsed, sync ended "
                                << after_ms << " ms after; " << books.size() << " books, "
                                << claims << " claims, " << counts << " job counts, " << waits
                                << " wait reads");
  CHECK(reclaim_ms >= -1);  // (events' times are in whole milliseconds)
  CHECK(reclaim_ms < 250);
  CHECK(after_ms > 0);
  CHECK(after_ms < 4000);
  // About 3 s idle. The old pipeline asked for claims every 200 ms per stage and counted jobs
  // every 50 ms: 7 books took it 84 claims and 60 job counts; now about 16 and 8 (the books
  // need one claim each; one per stage finds nothing each time stages may have run dry).
  CHECK(claims <= static_cast<int64_t>(books.size()) + 15);
  CHECK(counts <= 16);
  CHECK(waits >= 1);  // it did wait
}

TEST_CASE("SQLite store wait: woken at once by its own writes, when a retry falls due, and "
          "ended at once by a stop") {
  grin::testing::TempDir tmp;
  storage::StateStoreOptions o;
  o.backoff_base_micros = 1'000'000;
  o.backoff_max_micros = 1'000'000;
  o.seed = 5;
  auto s = storage::SqliteStateStore::Open((tmp.path() / "books.db").string(), o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  auto& store = **s;
  REQUIRE(store.Enqueue({"SQLW01"}).value() == 1);
  auto held = store.Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  const std::vector<Stage> all = {Stage::kPending, Stage::kChecked, Stage::kDownloaded};

  // Released by another thread while waiting: woken at once.
  Steady::time_point released;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    released = Steady::now();
    CHECK(store.Release(held[0]).ok());
  });
  auto w = store.WaitForWork(all, 10'000'000, {});
  const auto woke = Steady::now();
  t.join();
  REQUIRE(w.ok());
  CHECK(*w);
  CHECK(Ms(woke - released) < 100);

  // A retry: woken when it falls due (by the store's clock), not before.
  held = store.Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  const auto failed = Steady::now();
  REQUIRE(store.Fail(held[0], ErrorClass::kRetryable, "test", "").ok());
  if (store.Claim(Stage::kPending, 1)->empty()) {  // (the jitter may have made it due at once)
    w = store.WaitForWork(all, 10'000'000, {});
    REQUIRE(w.ok());
    CHECK(*w);
    CHECK(Ms(Steady::now() - failed) < 1150);  // the backoff is at most 1 s
    CHECK(store.Claim(Stage::kPending, 1)->size() == 1);
  }

  // Nothing left to become claimable: the timeout, or a stop at once.
  w = store.WaitForWork(all, 200'000, {});
  REQUIRE(w.ok());
  CHECK_FALSE(*w);
  std::atomic<bool> stop{false};
  std::thread raise([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
  });
  const auto t0 = Steady::now();
  w = store.WaitForWork(all, 10'000'000, [&] { return stop.load(); });
  raise.join();
  REQUIRE(w.ok());
  CHECK_FALSE(*w);
  CHECK(Ms(Steady::now() - t0) < 1000);
}

}  // namespace
}  // namespace grin::pipeline::testing
