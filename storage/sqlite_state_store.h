#pragma once
// SqliteStateStore: the StateStore port on one SQLite file (see engine/state_store.h for the
// contract, schema/README.md for the tables).
//
// Write path: every mutating call becomes an operation on a queue served by one writer thread
// that owns the only write connection. The writer drains the queue and runs everything it found
// in one BEGIN IMMEDIATE transaction (group commit), then completes the callers' futures — after
// the commit, so an acknowledged write is durable to the chosen synchronous level. If a batch
// fails at the SQLite level it is rolled back and re-run one operation at a time, so one bad
// operation cannot fail its neighbours.
//
// Read path: Counts()/Failures() use a separate read-only connection (WAL: never blocks the
// writer).
//
// Checkpoints: a checkpointer thread with its own connection copies the WAL into the database
// (PASSIVE about once a second, TRUNCATE when the WAL passes wal_limit_bytes), so the WAL stays
// bounded and neither the checkpoint's page copying nor its fsyncs run on the writer thread; a
// PASSIVE checkpoint never blocks the writer, which restarts the WAL from its start once a
// checkpoint has caught up. On close the writer truncates the WAL after the checkpointer stopped.
//
// Counting: the writer keeps job_counts (jobs per milestone, migration 0004) in the same
// transaction as the job rows it moves, so Counts() is O(1) in the number of jobs (plus the
// leased and failed jobs, read from small partial indexes).
//
// Durability (--durable, synchronous=FULL): a batch made only of claims commits without an fsync
// of its own. A claim that a power cut loses leaves its jobs claimable, which is what reclaiming
// the leases of a dead run would do anyway; the next fsynced commit (any completion, failure,
// checkpoint) makes every earlier WAL frame durable too, so no acknowledged completion depends on
// a lost claim.
//
// Open() takes the per-run lock, records a new run (boot id), and takes back at once every lease
// held by earlier runs: the item returns to ready (or retry, keeping its failure) and its token
// is bumped so a stale holder's write is refused. Its crash streak (jobs.recoveries) counts the
// crashes in a row it was in flight for with no progress of the run in between: one more when
// the crashed run completed nothing after claiming it, back to 1 when it did, unchanged for a
// run that gave its leases back on a forced exit (ReleaseForExit); any completion of the item
// resets it. An item whose streak passes max_recoveries is made dead ("crash_loop") so a poison
// item cannot crash-loop the process.
//
// Disk full: a write that fails because the disk (or max_pages) is full reports kNoSpace to its
// caller, from the writer thread like any other failure; the batch is rolled back.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>

#include "engine/base/clock.h"
#include "engine/base/logger.h"
#include "engine/state_store.h"
#include "storage/run_lock.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace grin::storage {

struct StateStoreOptions {
  bool durable = false;                          // synchronous=FULL
  bool create_if_missing = true;                 // false: kNotFound when there is no database
  Clock* clock = nullptr;                        // default: SystemClock
  Logger* logger = nullptr;                      // default: NullLogger
  int max_attempts = 5;                          // failures per stage before dead
  int64_t backoff_base_micros = 30'000'000;      // first retry within 30 s
  int64_t backoff_max_micros = 3'600'000'000;    // never wait more than 1 h
  int max_recoveries = 5;                        // crashes in a row (see above) before dead
  int64_t max_pages = 0;                         // cap the database at this many pages (0 = none)
  size_t max_batch_ops = 4096;                   // operations per group commit
  int64_t checkpoint_interval_micros = 1'000'000;
  int64_t wal_limit_bytes = 64LL << 20;
  uint64_t seed = 0;                             // jitter seed; 0 = random
};

class SqliteStateStore final : public StateStore {
 public:
  // Opens (creating and migrating if needed) the database at db_path for writing. kBusy if
  // another process holds the run; other codes as OpenDatabase.
  static Result<std::unique_ptr<SqliteStateStore>> Open(const std::string& db_path,
                                                        const StateStoreOptions& options);
  ~SqliteStateStore() override;  // flushes, records the run's end, stops the writer

