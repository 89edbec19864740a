// engine/base/subprocess.h: argv reaches the child verbatim (no shell), the environment is exactly
// the one given, input reaches the chosen descriptor, stdout and stderr are kept apart.
#include "engine/base/subprocess.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <string>

namespace grin {
namespace {

TEST_CASE("RunAndCapture passes argv verbatim, without a shell") {
  const std::string hostile = "$(echo pwned); `id` | cat > /tmp/x && echo '\"";
  auto run = RunAndCapture({"printf", "%s|%s", hostile, "two words"}, MinimalEnv({}), "");
  REQUIRE_MESSAGE(run.ok(), run.status().ToString());
  CHECK(run->exited_zero());
  CHECK(run->out == hostile + "|two words");
  CHECK(run->err.empty());
}

TEST_CASE("RunAndCapture feeds input to stdin or to another descriptor") {
  std::string big(300 * 1024, 'x');  // more than a pipe buffer: needs the poll loop
  big += "end";
  auto run = RunAndCapture({"cat"}, MinimalEnv({}), big);
  REQUIRE(run.ok());
  CHECK(run->out == big);

  // gpg reads its passphrase on descriptor 3; so does this shell-free reader.
  auto fd3 = RunAndCapture({"cat", "/dev/fd/3"}, MinimalEnv({}), "secret\n", 3);
  REQUIRE(fd3.ok());
  CHECK(fd3->exited_zero());
  CHECK(fd3->out == "secret\n");

  CHECK(RunAndCapture({"cat"}, MinimalEnv({}), "x", 1).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("RunAndCapture keeps stderr apart and reports the exit status") {
  auto run = RunAndCapture({"ls", "/definitely/not/here"}, MinimalEnv({}), "");
  REQUIRE(run.ok());
  CHECK_FALSE(run->exited_zero());
  CHECK(WIFEXITED(run->wait_status));
  CHECK(WEXITSTATUS(run->wait_status) != 0);
  CHECK(run->out.empty());
  CHECK(run->err.find("/definitely/not/here") != std::string::npos);
}

TEST_CASE("the child sees exactly the environment given") {
  auto run = RunAndCapture({"env"}, MinimalEnv({"GRIN_PROBE=1"}), "");
  REQUIRE(run.ok());
  CHECK(run->out.find("GRIN_PROBE=1\n") != std::string::npos);
  CHECK(run->out.find("LC_ALL=C\n") != std::string::npos);
  CHECK(run->out.find("HOME=") == std::string::npos);

  auto inherited = InheritedEnv({"PATH=/nowhere", "GRIN_PROBE=2"});
  int paths = 0;
  for (const auto& e : inherited) paths += e.rfind("PATH=", 0) == 0;
  CHECK(paths == 1);
  CHECK(std::find(inherited.begin(), inherited.end(), "PATH=/nowhere") != inherited.end());
}

TEST_CASE("a missing program is kNotFound, not a crash") {
  auto run = RunAndCapture({"grin-no-such-program-xyz"}, MinimalEnv({}), "");
  CHECK(run.status().code() == StatusCode::kNotFound);
  CHECK(Subprocess::Spawn({}, {}, {}).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace grin
