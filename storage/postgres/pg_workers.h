#pragma once
// PgWorkers: worker registration with heartbeats, and GRIN's politeness limits shared by the
// processes (on any hosts) of one PostgreSQL run (issue 21 item 3). Tables: schema/postgres/
// 0004_workers.sql. It is the pipeline's SharedLimits port (engine/pipeline/shared_limits.h).
//
// Registry: Open() records a worker (host, pid, the state store run it serves) whose lease, by
// the database's clock, its heartbeats push to now() + lease_ttl. A worker is live while it is
// not ended and its lease has not run out; one that stops heartbeating (killed, frozen, cut off
// from the database) drops out lease_ttl after its last heartbeat and what it held is free.
// A worker that finds its own registration lapsed registers again (a new worker id): its old
// rows were, or will be, taken by others.
//
// Download slots: the run has N = grin_limits.download_slots rows in grin_slots (created by the
// first worker from its options; later workers take the run's number). A worker may run as
// many downloads as rows it holds with an unexpired lease (renewed with its heartbeat). Each
// heartbeat computes the fair share: the live workers ordered by worker id, the first N mod W
// get ceil(N/W), the rest floor(N/W) (capped by max_local_slots). A worker over its share first
// lowers its local limit (new downloads are refused), waits until its downloads in use are
// within it, and only then gives the surplus rows back; a worker under its share claims free or
// expired rows (FOR UPDATE SKIP LOCKED, token bumped). Rows are exclusive in the database, and a
// worker uses a row only while it is free of doubt: TryAcquireDownload() refuses once the local
// lease deadline — the time the heartbeat transaction started, on this host's monotonic clock
// (CLOCK_BOOTTIME), plus lease_ttl minus a margin — has passed without a renewal, which is
// before the database can let anyone else claim the row (the row's expiry is that
// transaction's now() + lease_ttl, later still). So the downloads started by all workers
// together never exceed N, while workers join, leave, die or freeze.
//
// Request rate: a worker's rate is R × L / N, R the run's rate (grin_limits.requests_per_second),
// L its local download limit. Since the L of all workers sum to at most N at every instant (L
// never exceeds the rows held; it is lowered before rows are given back and raised only after
// rows were claimed), the rates sum to at most R at every instant, and the rate listener hears
// each change in that order. The requests of all workers over any T seconds are therefore at
// most R × T plus what their buckets held at the start (their bursts). A worker that holds no
// slot has rate 0 (it sends nothing to GRIN); the run's R = 0 (no limit) gives kUnlimitedRate
// to a worker holding a slot. The choice ties one unit of GRIN politeness to a row, so one
// protocol (rows, leases, the lower-before-release order) protects both limits.
//
// Limits, honestly: a download already running when the worker's lease lapses (the process was
// frozen, or could not reach the database for a lease time) is not stopped; it ends by itself
// (or by the transport's low-speed timeout). Until then GRIN may see that one download beyond N.
//
// Thread safety: all methods may be called from any thread. Threads: a heartbeat thread (DB
// calls) and a watchdog (drops the limit and the rate to 0 when the local lease deadline passes
// without a renewal, even while the heartbeat hangs on a dead connection).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/pipeline/shared_limits.h"
#include "storage/postgres/pg_connection.h"

namespace grin::storage {

struct PgWorkersOptions {
  Logger* logger = nullptr;          // default: NullLogger
  std::string limits_name = "grin";  // grin_limits row (one per GRIN account/run)
  // The run's limits, used when the run has none yet (the first worker); afterwards the run's.
  int download_slots = 4;
  double requests_per_second = 5;         // 0 = no limit
  int max_local_slots = 0;                // never hold more (this process's concurrency); 0: N
  int64_t run_id = 0;                     // the state store run this worker serves (status)
  std::string host;                       // "" = gethostname()
  int64_t lease_ttl_micros = 30'000'000;  // a worker and its rows last this past a heartbeat
  int64_t heartbeat_interval_micros = 5'000'000;  // 0: no threads (tests call Tick())
};

// A live worker, for `status`.
struct WorkerInfo {
  int64_t worker_id = 0;
  std::string host;
  int64_t pid = 0;
  int64_t run_id = 0;          // 0 = none
  std::string started_at;      // ISO 8601 UTC, the database's clock
  double heartbeat_age_s = 0;  // since its last heartbeat, by the database's clock
  int slots_held = 0;          // download slots with an unexpired lease
};

class PgWorkers final : public pipeline::SharedLimits {
 public:
  // Connects, migrates the schema if needed, creates the run's limits and slot rows if absent,
  // registers this worker and takes its first share (one Tick). Errors as PgConnection::Connect
  // and MigratePostgres; kInvalidArgument for download_slots < 1 or a negative rate.
  static Result<std::unique_ptr<PgWorkers>> Open(const std::string& conninfo,
                                                 const PgWorkersOptions& options);
  // Stops the threads, waits (up to a lease time) for downloads in use to end, gives every row
  // back and ends the registration (Deregister).
  ~PgWorkers() override;

