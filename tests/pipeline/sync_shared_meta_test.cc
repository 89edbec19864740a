// Runs sharing one meta bucket: each run's CSV, database backup and process summary (and their
// timestamped copies) live under "<run name>/" in the meta bucket, so a small run never replaces
// a big run's backup; raw and full keys stay unscoped. Against the real Swift S3 server
// (GRIN_S3_ENV; IP-address endpoint, no path_style: chosen automatically) checked with boto3,
// and against the local folder store for the migration from unscoped objects and bad names.

#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

void SetStorage(SyncEnv& env, const nlohmann::json& storage, const std::string& run_name) {
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["storage"] = storage;
  if (!run_name.empty()) cfg["run_name"] = run_name;
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
}

TEST_CASE("two runs sharing a meta bucket keep their own backups, CSVs and summaries" *
          doctest::test_suite("integration")) {
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  SyncEnv big(40, 0.6, 11);
  SyncEnv small(12, 0.6, 12);
  const std::string suffix = std::to_string(::getpid());
  const std::string creds = WriteSwiftCredentials(big, swift);
  // An IP-address endpoint and no path_style: path style is chosen (as botocore does).
  nlohmann::json storage = {{"type", "s3"},
                            {"endpoint_url", swift.get("GRIN_S3_ENDPOINT")},
                            {"region", swift.get("GRIN_S3_REGION")},
                            {"ca_file", swift.get("GRIN_S3_CA_FILE")},
                            {"credentials_file", creds},
                            {"bucket_raw", "grin-shraw-" + suffix},
                            {"bucket_meta", "grin-shmeta-" + suffix},
                            {"bucket_full", "grin-shfull-" + suffix}};
  SetStorage(big, storage, "");  // run_name from init: the run directory's name, "run"
  SetStorage(small, storage, "small-run");

  auto a = Cli(big.SyncArgs({"--queue", "converted", "--limit", "8"}));
  INFO(a.out << a.err);
  REQUIRE(a.code == 0);
  auto b = Cli(small.SyncArgs({"--queue", "converted", "--limit", "2"}));
  INFO(b.out << b.err);
  REQUIRE(b.code == 0);
  // Before: the small run's backup replaced the big one's books_latest.db.gz (one warning).
  CHECK(b.err.find("warning") == std::string::npos);
  const int64_t big_books = big.Sql("SELECT count(*) FROM books");
  const int64_t small_books = small.Sql("SELECT count(*) FROM books");
  REQUIRE(big_books > small_books);
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  CHECK(RunProgram({"python3", std::string(GRIN_SOURCE_DIR) + "/tests/pipeline/verify_shared_meta.py",
                    "grin-shmeta-" + suffix, big.tmp.path().string(),
                    "run=" + std::to_string(big_books),
                    "small-run=" + std::to_string(small_books)}) == 0);
}

TEST_CASE("an unscoped backup from before run scoping is left untouched, the run's goes under "
          "its name") {
  SyncEnv env(20);
  const std::string meta = env.storage + "/meta";
  std::filesystem::create_directories(meta);
  grin::testing::WriteFile(meta + "/books_latest.db.gz", "an older version's backup");
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "2"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(grin::testing::ReadFile(meta + "/books_latest.db.gz") == "an older version's backup");
  CHECK(std::filesystem::exists(meta + "/run/books_latest.db.gz"));
  CHECK(std::filesystem::exists(meta + "/run/books_latest.csv.gz"));
  CHECK(std::filesystem::exists(meta + "/run/process_summary.json"));
  int stamped = 0;
  for (const auto& e : std::filesystem::directory_iterator(meta + "/run/timestamped")) {
    std::string n = e.path().filename().string();
    if (n.size() > 21 && n.substr(n.size() - 21) == "_process_summary.json") ++stamped;
  }
  CHECK(stamped == 1);
  CHECK_FALSE(std::filesystem::exists(meta + "/books_latest.csv.gz"));
  CHECK_FALSE(std::filesystem::exists(meta + "/process_summary.json"));
}

TEST_CASE("a run_name that is not one key component stops sync before any work") {
  SyncEnv env(5);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["run_name"] = "../other";
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  auto r = Cli(env.SyncArgs());
  CHECK(r.code != 0);
  CHECK(r.err.find("run_name '../other'") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(env.server->Stats().barcodes.empty());
}

}  // namespace
}  // namespace grin::pipeline::testing
