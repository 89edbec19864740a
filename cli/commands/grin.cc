// grin-jobs collect | enrich | request: GRIN metadata into the run's books table. Adapters over
// jobs::Run::Collect / Enrich / Request (cli/facade/run.cc): parse the options, call the facade
// with the command's log, print the report.
#include <iostream>
#include <limits>

#include "cli/cli.h"
#include "cli/commands/grin_stack.h"
#include "cli/facade/run_impl.h"
#include "cli/log_setup.h"
#include "cli/run_context.h"
#include "engine/base/clock.h"
#include "grin_jobs/run.h"

namespace grin::cli {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

void AddGrinOptions(cxxopts::Options& options) {
  options.add_options("grin")("rate", "GRIN requests per second (all requests of this command)",
                              cxxopts::value<double>()->default_value("5"));
}

// The rules of AddGrinOptions' options; commands add their own.
OptionRules GrinRules() {
  OptionRules rules;
  rules.Number("rate", 0.001, 1e6);
  return rules;
}

struct Common {
  std::string run_dir;
  double rate = 5;
  std::unique_ptr<CommandLog> log;  // <run>/logs/<command>-*.log and the console
  std::unique_ptr<jobs::Run> run;
};

bool ParseCommon(const char* command, const cxxopts::ParseResult& parsed, std::ostream& out,
                 std::ostream& err, Common* c, int* code) {
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) {
    *code = ReportError(err, command, run_dir.status());
    return false;
  }
  c->run_dir = *run_dir;
  c->log = std::make_unique<CommandLog>(command, c->run_dir, parsed, out, err);
  c->rate = parsed["rate"].as<double>();
  if (c->rate <= 0) {
    err << "grin-jobs " << command << ": --rate must be positive\n";
    *code = kExitUsage;
    return false;
  }
  return true;
}

// Opens the run, once every option is checked.
bool OpenRun(const char* command, std::ostream& err, Common* c, int* code) {
  auto run = jobs::Run::Open({c->run_dir, ""});
  if (!run.ok()) {
    *code = ReportError(err, command, run.status());
    return false;
  }
  c->run = std::move(run).value();
  return true;
}

// A failed facade call: about the run (its config, database, lock) or GRIN's side (cli.h).
int ReportFailure(std::ostream& err, const char* command, const jobs::Run& run,
                  const Status& status) {
  return run.error_origin() == jobs::ErrorOrigin::kRun ? ReportError(err, command, status)
                                                      : ReportGrinError(err, command, status);
}

// The facade's messages: problems on stderr as "grin-jobs COMMAND: ...".
class Printer final : public jobs::Observer {
 public:
  Printer(const char* command, std::ostream& out, std::ostream& err)
      : command_(command), out_(out), err_(err) {}
  void OnMessage(jobs::MessageKind kind, std::string_view text) override {
    if (kind == jobs::MessageKind::kInfo) {
      out_ << text << "\n";
      return;
    }
    err_ << "grin-jobs " << command_ << ": "
         << (kind == jobs::MessageKind::kWarning ? "warning: " : "") << text << "\n";
  }

 private:
  const char* command_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

int RunCollect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs collect",
                           "Collect the library's book list from GRIN's _all_books pages into "
                           "books.db. New books are inserted; known ones are left alone unless "
                           "--refresh. An interrupted collect resumes at the first page not "
                           "written.");
  AddRunOptions(options);
  AddGrinOptions(options);
  options.add_options()("refresh", "Update changed fields of known books")(
      "restart", "Ignore a saved position and start from the first page")(
      "page-size", "Rows per page", cxxopts::value<int>()->default_value("10000"))(
      "max-pages", "Stop after this many pages (resume later)",
      cxxopts::value<int>()->default_value("0"));
  OptionRules rules = GrinRules();
  rules.Int<int>("page-size", 1, 1'000'000).Int<int>("max-pages", 0, kMaxInt, "0 = all");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  Common c;
  if (!ParseCommon("collect", parsed, out, err, &c, &code)) return code;
  jobs::CollectOptions o;
  o.requests_per_second = c.rate;
  o.refresh = parsed.count("refresh") > 0;
  o.restart = parsed.count("restart") > 0;
  o.page_size = parsed["page-size"].as<int>();
  o.max_pages = parsed["max-pages"].as<int>();
  if (!OpenRun("collect", err, &c, &code)) return code;
  Printer printer("collect", out, err);
  auto stats = jobs::CollectWithLogger(*c.run->impl(), o, &printer, c.log->logger());
  if (!stats.ok()) return ReportFailure(err, "collect", *c.run, stats.status());
  out << (stats->resumed ? "resumed; " : "") << stats->pages << " pages, " << stats->rows
      << " books listed: " << stats->inserted << " new, " << stats->updated << " updated, "
      << stats->unchanged << " unchanged"
      << (stats->finished ? "" : " (not finished: rerun to continue)") << "\n";
  if (stats->skipped_rows > 0) {
    out << stats->skipped_rows
        << " rows skipped without a readable barcode (each one warned about above)\n";
  }
  return kExitOk;
}

