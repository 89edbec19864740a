#pragma once
// PgStateStore: the StateStore port on PostgreSQL (engine/state_store.h for the contract,
// pg_state_sql.h for every statement, schema/postgres for the tables). Same state machine,
// same fencing as SqliteStateStore; what differs is that several processes, on several hosts,
// may share one run:
//
// Claims: FOR UPDATE SKIP LOCKED picks the rows, so concurrent claimers (threads or processes)
// never wait for each other and never lease the same job; a claim is one statement whatever
// max_items is.
//
// Leases expire by the database's clock. A claim leases a job until now() + lease_ttl (the
// database's now(); no host clock is ever read, so hosts with skewed clocks agree); the store's
// heartbeat thread pushes its own run's leases forward every heartbeat_interval. Every Claim()
// first takes back leases whose time ran out (ReclaimExpired: back to ready/retry, token bumped,
// event "reclaimed", the crash streak of SqliteStateStore's boot-id reclaim, dead "crash_loop"
// past max_recoveries). A lease is therefore never taken back from a live holder that heartbeats,
// and Open() takes nothing back (other processes' leases are not stale because we started).
// Fencing is by token alone, as in SQLite: a holder whose lease expired but was not yet taken
// back may still complete (nobody else holds the job); once taken back, its writes get kConflict
// and "job.stale_write" is logged.
//
// Writes: each call is one transaction on a connection from a small pool (pool_size), run again
// on a serialization failure or deadlock; an acknowledged write is committed. job_counts is kept
// in the same transaction, its rows updated in milestone order. Flush() has nothing to wait for.
// The hot path is one round trip per call: the reclaim check, a claim and a batch of completions
// (without book fields) are each one statement sent on its own (autocommit), and the rows every
// worker updates (job_counts, uploaded_per_second) are written at the end of that statement, so
// they stay locked only until its commit (postgres 0003).
//
// Errors: kUnavailable when the server cannot be reached, kPermissionDenied for a refused login
// or missing grants, kNoSpace when the server's disk is full; messages never hold the password.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/logger.h"
#include "engine/state_store.h"
#include "storage/postgres/pg_connection.h"

namespace grin::storage {

struct PgStateStoreOptions {
  Logger* logger = nullptr;                      // default: NullLogger
  int max_attempts = 5;                          // failures per stage before dead
  int64_t backoff_base_micros = 30'000'000;      // first retry within 30 s
  int64_t backoff_max_micros = 3'600'000'000;    // never wait more than 1 h
  int max_recoveries = 5;                        // expired leases in a row before dead
  int64_t lease_ttl_micros = 120'000'000;        // a lease lasts 2 min past its last heartbeat
  int64_t heartbeat_interval_micros = 30'000'000;  // 0: no heartbeat thread (tests)
  int pool_size = 4;                             // connections, at most
  int reclaim_batch = 1000;                      // expired leases taken back per Claim()
  // NOTIFY grin_jobs_ready when a write makes jobs claimable (WaitForWork). PostgreSQL
  // serialises the commits of notifying transactions; off, idle workers poll.
  bool notify = true;
  uint64_t seed = 0;                             // jitter seed; 0 = random
};

class PgStateStore final : public StateStore {
 public:
  // Connects (libpq connection string or postgresql:// URI), migrates the schema if needed,
  // records a new run. Errors as PgConnection::Connect and MigratePostgres.
  static Result<std::unique_ptr<PgStateStore>> Open(const std::string& conninfo,
                                                    const PgStateStoreOptions& options);
  ~PgStateStore() override;  // stops the heartbeat, records the run's end

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
  Status Await(const WorkItem& item, std::string_view reason,
               std::string_view detail_json) override;
  Result<int64_t> Wake(const std::vector<std::string>& barcodes) override;
  Status AppendEvent(std::string_view barcode, std::string_view stage, std::string_view outcome,
                     std::string_view detail_json) override;
  Result<StageCounts> Counts() override;
  Result<std::vector<FailureSummary>> Failures() override;
  Status Flush() override { return Status::Ok(); }
  Status SetScope(const std::vector<std::string>& barcodes) override;

