// SqliteStateStore::WaitForWork: the port's idle wait (engine/state_store.h) on a SQLite run,
// which one process holds at a time (the run lock), so every write that makes work claimable is
// this store's own: those bump a generation (WorkChanged) that wakes the waiter, and the clock
// makes a job claimable only at a retry's next_attempt_at (leases of earlier runs were taken
// back when the store opened). Kept apart from sqlite_state_store.cc.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "storage/sqlite_state_store.h"
#include "storage/sqlite_status.h"

namespace grin::storage {
namespace {

// The earliest next_attempt_at of a claimable-when-due job at milestones ?1..?3 (a claim's own
// filter, so the index jobs_claim serves it), within the scope ?4 (JSON array) if not NULL.
constexpr const char* kEarliestAttemptSql = R"sql(
SELECT min(next_attempt_at) FROM jobs
WHERE stage IN (?1, ?2, ?3) AND status IN ('ready', 'retry') AND stage <> 'uploaded'
  AND (?4 IS NULL OR barcode IN (SELECT value FROM json_each(?4))))sql";

}  // namespace

void SqliteStateStore::WorkChanged() {
  {
    std::lock_guard<std::mutex> l(wait_mu_);
    ++work_generation_;
  }
  wait_cv_.notify_all();
}

Result<bool> SqliteStateStore::WaitForWork(const std::vector<Stage>& stages,
                                           int64_t timeout_micros,
                                           const std::function<bool()>& cancelled) {
  using Steady = std::chrono::steady_clock;
  const auto deadline =
      Steady::now() + std::chrono::microseconds(std::max<int64_t>(0, timeout_micros));
  if (stages.empty()) return false;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> l(wait_mu_);
    generation = work_generation_;  // before the read: a write after it wakes the wait
  }
  bool has_due = false;
  int64_t due_at = 0;  // opt_.clock micros
  {
    std::lock_guard<std::mutex> l(rmu_);
    try {
      SQLite::Statement q(*rdb_, kEarliestAttemptSql);
      for (int i = 0; i < 3; ++i) {
        q.bind(i + 1, std::string(StageName(stages[std::min<size_t>(i, stages.size() - 1)])));
      }
      if (scope_json_.empty()) {
        q.bind(4);
      } else {
        q.bind(4, scope_json_);
      }
      if (q.executeStep() && !q.getColumn(0).isNull()) {
        has_due = true;
        due_at = q.getColumn(0).getInt64();
      }
    } catch (const SQLite::Exception& e) {
      return FromSqliteException(e, path_);
    }
  }
  const int64_t due = due_at - opt_.clock->NowMicros();
  if (has_due && due <= 0) return true;  // claimable now
  const auto clock_due =
      has_due ? Steady::now() + std::chrono::microseconds(due) : Steady::time_point::max();
  for (;;) {
    if (cancelled && cancelled()) return false;
    const auto now = Steady::now();
    if (now >= clock_due) return true;
    if (now >= deadline) return false;
    const auto until = std::min({clock_due, deadline, now + std::chrono::milliseconds(50)});
    std::unique_lock<std::mutex> l(wait_mu_);
    if (wait_cv_.wait_until(l, until, [&] { return work_generation_ != generation; })) {
      return true;
    }
  }
}

}  // namespace grin::storage
