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
pid_t SpawnArgs(std::vector<std::string> args, int* ready_fd) {
  std::string prog = GRIN_CRASH_CHILD;
  std::vector<char*> argv = {prog.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
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

pid_t Spawn(const std::string& db, int items, const char* mode, uint64_t seed, int* ready_fd) {
  return SpawnArgs({db, std::to_string(items), mode, std::to_string(seed)}, ready_fd);
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
  // The kills did land while leases were held; every job completed since, which ended its
  // crash streak.
  CHECK(conn.execAndGet("SELECT count(*) FROM events WHERE outcome = 'reclaimed'").getInt64() > 0);
  CHECK(conn.execAndGet("SELECT sum(recoveries) FROM jobs").getInt64() == 0);
  // Every run but the last was cut short: they have no end time.
  CHECK(conn.execAndGet("SELECT count(*) FROM runs WHERE ended_at IS NOT NULL").getInt() >= 1);
}

TEST_CASE("crash: 120 random SIGKILLs under synchronous=NORMAL, then a clean finish") {
  RunCrashTrial("normal", 120, 1234);
}

TEST_CASE("crash: 100 random SIGKILLs under synchronous=FULL, then a clean finish") {
  RunCrashTrial("durable", 100, 5678);
}

// Crash streaks: a child claims POISON001 and is SIGKILLed, `kills` times in a row; before
// each kill it either completed another job after the claim (progress), gave its leases back as
// a forced exit (second Ctrl-C) does, or did nothing more. Returns POISON001's status:streak.
std::string PoisonAfterKills(const std::string& db, const char* mode, int kills) {
  for (int k = 0; k < kills; ++k) {
    int ready = -1;
    pid_t pid = SpawnArgs({db, "hold", mode, std::to_string(100 + k)}, &ready);
    bool working = WaitReady(ready);
    kill(pid, SIGKILL);
    close(ready);
    int code = WaitExit(pid);
    if (!working) {
      // POISON001 went dead (crash_loop) and is no longer claimable: the child says so.
      CHECK(code == 4);
      break;
    }
    CHECK(code == 128 + SIGKILL);
  }
  SQLite::Database conn(db, SQLite::OPEN_READONLY);
  return conn.execAndGet("SELECT status || ':' || recoveries FROM jobs WHERE barcode = "
                         "'POISON001'").getString();
}

TEST_CASE("crash streak: a book in flight during 8 kills with progress in between stays alive") {
  TempDir dir;
  // Before: every reclaim counted, so the 6th kill made it dead (crash_loop).
  CHECK(PoisonAfterKills(dir.file("books.db"), "progress", 8) == "leased:1");
}

TEST_CASE("crash streak: 6 kills in a row with no progress make the book dead (crash_loop)") {
  TempDir dir;
  CHECK(PoisonAfterKills(dir.file("books.db"), "still", 8) == "dead:6");
  SQLite::Database conn(dir.file("books.db"), SQLite::OPEN_READONLY);
  CHECK(conn.execAndGet("SELECT error_reason FROM jobs WHERE barcode = 'POISON001'")
            .getString() == "crash_loop");
}

TEST_CASE("crash streak: a forced exit (second Ctrl-C) gives leases back and never counts") {
  TempDir dir;
  std::string db = dir.file("books.db");
  CHECK(PoisonAfterKills(db, "forced", 8) == "ready:0");
  SQLite::Database conn(db, SQLite::OPEN_READONLY);
  CHECK(conn.execAndGet("SELECT count(*) FROM events WHERE outcome = 'reclaimed'").getInt() == 0);
  CHECK(conn.execAndGet("SELECT count(*) FROM runs WHERE forced_exit = 1").getInt() == 8);
}

}  // namespace
