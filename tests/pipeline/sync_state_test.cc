// sync and the run's state end to end: named books run alone (--barcodes / --barcodes-file do
// not also run the run's other open jobs), and the database backup never silently replaces a
// backup holding more books.
#include <nlohmann/json.hpp>

#include "storage/sqlite_state_store.h"
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

// Adds jobs for barcodes to the run, as an earlier (interrupted) sync would have left them.
void EnqueueOpenJobs(SyncEnv& env, const std::vector<std::string>& barcodes) {
  storage::StateStoreOptions o;
  o.create_if_missing = false;
  auto store = storage::SqliteStateStore::Open(env.run + "/books.db", o);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  REQUIRE((*store)->Enqueue(barcodes).ok());
}

TEST_CASE("sync --barcodes runs only the named books, not the run's other open jobs") {
  SyncEnv env(40);
  auto all = ConvertedBarcodes(env);
  REQUIRE(all.size() >= 14);
  std::vector<std::string> open(all.begin(), all.begin() + 11);
  EnqueueOpenJobs(env, open);
  // Two named books: one of the open jobs and one new.
  std::string a = all[3], b = all[12];
  auto r = Cli(env.SyncArgs({"--barcodes", a + "," + b}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // Before: the 10 other open jobs ran too.
  CHECK(env.Uploaded() == std::set<std::string>{a, b});
  CHECK(r.out.find(" 2 to do") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'pending' AND status = 'ready'") == 10);
  CHECK(env.Gets(all[0]) == 0);

  // --barcodes-file likewise.
  std::string file = env.run + "/some.txt";
  grin::testing::WriteFile(file, all[5] + "\n# a comment\n" + all[13] + "\n");
  auto f = Cli(env.SyncArgs({"--barcodes-file", file}));
  INFO(f.out << f.err);
  REQUIRE(f.code == 0);
  CHECK(env.Uploaded() == std::set<std::string>{a, b, all[5], all[13]});
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'pending'") == 9);

  // With no selection, sync continues every unfinished job.
  auto rest = Cli(env.SyncArgs());
  INFO(rest.out << rest.err);
  REQUIRE(rest.code == 0);
  CHECK(env.Uploaded().size() == 13);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage <> 'uploaded'") == 0);
}

}  // namespace
}  // namespace grin::pipeline::testing
