#pragma once
// grin::jobs::Run: one run of grin-jobs (a directory with run_config.json, the lock, staging/,
// backups/, and its job state: books.db, or a PostgreSQL database that run_config.json names)
// and the operations the CLI's commands are built on. This header and its
// siblings are the library's whole public surface:
//
//   auto run = grin::jobs::Run::Open({.run_dir = "output/harvard"});
//   if (!run.ok()) ...
//   grin::jobs::SyncOptions o;  o.queues = {"converted"};  o.limit = 100;
//   MyObserver obs;  grin::jobs::Cancellation cancel;   // cancel.Drain() from another thread
//   grin::jobs::Result<grin::jobs::SyncReport> r = (*run)->Sync(o, &obs, &cancel);
//
// Every call takes the run's lock for its duration (kBusy if another process holds it), opens
// what it needs (state store, one transport for GRIN and storage, GRIN client, object store)
// and closes it before returning. Errors are values: kInvalidArgument for bad options,
// kNotFound / kDataLoss / kFailedPrecondition for a run that cannot be used, and for a failure
// that is not a book's (GRIN refusing access, the passphrase, TLS trust, storage, a full disk)
// kFailedPrecondition with one line naming the cause and the fix — see error_origin().
//
// Thread safety: one operation at a time per Run; the Observer and Cancellation may be used
// from other threads as their headers say.

#include <memory>
#include <string>

#include "grin_jobs/cancel.h"
#include "grin_jobs/observer.h"
#include "grin_jobs/options.h"
#include "grin_jobs/reports.h"
#include "grin_jobs/status.h"

namespace grin::jobs {

// Which side a failed call's Status is about, for hosts (the CLI) that map it to an exit code.
enum class ErrorOrigin {
  kRun,       // the run: its directory, run_config.json, its database or lock
  kTransfer,  // GRIN, storage, credentials, the passphrase, a full disk, bad sync options
};

class Run {
 public:
  // Creates a run (run_config.json and an empty database). kInvalidArgument without
  // library_directory, with an unknown storage key, or with a `state` that is not a
  // postgresql:// URI or carries a password; kAlreadyExists if run_dir holds a run. With a
  // PostgreSQL `state`, the database is reached, migrated and checked before anything is written
  // (a failure leaves no run directory): kUnavailable (the server cannot be reached),
  // kPermissionDenied (the login is refused), kFailedPrecondition (migrated by a newer
  // grin-jobs, or this library was built without PostgreSQL). A database that already holds
  // the run of another run directory is joined, not emptied.
  static Result<std::unique_ptr<Run>> Create(const CreateOptions& options);
  // Opens an existing run: reads run_config.json (kNotFound if absent; kInvalidArgument naming
  // a field of the wrong type). Takes no lock and touches no database or network.
  static Result<std::unique_ptr<Run>> Open(const OpenOptions& options);

  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const std::string& run_dir() const;
  // Where the run's job state lives, for messages and for other tools: the books.db path
  // (SQLite), or the run's postgresql:// URI with any password removed. Never a secret.
  std::string state_location() const;
  // <run_dir>/books.db: the SQLite state's file. On a PostgreSQL run there is no such file
  // (state_location() names the database); the path still names the run's lock file
  // (<run_dir>/books.db.lock), which every operation takes on either.
  std::string db_path() const;

  // GRIN's book list (_all_books) into the run's books table; resumable.
  Result<CollectReport> Collect(const CollectOptions& options, Observer* observer = nullptr);
  // GRIN's per-book metadata (_barcode_search) for books not enriched yet.
  Result<EnrichReport> Enrich(const EnrichOptions& options, Observer* observer = nullptr);
  // Asks GRIN to convert books (_process) within its queue.
  Result<RequestReport> Request(const RequestOptions& options, Observer* observer = nullptr);
  // Copies the selected books from GRIN into storage (see options.h), exactly resumable, then
  // tears down (CSV export, database backup, process_summary.json, report.html, uploaded to the
  // meta bucket). A run that ran returns a SyncReport even when books failed or it was
  // interrupted (SyncReport::done() says whether everything selected is done); an error Status
  // means it could not run, or was cancelled before any book started (kCancelled).
  Result<SyncReport> Sync(const SyncOptions& options, Observer* observer = nullptr,
                          Cancellation* cancel = nullptr);

  // Checks the run's storage against its state (one listing per bucket; with `deep`, every raw
  // archive downloaded), removes litter, and with `requeue` sends mismatching books back to
  // work. Mismatches are in the report, not an error.
  Result<VerifyReport> Verify(const VerifyOptions& options, Observer* observer = nullptr);

  // The origin of the last failed call's Status.
  ErrorOrigin error_origin() const;

  // The implementation, for the grin-jobs CLI's adapters (cli/facade/run_impl.h).
  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  explicit Run(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace grin::jobs
