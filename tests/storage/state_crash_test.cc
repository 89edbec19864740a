// Crash test: a child process claims and completes thousands of jobs and is SIGKILLed at random
// moments (>= 200 kill points across this file); after each, a new run continues. At the end:
// zero jobs lost, zero completed twice, events consistent with the final state.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace {

using grin::testing::TempDir;

pid_t Spawn(const std::string& db, int items, const char* mode, uint64_t seed) {
  std::string items_s = std::to_string(items), seed_s = std::to_string(seed);
  std::string prog = GRIN_CRASH_CHILD;
  std::vector<char*> argv = {prog.data(), const_cast<char*>(db.c_str()), items_s.data(),
                             const_cast<char*>(mode), seed_s.data(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, prog.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

void RunCrashTrial(const char* mode, int kills, uint64_t seed) {
  TempDir dir;
  std::string db = dir.file("books.db");
  const int kItems = 2000;
  std::mt19937_64 rng(seed);
  int killed_mid_run = 0;
  for (int k = 0; k < kills; ++k) {
    pid_t pid = Spawn(db, kItems, mode, seed + static_cast<uint64_t>(k));
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 60000));
    kill(pid, SIGKILL);
    int code = WaitExit(pid);
    if (code == 128 + SIGKILL) {
      ++killed_mid_run;
    } else {
      REQUIRE_MESSAGE(code == 0, "child failed with exit code " << code);
    }
  }
  MESSAGE(std::string(mode) << ": " << killed_mid_run << " of " << kills << " children killed mid-run");
  CHECK(killed_mid_run >= kills / 2);
  // The last run finishes everything.
  pid_t pid = Spawn(db, kItems, mode, seed + 999'999);
  REQUIRE(WaitExit(pid) == 0);

  SQLite::Database conn(db, SQLite::OPEN_READONLY);
  CHECK(conn.execAndGet("PRAGMA integrity_check").getString() == "ok");
  CHECK(conn.execAndGet("SELECT count(*) FROM jobs").getInt() == kItems);
  CHECK(conn.execAndGet("SELECT count(*) FROM uploaded").getInt() == kItems);
  CHECK(conn.execAndGet("SELECT count(*) FROM jobs WHERE status <> 'ready'").getInt() == 0);
  // Each job completed each stage exactly once: nothing lost, nothing twice.
  SQLite::Statement per(conn, R"(
      SELECT j.barcode, s.stage,
             (SELECT count(*) FROM events e
              WHERE e.barcode = j.barcode AND e.stage = s.stage AND e.outcome = 'completed')
      FROM jobs j, (SELECT 'checked' AS stage UNION ALL SELECT 'downloaded'
                    UNION ALL SELECT 'uploaded') s)");
  int rows = 0, bad = 0;
  while (per.executeStep()) {
    ++rows;
    if (per.getColumn(2).getInt() != 1) ++bad;
  }
  CHECK(rows == 3 * kItems);
  CHECK(bad == 0);
  // Every lease taken back from a killed run is in the history, matching the recovery counts.
  CHECK(conn.execAndGet("SELECT count(*) FROM events WHERE outcome = 'reclaimed'").getInt64() ==
        conn.execAndGet("SELECT sum(recoveries) FROM jobs").getInt64());
  // The kills did land while leases were held.
  CHECK(conn.execAndGet("SELECT sum(recoveries) FROM jobs").getInt64() > 0);
  // Every run but the last was cut short: they have no end time.
  CHECK(conn.execAndGet("SELECT count(*) FROM runs WHERE ended_at IS NOT NULL").getInt() >= 1);
}

TEST_CASE("crash: 120 random SIGKILLs under synchronous=NORMAL, then a clean finish") {
  RunCrashTrial("normal", 120, 1234);
}

TEST_CASE("crash: 100 random SIGKILLs under synchronous=FULL, then a clean finish") {
  RunCrashTrial("durable", 100, 5678);
}

}  // namespace
