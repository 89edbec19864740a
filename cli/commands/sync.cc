// grin-jobs sync: the main job. Selects books (queues, barcodes), enqueues them as jobs, runs the
// pipeline (check -> download -> decrypt/extract/upload) with exact resume, then tears down:
// CSV export, database backup and process summary, uploaded to the meta bucket.
#include <signal.h>
#include <unistd.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/commands/grin_stack.h"
#include "cli/commands/settings.h"
#include "cli/commands/sync_options.h"
#include "cli/commands/sync_plan.h"
#include "cli/metrics_server.h"

#include "cli/live_bar.h"
#include "cli/report_html.h"
#include "cli/object_store_factory.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "engine/archive/passphrase.h"
#include "engine/base/format.h"
#include "engine/base/metrics.h"
#include "engine/net/transport_metrics.h"
#include "engine/pipeline/circuit_breaker.h"
#include "engine/pipeline/sync.h"
#include "engine/pipeline/sync_metrics.h"
#include "storage/backup_policy.h"
#include "storage/books_export.h"
#include "storage/sqlite_state_store.h"
#include "storage/state_reader.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::atomic<int> g_signals{0};
// Set while a SignalScope has a forced-exit action: the second signal then leaves through it
// (giving the run's leases back) instead of at once; a third leaves at once regardless.
std::atomic<bool> g_force_armed{false};

void OnSignal(int) {
  int n = g_signals.fetch_add(1);
  if (n >= 2 || (n == 1 && !g_force_armed.load())) _exit(130);
  if (n == 1) {
    static const char kForce[] =
        "\nForced exit: giving back the books in flight (they are not counted as crashed)...\n";
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, kForce, sizeof kForce - 1);
    return;  // SignalScope's watcher runs the forced-exit action, then exits
  }
  static const char kMsg[] =
      "\nReceived signal, finishing sync for books in flight... "
      "(press Ctrl-C again to force immediate exit)\n";
  [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
}

// Restores the previous handlers when the sync returns (tests run it in-process). With a
// forced-exit action, a watcher thread runs it on the second signal (outside the signal
// handler, where it may take locks and do I/O) and then exits with 130; if the action has not
// finished within kForceGraceMs the process exits anyway.
class SignalScope {
 public:
  static constexpr int kForceGraceMs = 3000;

