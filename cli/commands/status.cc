// grin-jobs status: counts per stage, failures by reason, recent rate and ETA. Read-only: works
// while a sync runs on the same run.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"
#include "engine/base/clock.h"
#include "engine/base/format.h"
#include "engine/base/metrics.h"
#include "engine/pipeline/sync_metrics.h"
#include "cli/report_data.h"
#include "storage/open_run_queries.h"

namespace grin::cli {
namespace {

constexpr double kRateWindowSeconds = 300;

struct Snapshot {
  StageCounts counts;
  std::vector<FailureSummary> failures;
  int64_t books = 0;
  int64_t recent = 0;  // reached uploaded in the last kRateWindowSeconds
  double rate = 0;     // books/s over that window (or since the first of them, if later)
  // GRIN's _failed list as last read by `enrich`: books per Convert Failed Info, most first.
  std::vector<std::pair<std::string, int64_t>> grin_failed;
  int64_t grin_failed_books = 0;
  // A PostgreSQL run: its live sync workers (any host), with the GRIN download slots each holds.
  bool shared_run = false;
  std::vector<LiveWorker> workers;
};

Result<Snapshot> Take(storage::RunQueries& reader) {
  Snapshot s;
  GRIN_ASSIGN_OR_RETURN(s.counts, reader.Counts());
  GRIN_ASSIGN_OR_RETURN(s.failures, reader.Failures());
  int64_t now = SystemClock::Default()->NowMicros();
  GRIN_ASSIGN_OR_RETURN(auto recent, reader.CompletedSince(
                                          now - static_cast<int64_t>(kRateWindowSeconds * 1e6)));
  s.recent = recent.count;
  if (recent.count > 0) {
    double span = static_cast<double>(now - recent.first_micros) / 1e6;
    s.rate = static_cast<double>(recent.count) / std::clamp(span, 1.0, kRateWindowSeconds);
  }
  GRIN_ASSIGN_OR_RETURN(s.books, reader.BookCount());
  GRIN_ASSIGN_OR_RETURN(auto failed, reader.ConvertFailed(10));
  s.grin_failed = std::move(failed.by_info);
  s.grin_failed_books = failed.books;
  return s;
}

nlohmann::json ToJson(const std::string& run_dir, const Snapshot& s) {
  nlohmann::json j;
  j["run_dir"] = run_dir;
  j["books"] = s.books;
  j["jobs"] = s.counts.total;
  for (int i = 0; i < kStageCount; ++i) {
    j["stages"][std::string(StageName(static_cast<Stage>(i)))] = s.counts.at[i];
  }
  j["leased"] = s.counts.leased;
  j["retrying"] = s.counts.retrying;
  j["dead"] = s.counts.dead;
  j["awaiting_conversion"] = s.counts.awaiting;
  if (s.counts.awaiting > 0) {
    j["awaiting_conversion_since"] = FormatIsoUtc(s.counts.awaiting_since_micros);
  }
  double rate = s.rate;
  j["rate_books_per_s"] = rate;
  int64_t remaining = s.counts.total - s.counts.at[3] - s.counts.dead - s.counts.awaiting;
  j["remaining"] = remaining;
  if (rate > 0) j["eta_s"] = static_cast<double>(remaining) / rate;
  j["failures"] = nlohmann::json::array();
  for (const auto& f : s.failures) {
    j["failures"].push_back({{"stage", f.stage}, {"reason", f.reason},
                             {"class", f.error_class}, {"dead", f.dead}, {"count", f.count}});
  }
  if (s.shared_run) {
    j["workers"] = nlohmann::json::array();
    for (const auto& w : s.workers) {
      j["workers"].push_back({{"host", w.host}, {"pid", w.pid}, {"started_at", w.started_at},
                              {"heartbeat_age_s", w.heartbeat_age_s},
                              {"download_slots", w.slots_held}});
    }
  }
  j["grin_convert_failed_books"] = s.grin_failed_books;
  j["grin_convert_failed_by_info"] = nlohmann::json::array();
  for (const auto& [info, n] : s.grin_failed) {
    j["grin_convert_failed_by_info"].push_back({{"info", info}, {"count", n}});
  }
  return j;
}

void PrintText(std::ostream& out, const std::string& run_dir, const Snapshot& s) {
  const auto& c = s.counts;
  out << "run " << run_dir << ": " << FormatThousands(c.total) << " jobs, "
      << FormatThousands(s.books) << " books known\n";
  for (int i = 0; i < kStageCount; ++i) {
    char line[128];
    double pct = c.total ? 100.0 * static_cast<double>(c.at[i]) / static_cast<double>(c.total)
                         : 0.0;
    std::snprintf(line, sizeof line, "  %-11s %12s  (%5.1f%%)\n",
                  std::string(StageName(static_cast<Stage>(i))).c_str(),
                  FormatThousands(c.at[i]).c_str(), pct);
    out << line;
  }
  out << "  in flight: " << FormatThousands(c.leased) << ", retrying: "
      << FormatThousands(c.retrying) << ", dead: " << FormatThousands(c.dead) << "\n";
  if (c.awaiting > 0) {
    out << "  awaiting GRIN's conversion: " << FormatThousands(c.awaiting) << " (since "
        << FormatIsoUtc(c.awaiting_since_micros)
        << "; a sync picks them up once _converted lists them)\n";
  }
  if (s.shared_run) {
    out << "sync workers: " << s.workers.size() << " live\n";
    for (const auto& w : s.workers) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "  %s pid %lld, since %s, heartbeat %.1f s ago, %d GRIN download slots\n",
                    w.host.c_str(), static_cast<long long>(w.pid), w.started_at.c_str(),
                    w.heartbeat_age_s, w.slots_held);
      out << line;
    }
  }
  if (!s.failures.empty()) {
    out << "failures by reason:\n";
    for (const auto& f : s.failures) {
      out << "  " << f.stage << "  " << (f.reason.empty() ? "(none)" : f.reason) << "  "
          << f.error_class << (f.dead ? ", dead" : ", retrying") << "  " << f.count << "\n";
    }
  }
  if (s.grin_failed_books > 0) {
    out << "GRIN conversion failed for " << FormatThousands(s.grin_failed_books)
        << " books (_failed, as of the last enrich; details in books_export.csv):\n";
    for (const auto& [info, n] : s.grin_failed) {
      out << "  " << (info.empty() ? "(no info)" : info) << "  " << n << "\n";
    }
  }
  double rate = s.rate;
  int64_t remaining = c.total - c.at[3] - c.dead - c.awaiting;
  char line[160];
  if (rate > 0) {
    std::snprintf(line, sizeof line, "rate: %.2f books/s over the last 5 min; ETA %s for %s left\n",
                  rate, FormatDuration(static_cast<double>(remaining) / rate).c_str(),
                  FormatThousands(remaining).c_str());
  } else {
    std::snprintf(line, sizeof line, "rate: no books completed in the last 5 min; %s left\n",
                  FormatThousands(remaining).c_str());
  }
  out << line;
}

