// grin-jobs sync: the command-line adapter over grin::jobs::Run::Sync (cli/facade/). Parses the
// options (and the run's stored sync.* defaults), wires the terminal bar, the log file, the
// metrics server and Ctrl-C to the facade, prints what it says, and maps the outcome to an exit
// status. What a sync does is in cli/facade/sync_session.cc.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/commands/settings.h"
#include "cli/commands/sync_options.h"
#include "cli/facade/run_impl.h"
#include "cli/live_bar.h"
#include "cli/metrics_server.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "engine/state_store.h"
#include "grin_jobs/run.h"

namespace grin::cli {
namespace {

// Ctrl-C: the first drains the sync, the second gives the books in flight back and exits.
jobs::Cancellation g_cancel;
// Set while a SignalScope has a forced-exit watcher: the second signal then leaves through it
// (giving the run's leases back) instead of at once; a third leaves at once regardless.
std::atomic<bool> g_force_armed{false};

void OnSignal(int) {
  int n = g_cancel.Escalate();
  if (n >= 2 || (n == 1 && !g_force_armed.load())) _exit(130);
  if (n == 1) {
    static const char kForce[] =
        "\nForced exit: giving back the books in flight (they are not counted as crashed)...\n";
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, kForce, sizeof kForce - 1);
    return;  // the facade gives the leases back (Cancellation::Abort); the watcher exits
  }
  static const char kMsg[] =
      "\nReceived signal, finishing sync for books in flight... "
      "(press Ctrl-C again to force immediate exit)\n";
  [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
}

// Restores the previous handlers when the sync returns (tests run it in-process). Once armed, a
// watcher thread sleeps until the Cancellation wakes it; on the second signal it waits until the
// facade reports the leases given back (Released()) or kForceGraceMs passed, then exits with 130.
class SignalScope {
 public:
  static constexpr int kForceGraceMs = 3000;

  // Installed at the start of RunSync, so a signal during the listings is counted too.
  SignalScope() {
    g_cancel.Reset();
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  void ArmForce() {
    g_force_armed = true;
    watcher_ = std::thread([this] {
      for (;;) {
        const uint32_t seen = g_cancel.wakes();  // before the checks: no wake-up is missed
        if (stop_.load()) return;
        if (g_cancel.aborting()) break;
        g_cancel.WaitForWake(seen);
      }
      std::unique_lock<std::mutex> l(mu_);
      if (!released_cv_.wait_for(l, std::chrono::milliseconds(kForceGraceMs),
                                 [this] { return released_; })) {
        static const char kLate[] =
            "grin-jobs sync: the run's database did not answer within 3 s; exiting anyway: the "
            "books in flight (and, on PostgreSQL, this sync's GRIN download slots) are taken "
            "back when their leases run out\n";
        [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, kLate, sizeof kLate - 1);
      }
      _exit(130);
    });
  }
  void Released() {
    {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
    }
    released_cv_.notify_all();
  }
  ~SignalScope() {
    g_force_armed = false;
    stop_ = true;
    g_cancel.Wake();
    if (watcher_.joinable()) watcher_.join();
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable released_cv_;
  bool released_ = false;  // guarded by mu_
  std::thread watcher_;
};

Result<std::vector<std::string>> ReadBarcodesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(path + ": cannot read the barcodes file");
  std::vector<std::string> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    if (!IsValidBarcode(line)) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": '" + line.substr(0, 60) +
                                     "' is not a barcode (3-50 of A-Z a-z 0-9 _ -)");
    }
    out.push_back(line);
  }
  if (out.empty()) {
    return Status::InvalidArgument(path + ": no barcode in the barcodes file (one per line)");
  }
  return out;
}

Result<std::vector<std::string>> SplitBarcodes(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  std::string b;
  while (std::getline(ss, b, ',')) {
    b.erase(0, b.find_first_not_of(" \t"));
    b.erase(b.find_last_not_of(" \t") + 1);
    if (b.empty()) continue;
    if (!IsValidBarcode(b)) {
      return Status::InvalidArgument("--barcodes: '" + b.substr(0, 60) +
                                     "' is not a barcode (3-50 of A-Z a-z 0-9 _ -)");
    }
    out.push_back(b);
  }
  if (out.empty()) {
    return Status::InvalidArgument("--barcodes '" + csv.substr(0, 60) + "': names no barcode");
  }
  return out;
}

