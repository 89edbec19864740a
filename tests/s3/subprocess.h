#pragma once
// RunProcess: engine/base/subprocess.h's RunAndCapture with the inherited environment: runs a
// program with an argv vector (no shell), feeds it stdin, captures stdout and
// stderr. For the independent clients the tests compare against (python3 + botocore, awscli).

#include <string>
#include <vector>

namespace grin::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 if it could not run or was killed
  std::string out;
  std::string err;
};

// env_extra: "NAME=value" entries added to (or replacing in) the inherited environment.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& stdin_data = "",
                         const std::vector<std::string>& env_extra = {});

// GRIN_SOURCE_DIR (set by ctest), else the compiled-in source dir.
std::string SourceDir();

}  // namespace grin::testing