  // Heartbeat and rebalance once (the heartbeat thread calls it every interval): renews the
  // registration and the rows still held, computes the share, gives back surplus rows once the
  // downloads in use fit, claims missing ones. Registers again if the registration lapsed.
  Status Tick();
  // Gives every row back and marks the worker ended (live workers no longer count it). The
  // local limit is 0 afterwards. Idempotent.
  Status Deregister();
  // Deregister for a process about to exit (a forced exit): does not wait for the downloads in
  // use (they end with the process) nor for the heartbeat thread (it may hang on a dead
  // server): the local limit drops to 0, then one transaction, on the heartbeat's connection if
  // it is idle or else on a new one, ends the registration and gives back every row this worker
  // holds, in use or not. No later heartbeat claims a row or registers again. Returns the rows
  // given back (0 if already deregistered). Until the process exits, a download still running
  // here is beyond the run's N: call it only just before exiting. A failure (the server does
  // not answer: it may block as long as libpq does) leaves the rows to their lease.
  Result<int64_t> ReleaseForExit();

  int64_t worker_id() const;
  int download_slots() const { return n_; }                 // the run's N
  double run_requests_per_second() const { return rate_; }  // the run's R
  int held() const;                                         // rows held (as last renewed)
  int in_use() const;                                       // downloads in use here

  // pipeline::SharedLimits
  bool TryAcquireDownload() override;
  void ReleaseDownload() override;
  int DownloadLimit() const override;
  double GrinRequestRate() const override;
  void SetRateListener(RateListener listener) override;

 private:
  struct Row {
    int64_t slot;
    int64_t token;
  };
  PgWorkers(std::string conninfo, std::string what, PgWorkersOptions options);
  Status Start();
  Result<pg::PgConnection*> Conn();  // conn_mu_ held; reconnects a broken connection
  Status Register(pg::PgConnection& c);
  // Sets the local limit (at most the rows held; call without mu_) and tells the listener if
  // the rate moved.
  void SetLimit(int limit);
  double RateFor(int limit) const;
  void HeartbeatLoop();
  void WatchdogLoop();
  static int64_t BootMicros();

  const std::string conninfo_;
  const std::string what_;
  PgWorkersOptions opt_;
  int n_ = 0;        // the run's download slots, fixed after Open
  double rate_ = 0;  // the run's requests/s, fixed after Open
  int cap_ = 0;      // at most this many rows held here

  std::mutex tick_mu_;  // one Tick (and Deregister) at a time
  std::mutex conn_mu_;
  std::unique_ptr<pg::PgConnection> conn_;  // guarded by conn_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;  // limit/deadline changes, stop
  int64_t worker_id_ = 0;       // guarded by mu_
  std::vector<Row> rows_;       // guarded by mu_; rows held
  int limit_ = 0;               // guarded by mu_; <= rows_.size()
  int in_use_ = 0;              // guarded by mu_
  int64_t deadline_us_ = 0;     // guarded by mu_; BootMicros() after which rows are void
  bool ended_ = false;          // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  std::mutex listener_mu_;      // serialises listener calls (in order of changes)
  RateListener listener_;       // guarded by listener_mu_
  double told_rate_ = -1;       // guarded by listener_mu_

  std::thread heartbeat_, watchdog_;
};

// The live workers of a run (not ended, lease not run out), oldest first, with the download
// slots each holds: what `status` shows. Times by the database's clock.
Result<std::vector<WorkerInfo>> ListLiveWorkers(pg::PgConnection& c,
                                                const std::string& limits_name = "grin");
Result<std::vector<WorkerInfo>> ListLiveWorkers(const std::string& conninfo,
                                                const std::string& limits_name = "grin");

}  // namespace grin::storage
