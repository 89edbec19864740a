#include "cli/state_factory.h"

#include <cstdlib>
#include <filesystem>

#include "storage/open_run_queries.h"
#include "storage/sqlite_book_catalog.h"
#include "storage/sqlite_state_store.h"

#ifdef GRIN_HAVE_POSTGRES
#include <libpq-fe.h>

#include "storage/postgres/pg_book_catalog.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/postgres/pg_sync_reader.h"
#include "storage/postgres/pg_workers.h"
#endif

namespace grin::cli {
namespace {

// How run_config.json's state is named in messages.
[[maybe_unused]] const char* const kConfigState = "run_config.json state";

#ifdef GRIN_HAVE_POSTGRES
// libpq waits for an unreachable host as long as TCP does (minutes) unless told otherwise; a
// URI's own connect_timeout, or the operator's PGCONNECT_TIMEOUT, wins.
void DefaultConnectTimeout() { ::setenv("PGCONNECT_TIMEOUT", "10", /*overwrite=*/0); }

// GRIN_JOBS_PG_LEASE_SECONDS (state_factory.h), else the store's (or registry's) default.
template <typename Options>
void ApplyLeaseEnv(Options* o) {
  const char* v = std::getenv("GRIN_JOBS_PG_LEASE_SECONDS");
  if (v == nullptr || *v == '\0') return;
  char* end = nullptr;
  long s = std::strtol(v, &end, 10);
  if (end == nullptr || *end != '\0' || s < 2 || s > 86400) return;
  o->lease_ttl_micros = static_cast<int64_t>(s) * 1'000'000;
  o->heartbeat_interval_micros = o->lease_ttl_micros / 4;
}
#endif

[[maybe_unused]] Status NoPostgres() {
  return Status::FailedPrecondition(
      "this run keeps its state on PostgreSQL, but this grin-jobs was built without PostgreSQL "
      "support (rebuild with libpq-dev installed, -DGRIN_POSTGRES=ON)");
}

}  // namespace

Status CheckStateUri(const std::string& uri, const std::string& shown_as) {
  if (!storage::IsPostgresLocation(uri)) {
    return Status::InvalidArgument(shown_as + ": give a postgresql://USER@HOST:PORT/DATABASE URI "
                                   "(leave " + shown_as + " out for a SQLite run)");
  }
#ifdef GRIN_HAVE_POSTGRES
  char* error = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &error);
  if (opts == nullptr) {
    std::string why = error != nullptr ? error : "not a valid URI";
    if (error != nullptr) PQfreemem(error);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Status::InvalidArgument(shown_as + " " + storage::pg::RedactConninfo(uri) + ": " +
                                   why);
  }
  bool password = false;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') {
      password = true;
    }
  }
  PQconninfoFree(opts);
  if (password) {
    return Status::InvalidArgument(
        shown_as + ": the URI carries a password, which would be stored in run_config.json; "
        "give the URI without it and put the password in ~/.pgpass (or the file PGPASSFILE "
        "names, mode 0600) or PGPASSWORD");
  }
  return Status::Ok();
#else
  return NoPostgres();
#endif
}

std::string DescribeState(const std::string& run_dir, const RunConfig& config) {
  if (!IsPostgresRun(config)) return DbPath(run_dir);
#ifdef GRIN_HAVE_POSTGRES
  return storage::pg::RedactConninfo(config.state);
#else
  return "a PostgreSQL database";
#endif
}

Result<int64_t> PreparePostgresState(const std::string& uri) {
  GRIN_RETURN_IF_ERROR(CheckStateUri(uri));
#ifdef GRIN_HAVE_POSTGRES
  DefaultConnectTimeout();
  storage::PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;  // opened and closed at once
  o.notify = false;
  GRIN_ASSIGN_OR_RETURN(auto store, storage::PgStateStore::Open(uri, o));
  GRIN_ASSIGN_OR_RETURN(StageCounts counts, store->Counts());
  return counts.total;
#else
  return NoPostgres();
#endif
}

RunState::~RunState() {
  release_for_exit = nullptr;
  store.reset();  // before the lock
  lock.reset();
}

