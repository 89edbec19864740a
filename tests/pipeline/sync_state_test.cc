// sync and the run's state end to end: named books run alone (--barcodes / --barcodes-file do
// not also run the run's other open jobs), and the database backup never silently replaces a
// backup holding more books.
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/pipeline/checkpoint_journal.h"
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

// ---- the job checkpoint (checkpoint_journal.h) ----

// Exactly the text earlier releases stored: a run they left resumes with its checkpoints.
TEST_CASE("job checkpoint: the stored form is the one earlier runs wrote, both ways") {
  const std::string checked = R"({"etag":"3f2a-b","size":123456})";
  const std::string uploading =
      R"({"etag":"3f2a-b","size":20,"upload":{"id":"u-1","part_size":8,"parts":)"
      R"([{"etag":"p1","n":1,"size":8},{"etag":"p2","n":2,"size":8}]}})";
  JobCheckpoint a = DecodeCheckpoint(checked);
  CHECK(a.archive == CheckedArchive{"3f2a-b", 123456});
  CHECK_FALSE(a.upload.has_value());
  CHECK(EncodeCheckpoint(a) == checked);
  JobCheckpoint b = DecodeCheckpoint(uploading);
  CHECK(b.archive == CheckedArchive{"3f2a-b", 20});
  REQUIRE(b.upload.has_value());
  CHECK(b.upload->upload_id == "u-1");
  CHECK(b.upload->part_size == 8);
  REQUIRE(b.upload->parts.size() == 2);
  CHECK(b.upload->parts[1].number == 2);
  CHECK(b.upload->parts[1].size == 8);
  CHECK(b.upload->parts[1].etag == "p2");
  CHECK(EncodeCheckpoint(b) == uploading);
}

TEST_CASE("job checkpoint: unreadable text or fields of the wrong type read as unknown") {
  for (const char* text : {"", "not json", "[1,2]", "{}", R"({"etag": 5, "size": "12"})",
                           R"({"etag": null, "size": 1.5, "upload": 3})",
                           R"({"upload": {"id": 7, "part_size": "8", "parts": 3}})",
                           R"({"upload": {"id": "u", "part_size": -8, "parts": [1, "x"]}})"}) {
    CAPTURE(text);
    JobCheckpoint cp = DecodeCheckpoint(text);
    CHECK(cp.archive.etag.empty());
    CHECK(cp.archive.size == -1);
    CHECK_FALSE(cp.upload.has_value());
  }
  // An upload without an id or a part size cannot be resumed: none.
  CHECK_FALSE(DecodeCheckpoint(R"({"upload": {"id": "", "part_size": 8, "parts": []}})")
                  .upload.has_value());
}

// A job whose stored checkpoint has fields of the wrong type (a hand-edited or damaged row) was
// read with json::value(), which throws on a type mismatch: the worker thread's exception
// aborted the whole sync. Now the fields read as unknown and the book is fetched afresh.
TEST_CASE("sync: a checked job whose checkpoint has fields of the wrong type is downloaded afresh") {
  SyncEnv env(30);
  auto all = ConvertedBarcodes(env);
  REQUIRE(all.size() >= 4);
  std::vector<std::string> books(all.begin(), all.begin() + 4);
  std::string list;
  for (const auto& b : books) list += (list.empty() ? "" : ",") + b;
  // Books checked, then held at `checked` by a 403 on their staged download (the run stops).
  auto rule = fake::ParseFaultRule(R"({"endpoint": "archive_get", "status": 403})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  auto first = Cli(env.SyncArgs({"--barcodes", list, "--stream-max-mb", "0", "--no-inventory"}));
  INFO(first.out << first.err);
  REQUIRE(first.code == 1);
  REQUIRE(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'checked' AND barcode IN "
                  "(SELECT barcode FROM job_checkpoints)") >= 1);
  {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE);
    db.exec(R"(UPDATE job_checkpoints SET data = '{"etag": 5, "size": "12"}')");
  }
  env.server->ClearFaults();
  std::string log = (env.tmp.path() / "resume.log").string();
  int code = WaitChild(SpawnGrinJobs(env.SyncArgs({"--barcodes", list}), log));
  INFO(grin::testing::ReadFile(log));
  CHECK(code == 0);
  auto up = env.Uploaded();
  for (const auto& b : books) CHECK(up.count(b) == 1);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
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
  PointRunAtSwift(env, swift, suffix);
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
