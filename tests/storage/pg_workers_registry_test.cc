// The worker registry and GRIN's politeness limits shared through PostgreSQL
// (storage/postgres/pg_workers.h), on a throwaway cluster. In-process: registration, heartbeats,
// expiry, the fair share and the lower-before-release order, step by step (manual ticks). Then
// worker processes (fork; each its own PgWorkers with its heartbeat threads) that use download
// slots as fast as they can, every use counted in shared memory under one atomic counter: the
// count never exceeds the run's slots, while a worker joins mid-run, after one is SIGKILLed
// (its slots come back only after its lease), and after one is frozen with SIGSTOP past its
// lease (it cannot use its old slots when it resumes). The request rate: three processes taking
// tokens at full speed from buckets driven by their rate share take at most rate × time plus
// their bursts together.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/net/curl_transport.h"
#include "engine/net/rate_limiter.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_workers.h"
#include "tests/net/net_fixture.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::storage {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kSlots = 4;

PgWorkersOptions Manual(double rate = 8) {
  PgWorkersOptions o;
  o.download_slots = kSlots;
  o.requests_per_second = rate;
  o.lease_ttl_micros = 1'000'000;
  o.heartbeat_interval_micros = 0;  // the test ticks
  return o;
}

PgWorkersOptions Live(double rate = 8) {
  PgWorkersOptions o;
  o.download_slots = kSlots;
  o.requests_per_second = rate;
  o.lease_ttl_micros = 2'000'000;
  o.heartbeat_interval_micros = 200'000;
  return o;
}

std::unique_ptr<PgWorkers> OpenWorkers(const std::string& db, const PgWorkersOptions& o) {
  auto w = PgWorkers::Open(db, o);
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  return std::move(w).value();
}

