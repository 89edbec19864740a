// grin-jobs migrate-state --to postgresql://...: move a run's job state from its SQLite file
// (books.db) to PostgreSQL (storage/postgres/pg_import.h), verified table by table, and record
// the new location in run_config.json ("state"). books.db stays where it is, unchanged in
// content, so the operator can go back.
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "storage/open_run_queries.h"
#include "storage/run_lock.h"
#ifdef GRIN_HAVE_POSTGRES
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_import.h"
#endif

namespace grin::cli {

namespace {
constexpr const char* kCommand = "migrate-state";
}  // namespace

int RunMigrateState(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options(
      "grin-jobs migrate-state",
      "Move a run's job state (books, jobs, events, checkpoints, every table of books.db) from "
      "its SQLite file to an empty PostgreSQL database, in one transaction, verified table by "
      "table (rows and SHA-256 of their content). Holds the run lock meanwhile (refused while a "
      "sync runs). On success run_config.json records the new location (\"state\"); books.db "
      "is kept as it was. Leases of a sync that stopped become ready again. The password goes in "
      "~/.pgpass, the file PGPASSFILE names, or PGPASSWORD, never in the URL.");
  AddRunOptions(options);
  options.add_options()(
      "to",
      "The PostgreSQL database, a libpq URI without a password, e.g. "
      "postgresql://grin@db.example.org/grin_jobs?sslmode=verify-full",
      cxxopts::value<std::string>());
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, kCommand, run_dir.status());
  if (!parsed.count("to")) {
    err << "grin-jobs " << kCommand
        << ": --to is required: the PostgreSQL database, e.g. --to postgresql://grin@host/db\n";
    return kExitUsage;
  }
  const std::string to = parsed["to"].as<std::string>();
  if (!storage::IsPostgresLocation(to)) {
    err << "grin-jobs " << kCommand
        << ": --to must be a postgresql:// URI (e.g. postgresql://grin@host/grin_jobs)\n";
    return kExitUsage;
  }
#ifdef GRIN_HAVE_POSTGRES
  if (storage::ConninfoHasPassword(to)) {
    err << "grin-jobs " << kCommand
        << ": --to holds a password (it would show in ps, shell history and run_config.json): "
           "remove it and put it in ~/.pgpass (mode 0600), the file PGPASSFILE names, or "
           "PGPASSWORD\n";
    return kExitUsage;
  }
  const std::string where = storage::pg::RedactConninfo(to);
  auto config = LoadRunConfig(*run_dir);
  if (!config.ok()) return ReportError(err, kCommand, config.status());
  if (!config->state.empty()) {
    if (config->state == to) {
      out << "already done: the run's state is at " << where << " (run_config.json); nothing "
          << "to do\n";
      return kExitOk;
    }
    return ReportError(err, kCommand,
                       Status::FailedPrecondition(
                           "the run's state is already at " +
                           storage::pg::RedactConninfo(config->state) +
                           " (run_config.json \"state\"); migrate-state moves a run out of its "
                           "SQLite file only"));
  }
  const std::string db = DbPath(*run_dir);
  if (!std::filesystem::exists(db)) {
    return ReportError(err, kCommand,
                       Status::NotFound(db + ": no run database; create the run with "
                                        "'grin-jobs init'"));
  }
  auto lock = storage::RunLock::Acquire(db);
  if (!lock.ok()) return ReportError(err, kCommand, lock.status());

  auto report = storage::ImportSqliteRun(db, to);
  if (!report.ok()) {
    return ReportError(err, kCommand,
                       Status(report.status().code(),
                              report.status().message() + "; nothing was recorded, the run " +
                                  "stays on " + db));
  }
  if (report->already_done) {
    out << where << " already holds this run, verified (every table matches books.db)\n";
  } else {
    std::ostringstream secs;
    secs << std::fixed << std::setprecision(1) << report->micros / 1e6;
    out << "copied " << db << " to " << where << " in " << secs.str() << " s, verified:\n";
  }
  size_t width = 0;
  for (const auto& t : report->tables) width = std::max(width, t.table.size());
  for (const auto& t : report->tables) {
    out << "  " << std::left << std::setw(static_cast<int>(width)) << t.table << "  "
        << std::right << std::setw(10) << t.rows << (t.rows == 1 ? " row\n" : " rows\n");
  }
  if (report->leases_released > 0) {
    out << report->leases_released
        << (report->leases_released == 1 ? " job was" : " jobs were")
        << " leased by a sync that stopped: ready again, their old leases refused\n";
  }
  config->state = to;
  if (Status s = SaveRunConfig(*run_dir, *config); !s.ok()) {
    return ReportError(err, kCommand,
                       Status(s.code(), s.message() + "; the copy in " + where +
                                            " is complete: run migrate-state again to record "
                                            "it"));
  }
  out << "run_config.json: state = " << where << "; " << db
      << " is kept as it was (delete the \"state\" key to go back to it)\n";
  return kExitOk;
#else
  return ReportError(err, kCommand,
                     Status::FailedPrecondition("this grin-jobs was built without PostgreSQL "
                                                "support (libpq-dev; CMake GRIN_POSTGRES=ON)"));
#endif
}

}  // namespace grin::cli
