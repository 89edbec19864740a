#pragma once
// Run::Impl (include/grin_jobs/run.h) and the parts of the facade the CLI uses beyond the public
// headers: SyncHooks let `grin-jobs sync` add its terminal bar, its log file and its metrics
// server to the same sync a library host runs. Not installed.

#include <functional>
#include <string>

#include "cli/run_config.h"
#include "engine/base/logger.h"
#include "engine/base/metrics.h"
#include "engine/pipeline/progress.h"
#include "engine/pipeline/sync.h"
#include "grin_jobs/run.h"

namespace grin::storage {
class SyncReader;
}

namespace grin::jobs {

struct Run::Impl {
  std::string run_dir;
  std::string credentials_dir;
  cli::RunConfig config;
  ErrorOrigin origin = ErrorOrigin::kRun;
};

// What the CLI adds to a sync. Every member is optional.
struct SyncHooks {
  // Gets every log event instead of the Observer (the CLI's log file and console).
  grin::Logger* logger = nullptr;
  // Prometheus metrics for the transport, the pipeline and the stage counts; must outlive the
  // sync.
  Metrics* metrics = nullptr;
  // Called once the transport, GRIN client and object store are open, before any listing; an
  // error stops the sync (ErrorOrigin::kTransfer). The CLI starts its metrics server here.
  std::function<Status()> on_connected;
  // Called with the snapshot of every finished book instead of Observer::OnProgress.
  std::function<void(const pipeline::ProgressSnapshot&)> on_snapshot;
};

// Run::Sync with hooks.
Result<SyncReport> SyncWithHooks(Run::Impl& run, const SyncOptions& options, Observer* observer,
                                 Cancellation* cancel, const SyncHooks& hooks);

// Run::Verify with the CLI's logger (nullptr: none).
Result<VerifyReport> VerifyWithLogger(Run::Impl& run, const VerifyOptions& options,
                                      grin::Logger* logger);

// Run::Collect / Enrich / Request with the CLI's logger (its log file and console) instead of
// the Observer's OnLog (nullptr: the Observer's). Messages still go to the Observer.
Result<CollectReport> CollectWithLogger(Run::Impl& run, const CollectOptions& options,
                                        Observer* observer, grin::Logger* logger);
Result<EnrichReport> EnrichWithLogger(Run::Impl& run, const EnrichOptions& options,
                                      Observer* observer, grin::Logger* logger);
Result<RequestReport> RequestWithLogger(Run::Impl& run, const RequestOptions& options,
                                        Observer* observer, grin::Logger* logger);

// `grin-jobs init` (and Run::Create): under the run lock, a run at run_dir. If run_dir holds no
// run yet: creates the directory, an empty database and run_config.json from `config` (run_name
// is the directory's name; storage defaults to local under <run_dir>/storage); returns true. If
// it holds one: upgrades its database schema, leaves its settings alone; returns false (an
// existing run's empty books.db is refused: it lost its data). kBusy if the lock is held;
// kPermissionDenied if the directory cannot be created; the database's errors as they are.
// With config.state (a postgresql:// URI, cli/state_factory.h) a new run's state is that
// database: it is migrated and checked before anything is written (a failure leaves no run
// directory and no run_config.json), and no books.db is made. An existing PostgreSQL run has its
// database's schema brought up to date.
Result<bool> InitRun(const std::string& run_dir, cli::RunConfig config);

// SyncOptions::job_view (and VerifyOptions::job_view) over `reader`, which must outlive it.
decltype(pipeline::SyncOptions::job_view) JobViewOf(storage::SyncReader* reader);

// Forwards engine log events to an Observer (OnLog), honouring its log_level().
class ObserverLogger final : public grin::Logger {
 public:
  explicit ObserverLogger(Observer* observer) : observer_(observer) {}
  bool Enabled(grin::LogLevel level) const override;
  void Log(grin::LogLevel level, std::string_view event, const grin::LogFields& fields) override;

 private:
  Observer* observer_;
};

}  // namespace grin::jobs
