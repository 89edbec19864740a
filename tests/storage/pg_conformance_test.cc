// The StateStore conformance suite (state_store_conformance.h) on the PostgreSQL store, against
// a throwaway cluster (tests/support/pg_cluster.h) shared by the checks, one database each.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/postgres/pg_state_store.h"
#include "tests/storage/state_store_conformance.h"
#include "tests/support/pg_cluster.h"

namespace grin::testing {
namespace {

// Leases last this long by the database's clock; the factory's stores do not heartbeat, so a
// lost lease is one whose time ran out (what a holder cut off from the database sees). Long
// enough that no other check outlives a lease on a loaded machine.
constexpr int64_t kLeaseTtlMicros = 5'000'000;

class PgFactory final : public StateStoreFactory {
 public:
  explicit PgFactory(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  Result<std::unique_ptr<StateStore>> Open(const ConformanceOptions& o) override {
    storage::PgStateStoreOptions po;
    po.max_attempts = o.max_attempts;
    po.backoff_base_micros = o.backoff_base_micros;
    po.backoff_max_micros = o.backoff_max_micros;
    po.lease_ttl_micros = kLeaseTtlMicros;
    po.heartbeat_interval_micros = 0;
    po.seed = 42;
    auto s = storage::PgStateStore::Open(conninfo_, po);
    if (!s.ok()) return s.status();
    return std::unique_ptr<StateStore>(std::move(s).value());
  }
  bool shared() const override { return true; }
  // The holder stays open (its late writes must be refused); its leases run out.
  void LoseLeases(std::unique_ptr<StateStore>&) override {
    std::this_thread::sleep_for(std::chrono::microseconds(kLeaseTtlMicros + 500'000));
  }

 private:
  std::string conninfo_;
};

Result<std::unique_ptr<StateStoreFactory>> MakePg() {
  // One cluster for the whole binary (started by the first check, stopped at exit).
  static std::mutex mu;
  static std::unique_ptr<PgCluster> cluster;
  static Status failed;
  static std::atomic<int> next_db{0};
  std::lock_guard<std::mutex> l(mu);
  if (!failed.ok()) return failed;
  if (!cluster) {
    auto started = PgCluster::Start();
    if (!started.ok()) {
      failed = started.status();
      return failed;
    }
    cluster = std::move(started).value();
  }
  auto db = cluster->CreateDatabase("conformance_" + std::to_string(next_db++));
  if (!db.ok()) return db.status();
  return std::unique_ptr<StateStoreFactory>(new PgFactory(*db));
}

GRIN_STATE_STORE_CONFORMANCE("postgresql", MakePg)

}  // namespace
}  // namespace grin::testing