int64_t QueryInt(const std::string& db, const std::string& sql) {
  auto c = pg::PgConnection::Connect(db, "test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  auto r = (*c)->Exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->Int(0, 0);
}

TEST_CASE("workers register, heartbeat and expire, and share the slots fairly") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  auto a = OpenWorkers(db, Manual());
  CHECK(a->download_slots() == kSlots);
  CHECK(a->held() == kSlots);  // alone: all of them
  CHECK(a->DownloadLimit() == kSlots);
  CHECK(a->GrinRequestRate() == doctest::Approx(8));
  auto live = ListLiveWorkers(db);
  REQUIRE_MESSAGE(live.ok(), live.status().ToString());
  REQUIRE(live->size() == 1);
  CHECK((*live)[0].worker_id == a->worker_id());
  CHECK((*live)[0].pid == ::getpid());
  CHECK(!(*live)[0].host.empty());
  CHECK((*live)[0].slots_held == kSlots);
  CHECK((*live)[0].started_at.size() == 20);
  CHECK((*live)[0].heartbeat_age_s < 5);

  // A holds everything in use when B joins: A lowers its limit at once but gives rows back only
  // as its downloads end; B gets nothing until then.
  for (int i = 0; i < kSlots; ++i) REQUIRE(a->TryAcquireDownload());
  CHECK_FALSE(a->TryAcquireDownload());
  PgWorkersOptions bo = Manual();
  bo.download_slots = 9;  // the run's number wins
  bo.requests_per_second = 100;
  auto b = OpenWorkers(db, bo);
  CHECK(b->download_slots() == kSlots);
  CHECK(b->run_requests_per_second() == doctest::Approx(8));
  CHECK(b->held() == 0);
  CHECK(b->GrinRequestRate() == 0);  // no slot, no GRIN requests
  CHECK_FALSE(b->TryAcquireDownload());
  REQUIRE(a->Tick().ok());
  CHECK(a->DownloadLimit() == 2);
  CHECK(a->GrinRequestRate() == doctest::Approx(4));
  CHECK(a->held() == kSlots);  // 4 in use: nothing given back yet
  a->ReleaseDownload();
  REQUIRE(a->Tick().ok());
  CHECK(a->held() == kSlots);  // 3 in use
  CHECK_FALSE(a->TryAcquireDownload());
  a->ReleaseDownload();
  REQUIRE(a->Tick().ok());
  CHECK(a->held() == 2);  // 2 in use: the surplus went
  REQUIRE(b->Tick().ok());
  CHECK(b->held() == 2);
  CHECK(b->DownloadLimit() == 2);
  CHECK(b->GrinRequestRate() == doctest::Approx(4));
  live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  REQUIRE(live->size() == 2);
  CHECK((*live)[0].slots_held + (*live)[1].slots_held == kSlots);
  a->ReleaseDownload();
  a->ReleaseDownload();

  // A stops heartbeating: past its lease it drops out and B takes its rows.
  std::this_thread::sleep_for(milliseconds(600));
  REQUIRE(b->Tick().ok());  // B's heartbeat keeps B
  std::this_thread::sleep_for(milliseconds(600));
  CHECK_FALSE(a->TryAcquireDownload());  // A's own lease check: its rows may be B's now
  CHECK(a->DownloadLimit() == 0);
  CHECK(a->GrinRequestRate() == 0);
  REQUIRE(b->Tick().ok());
  CHECK(b->held() == kSlots);
  live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  REQUIRE(live->size() == 1);
  CHECK((*live)[0].worker_id == b->worker_id());
  CHECK((*live)[0].slots_held == kSlots);
  // Every row was claimed twice: by A at first, then by B (2 given back by A, 2 taken from it
  // after its lease): a row taken over gets a new token.
  CHECK(QueryInt(db, "SELECT count(*) FROM grin_slots WHERE token = 2 AND worker_id = " +
                         std::to_string(b->worker_id())) == kSlots);

  // A comes back: a new registration, and its share only once B has given it up.
  const int64_t old_a = a->worker_id();
  REQUIRE(a->Tick().ok());
  CHECK(a->worker_id() > old_a);
  CHECK(a->held() == 0);
  REQUIRE(a->Tick().ok());
  CHECK(a->held() == 0);  // B still holds them
  REQUIRE(b->Tick().ok());
  CHECK(b->held() == 2);
  REQUIRE(a->Tick().ok());
  CHECK(a->held() == 2);

  // Deregistering gives everything back at once.
  REQUIRE(a->Deregister().ok());
  CHECK(a->DownloadLimit() == 0);
  CHECK_FALSE(a->TryAcquireDownload());
  REQUIRE(b->Tick().ok());
  CHECK(b->held() == kSlots);
  live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  CHECK(live->size() == 1);
  b.reset();
  live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  CHECK(live->empty());
  CHECK(QueryInt(db, "SELECT count(*) FROM grin_slots WHERE worker_id IS NOT NULL") == 0);
}

TEST_CASE("a worker released for exit gives its slots back at once, downloads in use or not") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  PgWorkersOptions slow = Manual();
  slow.lease_ttl_micros = 30'000'000;  // the default: nothing here may wait for it
  auto a = OpenWorkers(db, slow);
  auto b = OpenWorkers(db, slow);
  REQUIRE(a->Tick().ok());  // A gives B's share back
  REQUIRE(b->Tick().ok());  // B claims it
  CHECK(a->held() == 2);
  CHECK(b->held() == 2);
  // A's downloads are running (a process about to exit): Deregister would wait for them.
  REQUIRE(a->TryAcquireDownload());
  REQUIRE(a->TryAcquireDownload());
  const auto start = SteadyClock::now();
  auto given = a->ReleaseForExit();
  REQUIRE_MESSAGE(given.ok(), given.status().ToString());
  CHECK(*given == 2);
  CHECK(SteadyClock::now() - start < milliseconds(2000));
  CHECK(a->DownloadLimit() == 0);
  CHECK_FALSE(a->TryAcquireDownload());
  auto live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  REQUIRE(live->size() == 1);
  CHECK(live->front().worker_id == b->worker_id());
  // B takes them at its next heartbeat, not a lease later.
  REQUIRE(b->Tick().ok());
  CHECK(b->held() == kSlots);
  // A never comes back: a later heartbeat neither registers it again nor claims a row, and a
  // second release (or the destructor's Deregister) changes nothing.
  CHECK_FALSE(a->Tick().ok());
  auto again = a->ReleaseForExit();
  REQUIRE(again.ok());
  CHECK(*again == 0);
  a->ReleaseDownload();
  a->ReleaseDownload();
  a.reset();
  CHECK(QueryInt(db, "SELECT count(*) FROM workers WHERE ended_at IS NULL") == 1);
  CHECK(QueryInt(db, "SELECT count(*) FROM grin_slots WHERE worker_id = " +
                         std::to_string(b->worker_id())) == kSlots);
}