  int64_t run_id() const override { return run_id_; }
  Result<int64_t> Enqueue(const std::vector<std::string>& barcodes) override;
  Result<std::vector<WorkItem>> Claim(Stage from, int max_items) override;
  Result<std::vector<Status>> CompleteMany(std::vector<Completion> completions) override;
  Status Fail(const WorkItem& item, ErrorClass error_class, std::string_view reason,
              std::string_view detail_json) override;
  Status Release(const WorkItem& item) override;
  Status SaveCheckpoint(const WorkItem& item, std::string_view json) override;
  Result<int64_t> Requeue(const RequeueFilter& filter) override;
  Result<int64_t> Reset(const ResetRequest& request) override;
  // Await and Wake: sqlite_state_store_await.cc.
  Status Await(const WorkItem& item, std::string_view reason,
               std::string_view detail_json) override;
  Result<int64_t> Wake(const std::vector<std::string>& barcodes) override;
  Status AppendEvent(std::string_view barcode, std::string_view stage, std::string_view outcome,
                     std::string_view detail_json) override;
  Result<StageCounts> Counts() override;
  Result<std::vector<FailureSummary>> Failures() override;
  Status Flush() override;
  // Scope: the barcodes live in a temporary table of the writer's connection (claims) and as a
  // JSON array for Counts() on the read connection.
  Status SetScope(const std::vector<std::string>& barcodes) override;
  // The port's idle wait (sqlite_state_store_wait.cc): the run is this process's alone, so new
  // claimable work is this store's own writes (enqueue, completion into a milestone that is not
  // the last, release, requeue, reset, wake, a retry scheduled), which wake it at once; the
  // clock makes a job claimable at its next_attempt_at (the store's Clock), read once per call
  // from the read connection. No lease of another run can lapse (Open() took them back).
  Result<bool> WaitForWork(const std::vector<Stage>& stages, int64_t timeout_micros,
                           const std::function<bool()>& cancelled) override;

  // Forced exit (e.g. a second Ctrl-C): gives back every lease this run holds without counting
  // an attempt or a crash (tokens bumped: a worker still running is fenced out), records the
  // run's end as forced, and makes every later Claim() return nothing. Returns how many leases
  // were given back. Meant to be called right before the process exits.
  Result<int64_t> ReleaseForExit();

  // How many leases Open() took back from earlier runs.
  int64_t reclaimed_at_open() const { return reclaimed_at_open_; }
  // Transactions committed by the writer so far (for tests and benchmarks).
  int64_t commits() const;

 private:
  // kRelaxed: the op may commit without an fsync of its own under --durable (claims).
  enum class Sync { kFull, kRelaxed };
  struct Op {
    std::function<void(SQLite::Database&)> exec;  // runs inside the batch transaction
    std::function<void(const Status&)> done;      // after commit (OK) or rollback (error)
    Sync sync = Sync::kFull;
  };

  SqliteStateStore(std::string path, StateStoreOptions options, RunLock lock);
  Status Start();
  // Runs exec on the writer thread inside a group-commit transaction and waits for the commit.
  Status Submit(std::function<void(SQLite::Database&)> exec, Sync sync = Sync::kFull);
  void WriterLoop();
  void RunBatch(std::deque<Op>& batch);
  void CheckpointerLoop();
  // One checkpoint on db (PASSIVE, or TRUNCATE), then TRUNCATE if the WAL is over the limit.
  void Checkpoint(SQLite::Database& db, bool truncate);
  void SetRelaxedSync(bool relaxed);
  // job_counts bookkeeping: n jobs moved between milestones (-1 = none), applied before commit.
  void CountMove(int from_stage, int to_stage, int64_t n);
  void ApplyCountDeltas(SQLite::Database& db);
  void InsertEvent(SQLite::Database& db, std::string_view barcode, std::string_view stage,
                   std::string_view outcome, std::string_view detail_json);
  // The events of the completions whose fence held (held[k]), multi-row.
  void InsertCompletionEvents(SQLite::Database& db, const std::vector<Completion>& completions,
                              const std::vector<char>& held);
  SQLite::Statement& Stmt(SQLite::Database& db, int id, const char* sql);
  void UpdateBook(SQLite::Database& db, const std::string& barcode, const BookFields& fields,
                  int64_t now);

  std::string path_;
  StateStoreOptions opt_;
  RunLock lock_;
  int64_t run_id_ = 0;
  int64_t reclaimed_at_open_ = 0;

  std::unique_ptr<SQLite::Database> wdb_;  // writer thread only (after Start)
  std::unique_ptr<SQLite::Database> cdb_;  // checkpointer thread only
  std::unique_ptr<SQLite::Database> rdb_;  // guarded by rmu_
  std::mutex rmu_;
  std::vector<std::unique_ptr<SQLite::Statement>> stmts_;  // writer thread only
  // UpdateBook's statements by their SQL (one per column set); writer thread only.
  static constexpr size_t kMaxBookUpdateStatements = 64;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> book_updates_;
  std::mt19937_64 rng_;                                    // writer thread only
  int64_t stage_delta_[kStageCount] = {0, 0, 0, 0};        // writer thread only
  bool relaxed_sync_ = false;                              // writer thread only
  bool scoped_ = false;                                    // writer thread only
  bool exiting_ = false;                                   // writer thread only
  std::string scope_json_;                                 // guarded by rmu_; "" = no scope
  int64_t event_at_ms_ = -1;                               // writer thread only
  std::string event_at_;                                   // writer thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;
  bool stop_ = false;
  int64_t commits_ = 0;
  std::thread writer_;

  // Idle waiting: WorkChanged() bumps the generation after a write made work claimable.
  void WorkChanged();
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  uint64_t work_generation_ = 0;  // guarded by wait_mu_

  std::mutex cmu_;
  std::condition_variable ccv_;
  bool cstop_ = false;  // guarded by cmu_
  std::thread checkpointer_;
};

}  // namespace grin::storage
