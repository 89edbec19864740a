#include "tests/s3/subprocess.h"

#include <sys/wait.h>

#include <cstdlib>

#include "engine/base/subprocess.h"

namespace grin::testing {

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& stdin_data,
                         const std::vector<std::string>& env_extra) {
  ProcessResult result;
  auto run = RunAndCapture(argv, InheritedEnv(env_extra), stdin_data);
  if (!run.ok()) {
    result.err = "spawn failed: " + run.status().message();
    return result;
  }
  result.out = std::move(run->out);
  result.err = std::move(run->err);
  result.exit_code = WIFEXITED(run->wait_status) ? WEXITSTATUS(run->wait_status) : -1;
  return result;
}

std::string SourceDir() {
  const char* s = std::getenv("GRIN_SOURCE_DIR");
  if (s != nullptr && *s != '\0') return s;
  return GRIN_TEST_SOURCE_DIR;
}

}  // namespace grin::testing
