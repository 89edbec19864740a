// Run::Sync: what `grin-jobs sync` did in one function, as the library's sync. Selects books
// (queues, barcodes), enqueues them as jobs, wakes books GRIN has converted since, runs the
// pipeline (engine/pipeline/sync.h) with exact resume, then tears down (cli/facade/teardown.h).
// Every line an operator should read goes to the Observer as a message; the CLI prints them.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands/grin_stack.h"
#include "cli/commands/sync_plan.h"
#include "cli/credentials_search.h"
#include "cli/facade/run_impl.h"
#include "cli/facade/teardown.h"
#include "cli/state_factory.h"
#include "engine/archive/passphrase.h"
#include "engine/base/format.h"
#include "engine/net/transport_metrics.h"
#include "engine/pipeline/circuit_breaker.h"
#include "engine/pipeline/sync.h"
#include "engine/pipeline/sync_metrics.h"
#include "storage/books_export.h"
#include "storage/sync_queries.h"
#include "storage/sync_reader.h"

namespace grin::jobs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// `s` reworded as the one line of a systemic failure (circuit_breaker.h) under
// kFailedPrecondition (the cause and the fix); `s` itself when it is not systemic.
Status SystemicOr(const Status& s, pipeline::FailureSource source, const std::string& bucket) {
  auto f = pipeline::ClassifyFailure(s, source, bucket, "", -1);
  if (f.kind == pipeline::SystemicKind::kNone) return s;
  std::string cause = f.cause;
  const std::string tail = "; no book was failed";  // nothing ran yet
  if (cause.size() > tail.size() &&
      cause.compare(cause.size() - tail.size(), tail.size(), tail) == 0) {
    cause.resize(cause.size() - tail.size());
  }
  return Status::FailedPrecondition(cause);
}

json StatsJson(const pipeline::SyncStats& s) {
  auto tally = [](const pipeline::StageTally& t) {
    return json{{"completed", t.completed}, {"skipped", t.skipped}, {"failed", t.failed},
                {"reasons", t.reasons}};
  };
  return json{{"books_to_do", s.total},
              {"books_done", s.done},
              {"books_uploaded", s.uploaded},
              {"books_synced", s.synced},
              {"sync_skipped_etag_match", s.skipped_etag},
              {"books_rebuilt_outputs", s.rebuilt},
              {"litter_removed", s.litter_removed},
              {"conversions_requested_during_sync", s.conversion_requested},
              {"books_now_awaiting_conversion", s.awaiting_conversion},
              {"conversion_requests_stopped", s.conversion_requests_stopped},
              {"books_dead", s.dead},
              {"retries_scheduled", s.retried},
              {"bytes_downloaded", s.bytes_downloaded},
              {"bytes_uploaded", s.bytes_uploaded},
              {"elapsed_s", s.elapsed_s},
              {"interrupted", s.interrupted},
              {"fatal", s.fatal},
              {"books_held_back", s.held_back},
              {"cpu_s", s.cpu_s},
              {"stages", {{"check", tally(s.check)},
                          {"download", tally(s.download)},
                          {"process", tally(s.process)}}}};
}

StageCounts Tally(const pipeline::StageTally& t) {
  return StageCounts{t.completed, t.skipped, t.failed, t.reasons};
}

