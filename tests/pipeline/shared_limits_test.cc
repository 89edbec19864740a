// The engine side of GRIN limits shared by several processes (engine/pipeline/shared_limits.h):
// the sync pipeline's download slots taken through a SharedLimits (its slot table, as the
// workers use it), and the transport's per-host request rate changed while requests flow
// (CurlTransport::SetHostRequestRate, against the loopback HTTPS server of tests/net).
#include "engine/pipeline/shared_limits.h"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "engine/pipeline/sync_impl.h"
#include "tests/net/net_fixture.h"

namespace grin::pipeline {

struct SyncSlotsTestPeer {
  using Impl = SyncPipeline::Impl;
};

namespace {

using Impl = SyncSlotsTestPeer::Impl;
using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// A share that moves (as PgWorkers' does): a settable limit, counting what it handed out.
class MovingLimits final : public SharedLimits {
 public:
  explicit MovingLimits(int limit) : limit_(limit) {}
  bool TryAcquireDownload() override {
    std::lock_guard<std::mutex> l(mu_);
    if (in_use_ >= limit_) return false;
    ++in_use_;
    return true;
  }
  void ReleaseDownload() override {
    std::lock_guard<std::mutex> l(mu_);
    --in_use_;
  }
  int DownloadLimit() const override {
    std::lock_guard<std::mutex> l(mu_);
    return limit_;
  }
  double GrinRequestRate() const override { return 1; }
  void SetRateListener(RateListener) override {}
  void Set(int limit) {
    std::lock_guard<std::mutex> l(mu_);
    limit_ = limit;
  }
  int in_use() const {
    std::lock_guard<std::mutex> l(mu_);
    return in_use_;
  }

 private:
  mutable std::mutex mu_;
  int limit_;
  int in_use_ = 0;
};

TEST_CASE("LocalLimits: the configured slots and rate, unchanged") {
  LocalLimits l(2, 5);
  CHECK(l.DownloadLimit() == 2);
  CHECK(l.TryAcquireDownload());
  CHECK(l.TryAcquireDownload());
  CHECK_FALSE(l.TryAcquireDownload());
  l.ReleaseDownload();
  CHECK(l.TryAcquireDownload());
  double heard = -1;
  l.SetRateListener([&](double r) { heard = r; });
  CHECK(heard == 5);
  CHECK(LocalLimits(1, 0).GrinRequestRate() == SharedLimits::kUnlimitedRate);
}

TEST_CASE("sync's download slots are taken through the shared limits and never exceed them") {
  Impl m;
  m.opt.download_concurrency = 4;
  CHECK(m.Limit(Impl::kDownload) == 4);  // no shared limits: the configured number

  MovingLimits shared(2);
  m.opt.shared_limits = &shared;
  CHECK(m.Limit(Impl::kDownload) == 2);
  std::vector<Impl::Slot> held;
  for (int i = 0; i < 4; ++i) {
    if (auto s = m.TakeSlot(Impl::kDownload)) held.push_back(std::move(s));
  }
  CHECK(held.size() == 2);
  CHECK(shared.in_use() == 2);
  CHECK(m.slots[Impl::kDownload] == 2);

  // Lowered while both are in use: nothing is taken away, nothing new is given.
  shared.Set(1);
  CHECK_FALSE(m.TakeSlot(Impl::kDownload));
  held.pop_back();  // a download ends
  CHECK(shared.in_use() == 1);
  CHECK_FALSE(m.TakeSlot(Impl::kDownload));
  // A book moving on to processing gives its download slot back to the share too.
  held.back().MoveTo(Impl::kProcess);
  CHECK(shared.in_use() == 0);
  CHECK(m.slots[Impl::kDownload] == 0);
  CHECK(m.slots[Impl::kProcess] == 1);
  held.clear();
  CHECK(m.slots[Impl::kProcess] == 0);
  CHECK(shared.in_use() == 0);

  // Raised past the process's own concurrency: the smaller wins.
  shared.Set(10);
  m.opt.download_concurrency = 3;
  CHECK(m.Limit(Impl::kDownload) == 3);
  for (int i = 0; i < 5; ++i) {
    if (auto s = m.TakeSlot(Impl::kDownload)) held.push_back(std::move(s));
  }
  CHECK(held.size() == 3);
  CHECK(shared.in_use() == 3);
  // Moved slots keep the count right: a moved-from Slot gives nothing back twice.
  Impl::Slot moved = std::move(held[0]);
  held[0] = Impl::Slot();
  CHECK(shared.in_use() == 3);
  moved.Release();
  moved.Release();
  CHECK(shared.in_use() == 2);
  held.clear();
  CHECK(shared.in_use() == 0);
  CHECK(m.slots[Impl::kDownload] == 0);
  // Other stages never touch the share.
  auto check = m.TakeSlot(Impl::kCheck);
  CHECK(check);
  CHECK(shared.in_use() == 0);
}

TEST_CASE("a host's request rate changes while requests flow: 0 admits none, no fresh burst") {
  net::testing::NetEnv env;
  net::TransportOptions o = env.Options();
  o.default_host_limits.requests_per_second = 20;
  o.default_host_limits.burst_seconds = 0.1;  // 2 requests of burst
  o.default_host_limits.adaptive = false;
  auto t = net::CurlTransport::Create(o);
  REQUIRE(t.ok());
  auto get = [&] {
    net::Request r;
    r.url = env.url("/small");
    return (*t)->SubmitFuture(r);
  };

  // Paused before the host was seen: nothing goes out.
  (*t)->SetHostRequestRate(env.host_key(), 0);
  std::vector<std::future<net::Response>> fs;
  for (int i = 0; i < 3; ++i) fs.push_back(get());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CHECK(env.server().requests() == 0u);
  // Raised: the bucket was emptied by the pause, so 3 requests at 10/s take about 0.3 s.
  auto start = SteadyClock::now();
  (*t)->SetHostRequestRate(env.host_key(), 10);
  for (auto& f : fs) REQUIRE(f.get().ToStatus().ok());
  double took = SecondsSince(start);
  CHECK(took >= 0.2);
  CHECK(took < 3);
  fs.clear();

  // Paused while requests wait: those queued stay queued.
  (*t)->SetHostRequestRate(env.host_key(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t before = env.server().requests();
  for (int i = 0; i < 2; ++i) fs.push_back(get());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(env.server().requests() == before);

  // No limit: 20 at once.
  start = SteadyClock::now();
  (*t)->SetHostRequestRate(env.host_key(), SharedLimits::kUnlimitedRate);
  for (int i = 0; i < 18; ++i) fs.push_back(get());
  for (auto& f : fs) REQUIRE(f.get().ToStatus().ok());
  CHECK(SecondsSince(start) < 1.5);
  fs.clear();

  // Lowered to 5/s: 7 requests take at least (7 - 2) / 5 s whatever the bucket held.
  (*t)->SetHostRequestRate(env.host_key(), 5);
  start = SteadyClock::now();
  for (int i = 0; i < 7; ++i) fs.push_back(get());
  for (auto& f : fs) REQUIRE(f.get().ToStatus().ok());
  took = SecondsSince(start);
  CHECK(took >= 0.9);
  CHECK(took < 5);
}

}  // namespace
}  // namespace grin::pipeline
