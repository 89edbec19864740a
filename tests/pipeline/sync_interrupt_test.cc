// sync at its edges: a signal before the pipeline starts (queue listings, GRIN's _failed list)
// ends the real binary cleanly with 130, and a 416 on a resumed staged download restarts it from
// zero instead of failing the book.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

std::vector<std::string> ConvertedBarcodes(SyncEnv& env) {
  int64_t total = 0;
  auto converted = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1000,
                                                    &total);
  std::vector<std::string> all;
  for (int64_t i : converted) all.push_back(fake::Corpus::BarcodeAt(i));
  std::sort(all.begin(), all.end());
  return all;
}

void AddFault(SyncEnv& env, const std::string& json) {
  auto r = fake::ParseFaultRule(json);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  env.server->AddFault(*r);
}

// Spawns sync, waits until GRIN holds the request of `endpoint` (a slow_first_byte fault on it),
// sends one SIGINT. Returns the raw wait status.
int InterruptDuring(SyncEnv& env, const std::string& endpoint, const std::string& log) {
  AddFault(env, R"({"endpoint": ")" + endpoint +
                    R"(", "action": "slow_first_byte", "delay_ms": 1500, "times": 1})");
  pid_t pid = SpawnGrinJobs(env.SyncArgs({"--queue", "converted"}), log);
  bool held = false;
  for (int i = 0; i < 600 && !held; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    held = env.server->Faults()[0].fires > 0;
  }
  REQUIRE(held);
  kill(pid, SIGINT);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return status;
}

TEST_CASE("a SIGINT while the converted queue is listed ends sync with 130 and enqueues nothing") {
  SyncEnv env(30);
  std::string log = (env.tmp.path() / "sync.log").string();
  int status = InterruptDuring(env, "converted", log);
  std::string out = grin::testing::ReadFile(log);
  INFO(out);
  // Before: the default action killed the process (no exit status, the run never ended).
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(out.find("interrupted before any book was started") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 0);
  CHECK(env.Sql("SELECT count(*) FROM runs WHERE ended_at IS NULL") == 0);
  // The rerun does the whole selection.
  auto again = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'") ==
        static_cast<int64_t>(ConvertedBarcodes(env).size()));
}

TEST_CASE("a SIGINT while GRIN's _failed list is fetched ends sync with 130, nothing leased") {
  SyncEnv env(30);
  std::string log = (env.tmp.path() / "sync.log").string();
  int status = InterruptDuring(env, "failed", log);
  std::string out = grin::testing::ReadFile(log);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  // The jobs were enqueued (one transaction) before the signal; none was started.
  CHECK(env.Sql("SELECT count(*) FROM jobs") ==
        static_cast<int64_t>(ConvertedBarcodes(env).size()));
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased' OR stage <> 'pending'") == 0);
  CHECK(env.Sql("SELECT count(*) FROM runs WHERE ended_at IS NULL") == 0);
  auto again = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed'") == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'") ==
        static_cast<int64_t>(ConvertedBarcodes(env).size()));
}

TEST_CASE("a 416 on a resumed staged download restarts it from zero, the book is stored") {
  SyncEnv env(20, 0.6, 404, 60'000);
  auto all = ConvertedBarcodes(env);
  REQUIRE(!all.empty());
  const std::string bc = all[0];
  // The first attempt's GETs (the transport tries 4 times) are all cut short, so a partial stays
  // in staging; the next attempt's ranged GET gets a 416.
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + bc +
                    R"(", "action": "truncate", "at_byte": 20000, "times": 4})");
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + bc +
                    R"(", "action": "unsatisfiable", "after": 4, "times": 1})");
  auto r = Cli(env.SyncArgs({"--barcodes", bc, "--stream-max-mb", "0", "--retry-base-ms", "20"}));
  INFO(r.out << r.err);
  REQUIRE(env.server->Stats().endpoints["archive_get"].by_status[416] == 1);  // a ranged GET
  // Before: the book was dead at once (download_failed, permanent).
  CHECK(r.code == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded' AND status <> 'dead'") == 1);
  CHECK(env.Gets(bc) == 6);  // 4 cut, the 416, then the whole archive
  // The stored archive is the whole book: the real gpg's decryption of what GRIN serves.
  CHECK(grin::testing::ReadFile(env.RawPath(bc)) == env.FixturePlaintext(bc));
}

}  // namespace
}  // namespace grin::pipeline::testing
