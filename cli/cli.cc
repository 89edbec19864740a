#include "cli/cli.h"

#include <algorithm>
#include <exception>

#include "cli/command.h"

#ifndef GRIN_JOBS_VERSION
#error "GRIN_JOBS_VERSION (the project's version) is set by cli/CMakeLists.txt"
#endif

namespace grin::cli {
namespace {

const CommandInfo* FindCommand(const std::string& name) {
  for (const auto& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void PrintHelp(std::ostream& out) {
  out << "grin-jobs: move a library's Google Books corpus from GRIN into its own storage.\n\n"
         "Usage: grin-jobs COMMAND [options]\n"
         "  or:  grin-jobs help [COMMAND]\n"
         "  or:  grin-jobs -V|--version\n"
         "grin-jobs help COMMAND (or grin-jobs COMMAND --help) shows the command's options.\n\n"
         "Commands:\n";
  size_t width = 10;  // a name longer than the column widens it, never gets cut
  for (const auto& c : Commands()) width = std::max(width, std::string(c.name).size() + 2);
  for (const auto& c : Commands()) {
    std::string name = c.name;
    name.resize(width, ' ');
    out << "  " << name << c.summary << "\n";
  }
  out << "\nEvery command also takes -q (console: errors only), -v (console: every event the log\n"
         "file gets), --log-level debug|info|warning|error (the log file's level; info) and\n"
         "--log-keep N (20). sync, collect, enrich, request and doctor write\n"
         "<run>/logs/<command>-<UTC time>.log and print its path.\n";
  out << "\nExit codes: 0 success (everything selected is done); 1 operation failed (or stopped\n"
         "on a systemic failure); 2 usage error; 3 run in use by another process; 4 run database\n"
         "unusable (missing, corrupt, newer schema, unwritable); 5 finished, but some books failed\n"
         "for good or a queue could not be listed; 6 verify found a mismatch; 130 interrupted.\n";
}

}  // namespace

// `help [COMMAND]`: the top-level help (also for `help help`), or COMMAND's own --help.
int RunHelp(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || (args.size() == 1 && args[0] == "help")) {
    PrintHelp(out);
    return kExitOk;
  }
  if (args.size() > 1) {
    err << "grin-jobs help: give one command, e.g. 'grin-jobs help sync'\n";
    return kExitUsage;
  }
  const CommandInfo* c = FindCommand(args[0]);
  if (c == nullptr) {
    err << "grin-jobs help: unknown command '" << args[0] << "'; run 'grin-jobs --help'\n";
    return kExitUsage;
  }
  return c->run({"--help"}, out, err);
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    PrintHelp(out);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h") {
    PrintHelp(out);
    return kExitOk;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    out << "grin-jobs " << GRIN_JOBS_VERSION << "\n";
    return kExitOk;
  }
  if (args[0] == "help") {
    try {
      return RunHelp({args.begin() + 1, args.end()}, out, err);
    } catch (const std::exception& e) {
      err << "grin-jobs help: " << e.what() << "\n";
      return kExitFailure;
    }
  }
  if (const CommandInfo* c = FindCommand(args[0])) {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    try {
      return c->run(rest, out, err);
    } catch (const std::exception& e) {
      // Last resort: commands report expected failures themselves.
      err << "grin-jobs " << c->name << ": " << e.what() << "\n";
      return kExitFailure;
    }
  }
  err << "grin-jobs: unknown command '" << args[0] << "'; run 'grin-jobs --help'\n";
  return kExitUsage;
}

int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunCli(args, out, err);
}

}  // namespace grin::cli