// One --watch frame on a terminal, redrawn in place like watch(1): cursor home, each line
// followed by erase-to-end-of-line, then erase the rest of the screen (the first frame clears the
// screen first). Off a terminal the reports are simply printed one after the other.
void PrintFrame(std::ostream& out, const std::string& report, double every, bool first) {
  out << (first ? "\033[H\033[2J" : "\033[H");
  char head[96];
  std::snprintf(head, sizeof head, "every %gs, updated %s (Ctrl-C to stop)", every,
                FormatIsoUtc(SystemClock::Default()->NowMicros()).c_str());
  out << head << "\033[K\n";
  size_t pos = 0;
  while (pos < report.size()) {
    size_t nl = report.find('\n', pos);
    if (nl == std::string::npos) nl = report.size();
    out << report.substr(pos, nl - pos) << "\033[K\n";
    pos = nl + 1;
  }
  out << "\033[J";
}

}  // namespace

int RunStatus(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs status",
                           "Show a run's progress: jobs per stage, failures by reason, the rate "
                           "over the last 5 minutes and the ETA. Read-only; safe while a sync "
                           "runs.");
  AddRunOptions(options);
  options.add_options()("json", "Print JSON instead of text")(
      "metrics", "Print the run's job counts as Prometheus metrics (text format; the "
                 "database-derived subset of what sync --metrics-listen serves, for cron and "
                 "node_exporter's textfile collector)")(
      "watch", "Repeat every N seconds until interrupted (on a terminal: redrawn in place)",
      cxxopts::value<double>())(
      "count", "With --watch: stop after N reports", cxxopts::value<int>());
  OptionRules rules;
  rules.Number("watch", 0.05, 86'400, "seconds").Int<int>("count", 1, 1'000'000'000);
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "status", run_dir.status());
  auto location = RunStateLocation(*run_dir);
  if (!location.ok()) return ReportError(err, "status", location.status());
  auto reader = storage::OpenRunQueries(*location);
  const bool shared_run = storage::IsPostgresLocation(*location);
  if (!reader.ok()) return ReportError(err, "status", reader.status());
  bool json = parsed.count("json") > 0;
  bool metrics = parsed.count("metrics") > 0;
  if (json && metrics) {
    return ReportError(err, "status", Status::InvalidArgument("give --json or --metrics, not both"));
  }
  double every = parsed.count("watch") ? parsed["watch"].as<double>() : 0;
  int count = parsed.count("count") ? parsed["count"].as<int>() : (every > 0 ? -1 : 1);
  if (every < 0 || (parsed.count("watch") && every < 0.05)) {
    return ReportError(err, "status", Status::InvalidArgument("--watch needs at least 0.05 s"));
  }
  const bool redraw = !json && !metrics && every > 0 && &out == &std::cout && ::isatty(STDOUT_FILENO);
  for (int i = 0; count < 0 || i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(every));
    auto snap = Take(**reader);
    if (!snap.ok()) return ReportError(err, "status", snap.status());
    if (shared_run) {
      auto workers = ListRunWorkers(*location);
      if (!workers.ok()) return ReportError(err, "status", workers.status());
      snap->shared_run = true;
      snap->workers = std::move(workers).value();
    }
    if (metrics) {
      Metrics m;
      pipeline::ExportStageCounts(snap->counts, &m);
      pipeline::ExportFailures(snap->failures, &m);
      out << m.Render();
    } else if (json) {
      out << ToJson(*run_dir, *snap).dump() << "\n";
    } else if (redraw) {
      std::ostringstream report;
      PrintText(report, *run_dir, *snap);
      PrintFrame(out, report.str(), every, i == 0);
    } else {
      PrintText(out, *run_dir, *snap);
    }
    out.flush();
  }
  return kExitOk;
}

}  // namespace grin::cli