TEST_CASE("worker registry options that cannot work are refused with a clear message") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  PgWorkersOptions o = Manual();
  o.download_slots = 0;
  auto w = PgWorkers::Open(db, o);
  REQUIRE_FALSE(w.ok());
  CHECK(w.status().code() == StatusCode::kInvalidArgument);
  CHECK(w.status().message().find("download_slots") != std::string::npos);
  o = Live();
  o.heartbeat_interval_micros = o.lease_ttl_micros;
  w = PgWorkers::Open(db, o);
  REQUIRE_FALSE(w.ok());
  CHECK(w.status().message().find("heartbeat") != std::string::npos);
}

// ---- worker processes ----

// Shared by the test and its forked workers (MAP_SHARED): lock-free atomics only.
struct Board {
  std::atomic<int> in_use;  // download slots in use, all processes together
  std::atomic<int> max_in_use;
  std::atomic<int> over;     // times in_use went past kSlots
  std::atomic<int> stop;     // workers end their loops
  std::atomic<int> go;       // the frozen worker's signal to try again
  std::atomic<int> quit[8];  // one worker ends its loop
  std::atomic<int> ready[8];
  std::atomic<int> failed[8];    // a worker could not open / tick (see its stderr)
  std::atomic<int64_t> uses[8];  // slots used, per worker
  std::atomic<int64_t> tokens[8];
  std::atomic<int> resumed_uses[8];  // slots a resumed frozen worker got at once
};
static_assert(std::atomic<int64_t>::is_always_lock_free);

Board* NewBoard() {
  void* p =
      ::mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  return new (p) Board{};
}

// Uses slots as fast as it can: take one (TryAcquireDownload), count it, hold it a while,
// uncount, give it back. Until board->stop or board->quit[idx].
void UseSlots(PgWorkers& w, Board* board, int idx, int threads, unsigned seed) {
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(seed * 31 + static_cast<unsigned>(t));
      while (board->stop.load() == 0 && board->quit[idx].load() == 0) {
        if (!w.TryAcquireDownload()) {
          std::this_thread::sleep_for(milliseconds(1));
          continue;
        }
        int n = board->in_use.fetch_add(1) + 1;
        int m = board->max_in_use.load();
        while (n > m && !board->max_in_use.compare_exchange_weak(m, n)) {
        }
        if (n > kSlots) board->over.fetch_add(1);
        board->uses[idx].fetch_add(1);
        // Mostly short, sometimes long (a big book): a row handed on while still in use
        // would be claimed and used by another worker during the long ones.
        const unsigned r = rng() % 100;
        std::this_thread::sleep_for(milliseconds(r < 85 ? 2 + r % 8 : 100 + r * 3));
        board->in_use.fetch_sub(1);
        w.ReleaseDownload();
      }
    });
  }
  for (auto& t : ts) t.join();
}

// Runs fn in a child process; the child exits 0 when fn returns (no destructors of the test's
// objects run in it).
pid_t Fork(const std::function<int()>& fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(fn());
  return pid;
}

int OpenIn(const std::string& db, const PgWorkersOptions& o, Board* board, int idx,
           std::unique_ptr<PgWorkers>* out) {
  auto w = PgWorkers::Open(db, o);
  if (!w.ok()) {
    std::fprintf(stderr, "worker %d: %s\n", idx, w.status().ToString().c_str());
    board->failed[idx] = 1;
    return 1;
  }
  *out = std::move(w).value();
  board->ready[idx] = 1;
  return 0;
}

int SlotWorker(const std::string& db, Board* board, int idx) {
  std::unique_ptr<PgWorkers> w;
  if (int rc = OpenIn(db, Live(), board, idx, &w)) return rc;
  UseSlots(*w, board, idx, kSlots, static_cast<unsigned>(idx) + 1);
  w.reset();  // gives its rows back
  return 0;
}