  // Pushes every lease of this run to now() + lease_ttl. Returns how many. The heartbeat thread
  // calls it; callable directly (tests, or a caller that runs its own timer).
  Result<int64_t> Heartbeat();
  // Takes back up to reclaim_batch expired leases of any run (see above). Returns how many.
  Result<int64_t> ReclaimExpired();
  // The port's idle wait (engine/state_store.h). On a connection of its own that LISTENs to
  // grin_jobs_ready (which every write that makes jobs claimable NOTIFYs, whichever process
  // made it): after LISTEN, one statement (kWaitTimesSql) reads, by the database's clock, how
  // long until a job at `stages` becomes claimable by time: a retry's next_attempt_at, or the
  // expiry of a lease another run holds (a dead worker's, which nobody announces: its leases
  // lapse). It returns true at once if one is claimable now, else at the first notification,
  // at that time (plus 1 ms: a lease is taken back once strictly past), or when this store
  // failed a job for a retry; false at the timeout or when `cancelled` says so (asked every
  // 50 ms). One waiter at a time: concurrent callers queue (and still see `cancelled`).
  Result<bool> WaitForWork(const std::vector<Stage>& stages, int64_t timeout_micros,
                           const std::function<bool()>& cancelled) override;
  // Notifications only (no clock times, no stages): waits until another process (or this one)
  // made jobs claimable, or timeout_micros passed. True when woken. A notification sent before
  // the first wait of either form is not seen: call it after a Claim() came back empty, and
  // claim again when it returns, whatever it returns.
  Result<bool> WaitForWork(int64_t timeout_micros);

  // As SqliteStateStore::ReleaseForExit: every lease of this run given back, the run's end
  // recorded as forced, later Claim()s return nothing.
  Result<int64_t> ReleaseForExit();

 private:
  PgStateStore(std::string conninfo, std::string what, PgStateStoreOptions options);
  Status Start();
  // A connection from the pool, connected on demand; given back by Give().
  Result<std::unique_ptr<pg::PgConnection>> Take();
  void Give(std::unique_ptr<pg::PgConnection> c);
  // Runs fn inside one transaction, again (up to a few times) on a serialization failure or
  // deadlock; fn must set its outputs afresh each time.
  Status RunTx(const std::function<Status(pg::PgConnection&)>& fn);
  // As RunTx for fn that runs exactly one statement, without BEGIN/COMMIT (the statement is its
  // own transaction): one round trip instead of three.
  Status RunOne(const std::function<Status(pg::PgConnection&)>& fn);
  Status Run(const std::function<Status(pg::PgConnection&)>& fn, bool in_transaction);
  void HeartbeatLoop();
  // pg_notify inside the current transaction (delivered at commit), if opt_.notify.
  Status Notify(pg::PgConnection& c);
  Status InsertEvent(pg::PgConnection& c, std::string_view barcode, std::string_view stage,
                     std::string_view outcome, std::string_view detail_json);
  Status ApplyCounts(pg::PgConnection& c, const int64_t (&delta)[kStageCount]);
  Status UpdateBook(pg::PgConnection& c, const std::string& barcode, const BookFields& fields);
  Status StaleWrite(const WorkItem& item, const char* op, const char* what);

  std::string conninfo_;
  std::string what_;  // the database, password removed, for messages
  PgStateStoreOptions opt_;
  int64_t run_id_ = 0;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<pg::PgConnection>> idle_;  // guarded by pool_mu_
  int open_ = 0;                                         // guarded by pool_mu_

  std::mutex mu_;
  std::mt19937_64 rng_;        // guarded by mu_
  std::string scope_json_;     // guarded by mu_; "" = no scope
  bool exiting_ = false;       // guarded by mu_

  std::mutex listen_mu_;
  std::unique_ptr<pg::PgConnection> listener_;  // guarded by listen_mu_
  // Connects listener_ and LISTENs if it is not (again, after it broke). listen_mu_ held.
  Status ListenLocked();
  // Bumped when this store schedules a retry (no notification; a waiter reads the time anew).
  std::atomic<uint64_t> retry_scheduled_{0};

  std::mutex hb_mu_;
  std::condition_variable hb_cv_;
  bool hb_stop_ = false;  // guarded by hb_mu_
  std::thread heartbeat_;
};

}  // namespace grin::storage