// The summary lines `grin-jobs sync` prints after the pipeline.
std::string SummaryText(const pipeline::SyncStats& s, const storage::DeadJobs& dead) {
  std::ostringstream out;
  out << "Sync " << (s.interrupted ? "interrupted" : !s.fatal.empty() ? "stopped" : "finished")
      << " after " << FormatDuration(s.elapsed_s) << ": " << s.uploaded
      << " books stored or verified (" << s.synced << " transferred, " << s.skipped_etag
      << " unchanged), " << s.conversion_requested << " conversions requested, "
      << dead.awaiting << " awaiting conversion, " << dead.failed << " failed for good, "
      << s.retried << " retries scheduled";
  if (s.held_back > 0) out << ", " << s.held_back << " held back unchanged";
  out << ".\n";
  if (s.conversion_requests_stopped) {
    out << "  GRIN's conversion queue is full (429): conversion requests stopped for this run; "
           "books not requested wait for the next run.\n";
  }
  auto line = [&](const char* name, const pipeline::StageTally& t) {
    out << "  " << name << ": " << t.completed << " completed, " << t.skipped << " skipped, "
        << t.failed << " failed";
    if (!t.reasons.empty()) {
      out << " (";
      bool first = true;
      for (const auto& [r, n] : t.reasons) {
        out << (first ? "" : ", ") << r << ": " << n;
        first = false;
      }
      out << ")";
    }
    out << "\n";
  };
  line("check", s.check);
  line("download", s.download);
  line("process", s.process);
  if (s.rebuilt > 0 || s.litter_removed > 0) {
    out << "  outputs: " << s.rebuilt << " stored books had missing OCR/MARC rebuilt from storage, "
        << s.litter_removed << " leftovers of interrupted runs removed\n";
  }
  return out.str();
}

// Messages, events and the failure's origin of one sync.
class Session {
 public:
  Session(Run::Impl& run, Observer* observer) : run_(run), observer_(observer) {}
  // Without a trailing newline: the observer gets lines; a multi-line text goes as one message.
  void Info(const std::string& text) { Message(MessageKind::kInfo, text); }
  void Warn(const std::string& text) { Message(MessageKind::kWarning, text); }
  void Error(const std::string& text) { Message(MessageKind::kError, text); }
  void Event(EventKind kind) {
    if (observer_ != nullptr) observer_->OnEvent(kind);
  }
  // A failure about the run (its config, database, lock).
  Status RunError(Status s) {
    run_.origin = ErrorOrigin::kRun;
    return s;
  }
  // A failure elsewhere (GRIN, storage, credentials, passphrase, options).
  Status TransferError(Status s) {
    run_.origin = ErrorOrigin::kTransfer;
    return s;
  }
  // The run database failed: a full disk is a transfer-side failure with the cause and the
  // space to free; anything else is the run's.
  Status DbError(const Status& s, const std::string& db_path) {
    if (s.code() != StatusCode::kNoSpace) return RunError(s);
    auto f = pipeline::ClassifyFailure(s, pipeline::FailureSource::kStateStore, "", db_path,
                                       64 << 20);
    return TransferError(Status(StatusCode::kNoSpace, f.cause));
  }

 private:
  void Message(MessageKind kind, const std::string& text) {
    if (observer_ != nullptr) observer_->OnMessage(kind, text);
  }
  Run::Impl& run_;
  Observer* observer_;
};

// Gives the leases of the books in flight back once `cancel` asks to abort (a thread of its
// own, so the pipeline needs no knowledge of it), and on a PostgreSQL run ends this process's
// worker registration with its GRIN download slots, so the next sync has them at once. The
// thread sleeps until the Cancellation wakes it (any request, or this watcher ending), so an
// Abort() is acted on at once. An Abort() that comes as the sync ends (the pipeline stops on it
// too) is handled when the watcher goes: an Abort() always gives back what it can, says what
// it could not (a warning), and then sends EventKind::kAborted, exactly once.
class AbortWatcher {
 public:
  // `release` gives every lease of the run's store back (RunState::release_for_exit: SQLite or
  // PostgreSQL); `release_worker` (may be empty: a SQLite run) ends the worker registration
  // and gives its slots back (cli::OpenSharedLimits).
  AbortWatcher(Cancellation* cancel, std::function<Result<int64_t>()> release,
               std::function<Result<int64_t>()> release_worker, Session* session)
      : cancel_(cancel),
        release_(std::move(release)),
        release_worker_(std::move(release_worker)),
        session_(session) {
    if (cancel_ == nullptr) return;
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "grin-abort");  // as `top -H` and /proc show it
      for (;;) {
        const uint32_t seen = cancel_->wakes();  // before the checks: no wake-up is missed
        if (cancel_->aborting()) {
          GiveBack();
          return;
        }
        if (stop_.load()) return;
        cancel_->WaitForWake(seen);
      }
    });
  }
  ~AbortWatcher() {
    if (cancel_ == nullptr) return;
    stop_ = true;
    cancel_->Wake();
    thread_.join();
    if (cancel_->aborting()) GiveBack();
  }

 private:
  void GiveBack() {
    if (given_back_.exchange(true)) return;
    if (auto jobs = release_(); !jobs.ok()) {
      session_->Warn("forced exit: could not give back the books in flight (" +
                     jobs.status().message() + "); they are taken back when their lease runs "
                     "out");
    }
    if (release_worker_) {
      if (auto slots = release_worker_(); !slots.ok()) {
        session_->Warn("forced exit: could not end this sync's worker registration (" +
                       slots.status().message() + "); its GRIN download slots are free again "
                       "when its lease runs out (GRIN_JOBS_PG_LEASE_SECONDS, default 30 s)");
      }
    }
    session_->Event(EventKind::kAborted);
  }

  Cancellation* cancel_;
  std::function<Result<int64_t>()> release_;
  std::function<Result<int64_t>()> release_worker_;
  Session* session_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> given_back_{false};
  std::thread thread_;
};

}  // namespace

