#pragma once
// The in-process CLI of the tests/cli tests: RunCli with its exit code and output captured, and
// the check that an error message is one line.

#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace grin::cli::testing {

struct Run {
  int code;
  std::string out;
  std::string err;
};

// Runs `grin-jobs <args...>` in this process.
inline Run Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = RunCli(args, out, err);
  return {code, out.str(), err.str()};
}

// Whether s is exactly one non-empty line, ending in '\n'.
inline bool OneLine(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

}  // namespace grin::cli::testing
