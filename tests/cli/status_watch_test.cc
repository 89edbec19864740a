// `status --watch` as an operator sees it: on a terminal (the real binary on a pseudo-terminal,
// rendered by a terminal model) each report replaces the last; off a terminal they follow
// each other.
#include <doctest/doctest.h>

#include "tests/cli/pty_run.h"
#include "tests/cli/term_model.h"
#include "tests/pipeline/sync_fixture.h"

namespace grin::cli {
namespace {

using grin::testing::RunOnPty;
using grin::testing::TermModel;

int Count(const std::vector<std::string>& lines, const std::string& prefix) {
  int n = 0;
  for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

TEST_CASE("status --watch on a terminal redraws in place") {
  pipeline::testing::SyncEnv env(12, 0.8);
  auto sync = pipeline::testing::Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.err);
  std::vector<std::string> args = {GRIN_JOBS_BIN, "status", "--run-dir", env.run, "--watch",
                                   "0.1", "--count", "6"};
  auto run = RunOnPty(args, 100, 30, {"TERM=xterm"});
  CAPTURE(run.output);
  REQUIRE(run.code == 0);
  TermModel term(100, 30);
  term.Feed(run.output);
  auto screen = term.Screen();
  // One report on the screen, at the top, under the refresh line; none left in the scrollback.
  CHECK(screen[0].rfind("every 0.1s, updated ", 0) == 0);
  CHECK(screen[1].rfind("run " + env.run + ": ", 0) == 0);
  CHECK(Count(term.AllLines(), "run " + env.run + ": ") == 1);
  CHECK(Count(term.AllLines(), "every 0.1s") == 1);
  CHECK(term.history.empty());
  // The report is the real one: the uploaded count is on its stage line.
  int64_t uploaded = env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'");
  REQUIRE(uploaded > 0);
  bool found = false;
  for (const auto& l : screen) {
    if (l.rfind("  uploaded", 0) == 0) {
      found = l.find(" " + std::to_string(uploaded) + "  (") != std::string::npos;
    }
  }
  CHECK(found);
  // Six reports were drawn: the refresh line was written six times.
  size_t frames = 0;
  for (size_t p = run.output.find("every 0.1s"); p != std::string::npos;
       p = run.output.find("every 0.1s", p + 1)) {
    ++frames;
  }
  CHECK(frames == 6);
}

TEST_CASE("status --watch off a terminal prints each report after the last") {
  pipeline::testing::SyncEnv env(6, 0.8);
  auto sync = pipeline::testing::Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.err);
  auto st = pipeline::testing::Cli({"status", "--run-dir", env.run, "--watch", "0.05", "--count",
                                    "3"});
  REQUIRE(st.code == 0);
  CHECK(st.out.find('\033') == std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(st.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  CHECK(Count(lines, "run " + env.run + ": ") == 3);
}

}  // namespace
}  // namespace grin::cli
