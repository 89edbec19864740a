// grin-jobs report: the run's HTML report (charts of throughput and failures over time, stages,
// ETA, slowest books, hosts) as one self-contained file. Read-only; works while a sync runs.
#include <filesystem>

#include "cli/cli.h"
#include "cli/report_html.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"

namespace grin::cli {

int RunReport(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs report",
                           "Write the run's HTML report: throughput over time (books/h, MB/s), "
                           "jobs per stage, ETA, failures by reason over time, conversions "
                           "awaited, slowest books, per-host retries. One file, no network "
                           "needed to view it. Works while a sync runs.");
  AddRunOptions(options);
  options.add_options()("o,output", "Output file (default <run>/report.html)",
                        cxxopts::value<std::string>());
  OptionRules rules;
  rules.WritableFile("output");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "report", run_dir.status());
  std::string path = parsed.count("output")
                         ? parsed["output"].as<std::string>()
                         : (std::filesystem::path(*run_dir) / "report.html").string();
  Status s = WriteRunReport(*run_dir, path);
  if (!s.ok()) return ReportError(err, "report", s);
  out << "wrote the report to " << path << "\n";
  return kExitOk;
}

}  // namespace grin::cli
