// grin::jobs::Run (include/grin_jobs/run.h): opening and creating runs (and `grin-jobs init`'s
// InitRun), and the GRIN metadata operations. Sync is in sync_session.cc.
#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <filesystem>

#include "cli/commands/grin_stack.h"
#include "cli/facade/run_impl.h"
#include "cli/object_store_factory.h"
#include "cli/state_factory.h"
#include "engine/grin/workflows.h"
#include "storage/database.h"
#include "storage/run_lock.h"
#include "storage/sync_reader.h"

namespace grin::jobs {

namespace fs = std::filesystem;

Run::Run(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Run::~Run() = default;

const std::string& Run::run_dir() const { return impl_->run_dir; }
std::string Run::db_path() const { return cli::DbPath(impl_->run_dir); }
std::string Run::state_location() const {
  return cli::DescribeState(impl_->run_dir, impl_->config);
}
ErrorOrigin Run::error_origin() const { return impl_->origin; }

Result<std::unique_ptr<Run>> Run::Open(const OpenOptions& options) {
  if (options.run_dir.empty()) return Status::InvalidArgument("no run directory given");
  auto impl = std::make_unique<Impl>();
  impl->run_dir = options.run_dir;
  impl->credentials_dir = options.credentials_dir;
  GRIN_ASSIGN_OR_RETURN(impl->config, cli::LoadRunConfig(options.run_dir));
  return std::unique_ptr<Run>(new Run(std::move(impl)));
}

Result<std::unique_ptr<Run>> Run::Create(const CreateOptions& options) {
  if (options.run_dir.empty()) return Status::InvalidArgument("no run directory given");
  if (options.library_directory.empty()) {
    return Status::InvalidArgument("no library_directory given (GRIN's name for the library)");
  }
  cli::RunConfig config;
  config.library_directory = options.library_directory;
  if (!options.grin_base_url.empty()) config.grin_base_url = options.grin_base_url;
  if (!options.grin_token_url.empty()) config.grin_token_url = options.grin_token_url;
  config.credentials_dir = options.credentials_dir;
  config.ca_file = options.ca_file;
  if (!options.state.empty()) {
    // As `init --state`: a postgresql:// URI libpq parses, without a password (never stored).
    GRIN_RETURN_IF_ERROR(cli::CheckStateUri(options.state, "CreateOptions::state"));
    config.state = options.state;
  }
  const auto& keys = cli::StorageConfigKeys();
  for (const auto& [key, value] : options.storage) {
    if (key != "type" && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return Status::InvalidArgument("storage key '" + key + "': unknown");
    }
    if (key == "type") {
      if (value != "local" && value != "s3" && value != "r2" && value != "minio") {
        return Status::InvalidArgument("storage type '" + value + "': use local, s3, r2 or minio");
      }
    } else {
      GRIN_RETURN_IF_ERROR(cli::CheckStorageValue(key, value));
    }
    if (key == "path_style" && (value == "true" || value == "false")) {
      config.storage[key] = value == "true";
    } else {
      config.storage[key] = value;
    }
  }
  const Status exists(StatusCode::kAlreadyExists, options.run_dir + ": already holds a run");
  if (fs::exists(cli::ConfigPath(options.run_dir))) return exists;
  GRIN_ASSIGN_OR_RETURN(bool created, InitRun(options.run_dir, std::move(config)));
  if (!created) return exists;  // made by another process meanwhile
  return Open({options.run_dir, options.credentials_dir});
}

namespace {

// A new run's run_config.json: named after its directory, local storage in <run>/storage unless
// the config says otherwise. Returns true (created).
Result<bool> WriteNewRunConfig(const std::string& run_dir, cli::RunConfig config) {
  config.run_name = fs::path(run_dir).filename().string();
  if (!config.storage.contains("type")) config.storage["type"] = "local";
  if (config.storage["type"] == "local" && !config.storage.contains("base_path")) {
    config.storage["base_path"] = (fs::path(run_dir) / "storage").string();
  }
  GRIN_RETURN_IF_ERROR(cli::SaveRunConfig(run_dir, config));
  return true;
}

}  // namespace

Result<bool> InitRun(const std::string& run_dir, cli::RunConfig config) {
  const bool postgres = cli::IsPostgresRun(config) && !fs::exists(cli::ConfigPath(run_dir));
  if (postgres) {
    // The database first: a URI that is bad, a server that cannot be reached or a login that
    // is refused leaves nothing behind (no run directory, no run_config.json naming a database
    // that was never set up).
    GRIN_RETURN_IF_ERROR(cli::PreparePostgresState(config.state).status());
  }
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    return Status::PermissionDenied(run_dir + ": cannot create the run directory (" +
                                    ec.message() + ")");
  }
  // The run lock: init never races a running sync.
  GRIN_ASSIGN_OR_RETURN(storage::RunLock lock, storage::RunLock::Acquire(cli::DbPath(run_dir)));
  const bool existed = fs::exists(cli::ConfigPath(run_dir));
  if (existed) {
    // An existing PostgreSQL run: its database's schema is brought up to date.
    GRIN_ASSIGN_OR_RETURN(cli::RunConfig now, cli::LoadRunConfig(run_dir));
    if (cli::IsPostgresRun(now)) {
      GRIN_RETURN_IF_ERROR(cli::PreparePostgresState(now.state).status());
      return false;
    }
  } else if (postgres) {
    return WriteNewRunConfig(run_dir, std::move(config));
  } else if (cli::IsPostgresRun(config)) {
    return Status::Internal(run_dir + ": run_config.json vanished during init; run it again");
  }
  // A new run may turn an empty books.db into a database; an existing run's empty books.db is
  // refused (it lost its data: restore a backup, or remove it to start the run's state anew).
  storage::DatabaseOptions dbo;
  dbo.init_empty = !existed;
  GRIN_ASSIGN_OR_RETURN(auto db, storage::OpenDatabase(cli::DbPath(run_dir), dbo));
  (void)db;
  if (existed) return false;
  return WriteNewRunConfig(run_dir, std::move(config));
}

namespace {

// The GRIN stack of a metadata operation; *origin says which side a failure is on.
Result<std::unique_ptr<cli::GrinStack>> OpenStack(Run::Impl& run, double rate, int connections,
                                                  Logger* logger) {
  cli::GrinStackOptions o;
  o.requests_per_second = rate;
  o.max_connections = connections;
  o.logger = logger;
  o.credentials_dir = run.credentials_dir;
  bool grin_side = false;
  auto stack = cli::OpenGrinStack(run.run_dir, o, &grin_side);
  run.origin = grin_side ? ErrorOrigin::kTransfer : ErrorOrigin::kRun;
  return stack;
}

Status CheckRate(Run::Impl& run, double rate) {
  run.origin = ErrorOrigin::kTransfer;
  return rate > 0 ? Status::Ok() : Status::InvalidArgument("--rate must be positive");
}

}  // namespace

Result<CollectReport> Run::Collect(const CollectOptions& options, Observer* observer) {
  return CollectWithLogger(*impl_, options, observer, nullptr);
}

Result<EnrichReport> Run::Enrich(const EnrichOptions& options, Observer* observer) {
  return EnrichWithLogger(*impl_, options, observer, nullptr);
}

Result<RequestReport> Run::Request(const RequestOptions& options, Observer* observer) {
  return RequestWithLogger(*impl_, options, observer, nullptr);
}

Result<CollectReport> CollectWithLogger(Run::Impl& run, const CollectOptions& options,
                                        Observer* observer, grin::Logger* logger) {
  GRIN_RETURN_IF_ERROR(CheckRate(run, options.requests_per_second));
  ObserverLogger observer_logger(observer);
  if (logger == nullptr) logger = &observer_logger;
  GRIN_ASSIGN_OR_RETURN(auto stack, OpenStack(run, options.requests_per_second, 5, logger));
  run.origin = ErrorOrigin::kTransfer;
  GRIN_RETURN_IF_ERROR(stack->client->Probe());
  grin_client::CollectOptions o;
  o.refresh = options.refresh;
  o.restart = options.restart;
  o.page_size = options.page_size;
  o.max_pages = options.max_pages;
  auto s = grin_client::CollectAllBooks(*stack->client, *stack->catalog, o);
  if (!s.ok()) {
    // The pages written so far stay, with the position: the same call resumes.
    if (observer != nullptr) {
      observer->OnMessage(MessageKind::kError, "stopped; rerun the same command to resume");
    }
    return s.status();
  }
  CollectReport r;
  r.resumed = s->resumed;
  r.finished = s->finished;
  r.pages = s->pages;
  r.rows = s->rows;
  r.inserted = s->counts.inserted;
  r.updated = s->counts.updated;
  r.unchanged = s->counts.unchanged;
  r.skipped_rows = s->skipped_rows;
  return r;
}

Result<EnrichReport> EnrichWithLogger(Run::Impl& run, const EnrichOptions& options,
                                      Observer* observer, grin::Logger* logger) {
  GRIN_RETURN_IF_ERROR(CheckRate(run, options.requests_per_second));
  if (!options.refresh_before.empty() && !options.refresh) {
    return Status::InvalidArgument("enrich: refresh_before needs refresh");
  }
  if (options.concurrency < 1 || options.limit < 0) {
    return Status::InvalidArgument("enrich: concurrency must be at least 1 and limit not negative");
  }
  ObserverLogger observer_logger(observer);
  if (logger == nullptr) logger = &observer_logger;
  GRIN_ASSIGN_OR_RETURN(auto stack,
                        OpenStack(run, options.requests_per_second, options.concurrency, logger));
  run.origin = ErrorOrigin::kTransfer;
  grin_client::EnrichOptions o;
  o.limit = options.limit;
  o.refresh = options.refresh;
  o.refresh_before = options.refresh_before;
  o.concurrency = options.concurrency;
  GRIN_ASSIGN_OR_RETURN(auto s,
                        grin_client::EnrichBooks(*stack->client, *stack->catalog, o, logger));
  EnrichReport r;
  r.asked = s.asked;
  r.found = s.found;
  r.missing = s.missing;
  r.requests = s.requests;
  r.failed_barcodes = s.failed_barcodes;
  r.failed_groups = s.failed_groups;
  r.refresh_asked = s.refresh_asked;
  r.refreshed = s.refreshed;
  r.missing_asked = s.missing_asked;
  r.missing_found = s.missing_found;
  r.still_missing = s.still_missing;
  r.convert_failures = s.convert_failures;
  r.skipped_rows = s.skipped_rows;
  if (auto m = stack->catalog->MissingEnrichment(); m.ok() && m->books > 0) {
    r.missing_waiting = m->books;
    r.next_ask_at = m->next_ask_at;
  }
  return r;
}

Result<RequestReport> RequestWithLogger(Run::Impl& run, const RequestOptions& options,
                                        Observer* observer, grin::Logger* logger) {
  GRIN_RETURN_IF_ERROR(CheckRate(run, options.requests_per_second));
  if (options.batch < 1 || options.limit < 1) {
    return Status::InvalidArgument("request: batch and limit must be at least 1");
  }
  ObserverLogger observer_logger(observer);
  if (logger == nullptr) logger = &observer_logger;
  GRIN_ASSIGN_OR_RETURN(auto stack, OpenStack(run, options.requests_per_second, 5, logger));
  run.origin = ErrorOrigin::kTransfer;
  grin_client::RequestOptions o;
  o.limit = options.limit;
  o.batch = static_cast<size_t>(options.batch);
  o.dry_run = options.dry_run;
  o.retry_refused = options.retry_refused;
  GRIN_ASSIGN_OR_RETURN(auto s,
                        grin_client::RequestConversions(*stack->client, *stack->catalog, o));
  RequestReport r;
  r.queue_capacity = grin_client::kQueueCap;
  r.in_process_before = s.in_process_before;
  r.free_before = s.free_before;
  r.candidates = s.candidates;
  r.outcomes = s.outcomes;
  r.queue_full = s.queue_full;
  r.free_after = s.free_after;
  return r;
}

Result<SyncReport> Run::Sync(const SyncOptions& options, Observer* observer,
                             Cancellation* cancel) {
  return SyncWithHooks(*impl_, options, observer, cancel, SyncHooks{});
}

decltype(pipeline::SyncOptions::job_view) JobViewOf(storage::SyncReader* reader) {
  return [reader](const std::string& barcode)
      -> Result<std::optional<pipeline::SyncOptions::JobView>> {
    GRIN_ASSIGN_OR_RETURN(auto row, reader->Job(barcode));
    if (!row) return std::optional<pipeline::SyncOptions::JobView>();
    pipeline::SyncOptions::JobView v;
    if (!ParseStage(row->stage, &v.stage)) return Status::Internal("unknown stage for " + barcode);
    v.dead = row->dead;
    v.checkpoint = row->checkpoint;
    return std::optional<pipeline::SyncOptions::JobView>(v);
  };
}

}  // namespace grin::jobs