constexpr const char* kSyncHelp =
    "Copy books from GRIN into the run's storage: check ETags, download, decrypt, extract OCR "
    "and MARC, upload. Rerunning the same command continues exactly where it stopped. With no "
    "queue or barcodes, continues the jobs already in the run.\n\nExit status: 0 every selected "
    "book is stored, skipped by rule (a GRIN conversion failure, conversion not allowed) or "
    "waiting for GRIN to convert it (it comes back by itself once _converted lists it); 1 "
    "the run "
    "stopped on a failure that is not a book's (GRIN access, passphrase, TLS trust, storage "
    "access or bucket, a full disk: one line names the cause and the fix; no book is failed "
    "for it) or another error; 2 bad usage; 3 the run is locked by another process; 4 the run "
    "database is unusable; 5 the run finished but books ended failed for good, or a queue "
    "could not be listed; 130 interrupted (Ctrl-C) with books not done yet: rerun the same "
    "command.\n\nOptions not on the command line come from the run's stored defaults "
    "(`grin-jobs config set sync.KEY VALUE`, e.g. sync.queue converted; `grin-jobs config "
    "show`); a flag given here overrides them for this run only.";

void AddCommandOptions(cxxopts::Options& options, OptionRules& rules,
                       const std::vector<std::string>& args) {
  AddRunOptions(options);
  AddSyncOptions(options, rules);
  options.add_options("metrics")(
      "metrics-listen", "Serve Prometheus metrics at http://ADDR/metrics while the sync runs: "
      "PORT or HOST:PORT (loopback; port 0 picks a free one and prints it)",
      cxxopts::value<std::string>())(
      "metrics-allow-remote", "Let --metrics-listen bind a non-loopback address (no "
      "authentication)")(
      "metrics-linger", "Keep serving metrics this many seconds after the sync ends (a last "
      "scrape sees the final values; Ctrl-C ends it)",
      cxxopts::value<double>()->default_value("0"));
  // Every value checked before any work (the database, the lock, the network): exit 2.
  rules
      .Satisfies("barcodes", [](const std::string& v) { return SplitBarcodes(v).status(); })
      .ReadableFile("barcodes-file")
      .Satisfies("barcodes-file",
                 [](const std::string& path) { return ReadBarcodesFile(path).status(); })
      .Number("metrics-linger", 0, 86'400, "seconds")
      .Satisfies("metrics-listen", [&args](const std::string& v) {
        bool remote = std::find(args.begin(), args.end(), "--metrics-allow-remote") != args.end();
        return ValidateMetricsAddress(v, remote);
      });
}

// The facade's options from the parsed command line (values already checked by the rules).
Result<jobs::SyncOptions> ToSyncOptions(const cxxopts::ParseResult& p,
                                        const std::vector<std::string>& args) {
  if ((p.count("queue") > 0) + (p.count("barcodes") > 0) + (p.count("barcodes-file") > 0) > 1) {
    return Status::InvalidArgument("give --queue, --barcodes or --barcodes-file, not several");
  }
  jobs::SyncOptions o;
  if (p.count("queue")) o.queues = p["queue"].as<std::vector<std::string>>();
  if (p.count("barcodes")) o.barcodes = *SplitBarcodes(p["barcodes"].as<std::string>());
  if (p.count("barcodes-file")) {
    o.barcodes = *ReadBarcodesFile(p["barcodes-file"].as<std::string>());
  }
  o.limit = p.count("limit") ? p["limit"].as<int64_t>() : -1;
  o.dry_run = p.count("dry-run") > 0;
  o.force = p.count("force") > 0;
  o.recheck = p.count("recheck") > 0;
  o.workers = p["workers"].as<int>();
  o.check_concurrency = p["check-concurrency"].as<int>();
  o.download_concurrency = p["download-concurrency"].as<int>();
  o.grin_requests_per_second = p["grin-rate"].as<double>();
  o.grin_bytes_per_second = p["grin-bandwidth"].as<double>();
  o.grin_list_attempts = p["grin-list-attempts"].as<int>();
  if (p.count("staging-dir")) o.staging_dir = p["staging-dir"].as<std::string>();
  o.staging_limit_mb = p["staging-limit-mb"].as<uint64_t>();
  o.stream_max_mb = p["stream-max-mb"].as<uint64_t>();
  o.memory_limit_mb = p["memory-limit-mb"].as<uint64_t>();
  o.multipart_threshold_mb = p["multipart-threshold-mb"].as<uint64_t>();
  o.storage_inventory = p.count("no-inventory") == 0;
  o.skip_ocr = p.count("skip-extract-ocr") > 0;
  o.skip_marc = p.count("skip-extract-marc") > 0;
  o.decrypt_backend = p["decrypt-backend"].as<std::string>();
  if (p.count("passphrase-file")) o.passphrase_file = p["passphrase-file"].as<std::string>();
  o.stop_after_systemic = p["stop-after-systemic"].as<int>();
  o.durable = p.count("durable") > 0;
  o.retry_base_ms = p["retry-base-ms"].as<int64_t>();
  o.skip_csv_export = p.count("skip-csv-export") > 0;
  o.progress_lines = true;
  o.command_args = args;
  return o;
}

// Prints what the facade says: messages on stdout / stderr, progress lines (or the live bar),
// and arms the forced exit when the pipeline starts.
class CliObserver final : public jobs::Observer {
 public:
  CliObserver(std::ostream& out, std::ostream& err, LiveBar* bar, SignalScope* signals)
      : out_(out), err_(err), bar_(bar), signals_(signals) {}
  void OnMessage(jobs::MessageKind kind, std::string_view text) override {
    if (kind == jobs::MessageKind::kInfo) {
      out_ << text << "\n" << std::flush;
      return;
    }
    err_ << "grin-jobs sync: " << (kind == jobs::MessageKind::kWarning ? "warning: " : "")
         << text << "\n";
  }
  void OnEvent(jobs::EventKind kind) override {
    if (kind == jobs::EventKind::kPipelineStarting) signals_->ArmForce();
    if (kind == jobs::EventKind::kAborted) signals_->Released();
    if (kind == jobs::EventKind::kPipelineFinished && bar_ != nullptr) bar_->Finish();
  }
  void OnProgress(const jobs::Progress& p) override { out_ << p.line << "\n" << std::flush; }

 private:
  std::ostream& out_;
  std::ostream& err_;
  LiveBar* bar_;
  SignalScope* signals_;
};

// The exit status of a sync that ran, with its one closing line on stderr (cli.h's codes).
int ExitStatus(const jobs::SyncReport& r, std::ostream& err) {
  if (r.dry_run) return kExitOk;
  if (!r.fatal.empty()) {
    err << "grin-jobs sync: " << r.fatal << "\n";
    return kExitFailure;
  }
  if (!r.teardown_errors.empty()) {
    err << "grin-jobs sync: teardown completed with errors: " << r.teardown_errors.front() << "\n";
    return kExitFailure;
  }
  if (r.interrupted && r.open_after != 0) {
    // Drained on Ctrl-C: exit 0 still means every selected book is done.
    err << "grin-jobs sync: interrupted; "
        << (r.open_after > 0 ? std::to_string(r.open_after) : "some") << " book"
        << (r.open_after == 1 ? "" : "s") << " not done yet — rerun the same command to continue\n";
    return kExitInterrupted;
  }
  if (r.failed_for_good > 0 || !r.queues_not_listed.empty()) {
    err << "grin-jobs sync: finished, but ";
    if (r.failed_for_good > 0) {
      err << r.failed_for_good << " book" << (r.failed_for_good == 1 ? "" : "s")
          << " failed for good (e.g. " << r.first_failed
          << "; see `grin-jobs status`, requeue with `grin-jobs retry`)";
    }
    if (!r.queues_not_listed.empty()) {
      err << (r.failed_for_good > 0 ? " and " : "") << "queue " << r.queues_not_listed.front()
          << " could not be listed (rerun to list it)";
    }
    err << "\n";
    return kExitBooksFailed;
  }
  return kExitOk;
}

}  // namespace

