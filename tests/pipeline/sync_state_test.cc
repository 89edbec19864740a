// sync and the run's state end to end: named books run alone (--barcodes / --barcodes-file do
// not also run the run's other open jobs), and the database backup never silently replaces a
// backup holding more books.
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "storage/sqlite_state_store.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

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

TEST_CASE("sync never replaces books_latest.db.gz with a backup holding fewer books silently") {
  SyncEnv env(30);
  auto all = ConvertedBarcodes(env);
  REQUIRE(all.size() >= 4);
  auto r = Cli(env.SyncArgs({"--barcodes", all[0] + "," + all[1] + "," + all[2] + "," + all[3]}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("warning") == std::string::npos);
  std::string meta = env.storage + "/meta/run";  // the run's meta scope (its name: "run")
  auto info = nlohmann::json::parse(
      grin::testing::ReadFile(meta + "/books_latest.db.gz.grin-meta.json"));
  CHECK(info["metadata"]["books"] == "4");
  // The books table loses rows (an operator's mistake, a bad restore): the next sync's backup
  // holds fewer books.
  {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM books WHERE barcode <> '" + all[0] + "'");
  }
  auto again = Cli(env.SyncArgs());
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  // Before: books_latest.db.gz was overwritten with the 1-book backup and nothing said so.
  CHECK(again.err.find("warning: meta/run/books_latest.db.gz: the new backup holds 1 books, the "
                       "stored one 4; kept the stored one as meta/run/books_latest_kept_") !=
        std::string::npos);
  int kept = 0;
  for (const auto& e : std::filesystem::directory_iterator(meta)) {
    std::string name = e.path().filename().string();
    if (name.rfind("books_latest_kept_", 0) == 0 && name.size() > 6 &&
        name.substr(name.size() - 6) == ".db.gz") {
      ++kept;
      std::string db = env.tmp.file("kept.db");
      grin::testing::WriteFile(db, Gunzip(e.path().string()));
      SQLite::Database k(db, SQLite::OPEN_READONLY);
      CHECK(k.execAndGet("SELECT count(*) FROM books").getInt() == 4);
    }
  }
  CHECK(kept == 1);
}

TEST_CASE("a second Ctrl-C gives the books in flight back: the next run counts no crash") {
  // Big pages and a slow GRIN: books stay in flight for seconds.
  SyncEnv env(20, 0.6, 404, 300'000);
  std::string log = (env.tmp.path() / "sync.log").string();
  auto args = env.SyncArgs({"--queue", "converted", "--workers", "2", "--grin-bandwidth",
                            "150000"});
  pid_t pid = SpawnGrinJobs(args, log);
  bool in_flight = false;
  for (int i = 0; i < 600 && !in_flight; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    in_flight = std::filesystem::exists(env.run + "/books.db") &&
                env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") > 0;
  }
  REQUIRE(in_flight);
  kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGINT);
  int code = WaitChild(pid);
  std::string out = grin::testing::ReadFile(log);
  INFO(out);
  CHECK(code == 130);
  // Before: the process left at once holding its leases; the next run counted them as crashed.
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  CHECK(env.Sql("SELECT forced_exit FROM runs ORDER BY run_id DESC LIMIT 1") == 1);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'released' AND "
                "json_extract(detail, '$.forced_exit')") > 0);
  // The next run takes nothing back and counts no crash.
  auto next = Cli(env.SyncArgs({"--limit", "1", "--barcodes", ConvertedBarcodes(env)[0]}));
  INFO(next.out << next.err);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed'") == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE recoveries > 0") == 0);
}

TEST_CASE("on S3 (Swift) too, the backup holding more books is kept, checked with boto3") {
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  SyncEnv env(30, 0.6, 505);
  std::string suffix = "bk" + std::to_string(::getpid());
  std::string creds = (env.tmp.path() / "aws_credentials").string();
  grin::testing::WriteFile(creds, "[default]\naws_access_key_id = " +
                                      swift.get("GRIN_S3_ACCESS_KEY") +
                                      "\naws_secret_access_key = " +
                                      swift.get("GRIN_S3_SECRET_KEY") + "\n");
  std::filesystem::permissions(creds, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["storage"] = {{"type", "s3"},
                    {"endpoint_url", swift.get("GRIN_S3_ENDPOINT")},
                    {"region", swift.get("GRIN_S3_REGION")},
                    {"ca_file", swift.get("GRIN_S3_CA_FILE")},
                    {"credentials_file", creds},
                    {"path_style", true},
                    {"bucket_raw", "grin-raw-" + suffix},
                    {"bucket_meta", "grin-meta-" + suffix},
                    {"bucket_full", "grin-full-" + suffix}};
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  auto all = ConvertedBarcodes(env);
  auto r = Cli(env.SyncArgs({"--barcodes", all[0] + "," + all[1] + "," + all[2]}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM books WHERE barcode <> '" + all[0] + "'");
  }
  auto again = Cli(env.SyncArgs());
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(again.err.find("the new backup holds 1 books, the stored one 3; kept the stored one as "
                       "grin-meta-" + suffix + "/run/books_latest_kept_") != std::string::npos);
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  CHECK(RunProgram({"python3", std::string(GRIN_SOURCE_DIR) + "/tests/pipeline/verify_backup_kept.py",
                    "grin-meta-" + suffix, "1", "3", env.tmp.path().string(), "run"}) == 0);
}

}  // namespace
}  // namespace grin::pipeline::testing
