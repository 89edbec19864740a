// Crash test: a child process claims and completes thousands of jobs and is SIGKILLed at random
// moments (>= 200 kill points across this file); after each, a new run continues. At the end:
// zero jobs lost, zero completed twice, events consistent with the final state.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <poll.h>
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

// Starts the child with its stdout on a pipe; *ready_fd gets the read end (the child writes 'R'
// once it holds the store and starts working).
pid_t Spawn(const std::string& db, int items, const char* mode, uint64_t seed, int* ready_fd) {
  std::string items_s = std::to_string(items), seed_s = std::to_string(seed);
  std::string prog = GRIN_CRASH_CHILD;
  std::vector<char*> argv = {prog.data(), const_cast<char*>(db.c_str()), items_s.data(),
                             const_cast<char*>(mode), seed_s.data(), nullptr};
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, prog.c_str(), &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  *ready_fd = fds[0];
  return pid;
}

// Waits (up to 30 s) for the child's ready byte; false if it ended first.
bool WaitReady(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 30'000) <= 0) return false;
  char c = 0;
  return read(fd, &c, 1) == 1 && c == 'R';
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
  const int kItems = 4000;
  std::mt19937_64 rng(seed);
  int killed_mid_run = 0;
  for (int k = 0; k < kills; ++k) {
    int ready = -1;
    pid_t pid = Spawn(db, kItems, mode, seed + static_cast<uint64_t>(k), &ready);
    // Kill at a random moment of real work (sanitizer builds start much slower, so the clock
    // starts when the child says it is working).
    if (WaitReady(ready)) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 6000));
    }
    kill(pid, SIGKILL);
    close(ready);
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
  int ready = -1;
  pid_t pid = Spawn(db, kItems, mode, seed + 999'999, &ready);
  char sink[16];
  while (read(ready, sink, sizeof sink) > 0) {
  }
  close(ready);
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
  // job_counts (kept by the writer, in the same transactions) survived every kill exactly.
  CHECK(conn.execAndGet("SELECT n FROM job_counts WHERE stage = 'uploaded'").getInt() == kItems);
  CHECK(conn.execAndGet("SELECT sum(n) FROM job_counts").getInt() == kItems);
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
