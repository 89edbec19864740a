// PgStateStore's idle wait (StateStore::WaitForWork) against a real PostgreSQL server (a
// throwaway cluster): a worker whose claim came back empty while another store holds the only
// job wakes at once when the holder gives it back or moves it on (NOTIFY), when a dead holder's
// lease lapses by the database's clock (nothing announces that), and when a retry falls due; a
// raised stop ends the wait at once. The old sync polled every 200 ms; these wake-ups must come
// well inside that, and the lapsed lease within a second of its expiry.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/storage/pg_test_sql.h"

namespace grin::storage {
namespace {

using grin::testing::FreshDatabase;
using grin::testing::PgConnect;
using Steady = std::chrono::steady_clock;

std::unique_ptr<PgStateStore> Open(const std::string& uri, PgStateStoreOptions o = {}) {
  auto s = PgStateStore::Open(uri, o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(*s);
}

double Ms(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Waits on `idle` for work at `stages` (timeout 10 s); how long it took, and whether woken.
struct Waited {
  bool woken = false;
  Steady::time_point at;
};
Waited WaitOn(PgStateStore& idle, std::vector<Stage> stages,
              const std::function<bool()>& cancelled = {}) {
  auto r = idle.WaitForWork(stages, 10'000'000, cancelled);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return {*r, Steady::now()};
}

TEST_CASE("postgres wait: an idle worker wakes at once when the holder releases or completes") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;
  auto holder = Open(uri, o);
  auto idle = Open(uri, o);
  REQUIRE(holder->Enqueue({"WAIT01"}).value() == 1);
  auto held = holder->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  REQUIRE(idle->Claim(Stage::kPending, 1)->empty());

  // The holder gives the job back (e.g. draining on Ctrl-C) while the idle worker waits.
  Steady::time_point released;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    released = Steady::now();
    CHECK(holder->Release(held[0]).ok());
  });
  Waited w = WaitOn(*idle, {Stage::kPending, Stage::kChecked, Stage::kDownloaded});
  t.join();
  CHECK(w.woken);
  const double release_ms = Ms(w.at - released);
  MESSAGE("woken " << release_ms << " ms after the release");
  CHECK(release_ms < 100);  // the old poll: every 200 ms
  auto mine = idle->Claim(Stage::kPending, 1).value();
  REQUIRE(mine.size() == 1);

  // It moves the job on (to checked): a worker idle at `checked` wakes.
  REQUIRE(holder->Claim(Stage::kChecked, 1)->empty());
  Steady::time_point completed;
  std::thread c([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    completed = Steady::now();
    CHECK(idle->Complete(mine[0], Stage::kChecked).ok());
  });
  w = WaitOn(*holder, {Stage::kChecked});
  c.join();
  CHECK(w.woken);
  const double complete_ms = Ms(w.at - completed);
  MESSAGE("woken " << complete_ms << " ms after the completion");
  CHECK(complete_ms < 100);
  CHECK(holder->Claim(Stage::kChecked, 1)->size() == 1);
}

TEST_CASE("postgres wait: a dead holder's lease wakes the idle worker when it lapses") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions dead_o;
  dead_o.heartbeat_interval_micros = 0;  // it never heartbeats: it died holding the job
  dead_o.lease_ttl_micros = 1'500'000;
  auto dead = Open(uri, dead_o);
  PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;
  auto idle = Open(uri, o);
  REQUIRE(dead->Enqueue({"LAPSE1"}).value() == 1);
  auto held = dead->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  REQUIRE(idle->Claim(Stage::kPending, 1)->empty());
  // How long the lease has left, by the database's clock (no NOTIFY comes when it lapses).
  auto c = PgConnect(uri);
  auto left = c->Exec("SELECT (extract(epoch FROM lease_expires_at - clock_timestamp()) * 1e6)"
                      "::bigint FROM jobs WHERE barcode = 'LAPSE1'");
  REQUIRE(left.ok());
  const auto expires = Steady::now() + std::chrono::microseconds(left->Int(0, 0));

  Waited w = WaitOn(*idle, {Stage::kPending});
  CHECK(w.woken);
  const double after_ms = Ms(w.at - expires);
  MESSAGE("woken " << after_ms << " ms after the lease expired");
  CHECK(after_ms > -50);   // not before (a little slack for the two clocks' reading)
  CHECK(after_ms < 1000);  // the notification-only wait slept to its 10 s timeout
  auto mine = idle->Claim(Stage::kPending, 1).value();  // taken back, then claimed
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].barcode == "LAPSE1");
  // The dead holder, were it to come back, is fenced out.
  CHECK(dead->Complete(held[0], Stage::kChecked).code() == StatusCode::kConflict);
}

TEST_CASE("postgres wait: a retry wakes the idle worker when it falls due, a stop at once") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;
  o.backoff_base_micros = 1'000'000;  // the first retry within a second
  o.backoff_max_micros = 1'000'000;
  o.seed = 7;
  auto store = Open(uri, o);
  REQUIRE(store->Enqueue({"RETRY1"}).value() == 1);
  auto held = store->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  REQUIRE(store->Fail(held[0], ErrorClass::kRetryable, "test", "").ok());
  auto c = PgConnect(uri);
  auto left = c->Exec("SELECT next_attempt_at - (extract(epoch FROM clock_timestamp()) * 1e6)"
                      "::bigint FROM jobs WHERE barcode = 'RETRY1'");
  REQUIRE(left.ok());
  const auto due = Steady::now() + std::chrono::microseconds(left->Int(0, 0));
  if (store->Claim(Stage::kPending, 1)->empty()) {  // (the jitter may have made it due already)
    Waited w = WaitOn(*store, {Stage::kPending});
    CHECK(w.woken);
    const double after_ms = Ms(w.at - due);
    MESSAGE("woken " << after_ms << " ms after the retry fell due");
    CHECK(after_ms > -50);
    CHECK(after_ms < 150);
    CHECK(store->Claim(Stage::kPending, 1)->size() == 1);
  }

  // Nothing will become claimable: a stop raised meanwhile ends the wait within its 50 ms
  // slices, and a second waiter queued behind it sees the stop too.
  std::atomic<bool> stop{false};
  std::thread raise([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const auto t0 = Steady::now();
  std::thread second([&] {
    auto r = store->WaitForWork({Stage::kChecked}, 10'000'000, [&] { return stop.load(); });
    CHECK(r.ok());
    if (r.ok()) CHECK_FALSE(*r);
  });
  auto r = store->WaitForWork({Stage::kChecked}, 10'000'000, [&] { return stop.load(); });
  const double took_ms = Ms(Steady::now() - t0);
  raise.join();
  second.join();
  REQUIRE(r.ok());
  CHECK_FALSE(*r);
  CHECK(took_ms < 1000);
}

}  // namespace
}  // namespace grin::storage