bool WaitFor(const std::function<bool()>& cond, int timeout_ms) {
  auto end = SteadyClock::now() + milliseconds(timeout_ms);
  while (SteadyClock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return cond();
}

int ExitCode(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// True once the live workers are `count` and each holds at least one slot, all of them held.
bool SharedAmong(const std::string& db, size_t count) {
  auto live = ListLiveWorkers(db);
  if (!live.ok() || live->size() != count) return false;
  int sum = 0;
  for (const auto& w : *live) {
    if (w.slots_held < 1) return false;
    sum += w.slots_held;
  }
  return sum == kSlots;
}

TEST_CASE("worker processes share 4 download slots while two join and one leaves, never more") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  Board* board = NewBoard();
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) pids.push_back(Fork([&, i] { return SlotWorker(db, board, i); }));
  REQUIRE(WaitFor([&] { return board->ready[0] && board->ready[1]; }, 20000));
  std::this_thread::sleep_for(milliseconds(1500));
  const int64_t before_join = board->uses[0] + board->uses[1];
  // A third joins: it gets its share (4 over 3 workers: 2, 1, 1) within a few heartbeats.
  pids.push_back(Fork([&] { return SlotWorker(db, board, 2); }));
  REQUIRE(WaitFor([&] { return board->ready[2] == 1; }, 20000));
  CHECK(WaitFor([&] { return SharedAmong(db, 3); }, 10000));
  const int64_t third_then = board->uses[2];
  std::this_thread::sleep_for(milliseconds(1000));
  // The first leaves (its rows go back once its downloads ended), a fourth joins.
  board->quit[0] = 1;
  CHECK(ExitCode(pids[0]) == 0);
  CHECK(WaitFor([&] { return SharedAmong(db, 2); }, 10000));
  pids.push_back(Fork([&] { return SlotWorker(db, board, 3); }));
  REQUIRE(WaitFor([&] { return board->ready[3] == 1; }, 20000));
  CHECK(WaitFor([&] { return SharedAmong(db, 3); }, 10000));
  std::this_thread::sleep_for(milliseconds(1000));
  board->stop = 1;
  for (size_t i = 1; i < pids.size(); ++i) CHECK(ExitCode(pids[i]) == 0);
  for (int i = 0; i < 4; ++i) CHECK(board->failed[i].load() == 0);

  MESSAGE("uses " << board->uses[0].load() << " " << board->uses[1].load() << " "
                  << board->uses[2].load() << " " << board->uses[3].load()
                  << ", most in use at once " << board->max_in_use.load());
  CHECK(board->over == 0);
  CHECK(board->max_in_use <= kSlots);
  CHECK(board->max_in_use == kSlots);  // they did use all of them (the check can fail)
  CHECK(before_join > 30);
  CHECK(board->uses[2] > third_then);  // the newcomers really used their share
  CHECK(board->uses[3] > 5);
  CHECK(board->in_use == 0);
  // All gone: every row free, no live worker.
  CHECK(QueryInt(db, "SELECT count(*) FROM grin_slots WHERE worker_id IS NOT NULL") == 0);
  CHECK(QueryInt(db, "SELECT count(*) FROM workers WHERE ended_at IS NULL") == 0);
  ::munmap(board, sizeof(Board));
}

TEST_CASE("a SIGKILLed worker's download slots come back only after its lease") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  Board* board = NewBoard();
  const PgWorkersOptions o = Live();
  pid_t holder = Fork([&] {
    std::unique_ptr<PgWorkers> w;
    if (int rc = OpenIn(db, o, board, 0, &w)) return rc;
    for (;;) std::this_thread::sleep_for(milliseconds(100));  // holds all 4, heartbeating
  });
  REQUIRE(WaitFor([&] { return board->ready[0] == 1; }, 20000));
  auto other = OpenWorkers(db, o);
  // The live holder gives up half; past a lease time it still keeps the other half.
  REQUIRE(WaitFor([&] { return other->DownloadLimit() == kSlots / 2; }, 10000));
  std::this_thread::sleep_for(milliseconds(2500));
  CHECK(other->held() == kSlots / 2);
  CHECK(ListLiveWorkers(db).value().size() == 2);
  REQUIRE(::kill(holder, SIGKILL) == 0);
  auto killed = SteadyClock::now();
  CHECK(ExitCode(holder) == 128 + SIGKILL);
  double last_half = 0;  // the last time other still had only its half
  REQUIRE(WaitFor(
      [&] {
        if (other->DownloadLimit() == kSlots) return true;
        last_half = std::chrono::duration<double>(SteadyClock::now() - killed).count();
        return false;
      },
      10000));
  double waited = std::chrono::duration<double>(SteadyClock::now() - killed).count();
  CHECK(last_half >= 1.7);
  MESSAGE("slots back " << waited << " s after the kill");
  // Its lease ran 2 s past its last heartbeat (at most 0.2 s before the kill).
  CHECK(waited >= 1.7);
  CHECK(waited < 5);
  auto live = ListLiveWorkers(db);
  REQUIRE(live.ok());
  REQUIRE(live->size() == 1);
  CHECK((*live)[0].worker_id == other->worker_id());
  ::munmap(board, sizeof(Board));
}

