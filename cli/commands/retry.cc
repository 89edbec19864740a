// grin-jobs retry: bring failed (retrying or dead) jobs back to ready, optionally filtered.
#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"

namespace grin::cli {

int RunRetry(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs retry",
                           "Requeue failed jobs (retrying or dead) so the next sync picks them "
                           "up at once, with their attempt counters reset.");
  AddRunOptions(options);
  options.add_options()("stage", "Only jobs at this milestone (pending, checked, downloaded)",
                        cxxopts::value<std::string>())(
      "reason", "Only failures whose reason matches this SQL LIKE pattern, e.g. 'http_5%'",
      cxxopts::value<std::string>())("dead-only", "Only dead jobs");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "retry", run_dir.status());
  RequeueFilter filter;
  if (parsed.count("stage")) {
    Stage s;
    std::string name = parsed["stage"].as<std::string>();
    if (!ParseStage(name, &s) || s == Stage::kUploaded) {
      return ReportError(err, "retry", Status::InvalidArgument(
                                           "--stage '" + name +
                                           "': use pending, checked or downloaded"));
    }
    filter.stage = s;
  }
  if (parsed.count("reason")) filter.reason_like = parsed["reason"].as<std::string>();
  filter.dead_only = parsed.count("dead-only") > 0;
  RunConfig config;  // no run_config.json: books.db, as before runs had one
  if (auto c = LoadRunConfig(*run_dir); c.ok()) {
    config = *c;
  } else if (c.status().code() != StatusCode::kNotFound) {
    return ReportError(err, "retry", c.status());
  }
  auto state = OpenRunState(*run_dir, config, StateOptions{});  // books.db or PostgreSQL
  if (!state.ok()) return ReportError(err, "retry", state.status());
  auto n = (*state)->store->Requeue(filter);
  if (!n.ok()) return ReportError(err, "retry", n.status());
  out << "requeued " << *n << (*n == 1 ? " job" : " jobs") << "\n";
  return kExitOk;
}

}  // namespace grin::cli
