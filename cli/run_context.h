#pragma once
// Helpers shared by commands that work on a run: the --run-dir / --run-name options and
// turning a Status into one error line plus an exit code.

#include <ostream>
#include <string>

#include "cli/log_setup.h"     // CommandLog: the run's log file and the console
#include "cli/option_rules.h"  // includes cxxopts (never splitting values at ',')
#include "engine/base/result.h"

namespace grin::cli {

// Adds --run-dir DIR and --run-name NAME (meaning output/NAME) to a command's options.
void AddRunOptions(cxxopts::Options& options);

// The run directory the options name. kInvalidArgument if neither or both are given, or the
// name is not [A-Za-z0-9_-]+.
Result<std::string> ResolveRunDir(const cxxopts::ParseResult& parsed);

// Prints "grin-jobs <command>: <message>" and maps the code to an exit code
// (kBusy -> 3; kDataLoss / kFailedPrecondition / kNotFound on the DB -> 4; else 1).
int ReportError(std::ostream& err, const char* command, const Status& status);

// Parses args with cxxopts, after adding --help and the logging options every command takes
// (-q, -v, --log-level, --log-keep: cli/log_setup.h; checked here too). On a parse error prints
// one line and returns false with *exit_code set to kExitUsage; on --help prints the help and
// returns false with *exit_code = 0.
// With `rules`, option values are then checked against them (a broken rule: one line naming the
// option and what it allows, kExitUsage), and a value cxxopts cannot parse is explained by its
// rule. Call it before any work, so a bad value never opens the database or the network.
bool ParseArgs(cxxopts::Options& options, const std::vector<std::string>& args,
               std::ostream& out, std::ostream& err, cxxopts::ParseResult* parsed,
               int* exit_code, const OptionRules* rules = nullptr);

}  // namespace grin::cli
