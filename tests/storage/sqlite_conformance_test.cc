// The StateStore conformance suite (state_store_conformance.h) on the SQLite store.
#include <memory>

#include "storage/sqlite_state_store.h"
#include "tests/storage/state_store_conformance.h"
#include "tests/support/temp_dir.h"

namespace grin::testing {
namespace {

// One SQLite file per factory; one store open at a time (the per-run lock), and a lost lease is
// a run that ended: the next Open() takes its leases back.
class SqliteFactory final : public StateStoreFactory {
 public:
  Result<std::unique_ptr<StateStore>> Open(const ConformanceOptions& o) override {
    storage::StateStoreOptions so;
    so.max_attempts = o.max_attempts;
    so.backoff_base_micros = o.backoff_base_micros;
    so.backoff_max_micros = o.backoff_max_micros;
    so.seed = 42;  // deterministic jitter
    auto s = storage::SqliteStateStore::Open(dir_.file("books.db"), so);
    if (!s.ok()) return s.status();
    return std::unique_ptr<StateStore>(std::move(s).value());
  }
  bool shared() const override { return false; }
  void LoseLeases(std::unique_ptr<StateStore>& holder) override { holder.reset(); }

 private:
  TempDir dir_;
};

Result<std::unique_ptr<StateStoreFactory>> MakeSqlite() {
  return std::unique_ptr<StateStoreFactory>(new SqliteFactory());
}

GRIN_STATE_STORE_CONFORMANCE("sqlite", MakeSqlite)

}  // namespace
}  // namespace grin::testing
