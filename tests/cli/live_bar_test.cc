// The live bar of `sync` as an operator sees it: the real grin-jobs on a pseudo-terminal of 40, 80
// and 200 columns, syncing from the fake GRIN; its output rendered by a terminal model.
#include <doctest/doctest.h>

#include "cli/live_bar.h"
#include "tests/cli/pty_run.h"
#include "tests/cli/term_model.h"
#include "tests/pipeline/sync_fixture.h"

namespace grin::cli {
namespace {

using grin::testing::RunOnPty;
using grin::testing::TermModel;

bool IsBar(const std::string& line) {
  return line.find("books/s") != std::string::npos;
}

// Any piece of a bar: what an old bar left behind when it wrapped.
bool HasBarPiece(const std::string& line) {
  for (const char* piece : {"books/s", "MB/s", "elapsed ", "[dl ", "ETA "}) {
    if (line.find(piece) != std::string::npos) return true;
  }
  return false;
}

void SyncOnTerminal(int cols, bool no_color) {
  CAPTURE(cols);
  pipeline::testing::SyncEnv env(30, 0.8);
  // A few retried downloads: log lines (net.retry) written while the bar is up.
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive_get", "action": "status", "status": 503, "after": 4, "every": 5, "times": 3})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  auto args = env.SyncArgs({"--queue", "converted", "--log-level", "info", "-v"});
  args.insert(args.begin(), GRIN_JOBS_BIN);
  auto run = RunOnPty(args, cols, 50,
                      {"TERM=xterm", no_color ? "NO_COLOR=1" : "NO_COLOR=", "COLUMNS="});
  CAPTURE(run.output);
  REQUIRE(run.code == 0);
  REQUIRE(env.Sql("SELECT count(*) FROM uploaded") > 5);

  TermModel term(cols, 50);
  term.Feed(run.output);
  auto lines = term.AllLines();
  int bars = 0, pieces = 0, retries = 0;
  for (const auto& l : lines) {
    pieces += HasBarPiece(l);
    retries += l.rfind("INFO net.retry", 0) == 0;
    if (IsBar(l)) {
      ++bars;
      CHECK_MESSAGE(TermModel::Columns(l) < cols, l);
      // The bar is alone on its line: no log line glued to it.
      CHECK(l.find("INFO") == std::string::npos);
    }
    // Log lines start at the left edge (the bar was cleared before they were written).
    // (A field's value, like command.started's log_level=INFO, is not a level.)
    auto info = l.find("INFO ");
    if (info != std::string::npos && (info == 0 || l[info - 1] != '=')) {
      CHECK_MESSAGE(info == 0, l);
    }
  }
  // Redrawn in place: one bar on the final screen, none (nor a wrapped piece of one) left
  // behind in the scrollback.
  CHECK(bars == 1);
  CHECK(pieces == 1);
  CHECK(retries >= 1);  // log lines were written while the bar was up, each on its own line
  // Recent rates and the final count are on it.
  int64_t done = env.Sql("SELECT count(*) FROM jobs");
  std::string count = std::to_string(done) + "/" + std::to_string(done);
  bool found = false;
  for (const auto& l : term.Screen()) {
    if (IsBar(l)) {
      found = true;
      CHECK_MESSAGE(l.find(count) != std::string::npos, l);
      if (cols >= 80) CHECK_MESSAGE(l.find("MB/s") != std::string::npos, l);
    }
  }
  CHECK(found);
  if (no_color) {
    CHECK(run.output.find("\033[32m") == std::string::npos);
  } else {
    CHECK(run.output.find("\033[32m") != std::string::npos);
  }
}

TEST_CASE("sync's live bar fits a 40-column terminal, without colour under NO_COLOR") {
  SyncOnTerminal(40, true);
}

TEST_CASE("sync's live bar fits an 80-column terminal and redraws in place") {
  SyncOnTerminal(80, false);
}

TEST_CASE("sync's live bar on a 200-column terminal") {
  SyncOnTerminal(200, false);
}

TEST_CASE("sync's live bar follows a terminal resized while it runs (SIGWINCH)") {
  pipeline::testing::SyncEnv env(16, 0.8);
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive_get", "action": "slow_first_byte", "delay_ms": 250})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  auto args = env.SyncArgs({"--queue", "converted"});
  args.insert(args.begin(), GRIN_JOBS_BIN);
  bool resized = false;
  auto run = RunOnPty(args, 200, 50, {"TERM=xterm", "COLUMNS="}, 120,
                      [&resized](int master, const std::string& out) {
                        if (resized || out.find("books/s") == std::string::npos) return;
                        struct winsize ws{};
                        ws.ws_col = 50;
                        ws.ws_row = 50;
                        REQUIRE(ioctl(master, TIOCSWINSZ, &ws) == 0);  // the kernel sends SIGWINCH
                        resized = true;
                      });
  CAPTURE(run.output);
  REQUIRE(run.code == 0);
  REQUIRE(resized);
  TermModel term(200, 50);
  term.Feed(run.output);
  int bars = 0;
  for (const auto& l : term.Screen()) {
    if (!IsBar(l)) continue;
    ++bars;
    CHECK_MESSAGE(TermModel::Columns(l) < 50, l);
  }
  CHECK(bars == 1);
}

TEST_CASE("live bar text: fits every width, drops details first") {
  pipeline::ProgressSnapshot s;
  s.done = 123'456;
  s.total = 150'926;
  s.elapsed_s = 3725;
  s.active_downloads = 3;
  s.download_limit = 5;
  s.processing = 23;
  s.waiting_download = 100;
  for (int w = 5; w <= 250; ++w) {
    std::string line = FormatLiveBar(s, 12.5, 3.5e6, w, false);
    CHECK_MESSAGE(static_cast<int>(line.size()) < std::max(w, 2), w, line);
  }
  std::string wide = FormatLiveBar(s, 12.5, 3.5e6, 200, false);
  CHECK(wide.find("[dl 3/5") != std::string::npos);
  CHECK(wide.find("12.5 books/s") != std::string::npos);
  CHECK(wide.find("3.5 MB/s") != std::string::npos);
  std::string narrow = FormatLiveBar(s, 12.5, 3.5e6, 50, false);
  CHECK(narrow.rfind("[", 0) == 0);
  CHECK(narrow.find("123,456/150,926") != std::string::npos);
  CHECK(FormatLiveBar(s, 12.5, 3.5e6, 40, false).find("123,456/150,926") != std::string::npos);
  // Colour codes take no columns.
  std::string coloured = FormatLiveBar(s, 12.5, 3.5e6, 80, true);
  CHECK(coloured.find("\033[32m") != std::string::npos);
  CHECK(coloured.size() - 9 == FormatLiveBar(s, 12.5, 3.5e6, 80, false).size());
}

TEST_CASE("recent rates: the last 30 s, not the average since the start") {
  RecentRates r(30);
  r.Add(10, 100, 100'000'000);
  CHECK(r.books_per_s() == doctest::Approx(10));  // one point: since the start
  r.Add(100, 1000, 1'000'000'000);
  r.Add(110, 1010, 1'010'000'000);  // slowed down to 1 book/s and 1 MB/s
  r.Add(140, 1040, 1'040'000'000);
  CHECK(r.books_per_s() == doctest::Approx(1.0));
  CHECK(r.bytes_per_s() == doctest::Approx(1e6));
}

}  // namespace
}  // namespace grin::cli
