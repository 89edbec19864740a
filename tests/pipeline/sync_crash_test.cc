// grin-jobs sync as a child process: kill -9 at random moments (>= 30 across this file) and
// rerun; SIGINT once (drain, exit 0) and twice (exit at once). After every kill: no book that was
// already uploaded is downloaded from GRIN again; at the end every book is stored exactly once.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

// extra: e.g. {"--stream-max-mb", "0"} to kill the staged path (resumed downloads) instead of
// the streamed one.
pid_t SpawnSync(const SyncEnv& env, const std::string& log,
                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = env.SyncArgs({"--queue", "converted", "--workers", "2"});
  args.insert(args.end(), extra.begin(), extra.end());
  return SpawnGrinJobs(args, log);
}

int Wait(pid_t pid) { return WaitChild(pid); }

void CheckFinal(SyncEnv& env, int64_t converted) {
  CHECK(env.SqlText("PRAGMA integrity_check") == "ok");
  CHECK(static_cast<int64_t>(env.Uploaded().size()) == converted);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  // Exactly one completion per stage per book: nothing lost, nothing twice.
  CHECK(env.Sql("SELECT count(*) FROM (SELECT barcode, stage, count(*) AS n FROM events "
                "WHERE outcome = 'completed' GROUP BY barcode, stage HAVING n <> 1)") == 0);
  for (const auto& b : env.Uploaded()) {
    CAPTURE(b);
    CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
  }
}

void KillTrial(uint64_t seed, int kills, const std::vector<std::string>& extra = {}) {
  SyncEnv env(240, 0.6, seed);
  std::string log = (env.tmp.path() / "sync.log").string();
  std::mt19937_64 rng(seed);
  int mid_run = 0;
  for (int k = 0; k < kills; ++k) {
    auto before = env.Uploaded();
    std::map<std::string, int64_t> gets_before;
    for (const auto& b : before) gets_before[b] = env.Gets(b);
    pid_t pid = SpawnSync(env, log, extra);
    // Kill at a random moment of real work: once this run has stored a book (or after 20 s),
    // wait a random 0-60 ms more. Machines and sanitizer builds differ too much for fixed delays.
    size_t start = before.size();
    for (int i = 0; i < 2000 && env.Uploaded().size() <= start; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {  // finished before we could kill it
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid < 0) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    kill(pid, SIGKILL);
    int code = Wait(pid);
    if (code == 128 + SIGKILL) ++mid_run;
    else REQUIRE_MESSAGE(code == 0, "sync exited " << code << ": " << grin::testing::ReadFile(log));
    // Books uploaded before this run were not downloaded again during it.
    for (const auto& [b, n] : gets_before) {
      CAPTURE(b);
      CHECK(env.Gets(b) == n);
    }
  }
  MESSAGE(mid_run << " of " << kills << " sync runs killed mid-run");
  CHECK(mid_run >= kills / 2);
  auto before = env.Uploaded();
  std::map<std::string, int64_t> gets_before;
  for (const auto& b : before) gets_before[b] = env.Gets(b);
  pid_t pid = SpawnSync(env, log, extra);
  REQUIRE_MESSAGE(Wait(pid) == 0, grin::testing::ReadFile(log));
  for (const auto& [b, n] : gets_before) CHECK(env.Gets(b) == n);
  int64_t total = 0;
  env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 0, &total);
  CheckFinal(env, total);
  // Wasted archive bytes are bounded by the in-flight books of each killed run.
  MESSAGE("archive bytes fetched again after kills: " << env.server->Stats().wasted_bytes);
}

TEST_CASE("kill -9 at 16 random moments while streaming, then a clean finish") {
  KillTrial(101, 16);
}
TEST_CASE("kill -9 at 16 random moments while staging, then a clean finish") {
  KillTrial(202, 16, {"--stream-max-mb", "0"});
}

TEST_CASE("one SIGINT drains in-flight books and exits 130 (books left), two exit at once") {
  SyncEnv env(36, 0.6, 303);
  std::string log = (env.tmp.path() / "sync.log").string();
  pid_t pid = SpawnSync(env, log);
  // Wait for the first stored book, then ask politely.
  for (int i = 0; i < 600 && env.Uploaded().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGINT);
  int code = Wait(pid);
  std::string out = grin::testing::ReadFile(log);
  INFO(out);
  // Books were left: not exit 0, which means every selected book is done.
  CHECK(code == 130);
  CHECK(out.find("finishing sync for books in flight") != std::string::npos);
  CHECK(out.find("rerun the same command to continue") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  CHECK(env.SqlText("PRAGMA integrity_check") == "ok");

  pid = SpawnSync(env, log);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  code = Wait(pid);
  CHECK((code == 130 || code == 0));  // 0 only if it had already finished
  CHECK(env.SqlText("PRAGMA integrity_check") == "ok");
  // A rerun finishes everything.
  pid = SpawnSync(env, log);
  REQUIRE(Wait(pid) == 0);
  int64_t total = 0;
  env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 0, &total);
  CheckFinal(env, total);
}

}  // namespace
}  // namespace grin::pipeline::testing