TEST_CASE("a worker frozen past its lease loses its slots and cannot use them when it resumes") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  Board* board = NewBoard();
  const PgWorkersOptions o = Live();
  pid_t frozen = Fork([&] {
    std::unique_ptr<PgWorkers> w;
    if (int rc = OpenIn(db, o, board, 0, &w)) return rc;
    while (board->go.load() == 0) std::this_thread::sleep_for(milliseconds(1));
    // Resumed: the very first tries, before any heartbeat of ours could run.
    int got = 0;
    for (int i = 0; i < kSlots; ++i) got += w->TryAcquireDownload() ? 1 : 0;
    board->resumed_uses[0] = got;
    board->ready[1] = 1;
    for (int i = 0; i < got; ++i) w->ReleaseDownload();
    // Then it carries on as a worker again: it registers anew and uses its fair share.
    UseSlots(*w, board, 0, kSlots, 7);
    w.reset();
    return 0;
  });
  REQUIRE(WaitFor([&] { return board->ready[0] == 1; }, 20000));
  REQUIRE(::kill(frozen, SIGSTOP) == 0);
  auto other = OpenWorkers(db, o);
  REQUIRE(WaitFor([&] { return other->DownloadLimit() == kSlots; }, 10000));
  std::thread user([&] { UseSlots(*other, board, 1, kSlots, 3); });
  std::this_thread::sleep_for(milliseconds(500));
  board->go = 1;  // seen the moment it runs again
  REQUIRE(::kill(frozen, SIGCONT) == 0);
  REQUIRE(WaitFor([&] { return board->ready[1] == 1; }, 10000));
  CHECK(board->resumed_uses[0] == 0);  // nothing at once: it uses slots only once rejoined
  // It rejoins and gets a share (4 over 2: 2 each) without the total ever going past 4.
  CHECK(WaitFor([&] { return board->uses[0] > 20; }, 15000));
  board->stop = 1;
  user.join();
  CHECK(ExitCode(frozen) == 0);
  CHECK(board->failed[0] == 0);
  MESSAGE("uses " << board->uses[0].load() << " " << board->uses[1].load()
                  << ", most in use at once " << board->max_in_use.load());
  CHECK(board->over == 0);
  CHECK(board->max_in_use <= kSlots);
  CHECK(QueryInt(db, "SELECT count(*) FROM workers") == 3);  // frozen, other, frozen again
  ::munmap(board, sizeof(Board));
}