bool ObserverLogger::Enabled(grin::LogLevel level) const {
  return observer_ != nullptr &&
         static_cast<int>(level) >= static_cast<int>(observer_->log_level());
}

void ObserverLogger::Log(grin::LogLevel level, std::string_view event,
                         const grin::LogFields& fields) {
  if (!Enabled(level)) return;
  observer_->OnLog(static_cast<jobs::LogLevel>(level), event, fields);
}

Result<SyncReport> SyncWithHooks(Run::Impl& run, const SyncOptions& opt, Observer* observer,
                                 Cancellation* cancel, const SyncHooks& hooks) {
  Session session(run, observer);
  const std::string& run_dir = run.run_dir;
  const bool postgres = cli::IsPostgresRun(run.config);
  // Where the state is, in messages: books.db, or the PostgreSQL database (no password).
  const std::string db_path = cli::DescribeState(run_dir, run.config);
  auto stopping = [cancel] { return cancel != nullptr && cancel->draining(); };
  auto interrupted = [&session] {
    return session.TransferError(
        Status::Cancelled("interrupted before any book was started; rerun the same command to "
                          "continue"));
  };
  ObserverLogger observer_logger(observer);
  Logger& logger = hooks.logger != nullptr ? *hooks.logger : observer_logger;

  // The run's files in the meta bucket live under "<run name>/": a bad name stops here, not
  // at teardown hours later.
  auto meta_name = cli::RunMetaName(run.config.run_name, run_dir);
  if (!meta_name.ok()) return session.RunError(meta_name.status());

  // ---- options ----
  for (const auto& q : opt.queues) {
    if (q != "converted" && q != "previous" && q != "unconverted") {
      return session.RunError(Status::InvalidArgument(
          "--queue '" + q + "': use converted, previous or unconverted"));
    }
  }
  if (!opt.queues.empty() && !opt.barcodes.empty()) {
    return session.RunError(
        Status::InvalidArgument("give --queue, --barcodes or --barcodes-file, not several"));
  }
  for (const auto& b : opt.barcodes) {
    if (!IsValidBarcode(b)) {
      return session.RunError(Status::InvalidArgument(
          "'" + b.substr(0, 60) + "' is not a barcode (3-50 of A-Z a-z 0-9 _ -)"));
    }
  }
  if (opt.stop_after_systemic < 1) {
    return session.RunError(Status::InvalidArgument("--stop-after-systemic: give 1 or more"));
  }
  auto backend = archive::ParseBackend(opt.decrypt_backend);
  if (!backend.ok()) return session.RunError(backend.status());
  const std::vector<std::string>& queues = opt.queues;
  const std::vector<std::string>& explicit_barcodes = opt.barcodes;
  const int64_t limit = opt.limit;
  const bool dry_run = opt.dry_run;

  // ---- the stack: state store (takes the run lock), one transport, GRIN client, storage ----
  // The run's state: books.db or PostgreSQL (cli/state_factory.h); `reader` answers sync's
  // read queries on either.
  std::unique_ptr<cli::RunState> state;
  StateStore* store = nullptr;
  if (!dry_run) {
    cli::StateOptions so;
    so.durable = opt.durable;
    so.logger = &logger;
    so.max_attempts = 5;
    so.backoff_base_micros = std::max<int64_t>(1, opt.retry_base_ms) * 1000;
    so.backoff_max_micros = 60'000'000;
    auto s = cli::OpenRunState(run_dir, run.config, so);
    if (!s.ok()) return session.DbError(s.status(), db_path);
    state = std::move(s).value();
    store = state->store.get();
  } else if (!postgres && !fs::exists(db_path)) {
    return session.RunError(Status::NotFound(db_path + ": no run database here; create one "
                                                       "with 'grin-jobs init'"));
  }
  auto opened_reader = cli::OpenRunReader(run_dir, run.config);
  if (!opened_reader.ok()) return session.DbError(opened_reader.status(), db_path);
  storage::SyncReader& reader = **opened_reader;
  if (run.config.library_directory.empty()) {
    return session.RunError(Status::InvalidArgument(
        "run_config.json has no library_directory; set it with `grin-jobs config set "
        "library_directory DIR`"));
  }
  // One transport for GRIN and storage, the token source, the GRIN client, the object store.
  cli::TransferStackOptions tso;
  tso.logger = &logger;
  // Connection pools (TLS handshakes per host stay within them for the whole run): storage
  // max(4, workers), as each worker uploads one book at a time and a lone worker's multipart
  // parts still go four at a time; GRIN its download slots and one more, so a HEAD, list or
  // conversion request never waits behind a long download.
  tso.max_connections_per_host = std::max(4, opt.workers);
  tso.grin_max_connections = opt.download_concurrency + 1;
  tso.grin_requests_per_second = opt.grin_requests_per_second;
  tso.grin_bytes_per_second = opt.grin_bytes_per_second;
  tso.grin_list_attempts = opt.grin_list_attempts;
  tso.credentials_dir = run.credentials_dir;
  auto stack = cli::OpenTransferStack(run_dir, run.config, tso);
  if (!stack.ok()) return session.TransferError(stack.status());
  net::CurlTransport* transport = (*stack)->transport.get();
  // The transport's counters are mirrored into the metrics at every render, until this sync
  // returns (the metrics may outlive it, e.g. a server that lingers): then its last values
  // stay.
  struct RefresherGuard {
    Metrics* metrics = nullptr;
    int id = -1;
    ~RefresherGuard() {
      if (metrics != nullptr) {
        (void)metrics->Render();  // one last copy of the transport's counters
        metrics->RemoveRefresher(id);
      }
    }
  } refresher;
  if (hooks.metrics != nullptr) {
    refresher.metrics = hooks.metrics;
    refresher.id = net::AddTransportRefresher(transport, hooks.metrics);
  }
  if (hooks.on_connected) {
    Status s = hooks.on_connected();
    if (!s.ok()) return session.TransferError(s);
  }
  session.Event(EventKind::kConnected);
  grin_client::GrinClient& client = *(*stack)->client;
  session.Info("GRIN token: " + cli::Describe((*stack)->token));
  if ((*stack)->r2_keys) session.Info("R2 keys: " + cli::Describe(*(*stack)->r2_keys));
  cli::OpenedObjectStore* objects = &(*stack)->objects;
  if (!dry_run) {
    for (const auto& bucket : {objects->layout.bucket_raw, objects->layout.bucket_meta,
                               objects->layout.bucket_full}) {
      Status s = objects->store->EnsureBucket(bucket);
      if (!s.ok()) {
        return session.TransferError(SystemicOr(s.WithContext("bucket " + bucket),
                                                pipeline::FailureSource::kStorage, bucket));
      }
    }
  }

  // ---- selection ----
  std::vector<std::string> selected;
  std::set<std::string> seen;
  auto add_all = [&](const std::vector<std::string>& list) {
    int64_t n = 0;
    for (const auto& b : list) {
      if (limit >= 0 && n >= limit) break;
      if (seen.insert(b).second) {
        selected.push_back(b);
        ++n;
      }
    }
  };
  std::set<std::string> done_before;
  if (!queues.empty() || !explicit_barcodes.empty()) {
    auto d = reader.StoredBarcodes();
    if (!d.ok()) return session.RunError(d.status());
    done_before = *d;
  }
  const bool keep_done = opt.force || opt.recheck;
  std::set<std::string> in_process;
  std::vector<std::string> unlisted_queues;
  std::set<std::string> converted;  // GRIN's _converted, once listed (converted_listed)
  bool converted_listed = false;
  for (const auto& q : queues) {
    std::vector<std::string> list;
    if (q == "converted") {
      Status s = client.ForEachTextLine("converted", "", [&](const std::string& b) {
        if (stopping()) return Status::Cancelled("interrupted");
        if (IsValidBarcode(b)) list.push_back(b);
        return Status::Ok();
      });
      if (stopping()) return interrupted();
      if (!s.ok()) {
        // GRIN refusing us (or an untrusted TLS peer) stops here; any other listing failure
        // skips the queue and the run ends with the queue in queues_not_listed.
        Status why = SystemicOr(s, pipeline::FailureSource::kGrin, "");
        if (why.code() == StatusCode::kFailedPrecondition) return session.TransferError(why);
        session.Error("could not list queue converted (" + s.message() + "); skipping it");
        unlisted_queues.push_back(q);
        continue;
      }
      converted.insert(list.begin(), list.end());
      converted_listed = true;
    } else {
      auto l = reader.CatalogQueueBarcodes(q);
      if (!l.ok()) return session.RunError(l.status());
      list = *l;
      if (in_process.empty()) {
        (void)client.ForEachTextLine("in_process", "", [&](const std::string& b) {
          if (stopping()) return Status::Cancelled("interrupted");
          in_process.insert(b);
          return Status::Ok();
        });
        if (stopping()) return interrupted();
      }
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const std::string& b) { return in_process.count(b) > 0; }),
                 list.end());
      session.Info("GRIN queue: " + std::to_string(in_process.size()) + " in process, " +
                   std::to_string(std::max<int64_t>(
                       0, grin_client::kQueueCap - static_cast<int64_t>(in_process.size()))) +
                   " available space");
    }
    std::sort(list.begin(), list.end());
    if (!keep_done) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const std::string& b) { return done_before.count(b) > 0; }),
                 list.end());
    }
    size_t before = selected.size();
    add_all(list);
    session.Info("Barcode filtering (" + q + "): " + std::to_string(list.size()) +
                 " candidates, " + std::to_string(selected.size() - before) + " selected");
  }
  if (!explicit_barcodes.empty()) add_all(explicit_barcodes);

  // Books waiting for GRIN's conversion come back once _converted lists them, when named, or
  // (asked again) when GRIN was never asked: its queue was full, or their archive expired.
  std::map<std::string, std::string> wake;  // barcode -> why
  {
    auto awaiting = reader.AwaitingBooks();  // none for a SQLite run without books.db
    if (!awaiting.ok()) return session.RunError(awaiting.status());
    if (!awaiting->empty() && !converted_listed) {
      Status s = cli::ListBarcodes(client, "converted", &converted);
      if (s.ok()) {
        converted_listed = true;
      } else {
        Status why = SystemicOr(s, pipeline::FailureSource::kGrin, "");
        if (why.code() == StatusCode::kFailedPrecondition) return session.TransferError(why);
        session.Warn("could not list _converted (" + s.message() + "); " +
                     std::to_string(awaiting->size()) +
                     " books awaiting conversion keep waiting");
      }
    }
    wake = cli::ChooseWake(*awaiting, converted, std::set<std::string>(explicit_barcodes.begin(),
                                                                       explicit_barcodes.end()));
  }

  SyncReport report;
  if (dry_run) {
    cli::PlanInput plan;
    plan.keep_done = keep_done;
    plan.wake = wake;
    std::set<std::string> known_failed;
    Status ps = cli::PreparePlan(reader, selected, client, &converted, &converted_listed,
                                 &known_failed, &plan);
    if (!ps.ok()) return session.RunError(ps);
    plan.per_book = std::string("download -> decrypt -> ") +
                    (opt.skip_ocr ? "" : "extract OCR -> ") +
                    (opt.skip_marc ? "" : "extract MARC -> ") + "upload to " +
                    objects->store->Describe();
    std::ostringstream text;
    text << "Dry run: " << plan.books.size() << " books "
         << (selected.empty() ? "unfinished in the run" : "selected")
         << "; per book, what the run would do:\n";
    cli::PrintPlan(text, plan);
    text << "Nothing was changed.";
    session.Info(text.str());
    report.dry_run = true;
    return report;
  }

  if (stopping()) return interrupted();
  auto added = store->Enqueue(selected);
  if (!added.ok()) return session.DbError(added.status(), db_path);
  report.new_jobs = *added;
  // Named books (--barcodes, --barcodes-file) run alone: the run's other open jobs wait for a
  // later run. Queue selections (and no selection) continue every unfinished job.
  if (!explicit_barcodes.empty()) {
    Status scoped = store->SetScope(selected);
    if (!scoped.ok()) return session.DbError(scoped, db_path);
  }
  if (keep_done && !selected.empty()) {
    ResetRequest rr{selected, true};
    auto n = store->Reset(rr);
    if (!n.ok()) return session.DbError(n.status(), db_path);
  }
  if (!wake.empty()) {
    std::vector<std::string> listed, again;
    for (const auto& [b, why] : wake) (converted.count(b) ? listed : again).push_back(b);
    auto woke = store->Wake(listed);
    if (!woke.ok()) return session.DbError(woke.status(), db_path);
    if (*woke > 0) {
      session.Info(std::to_string(*woke) +
                   " books awaiting conversion are converted now (in _converted): ready again");
    }
    auto asked = store->Wake(again);
    if (!asked.ok()) return session.DbError(asked.status(), db_path);
    if (*asked > 0) {
      session.Info(std::to_string(*asked) +
                   " books awaiting conversion that GRIN was not asked for (queue full) or "
                   "whose archive expired: checked and asked again");
    }
  }
  auto counts = store->Counts();
  if (!counts.ok()) return session.RunError(counts.status());
  const int64_t open_jobs = counts->total - counts->at[3] - counts->dead - counts->awaiting;
  report.to_do = open_jobs;
  if (hooks.metrics != nullptr) pipeline::ExportStageCounts(*counts, hooks.metrics);
  {
    std::string line = "Sync of " + run_dir + ": " + std::to_string(*added) + " new jobs, " +
                       std::to_string(open_jobs) + " to do, " + std::to_string(counts->at[3]) +
                       " already stored";
    if (counts->awaiting > 0) {
      line += ", " + std::to_string(counts->awaiting) + " awaiting GRIN's conversion (since " +
              FormatIsoUtc(counts->awaiting_since_micros) + ")";
    }
    line += open_jobs == 0 ? " — nothing to do" : "";
    session.Info(line);
  }
  if (open_jobs == 0) {
    std::ostringstream hint;
    cli::PrintRecheckHint(hint, reader, run_dir, !queues.empty() || !explicit_barcodes.empty(),
                          SystemClock::Default()->NowMicros());
    std::string h = hint.str();
    if (!h.empty() && h.back() == '\n') h.pop_back();
    if (!h.empty()) session.Info(h);
  }

  // ---- passphrase (only needed when there is work) ----
  archive::Secret passphrase;
  if (open_jobs > 0) {
    auto path = cli::CredentialsSearch(run.credentials_dir, &run.config)
                    .FindPassphrase(opt.passphrase_file);
    if (!path.ok()) return session.TransferError(path.status());
    session.Info("GPG passphrase: " + cli::Describe(*path));
    auto secret = archive::ReadPassphraseFile(path->path);
    if (!secret.ok()) return session.TransferError(secret.status());
    passphrase = std::move(secret).value();
  }

  // ---- known conversion failures ----
  pipeline::SyncOptions so;
  if (open_jobs > 0) {
    auto failed = client.LoadKnownFailures();  // HTML: keeps GRIN's date, info and detail
    if (stopping()) return interrupted();
    if (failed.ok()) {
      for (const auto& [b, f] : *failed) so.known_failures[b] = {f.date, f.info, f.detail};
    } else {
      session.Warn("could not load GRIN's _failed list (" + failed.status().message() +
                   "); continuing without it");
    }
  }
  so.workers = opt.workers;
  so.check_concurrency = opt.check_concurrency;
  so.download_concurrency = opt.download_concurrency;
  so.staging_dir = !opt.staging_dir.empty() ? opt.staging_dir
                                            : (fs::path(run_dir) / "staging").string();
  so.staging_limit_bytes = opt.staging_limit_mb << 20;
  so.stream_max_bytes = opt.stream_max_mb << 20;
  so.memory_limit_bytes = opt.memory_limit_mb << 20;
  so.storage_inventory = opt.storage_inventory;
  so.multipart_threshold = std::max<uint64_t>(opt.multipart_threshold_mb, 5) << 20;
  so.force = opt.force;
  so.skip_ocr = opt.skip_ocr;
  so.skip_marc = opt.skip_marc;
  so.backend = *backend;
  so.layout = objects->layout;
  so.stop_after_systemic = opt.stop_after_systemic;
  so.state_store_path = state->db_path;  // its disk is checked when full; "" on PostgreSQL
  // Whether a stored book has its MARC columns (a book missing them has them rebuilt), and a
  // book's job for the litter sweep.
  storage::SyncReader* jobs = &reader;
  so.marc_recorded = [jobs](const std::string& barcode) { return jobs->MarcRecorded(barcode); };
  so.job_view = JobViewOf(jobs);
  // Temporary files an interrupted export or backup of this run left (the run lock is ours).
  if (int64_t n = storage::RemoveExportLeftovers(run_dir); n > 0) {
    logger.Log(grin::LogLevel::kInfo, "sync.litter_removed",
               {{"export_temporaries", std::to_string(n)}});
  }
  so.logger = &logger;
  so.progress_every = opt.progress_every;
  if (hooks.on_snapshot) {
    so.on_snapshot = hooks.on_snapshot;
  } else if (observer != nullptr && opt.progress_lines) {
    so.on_progress = [observer](const std::string& line) {
      Progress p;
      p.line = line;
      observer->OnProgress(p);
    };
  } else if (observer != nullptr) {
    so.on_snapshot = [observer](const pipeline::ProgressSnapshot& s) {
      Progress p;
      p.done = s.done;
      p.total = s.total;
      p.elapsed_s = s.elapsed_s;
      p.bytes_downloaded = s.bytes;
      p.active_downloads = s.active_downloads;
      p.processing = s.processing;
      observer->OnProgress(p);
    };
  }
  if (stopping()) return interrupted();
  static const std::atomic<int> kNeverStop{0};
  so.stop = cancel != nullptr ? cancel->counter() : &kNeverStop;
  so.metrics = hooks.metrics;
  // A PostgreSQL run: this process registers as one of the run's workers and downloads within
  // its share of GRIN's slots and rate (every sync on every host together within the run's);
  // the GRIN host's rate follows the share, starting from it before the first request.
  std::unique_ptr<pipeline::SharedLimits> shared;
  std::function<Result<int64_t>()> release_worker;  // a forced exit's, while `shared` lives
  if (open_jobs > 0 && postgres) {
    auto sl = cli::OpenSharedLimits(run.config, store->run_id(), opt.download_concurrency,
                                    opt.grin_requests_per_second, &logger, &release_worker);
    if (!sl.ok()) return session.DbError(sl.status(), db_path);
    shared = std::move(sl).value();
    auto grin_host = net::HostKeyOf(run.config.grin_base_url);
    if (!grin_host.ok()) return session.RunError(grin_host.status());
    shared->SetRateListener([transport, host = *grin_host](double rate) {
      transport->SetHostRequestRate(host, rate);
    });
    so.shared_limits = shared.get();
  }
  pipeline::SyncPipeline pipe(store, objects->store.get(), &client, transport, &passphrase,
                              so);
  Result<pipeline::SyncStats> stats = pipeline::SyncStats{};
  {
    session.Event(EventKind::kPipelineStarting);
    AbortWatcher abort_watcher(cancel, state->release_for_exit, release_worker, &session);
    stats = open_jobs > 0 ? pipe.Run() : Result<pipeline::SyncStats>(pipe.RemoveLitterOnly());
  }
  session.Event(EventKind::kPipelineFinished);
  if (shared) {  // deregistered now: the other workers take its slots at their next heartbeat
    shared->SetRateListener(nullptr);
    shared.reset();
  }
  if (!stats.ok()) return session.TransferError(stats.status());
  const bool whole_run = queues.empty() && explicit_barcodes.empty();
  auto dead = reader.CountDeadJobs(whole_run, selected);
  if (!dead.ok()) return session.RunError(dead.status());
  {
    std::string text = SummaryText(*stats, *dead);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    session.Info(text);
  }

  // ---- teardown ----
  TeardownInput td;
  td.run_dir = run_dir;
  td.db_path = state->db_path;  // "": a PostgreSQL run (CSV and report as on SQLite, no backup)
  td.store = objects->store.get();
  td.meta_layout = cli::RunMetaLayout(objects->layout, *meta_name);
  td.now_micros = SystemClock::Default()->NowMicros();
  td.csv_export = !opt.skip_csv_export;
  td.summary = {{"run_dir", run_dir}, {"finished_at", FormatIsoUtc(td.now_micros)},
                {"command_args", opt.command_args}, {"sync", StatsJson(*stats)},
                {"books_failed_for_good", dead->failed},
                {"books_skipped_by_rule", dead->by_rule},
                {"books_awaiting_conversion", dead->awaiting},
                {"queues_not_listed", unlisted_queues}};
  std::vector<json> hosts;
  for (const auto& h : transport->HostStats()) {
    hosts.push_back({{"host", h.host}, {"requests", h.requests}, {"retries", h.retries},
                     {"new_connections", h.new_connections}, {"tls_handshakes", h.tls_handshakes},
                     {"tls_cipher", h.tls_cipher},
                     {"bytes_down", h.bytes_down}, {"bytes_up", h.bytes_up},
                     {"attempts", h.attempts}, {"throttled", h.throttled},
                     {"queued_us", h.queued_us}, {"first_byte_us", h.first_byte_us},
                     {"total_us", h.total_us}});
  }
  td.summary["hosts"] = hosts;
  if (!store->Flush().ok()) td.errors.push_back("flushing the state store");
  TeardownResult torn = RunTeardown(std::move(td));
  for (const auto& w : torn.warnings) session.Warn(w);
  transport->Shutdown();

  const pipeline::SyncStats& s = *stats;
  report.uploaded = s.uploaded;
  report.synced = s.synced;
  report.unchanged = s.skipped_etag;
  report.rebuilt = s.rebuilt;
  report.conversions_requested = s.conversion_requested;
  report.retries_scheduled = s.retried;
  report.bytes_downloaded = s.bytes_downloaded;
  report.bytes_uploaded = s.bytes_uploaded;
  report.elapsed_s = s.elapsed_s;
  report.check = Tally(s.check);
  report.download = Tally(s.download);
  report.process = Tally(s.process);
  report.failed_for_good = dead->failed;
  report.first_failed = dead->first_failed;
  report.skipped_by_rule = dead->by_rule;
  report.awaiting_conversion = dead->awaiting;
  report.interrupted = s.interrupted;
  report.fatal = s.fatal;
  report.queues_not_listed = unlisted_queues;
  report.teardown_errors = torn.errors;
  if (s.interrupted) {
    auto left = store->Counts();
    report.open_after = left.ok() ? left->total - left->at[3] - left->dead - left->awaiting : -1;
  }
  return report;
}

}  // namespace grin::jobs
