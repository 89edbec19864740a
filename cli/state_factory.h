#pragma once
// Where a run's job state lives, and opening it: the one place that picks the SQLite adapters
// (books.db in the run directory) or the PostgreSQL ones (the server run_config.json's "state"
// names; cli/run_config.h). Commands and the facade open the StateStore, the BookCatalog and the
// SyncReader of a run here, never a concrete adapter themselves.
//
// The run lock (storage/run_lock.h) stays host-local on both: the SQLite store takes it itself;
// for a PostgreSQL run OpenRunState takes the same lock file in the run directory
// (<run>/books.db.lock), so two writers never share one run directory. Processes on other hosts
// (their own run directories naming the same database) are not held off by it.
//
// PostgreSQL tuning from the environment: GRIN_JOBS_PG_LEASE_SECONDS (default 120 for jobs, 30
// for a worker's registration and GRIN slots) is how long a lease outlives its holder's last
// heartbeat (heartbeats every quarter of it): the time before a killed sync's books, and its
// share of GRIN's download slots, are taken back by the others.
//
// A grin-jobs built without libpq (GRIN_POSTGRES=OFF) refuses a PostgreSQL run with one line.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/run_config.h"
#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/book_catalog.h"
#include "engine/pipeline/shared_limits.h"
#include "engine/state_store.h"
#include "storage/run_lock.h"
#include "storage/sync_reader.h"

namespace grin::cli {

// Checks a state location given to `init --state`: a postgresql:// (or postgres://) URI that
// libpq can parse, with no password in it. kInvalidArgument, one line, naming the fix (a password
// goes in PGPASSFILE / ~/.pgpass or PGPASSWORD). The message never repeats the password.
// `shown_as` names the value in the message ("--state", or run_config.json's field).
Status CheckStateUri(const std::string& uri, const std::string& shown_as = "--state");

// The state location in messages: the books.db path, or the URI with any password removed.
std::string DescribeState(const std::string& run_dir, const RunConfig& config);

// `init --state URI`: connects, applies the PostgreSQL migrations and records a run (a row in
// runs, ended at once), so the database is ready before run_config.json names it. Errors: one
// line naming the database (redacted): kInvalidArgument (bad URI), kUnavailable (unreachable),
// kPermissionDenied (authentication), kFailedPrecondition (migrated by a newer grin-jobs).
// Returns the number of jobs the database already holds (another host's run directory may have
// created it: this one joins that run).
Result<int64_t> PreparePostgresState(const std::string& uri);

struct StateOptions {
  Logger* logger = nullptr;
  bool durable = false;                       // SQLite: synchronous=FULL
  int max_attempts = 5;
  int64_t backoff_base_micros = 30'000'000;
  int64_t backoff_max_micros = 3'600'000'000;
};

// A run's opened StateStore, with the run lock (released after the store closes).
struct RunState {
  std::unique_ptr<storage::RunLock> lock;   // PostgreSQL runs (the SQLite store holds its own)
  std::unique_ptr<StateStore> store;
  // The concrete store's ReleaseForExit (every lease of this run given back; later claims get
  // nothing): what an abort calls, on either dialect.
  std::function<Result<int64_t>()> release_for_exit;
  bool postgres = false;
  std::string db_path;                      // SQLite: <run>/books.db; PostgreSQL: ""
  ~RunState();
};

// Opens the run's state for writing (takes the run lock: kBusy if another process holds it).
// SQLite: the existing books.db (kNotFound if there is none). PostgreSQL: connects (errors as
// PreparePostgresState).
Result<std::unique_ptr<RunState>> OpenRunState(const std::string& run_dir,
                                               const RunConfig& config,
                                               const StateOptions& options);

// The run's BookCatalog. Takes no lock (the caller holds it). SQLite: the existing books.db.
Result<std::unique_ptr<BookCatalog>> OpenRunCatalog(const std::string& run_dir,
                                                    const RunConfig& config);

// The run's SyncReader (the read queries of sync and verify). Read-only, no lock.
Result<std::unique_ptr<storage::SyncReader>> OpenRunReader(const std::string& run_dir,
                                                           const RunConfig& config);

// GRIN's politeness limits for this sync process. A PostgreSQL run: this process registered as
// a worker of the run (storage/postgres/pg_workers.h; heartbeats until the result is destroyed,
// which deregisters it), sharing the run's download slots and request rate with every other
// sync on any host; the run's limits are set by its first worker (`download_slots`,
// `requests_per_second`, 0 = no limit) and taken as they are by later ones. A SQLite run:
// nullptr (one process; the configured limits apply as they are). Errors as OpenRunState.
// With `release_for_exit` (PostgreSQL): set to what a forced exit calls, while the result
// lives, to end the registration and give its slots back at once (PgWorkers::ReleaseForExit:
// the rows given back); left empty on a SQLite run.
Result<std::unique_ptr<pipeline::SharedLimits>> OpenSharedLimits(
    const RunConfig& config, int64_t run_id, int download_slots, double requests_per_second,
    Logger* logger, std::function<Result<int64_t>()>* release_for_exit = nullptr);

// A sync process registered on a PostgreSQL run (status), by the database's clock.
struct LiveWorker {
  std::string host;
  int64_t pid = 0;
  std::string started_at;      // ISO 8601 UTC
  double heartbeat_age_s = 0;  // since its last heartbeat
  int slots_held = 0;          // GRIN download slots it holds
};
// The live sync workers of the run whose state is at `location` (RunStateLocation): empty for a
// SQLite run (its one sync holds the run lock).
Result<std::vector<LiveWorker>> ListRunWorkers(const std::string& location);

// Where the run in `run_dir` keeps its state, for the read-only commands (`status`, `report`,
// `sql`, `export`, `doctor`; storage::OpenRunQueries opens either): its books.db path, or
// run_config.json's "state" URI. A run without run_config.json is taken as a SQLite run (the
// open then names what is missing).
Result<std::string> RunStateLocation(const std::string& run_dir);

}  // namespace grin::cli
