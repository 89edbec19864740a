#include "cli/cli.h"

#include <exception>

#include "cli/command.h"

namespace grin::cli {
namespace {

void PrintHelp(std::ostream& out) {
  out << "grin-jobs: move a library's Google Books corpus from GRIN into its own storage.\n\n"
         "Usage: grin-jobs <command> [options]   (grin-jobs <command> --help for details)\n\n"
         "Commands:\n";
  for (const auto& c : Commands()) {
    std::string name = c.name;
    name.resize(10, ' ');
    out << "  " << name << c.summary << "\n";
  }
  out << "\nEvery command also takes -q (console: errors only), -v (console: every event the log\n"
         "file gets), --log-level debug|info|warning|error (the log file's level; info) and\n"
         "--log-keep N (20). sync, collect, enrich, request and doctor write\n"
         "<run>/logs/<command>-<UTC time>.log and print its path.\n";
  out << "\nExit codes: 0 success; 1 operation failed; 2 usage error; 3 run in use by another\n"
         "process; 4 run database unusable (missing, corrupt, newer schema, unwritable); 5 books\n"
         "ended failed for good, or a queue could not be listed; 6 verify found a mismatch; 130\n"
         "sync interrupted (rerun to continue).\n";
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintHelp(out);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--version") {
    out << "grin-jobs 0.1.0\n";
    return kExitOk;
  }
  for (const auto& c : Commands()) {
    if (args[0] == c.name) {
      std::vector<std::string> rest(args.begin() + 1, args.end());
      try {
        return c.run(rest, out, err);
      } catch (const std::exception& e) {
        // Last resort: commands report expected failures themselves.
        err << "grin-jobs " << c.name << ": " << e.what() << "\n";
        return kExitFailure;
      }
    }
  }
  err << "grin-jobs: unknown command '" << args[0] << "'; run 'grin-jobs --help'\n";
  return kExitUsage;
}

int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunCli(args, out, err);
}

}  // namespace grin::cli