int RunEnrich(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs enrich",
                           "Fill GRIN's per-book metadata (state, viewability, dates, scores) "
                           "from _barcode_search into books.db. Barcodes GRIN does not know are "
                           "marked missing and asked again by a later run (after 1 day, then 2, "
                           "4, 8, 16, 30 days); failed requests are retried on the next run. "
                           "--refresh asks again about books already enriched.");
  AddRunOptions(options);
  AddGrinOptions(options);
  options.add_options()("limit", "At most this many books (0 = all pending)",
                        cxxopts::value<int64_t>()->default_value("0"))(
      "concurrency", "_barcode_search requests in flight", cxxopts::value<int>()->default_value("5"))(
      "refresh",
      "Also ask again about books already enriched (GRIN's state and viewability change), and "
      "about books GRIN did not know, whatever their wait")(
      "older-than",
      "With --refresh: only books enriched (or last asked) more than this many days ago",
      cxxopts::value<int64_t>());
  OptionRules rules = GrinRules();
  rules.Int<int64_t>("limit", 0, kNoMax, "0 = all pending").Int<int>("concurrency", 1, 64)
      .Int<int64_t>("older-than", 0, 100'000);
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  Common c;
  if (!ParseCommon("enrich", parsed, out, err, &c, &code)) return code;
  jobs::EnrichOptions o;
  o.requests_per_second = c.rate;
  o.limit = parsed["limit"].as<int64_t>();
  o.refresh = parsed.count("refresh") > 0;
  if (parsed.count("older-than")) {
    if (!o.refresh) {
      err << "grin-jobs enrich: --older-than needs --refresh (e.g. --refresh --older-than 30)\n";
      return kExitUsage;
    }
    const int64_t days = parsed["older-than"].as<int64_t>();
    o.refresh_before = FormatIsoUtc(SystemClock::Default()->NowMicros() - days * 86'400'000'000LL);
  }
  o.concurrency = parsed["concurrency"].as<int>();
  if (!OpenRun("enrich", err, &c, &code)) return code;
  Printer printer("enrich", out, err);
  auto stats = jobs::EnrichWithLogger(*c.run->impl(), o, &printer, c.log->logger());
  if (!stats.ok()) return ReportFailure(err, "enrich", *c.run, stats.status());
  out << stats->asked << " books asked in " << stats->requests << " requests: " << stats->found
      << " enriched, " << stats->missing << " unknown to GRIN, " << stats->failed_barcodes
      << " failed (retried next run)\n";
  if (o.refresh) {
    out << stats->refresh_asked << " enriched books asked again (--refresh"
        << (o.refresh_before.empty() ? "" : ", enriched before " + o.refresh_before) << "): "
        << stats->refreshed << " refreshed\n";
  }
  if (stats->missing_asked > 0) {
    out << stats->missing_asked << " books GRIN did not know asked again: "
        << stats->missing_found << " known now, " << stats->still_missing << " still unknown\n";
  }
  if (stats->missing_waiting > 0) {
    out << stats->missing_waiting << " books unknown to GRIN wait to be asked again (next from "
        << stats->next_ask_at << "; --refresh asks them now)\n";
  }
  if (stats->convert_failures >= 0) {
    out << stats->convert_failures
        << " books in GRIN's _failed list (Convert Failed Date/Info kept in books.db)\n";
  }
  if (stats->skipped_rows > 0) {
    out << stats->skipped_rows
        << " reply rows skipped without a readable barcode (each one warned about above)\n";
  }
  return stats->failed_groups > 0 ? kExitFailure : kExitOk;
}

int RunRequest(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs request",
                           "Ask GRIN to convert books (_process), within the 50,000-book queue. "
                           "Stops when GRIN says the queue is full (HTTP 429).");
  AddRunOptions(options);
  AddGrinOptions(options);
  options.add_options()("limit", "At most this many requests",
                        cxxopts::value<int64_t>()->default_value("100"))(
      "batch", "Barcodes per _process call", cxxopts::value<int>()->default_value("100"))(
      "dry-run", "Show how many would be requested; send nothing")(
      "retry-refused",
      "Ask again for books GRIN refused for a reason grin-jobs does not recognise (by default "
      "they are not re-sent; GRIN's text is kept)");
  OptionRules rules = GrinRules();
  rules.Int<int64_t>("limit", 1, kNoMax).Int<int>("batch", 1, 1000);
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  Common c;
  if (!ParseCommon("request", parsed, out, err, &c, &code)) return code;
  jobs::RequestOptions o;
  o.requests_per_second = c.rate;
  o.limit = parsed["limit"].as<int64_t>();
  o.batch = parsed["batch"].as<int>();
  o.dry_run = parsed.count("dry-run") > 0;
  o.retry_refused = parsed.count("retry-refused") > 0;
  if (!OpenRun("request", err, &c, &code)) return code;
  Printer printer("request", out, err);
  auto stats = jobs::RequestWithLogger(*c.run->impl(), o, &printer, c.log->logger());
  if (!stats.ok()) return ReportFailure(err, "request", *c.run, stats.status());
  out << "GRIN queue: " << stats->in_process_before << " in process, " << stats->free_before
      << " free of " << stats->queue_capacity << "\n";
  if (o.dry_run) {
    out << "would request " << stats->candidates << " books\n";
    return kExitOk;
  }
  for (const auto& [outcome, n] : stats->outcomes) out << "  " << outcome << ": " << n << "\n";
  if (stats->queue_full) {
    out << "GRIN's conversion queue is full (HTTP 429): stopped; free space now 0\n";
  } else {
    out << "free queue space now about " << stats->free_after << "\n";
  }
  return kExitOk;
}

}  // namespace grin::cli