Result<std::unique_ptr<RunState>> OpenRunState(const std::string& run_dir,
                                               const RunConfig& config,
                                               const StateOptions& options) {
  auto out = std::make_unique<RunState>();
  if (!IsPostgresRun(config)) {
    storage::StateStoreOptions so;
    so.durable = options.durable;
    so.create_if_missing = false;
    so.logger = options.logger;
    so.max_attempts = options.max_attempts;
    so.backoff_base_micros = options.backoff_base_micros;
    so.backoff_max_micros = options.backoff_max_micros;
    out->db_path = DbPath(run_dir);
    GRIN_ASSIGN_OR_RETURN(auto s, storage::SqliteStateStore::Open(out->db_path, so));
    storage::SqliteStateStore* raw = s.get();
    out->release_for_exit = [raw] { return raw->ReleaseForExit(); };
    out->store = std::move(s);
    return out;
  }
#ifdef GRIN_HAVE_POSTGRES
  GRIN_RETURN_IF_ERROR(CheckStateUri(config.state, kConfigState));
  GRIN_ASSIGN_OR_RETURN(storage::RunLock lock, storage::RunLock::Acquire(DbPath(run_dir)));
  out->lock = std::make_unique<storage::RunLock>(std::move(lock));
  DefaultConnectTimeout();
  storage::PgStateStoreOptions o;
  o.logger = options.logger;
  o.max_attempts = options.max_attempts;
  o.backoff_base_micros = options.backoff_base_micros;
  o.backoff_max_micros = options.backoff_max_micros;
  ApplyLeaseEnv(&o);
  GRIN_ASSIGN_OR_RETURN(auto s, storage::PgStateStore::Open(config.state, o));
  storage::PgStateStore* raw = s.get();
  out->release_for_exit = [raw] { return raw->ReleaseForExit(); };
  out->store = std::move(s);
  out->postgres = true;
  return out;
#else
  return NoPostgres();
#endif
}

Result<std::unique_ptr<BookCatalog>> OpenRunCatalog(const std::string& run_dir,
                                                    const RunConfig& config) {
  if (!IsPostgresRun(config)) {
    GRIN_ASSIGN_OR_RETURN(auto c, storage::SqliteBookCatalog::Open(DbPath(run_dir), nullptr,
                                                                   false));
    return std::unique_ptr<BookCatalog>(std::move(c));
  }
#ifdef GRIN_HAVE_POSTGRES
  GRIN_RETURN_IF_ERROR(CheckStateUri(config.state, kConfigState));
  DefaultConnectTimeout();
  GRIN_ASSIGN_OR_RETURN(auto c, storage::PgBookCatalog::Open(config.state));
  return std::unique_ptr<BookCatalog>(std::move(c));
#else
  return NoPostgres();
#endif
}

Result<std::unique_ptr<storage::SyncReader>> OpenRunReader(const std::string& run_dir,
                                                           const RunConfig& config) {
  if (!IsPostgresRun(config)) return storage::OpenSqliteSyncReader(DbPath(run_dir));
#ifdef GRIN_HAVE_POSTGRES
  GRIN_RETURN_IF_ERROR(CheckStateUri(config.state, kConfigState));
  DefaultConnectTimeout();
  GRIN_ASSIGN_OR_RETURN(auto r, storage::PgSyncReader::Open(config.state));
  return std::unique_ptr<storage::SyncReader>(std::move(r));
#else
  return NoPostgres();
#endif
}

Result<std::unique_ptr<pipeline::SharedLimits>> OpenSharedLimits(
    const RunConfig& config, int64_t run_id, int download_slots, double requests_per_second,
    Logger* logger, std::function<Result<int64_t>()>* release_for_exit) {
  if (!IsPostgresRun(config)) return std::unique_ptr<pipeline::SharedLimits>();
#ifdef GRIN_HAVE_POSTGRES
  DefaultConnectTimeout();
  storage::PgWorkersOptions o;
  o.logger = logger;
  o.download_slots = download_slots;
  o.requests_per_second = requests_per_second;
  o.max_local_slots = download_slots;
  o.run_id = run_id;
  // A worker and its download slots last as long as a job's lease past their last heartbeat.
  ApplyLeaseEnv(&o);
  GRIN_ASSIGN_OR_RETURN(auto w, storage::PgWorkers::Open(config.state, o));
  if (release_for_exit != nullptr) {
    storage::PgWorkers* raw = w.get();
    *release_for_exit = [raw] { return raw->ReleaseForExit(); };
  }
  return std::unique_ptr<pipeline::SharedLimits>(std::move(w));
#else
  (void)run_id, (void)download_slots, (void)requests_per_second, (void)logger;
  (void)release_for_exit;
  return NoPostgres();
#endif
}

Result<std::vector<LiveWorker>> ListRunWorkers(const std::string& location) {
  std::vector<LiveWorker> out;
  if (!storage::IsPostgresLocation(location)) return out;
#ifdef GRIN_HAVE_POSTGRES
  DefaultConnectTimeout();
  GRIN_ASSIGN_OR_RETURN(auto workers, storage::ListLiveWorkers(location));
  for (const auto& w : workers) {
    out.push_back({w.host, w.pid, w.started_at, w.heartbeat_age_s, w.slots_held});
  }
  return out;
#else
  return NoPostgres();
#endif
}

Result<std::string> RunStateLocation(const std::string& run_dir) {
  if (!std::filesystem::exists(ConfigPath(run_dir))) return DbPath(run_dir);
  GRIN_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(run_dir));
  if (!IsPostgresRun(config)) return DbPath(run_dir);
  DefaultConnectTimeout();
  return config.state;
}

}  // namespace grin::cli