// Takes tokens at full speed from a bucket whose rate is the worker's share (the listener),
// until board->stop; counts them in board->tokens[idx].
int RateWorker(const std::string& db, Board* board, int idx, double rate) {
  std::mutex mu;
  double current = 0;
  auto now_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               SteadyClock::now().time_since_epoch())
        .count();
  };
  // Burst of one request: the bucket starts with one token.
  net::TokenBucket bucket(1e-9, 1.0, now_us());
  std::unique_ptr<PgWorkers> w;
  if (int rc = OpenIn(db, Live(rate), board, idx, &w)) return rc;
  w->SetRateListener([&](double r) {
    std::lock_guard<std::mutex> l(mu);
    current = r;
    bucket.SetRate(r > 0 ? r : 1e-9, now_us());  // 0 = none (a bucket's 0 means unlimited)
  });
  while (board->stop.load() == 0) {
    {
      std::lock_guard<std::mutex> l(mu);
      int64_t t = now_us();
      if (current > 0 && bucket.Available(t) >= 1) {
        bucket.Take(1, t);
        board->tokens[idx].fetch_add(1);
        continue;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  w->SetRateListener(nullptr);
  w.reset();
  return 0;
}

TEST_CASE("3 worker processes taking GRIN tokens at full speed stay within the run's rate") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = grin::testing::FreshDatabase();
  Board* board = NewBoard();
  constexpr double kRate = 40;
  auto start = SteadyClock::now();
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    pids.push_back(Fork([&, i] { return RateWorker(db, board, i, kRate); }));
    std::this_thread::sleep_for(milliseconds(700));  // they join one after the other
  }
  std::this_thread::sleep_for(milliseconds(3000));
  board->stop = 1;
  for (pid_t p : pids) CHECK(ExitCode(p) == 0);
  double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const int64_t t0 = board->tokens[0], t1 = board->tokens[1], t2 = board->tokens[2];
  const int64_t total = t0 + t1 + t2;
  MESSAGE("tokens " << t0 << " " << t1 << " " << t2 << " in " << seconds << " s at " << kRate
                    << "/s");
  for (int i = 0; i < 3; ++i) CHECK(board->failed[i].load() == 0);
  // At most the run's rate over the whole window plus one token of burst per worker.
  CHECK(total <= static_cast<int64_t>(kRate * seconds) + 3);
  // And not idle: the share was really used (the bound above is not met by doing nothing).
  CHECK(total >= static_cast<int64_t>(kRate * (seconds - 2.0) * 0.7));
  CHECK(t0 > 0);
  CHECK(t1 > 0);
  CHECK(t2 > 0);
  ::munmap(board, sizeof(Board));
}

TEST_CASE(
    "the rate share reaches each worker's transport: two at full speed stay within the rate") {
  PG_SKIP_WITHOUT_POSTGRES();
  // The wiring a sync uses: the worker's rate listener sets the GRIN host's request rate of its
  // transport (CurlTransport::SetHostRequestRate). Two workers, each with its own transport,
  // send requests one after another as fast as they are admitted to one HTTPS server.
  const std::string db = grin::testing::FreshDatabase();
  net::testing::NetEnv env;
  constexpr double kRate = 20;
  net::TransportOptions to = env.Options();
  to.default_host_limits.requests_per_second = kRate / kSlots;  // a one-slot bucket
  to.default_host_limits.burst_seconds = 0.2;                   // 1 request of burst
  to.default_host_limits.adaptive = false;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0};
  auto start = SteadyClock::now();
  auto worker = [&](int delay_ms) {
    std::this_thread::sleep_for(milliseconds(delay_ms));
    auto t = net::CurlTransport::Create(to);
    REQUIRE(t.ok());
    (*t)->SetHostRequestRate(env.host_key(), 0);  // nothing until the share is known
    auto w = OpenWorkers(db, Live(kRate));
    w->SetRateListener([&](double r) { (*t)->SetHostRequestRate(env.host_key(), r); });
    while (!stop.load()) {
      net::Request r;
      r.url = env.url("/small");
      auto f = (*t)->SubmitFuture(r);
      if (f.wait_for(std::chrono::seconds(1)) != std::future_status::ready) continue;
      if (f.get().ToStatus().ok()) ok.fetch_add(1);
    }
    w->SetRateListener(nullptr);
    (*t)->Shutdown();
  };
  std::thread a(worker, 0), b(worker, 1000);
  std::this_thread::sleep_for(milliseconds(4000));
  stop = true;
  a.join();
  b.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const auto sent = static_cast<int64_t>(env.server().requests());
  MESSAGE(sent << " requests in " << seconds << " s at " << kRate << "/s");
  // The run's rate over the window, plus one request of burst per transport.
  CHECK(sent <= static_cast<int64_t>(kRate * seconds) + 2);
  CHECK(sent >= static_cast<int64_t>(kRate * (seconds - 2) * 0.7));
  CHECK(ok.load() == sent);
}

}  // namespace
}  // namespace grin::storage