int RunSync(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  // A signal before the pipeline starts (listings, _failed, enqueue) ends the sync cleanly with
  // 130 at the next phase boundary: nothing is leased or half-written yet.
  SignalScope signals;
  cxxopts::Options options("grin-jobs sync", kSyncHelp);
  OptionRules rules;
  AddCommandOptions(options, rules, args);
  cxxopts::ParseResult p;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &p, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(p);
  if (!run_dir.ok()) return ReportError(err, "sync", run_dir.status());
  auto config = LoadRunConfig(*run_dir);
  if (!config.ok()) return ReportError(err, "sync", config.status());
  // The run's stored defaults (`grin-jobs config set sync.KEY VALUE`) for every option the
  // command line does not give; the command line wins, for this run only.
  auto stored = StoredSyncArgs(*config, p);
  if (!stored.ok()) return ReportError(err, "sync", stored.status());
  if (!stored->empty()) {
    std::vector<std::string> merged = args;
    merged.insert(merged.end(), stored->begin(), stored->end());
    Status reparsed = ReparseArgs(options, merged, rules, &p);
    if (!reparsed.ok()) return ReportError(err, "sync", reparsed);
  }
  CommandLog log("sync", *run_dir, p, out, err);  // <run>/logs/sync-*.log and the console
  const std::string credentials_dir =
      p.count("credentials-dir") ? p["credentials-dir"].as<std::string>() : "";
  auto run = jobs::Run::Open({*run_dir, credentials_dir});
  if (!run.ok()) return ReportError(err, "sync", run.status());
  // On a terminal the live bar owns stdout's last line: log lines are written above it.
  std::optional<LiveBar> bar;
  if (::isatty(STDOUT_FILENO) && &out == &std::cout) bar.emplace(out, STDOUT_FILENO);
  LiveBarLogger bar_logger(log.logger(), bar ? &*bar : nullptr);
  jobs::SyncHooks hooks;
  hooks.logger = bar ? static_cast<Logger*>(&bar_logger) : log.logger();
  if (bar) hooks.on_snapshot = [&bar](const pipeline::ProgressSnapshot& s) { bar->Update(s); };
  // Prometheus metrics (docs/metrics.md): served until this function returns (after the linger).
  Metrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (p.count("metrics-listen")) {
    hooks.metrics = &metrics;
    hooks.on_connected = [&]() -> Status {
      MetricsListenOptions mo;
      mo.address = p["metrics-listen"].as<std::string>();
      mo.allow_remote = p.count("metrics-allow-remote") > 0;
      mo.linger_seconds = p["metrics-linger"].as<double>();
      mo.stop = g_cancel.counter();
      mo.on_linger = [&out, linger = mo.linger_seconds] {
        out << "Metrics: still served for " << linger << " s (Ctrl-C ends it)\n" << std::flush;
      };
      GRIN_ASSIGN_OR_RETURN(metrics_server, MetricsServer::Start(mo, &metrics));
      out << "Metrics: " << metrics_server->url() << "\n" << std::flush;
      return Status::Ok();
    };
  }
  CliObserver observer(out, err, bar ? &*bar : nullptr, &signals);
  auto sync_options = ToSyncOptions(p, args);
  if (!sync_options.ok()) return ReportError(err, "sync", sync_options.status());
  auto report = jobs::SyncWithHooks(*(*run)->impl(), *sync_options, &observer, &g_cancel, hooks);
  if (!report.ok()) {
    const Status& s = report.status();
    if (s.code() == StatusCode::kCancelled) {
      err << "grin-jobs sync: " << s.message() << "\n";
      return kExitInterrupted;
    }
    if ((*run)->error_origin() == jobs::ErrorOrigin::kRun) return ReportError(err, "sync", s);
    err << "grin-jobs sync: " << s.message() << "\n";
    return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  return ExitStatus(*report, err);
}

}  // namespace grin::cli
