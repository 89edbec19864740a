// grin-jobs export: the books table as CSV, in the reference tool's column order. Read-only.
// A SQLite or a PostgreSQL run: the same bytes for the same rows.
#include <filesystem>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"
#include "storage/books_export.h"

namespace grin::cli {

int RunExport(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs export",
                           "Write the run's books table as CSV (the reference tool's columns and "
                           "order). Works at any stage, also while a sync runs.");
  AddRunOptions(options);
  options.add_options()("output", "Output file (default <run>/books_export.csv)",
                        cxxopts::value<std::string>())("gzip", "gzip the output (level 1)")(
      "date-format",
      "Dates that come from GRIN: iso (2009-12-23T18:41:00, as stored) or grin (2009/12/23 "
      "18:41, GRIN's own text); grin-jobs' own timestamps stay ISO 8601",
      cxxopts::value<std::string>()->default_value("iso"));
  OptionRules rules;
  rules.WritableFile("output").OneOf("date-format", {"iso", "grin"});
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "export", run_dir.status());
  // Its books.db, or the PostgreSQL database run_config.json names.
  auto location = RunStateLocation(*run_dir);
  if (!location.ok()) return ReportError(err, "export", location.status());
  bool gz = parsed.count("gzip") > 0;
  std::string path = parsed.count("output")
                         ? parsed["output"].as<std::string>()
                         : (std::filesystem::path(*run_dir) /
                            (gz ? "books_export.csv.gz" : "books_export.csv"))
                               .string();
  const storage::CsvDateFormat dates = parsed["date-format"].as<std::string>() == "grin"
                                           ? storage::CsvDateFormat::kGrin
                                           : storage::CsvDateFormat::kIso;
  auto rows = storage::ExportBooksCsv(*location, path, gz, dates);
  if (!rows.ok() && rows.status().code() == StatusCode::kPermissionDenied &&
      !parsed.count("output") && rows.status().message().find(path) != std::string::npos) {
    // E.g. a read-only copy of a run: the database reads fine, the run folder takes no file.
    return ReportError(err, "export", Status::PermissionDenied(
                                          rows.status().message() +
                                          "; give --output FILE to write it elsewhere"));
  }
  if (!rows.ok()) return ReportError(err, "export", rows.status());
  out << "exported " << *rows << " books to " << path << "\n";
  return kExitOk;
}

}  // namespace grin::cli