  // Installed at the start of RunSync, so a signal during the listings is counted too.
  SignalScope() {
    g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  // From here on a second signal runs on_force first (once, before the pipeline starts).
  void ArmForce(std::function<void()> on_force) {
    g_force_armed = true;
    watcher_ = std::thread([this, on_force = std::move(on_force)] {
      while (!stop_.load()) {
        if (g_signals.load() >= 2) {
          auto done = std::make_shared<std::atomic<bool>>(false);
          std::thread([on_force, done] {
            on_force();
            done->store(true);
          }).detach();
          for (int i = 0; i < kForceGraceMs / 10 && !done->load(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          _exit(130);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~SignalScope() {
    g_force_armed = false;
    stop_ = true;
    if (watcher_.joinable()) watcher_.join();
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
  std::atomic<bool> stop_{false};
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

// Books of the run's catalog for the previous / unconverted queues (reference-tool.md §4).
Result<std::vector<std::string>> CatalogQueue(const std::string& db_path, const std::string& q) {
  GRIN_ASSIGN_OR_RETURN(auto reader, storage::StateReader::Open(db_path));
  std::string where =
      q == "previous"
          ? "grin_state = 'PREVIOUSLY_DOWNLOADED' AND coalesce(processing_request_timestamp, '') = ''"
          : "coalesce(processing_request_timestamp, '') = '' AND coalesce(converted_date, '') = '' "
            "AND coalesce(grin_check_in_date, '') = '' AND (grin_state IS NULL OR grin_state NOT "
            "IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD'))";
  std::vector<std::string> out;
  try {
    SQLite::Statement s(reader->db(), "SELECT barcode FROM books WHERE " + where +
                                          " ORDER BY barcode");
    while (s.executeStep()) out.push_back(s.getColumn(0).getString());
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

// Which selected barcodes are already uploaded (read-only).
Result<std::set<std::string>> AlreadyUploaded(const std::string& db_path) {
  std::set<std::string> done;
  if (!fs::exists(db_path)) return done;
  GRIN_ASSIGN_OR_RETURN(auto reader, storage::StateReader::Open(db_path));
  SQLite::Statement s(reader->db(), "SELECT barcode FROM uploaded");
  while (s.executeStep()) done.insert(s.getColumn(0).getString());
  return done;
}

// `s` reworded as the one line of a systemic failure (circuit_breaker.h) under
// kFailedPrecondition (exit 1, the cause and the fix); `s` itself when it is not systemic.
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

// Dead jobs among the books this sync covered (every job of the run when no queue or barcode
// was given):
// `by_rule` are the books GRIN will not give us (a known conversion failure, conversion not
// allowed), `failed` the rest ("failed for good"). Books waiting for GRIN's conversion are not
// dead (status awaiting): `awaiting` counts them.
struct DeadBooks {
  int64_t failed = 0;
  int64_t by_rule = 0;
  int64_t awaiting = 0;
  std::string first_failed;  // "BARCODE (reason)" of one failed book
};

Result<DeadBooks> CountDead(const std::string& db_path, bool whole_run,
                            const std::vector<std::string>& selected) {
  static const std::set<std::string> kByRule = {"known_conversion_failure",
                                                "conversion_not_allowed"};
  std::set<std::string> covered(selected.begin(), selected.end());
  DeadBooks out;
  GRIN_ASSIGN_OR_RETURN(auto reader, storage::StateReader::Open(db_path));
  try {
    SQLite::Statement q(reader->db(), "SELECT barcode, coalesce(error_reason, ''), status "
                                      "FROM jobs WHERE status IN ('dead', 'awaiting') "
                                      "ORDER BY barcode");
    while (q.executeStep()) {
      std::string b = q.getColumn(0).getString(), reason = q.getColumn(1).getString();
      if (!whole_run && covered.count(b) == 0) continue;
      if (q.getColumn(2).getString() == "awaiting") {
        ++out.awaiting;
      } else if (kByRule.count(reason)) {
        ++out.by_rule;
      } else if (out.failed++ == 0) {
        out.first_failed = b + " (" + reason + ")";
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

Status UploadFile(ObjectStore& store, const ObjectLocation& loc, const std::string& path,
                  const std::string& content_type) {
  GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(path));
  PutOptions po;
  po.content_type = content_type;
  auto r = store.Put(loc.bucket, loc.key, *src, po);
  return r.ok() ? Status::Ok() : r.status().WithContext("uploading " + loc.bucket + "/" + loc.key);
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

// `dead`: the covered books dead at the end (CountDead), not only those that died in this run.
void PrintSummary(std::ostream& out, const pipeline::SyncStats& s, const DeadBooks& dead) {
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
}

}  // namespace

int RunSync(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  // A signal before the pipeline starts (listings, _failed, enqueue) ends the sync cleanly with
  // 130 at the next phase boundary: nothing is leased or half-written yet.
  SignalScope signals;
  auto interrupted = [&err] {
    err << "grin-jobs sync: interrupted before any book was started; rerun the same command to "
           "continue\n";
    return kExitInterrupted;
  };
  auto stopping = [] { return g_signals.load() > 0; };
  cxxopts::Options options(
      "grin-jobs sync",
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
      "show`); a flag given here overrides them for this run only.");
  AddRunOptions(options);
  OptionRules rules;
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
  cxxopts::ParseResult p;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &p, &code, &rules)) return code;
  auto run_dir_r = ResolveRunDir(p);
  if (!run_dir_r.ok()) return ReportError(err, "sync", run_dir_r.status());
  const std::string run_dir = *run_dir_r;
  auto config = LoadRunConfig(run_dir);
  if (!config.ok()) return ReportError(err, "sync", config.status());
  // The run's stored defaults (`grin-jobs config set sync.KEY VALUE`) for every option the
  // command line does not give; the command line wins, for this run only.
  {
    auto stored = StoredSyncArgs(*config, p);
    if (!stored.ok()) return ReportError(err, "sync", stored.status());
    if (!stored->empty()) {
      std::vector<std::string> merged = args;
      merged.insert(merged.end(), stored->begin(), stored->end());
      Status reparsed = ReparseArgs(options, merged, rules, &p);
      if (!reparsed.ok()) return ReportError(err, "sync", reparsed);
    }
  }
  CommandLog log("sync", run_dir, p, out, err);  // <run>/logs/sync-*.log and the console
  // Failures that are not about the run database (GRIN, storage, credentials): exit 1.
  auto fail = [&err](const Status& st) {
    err << "grin-jobs sync: " << st.message() << "\n";
    return st.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  };
  const std::string db_path = DbPath(run_dir);
  // The run database's disk is full: exit 1 with the path and the space to free (no book was
  // touched); anything else wrong with it: ReportError's codes.
  auto db_fail = [&err, &db_path](const Status& st) {
    if (st.code() != StatusCode::kNoSpace) return ReportError(err, "sync", st);
    auto f = pipeline::ClassifyFailure(st, pipeline::FailureSource::kStateStore, "", db_path,
                                       64 << 20);
    err << "grin-jobs sync: " << f.cause << "\n";
    return kExitFailure;
  };
  // The run's files in the meta bucket live under "<run name>/" (a bad name stops here, not at
  // teardown hours later).
  auto run_meta_name = RunMetaName(config->run_name, run_dir);
  if (!run_meta_name.ok()) return ReportError(err, "sync", run_meta_name.status());
  const std::string credentials_dir =
      p.count("credentials-dir") ? p["credentials-dir"].as<std::string>() : "";
  // On a terminal the live bar owns stdout's last line: log lines are written above it.
  const bool tty = ::isatty(STDOUT_FILENO) && &out == &std::cout;
  std::optional<LiveBar> bar;
  if (tty) bar.emplace(out, STDOUT_FILENO);
  LiveBarLogger bar_logger(log.logger(), bar ? &*bar : nullptr);
  Logger& logger = bar ? static_cast<Logger&>(bar_logger) : *log.logger();
  if (p["stop-after-systemic"].as<int>() < 1) {
    return ReportError(err, "sync",
                       Status::InvalidArgument("--stop-after-systemic: give 1 or more"));
  }

  // ---- inputs ----
  std::vector<std::string> queues;
  if (p.count("queue")) queues = p["queue"].as<std::vector<std::string>>();
  for (const auto& q : queues) {
    if (q != "converted" && q != "previous" && q != "unconverted") {
      return ReportError(err, "sync", Status::InvalidArgument(
                                          "--queue '" + q + "': use converted, previous or "
                                          "unconverted"));
    }
  }
  int sources = (!queues.empty()) + (p.count("barcodes") > 0) + (p.count("barcodes-file") > 0);
  if (sources > 1) {
    return ReportError(err, "sync", Status::InvalidArgument(
                                        "give --queue, --barcodes or --barcodes-file, not several"));
  }
  int64_t limit = p.count("limit") ? p["limit"].as<int64_t>() : -1;
  auto backend = archive::ParseBackend(p["decrypt-backend"].as<std::string>());
  if (!backend.ok()) return ReportError(err, "sync", backend.status());
  std::vector<std::string> explicit_barcodes;
  if (p.count("barcodes")) {
    auto b = SplitBarcodes(p["barcodes"].as<std::string>());
    if (!b.ok()) return ReportError(err, "sync", b.status());
    explicit_barcodes = *b;
  } else if (p.count("barcodes-file")) {
    auto b = ReadBarcodesFile(p["barcodes-file"].as<std::string>());
    if (!b.ok()) return ReportError(err, "sync", b.status());
    explicit_barcodes = *b;
  }
  bool dry_run = p.count("dry-run") > 0;

  // ---- the stack: state store (takes the run lock), one transport, GRIN client, storage ----
  std::unique_ptr<storage::SqliteStateStore> store;
  if (!dry_run) {
    storage::StateStoreOptions so;
    so.durable = p.count("durable") > 0;
    so.create_if_missing = false;
    so.logger = &logger;
    so.max_attempts = 5;
    so.backoff_base_micros = std::max<int64_t>(1, p["retry-base-ms"].as<int64_t>()) * 1000;
    so.backoff_max_micros = 60'000'000;
    auto s = storage::SqliteStateStore::Open(db_path, so);
    if (!s.ok()) return db_fail(s.status());
    store = std::move(s).value();
  } else if (!fs::exists(db_path)) {
    return ReportError(err, "sync", Status::NotFound(db_path + ": no run database here; create "
                                                               "one with 'grin-jobs init'"));
  }
  if (config->library_directory.empty()) {
    return ReportError(err, "sync", Status::InvalidArgument(
                                        "run_config.json has no library_directory; set it with "
                                        "`grin-jobs config set library_directory DIR`"));
  }
  // One transport for GRIN and storage, the token source, the GRIN client, the object store.
  TransferStackOptions tso;
  tso.logger = &logger;
  tso.max_connections_per_host = std::max(8, p["workers"].as<int>() + 4);
  tso.grin_requests_per_second = p["grin-rate"].as<double>();
  tso.grin_bytes_per_second = p["grin-bandwidth"].as<double>();
  tso.grin_list_attempts = p["grin-list-attempts"].as<int>();
  tso.credentials_dir = credentials_dir;
  auto stack = OpenTransferStack(run_dir, *config, tso);
  if (!stack.ok()) return fail(stack.status());
  std::unique_ptr<net::CurlTransport>* transport = &(*stack)->transport;
  // Prometheus metrics (docs/metrics.md): served until this function returns (after the linger).
  Metrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (p.count("metrics-listen")) {
    net::AddTransportRefresher(transport->get(), &metrics);
    MetricsListenOptions mo;
    mo.address = p["metrics-listen"].as<std::string>();
    mo.allow_remote = p.count("metrics-allow-remote") > 0;
    mo.linger_seconds = p["metrics-linger"].as<double>();
    mo.stop = &g_signals;
    mo.on_linger = [&out, linger = mo.linger_seconds] {
      out << "Metrics: still served for " << linger << " s (Ctrl-C ends it)\n" << std::flush;
    };
    auto started = MetricsServer::Start(mo, &metrics);
    if (!started.ok()) return fail(started.status());
    metrics_server = std::move(started).value();
    out << "Metrics: " << metrics_server->url() << "\n" << std::flush;
  }
  grin_client::GrinClient& client = *(*stack)->client;
  out << "GRIN token: " << Describe((*stack)->token) << "\n";
  if ((*stack)->r2_keys) out << "R2 keys: " << Describe(*(*stack)->r2_keys) << "\n";
  OpenedObjectStore* objects = &(*stack)->objects;
  if (!dry_run) {
    for (const auto& bucket : {objects->layout.bucket_raw, objects->layout.bucket_meta,
                               objects->layout.bucket_full}) {
      Status s = objects->store->EnsureBucket(bucket);
      if (!s.ok()) return fail(SystemicOr(s.WithContext("bucket " + bucket),
                                          pipeline::FailureSource::kStorage, bucket));
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
    auto d = AlreadyUploaded(db_path);
    if (!d.ok()) return ReportError(err, "sync", d.status());
    done_before = *d;
  }
  bool keep_done = p.count("force") || p.count("recheck");
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
        // skips the queue and the run ends with exit 5.
        Status why = SystemicOr(s, pipeline::FailureSource::kGrin, "");
        if (why.code() == StatusCode::kFailedPrecondition) return fail(why);
        err << "grin-jobs sync: could not list queue converted (" << s.message()
            << "); skipping it\n";
        unlisted_queues.push_back(q);
        continue;
      }
      converted.insert(list.begin(), list.end());
      converted_listed = true;
    } else {
      auto l = CatalogQueue(db_path, q);
      if (!l.ok()) return ReportError(err, "sync", l.status());
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
      out << "GRIN queue: " << in_process.size() << " in process, "
          << std::max<int64_t>(0, grin_client::kQueueCap - static_cast<int64_t>(in_process.size()))
          << " available space\n";
    }
    std::sort(list.begin(), list.end());
    if (!keep_done) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const std::string& b) { return done_before.count(b) > 0; }),
                 list.end());
    }
    size_t before = selected.size();
    add_all(list);
    out << "Barcode filtering (" << q << "): " << list.size() << " candidates, "
        << selected.size() - before << " selected\n";
  }
  if (!explicit_barcodes.empty()) add_all(explicit_barcodes);

  // Books waiting for GRIN's conversion come back once _converted lists them, when named, or
  // (asked again) when GRIN was never asked: its queue was full, or their archive expired.
  std::map<std::string, std::string> wake;  // barcode -> why
  {
    auto awaiting = fs::exists(db_path) ? AwaitingBooks(db_path)
                                        : Result<std::map<std::string, std::string>>(
                                              std::map<std::string, std::string>{});
    if (!awaiting.ok()) return ReportError(err, "sync", awaiting.status());
    if (!awaiting->empty() && !converted_listed) {
      Status s = ListBarcodes(client, "converted", &converted);
      if (s.ok()) {
        converted_listed = true;
      } else {
        Status why = SystemicOr(s, pipeline::FailureSource::kGrin, "");
        if (why.code() == StatusCode::kFailedPrecondition) return fail(why);
        err << "grin-jobs sync: warning: could not list _converted (" << s.message()
            << "); " << awaiting->size() << " books awaiting conversion keep waiting\n";
      }
    }
    wake = ChooseWake(*awaiting, converted,
                      std::set<std::string>(explicit_barcodes.begin(), explicit_barcodes.end()));
  }

  if (dry_run) {
    PlanInput plan;
    plan.keep_done = keep_done;
    plan.wake = wake;
    std::set<std::string> known_failed;
    Status ps = PreparePlan(db_path, selected, client, &converted, &converted_listed,
                            &known_failed, &plan);
    if (!ps.ok()) return ReportError(err, "sync", ps);
    plan.per_book = std::string("download -> decrypt -> ") +
                    (p.count("skip-extract-ocr") ? "" : "extract OCR -> ") +
                    (p.count("skip-extract-marc") ? "" : "extract MARC -> ") + "upload to " +
                    objects->store->Describe();
    out << "Dry run: " << plan.books.size() << " books "
        << (selected.empty() ? "unfinished in the run" : "selected")
        << "; per book, what the run would do:\n";
    PrintPlan(out, plan);
    out << "Nothing was changed.\n";
    return kExitOk;
  }

  if (stopping()) return interrupted();
  auto added = store->Enqueue(selected);
  if (!added.ok()) return db_fail(added.status());
  // Named books (--barcodes, --barcodes-file) run alone: the run's other open jobs wait for a
  // later run. Queue selections (and no selection) continue every unfinished job.
  if (!explicit_barcodes.empty()) {
    Status scoped = store->SetScope(selected);
    if (!scoped.ok()) return db_fail(scoped);
  }
  if (keep_done && !selected.empty()) {
    ResetRequest rr{selected, true};
    auto n = store->Reset(rr);
    if (!n.ok()) return db_fail(n.status());
  }
  if (!wake.empty()) {
    std::vector<std::string> listed, again;
    for (const auto& [b, why] : wake) (converted.count(b) ? listed : again).push_back(b);
    auto woke = store->Wake(listed);
    if (!woke.ok()) return db_fail(woke.status());
    if (*woke > 0) {
      out << *woke << " books awaiting conversion are converted now (in _converted): ready "
                      "again\n";
    }
    auto asked = store->Wake(again);
    if (!asked.ok()) return db_fail(asked.status());
    if (*asked > 0) {
      out << *asked << " books awaiting conversion that GRIN was not asked for (queue full) or "
                       "whose archive expired: checked and asked again\n";
    }
  }
  auto counts = store->Counts();
  if (!counts.ok()) return ReportError(err, "sync", counts.status());
  int64_t open_jobs = counts->total - counts->at[3] - counts->dead - counts->awaiting;
  if (metrics_server) pipeline::ExportStageCounts(*counts, &metrics);
  out << "Sync of " << run_dir << ": " << *added << " new jobs, " << open_jobs
      << " to do, " << counts->at[3] << " already stored";
  if (counts->awaiting > 0) {
    out << ", " << counts->awaiting << " awaiting GRIN's conversion (since "
        << FormatIsoUtc(counts->awaiting_since_micros) << ")";
  }
  out << (open_jobs == 0 ? " — nothing to do" : "") << "\n";
  if (open_jobs == 0) {
    PrintRecheckHint(out, db_path, run_dir, !queues.empty() || !explicit_barcodes.empty(),
                     SystemClock::Default()->NowMicros());
  }
  out.flush();

  // ---- passphrase (only needed when there is work) ----
  archive::Secret passphrase;
  if (open_jobs > 0) {
    auto path = CredentialsSearch(credentials_dir, &*config)
                    .FindPassphrase(p.count("passphrase-file")
                                        ? p["passphrase-file"].as<std::string>()
                                        : "");
    if (!path.ok()) return fail(path.status());
    out << "GPG passphrase: " << Describe(*path) << "\n";
    auto secret = archive::ReadPassphraseFile(path->path);
    if (!secret.ok()) return fail(secret.status());
    passphrase = std::move(secret).value();
  }

  // ---- known conversion failures ----
  pipeline::SyncOptions so;
  if (open_jobs > 0) {
    auto failed = client.LoadKnownFailures();  // HTML: keeps GRIN's date, info and detail
    if (stopping()) return interrupted();
    Status fs_status = failed.status();
    if (failed.ok()) {
      for (const auto& [b, f] : *failed) so.known_failures[b] = {f.date, f.info, f.detail};
    }
    if (!fs_status.ok()) {
      err << "grin-jobs sync: warning: could not load GRIN's _failed list (" << fs_status.message()
          << "); continuing without it\n";
    }
  }
  so.workers = p["workers"].as<int>();
  so.check_concurrency = p["check-concurrency"].as<int>();
  so.download_concurrency = p["download-concurrency"].as<int>();
  so.staging_dir = p.count("staging-dir") ? p["staging-dir"].as<std::string>()
                                          : (fs::path(run_dir) / "staging").string();
  so.staging_limit_bytes = p["staging-limit-mb"].as<uint64_t>() << 20;
  so.stream_max_bytes = p["stream-max-mb"].as<uint64_t>() << 20;
  so.memory_limit_bytes = p["memory-limit-mb"].as<uint64_t>() << 20;
  so.storage_inventory = p.count("no-inventory") == 0;
  so.multipart_threshold = std::max<uint64_t>(p["multipart-threshold-mb"].as<uint64_t>(), 5) << 20;
  so.force = p.count("force") > 0;
  so.skip_ocr = p.count("skip-extract-ocr") > 0;
  so.skip_marc = p.count("skip-extract-marc") > 0;
  so.backend = *backend;
  so.layout = objects->layout;
  so.stop_after_systemic = p["stop-after-systemic"].as<int>();
  so.state_store_path = db_path;
  // Whether a stored book has its MARC columns (a book missing them has them rebuilt).
  auto marc_reader = storage::StateReader::Open(db_path);
  std::mutex marc_mu;
  if (!marc_reader.ok()) return fail(marc_reader.status());  // the run's own database
  so.marc_recorded = [&marc_reader, &marc_mu](const std::string& barcode) -> Result<bool> {
    std::lock_guard<std::mutex> l(marc_mu);
    try {
      SQLite::Statement q((*marc_reader)->db(),
                          "SELECT marc_extraction_timestamp IS NOT NULL FROM books "
                          "WHERE barcode = ?");
      q.bind(1, barcode);
      return q.executeStep() && q.getColumn(0).getInt() != 0;
    } catch (const std::exception& e) {
      return Status::Unavailable("reading the MARC columns of " + barcode + ": " + e.what());
    }
  };
  so.job_view = [&marc_reader, &marc_mu](const std::string& barcode)
      -> Result<std::optional<pipeline::SyncOptions::JobView>> {
    std::lock_guard<std::mutex> l(marc_mu);
    try {
      SQLite::Statement q((*marc_reader)->db(),
                          "SELECT stage, status = 'dead' FROM jobs WHERE barcode = ?");
      q.bind(1, barcode);
      if (!q.executeStep()) return std::optional<pipeline::SyncOptions::JobView>();
      pipeline::SyncOptions::JobView v;
      if (!ParseStage(q.getColumn(0).getString(), &v.stage)) {
        return Status::Internal("unknown stage for " + barcode);
      }
      v.dead = q.getColumn(1).getInt() != 0;
      SQLite::Statement cp((*marc_reader)->db(),
                           "SELECT data FROM job_checkpoints WHERE barcode = ?");
      cp.bind(1, barcode);
      if (cp.executeStep()) v.checkpoint = cp.getColumn(0).getString();
      return std::optional<pipeline::SyncOptions::JobView>(v);
    } catch (const std::exception& e) {
      return Status::Unavailable("reading the job of " + barcode + ": " + e.what());
    }
  };
  // Temporary files an interrupted export or backup of this run left (the run lock is ours).
  if (int64_t n = storage::RemoveExportLeftovers(run_dir); n > 0) {
    logger.Log(LogLevel::kInfo, "sync.litter_removed", {{"export_temporaries", std::to_string(n)}});
  }
  so.logger = &logger;
  so.progress_every = 20;
  if (bar) {
    so.on_snapshot = [&bar](const pipeline::ProgressSnapshot& s) { bar->Update(s); };
  } else {
    so.on_progress = [&out](const std::string& line) { out << line << "\n" << std::flush; };
  }
  // A second Ctrl-C leaves at once, but first gives the books in flight back to the run so the
  // next run does not count them as crashed (crash_loop).
  if (stopping()) return interrupted();
  signals.ArmForce([st = store.get()] { (void)st->ReleaseForExit(); });
  so.stop = &g_signals;
  if (metrics_server) so.metrics = &metrics;
  pipeline::SyncPipeline pipe(store.get(), objects->store.get(), &client, transport->get(),
                              &passphrase, so);
  auto stats = open_jobs > 0 ? pipe.Run() : Result<pipeline::SyncStats>(pipe.RemoveLitterOnly());
  if (bar) bar->Finish();
  if (!stats.ok()) return fail(stats.status());
  auto dead = CountDead(db_path, queues.empty() && explicit_barcodes.empty(), selected);
  if (!dead.ok()) return ReportError(err, "sync", dead.status());
  PrintSummary(out, *stats, *dead);

  // ---- teardown ----
  int64_t now = SystemClock::Default()->NowMicros();
  const StorageLayout meta_layout = RunMetaLayout(objects->layout, *run_meta_name);
  std::vector<std::string> teardown_errors;
  json summary = {{"run_dir", run_dir}, {"finished_at", FormatIsoUtc(now)},
                  {"command_args", args}, {"sync", StatsJson(*stats)},
                  {"books_failed_for_good", dead->failed},
                  {"books_skipped_by_rule", dead->by_rule},
                  {"books_awaiting_conversion", dead->awaiting},
                  {"queues_not_listed", unlisted_queues}};
  std::vector<json> hosts;
  for (const auto& h : (*transport)->HostStats()) {
    hosts.push_back({{"host", h.host}, {"requests", h.requests}, {"retries", h.retries},
                     {"new_connections", h.new_connections}, {"tls_handshakes", h.tls_handshakes},
                     {"tls_cipher", h.tls_cipher},
                     {"bytes_down", h.bytes_down}, {"bytes_up", h.bytes_up},
                     {"attempts", h.attempts}, {"throttled", h.throttled},
                     {"queued_us", h.queued_us}, {"first_byte_us", h.first_byte_us},
                     {"total_us", h.total_us}});
  }
  summary["hosts"] = hosts;
  if (!store->Flush().ok()) teardown_errors.push_back("flushing the state store");
  if (!p.count("skip-csv-export")) {
    std::string csv = (fs::path(run_dir) / "books_export.csv").string();
    auto rows = storage::ExportBooksCsv(db_path, csv, false);
    std::string gz = csv + ".gz";
    auto rows_gz = rows.ok() ? storage::ExportBooksCsv(db_path, gz, true) : rows;
    if (!rows_gz.ok()) {
      teardown_errors.push_back("CSV export: " + rows_gz.status().message());
    } else {
      for (const auto& loc : {LatestCsvLocation(meta_layout),
                              TimestampedMetaLocation(meta_layout, now, "books.csv.gz")}) {
        Status s = UploadFile(*objects->store, loc, gz, "application/gzip");
        if (!s.ok()) teardown_errors.push_back(s.message());
      }
      summary["csv_rows"] = *rows;
    }
  }
  {
    // Backups: a backup with fewer books than the stored books_latest.db.gz never replaces it
    // without keeping it; local retention never drops the newest backup with the most books.
    std::string dir = (fs::path(run_dir) / "backups").string();
    auto backup = storage::MakeLocalBackup(db_path, dir, now);
    if (!backup.ok()) {
      teardown_errors.push_back("database backup: " + backup.status().message());
    } else {
      summary["backup_books"] = backup->books;
      auto warning = storage::PublishLatestBackup(*objects->store, meta_layout, *backup, now,
                                                  dir);
      if (!warning.ok()) {
        teardown_errors.push_back(warning.status().message());
      } else if (!warning->empty()) {
        err << "grin-jobs sync: warning: " << *warning << "\n";
        summary["backup_warning"] = *warning;
      }
      storage::PruneLocalBackups(dir, 10);
    }
  }
  summary["teardown_errors"] = teardown_errors;
  {
    std::string path = (fs::path(run_dir) / "process_summary.json").string();
    std::ofstream f(path, std::ios::trunc);
    f << summary.dump(2) << "\n";
    f.close();
    for (const auto& loc : {MetaLocation(meta_layout, "process_summary.json"),
                            TimestampedMetaLocation(meta_layout, now, "process_summary.json")}) {
      Status u = UploadFile(*objects->store, loc, path, "application/json");
      if (!u.ok()) teardown_errors.push_back(u.message());
    }
  }
  {
    // The HTML report (regenerable with `grin-jobs report`): a failure is a warning, not a
    // failed run.
    std::string path = (fs::path(run_dir) / "report.html").string();
    Status r = WriteRunReport(run_dir, path);
    if (r.ok()) {
      r = UploadFile(*objects->store, MetaLocation(meta_layout, "report.html"), path,
                     "text/html");
    }
    if (!r.ok()) err << "grin-jobs sync: warning: the HTML report: " << r.message() << "\n";
  }
  (*transport)->Shutdown();
  if (!stats->fatal.empty()) {
    err << "grin-jobs sync: " << stats->fatal << "\n";
    return kExitFailure;
  }
  if (!teardown_errors.empty()) {
    err << "grin-jobs sync: teardown completed with errors: " << teardown_errors.front() << "\n";
    return kExitFailure;
  }
  if (stats->interrupted) {
    // Drained on Ctrl-C: exit 0 still means every selected book is done, so only when nothing
    // was left to do when the signal came.
    auto left = store->Counts();
    int64_t open = left.ok() ? left->total - left->at[3] - left->dead - left->awaiting : 1;
    if (open > 0) {
      err << "grin-jobs sync: interrupted; " << (left.ok() ? std::to_string(open) : "some")
          << " book" << (open == 1 ? "" : "s")
          << " not done yet — rerun the same command to continue\n";
      return kExitInterrupted;
    }
  }
  if (dead->failed > 0 || !unlisted_queues.empty()) {
    err << "grin-jobs sync: finished, but ";
    if (dead->failed > 0) {
      err << dead->failed << " book" << (dead->failed == 1 ? "" : "s")
          << " failed for good (e.g. " << dead->first_failed
          << "; see `grin-jobs status`, requeue with `grin-jobs retry`)";
    }
    if (!unlisted_queues.empty()) {
      err << (dead->failed > 0 ? " and " : "") << "queue " << unlisted_queues.front()
          << " could not be listed (rerun to list it)";
    }
    err << "\n";
    return kExitBooksFailed;
  }
  return kExitOk;
}

}  // namespace grin::cli
