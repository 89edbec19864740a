// The CLI core in-process: exit codes, output, and status/sql while a writer is busy.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "storage/sqlite_state_store.h"
#include "tests/cli/cli_harness.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

using grin::testing::TempDir;

using testing::Cli;
using testing::OneLine;

TEST_CASE("help, unknown commands and options") {
  CHECK(Cli({"--help"}).code == kExitOk);
  CHECK(Cli({"--help"}).out.find("status") != std::string::npos);
  CHECK(Cli({}).code == kExitUsage);
  auto r = Cli({"frobnicate"});
  CHECK(r.code == kExitUsage);
  CHECK(OneLine(r.err));
  for (const char* cmd : {"init", "status", "sql", "retry"}) {
    CAPTURE(cmd);
    auto h = Cli({cmd, "--help"});
    CHECK(h.code == kExitOk);
    CHECK(h.out.find("--run-dir") != std::string::npos);
  }
  auto bad = Cli({"status", "--no-such-option"});
  CHECK(bad.code == kExitUsage);
  CHECK(OneLine(bad.err));
  auto which = Cli({"status"});
  CHECK(which.code == kExitUsage);
  CHECK(which.err.find("--run-dir") != std::string::npos);
}

TEST_CASE("init creates a run once, status and sql read it") {
  TempDir dir;
  std::string run = dir.file("r1");
  auto r = Cli({"init", "--run-dir", run, "--library-directory", "Harvard"});
  CHECK(r.code == kExitOk);
  CHECK(r.out.find("created run") != std::string::npos);
  auto again = Cli({"init", "--run-dir", run});
  CHECK(again.code == kExitOk);
  CHECK(again.out.find("already exists") != std::string::npos);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(run + "/run_config.json"));
  CHECK(cfg["library_directory"] == "Harvard");
  CHECK(cfg["storage"]["type"] == "local");

  {
    storage::StateStoreOptions o;
    auto store = storage::SqliteStateStore::Open(run + "/books.db", o);
    REQUIRE(store.ok());
    REQUIRE((*store)->Enqueue({"ABC001", "ABC002", "ABC003", "ABC004"}).ok());
    auto items = (*store)->Claim(Stage::kPending, 3).value();
    REQUIRE((*store)->Complete(items[0], Stage::kUploaded).ok());
    REQUIRE((*store)->Complete(items[1], Stage::kChecked).ok());
    REQUIRE((*store)->Fail(items[2], ErrorClass::kPermanent, "http_404", "").ok());
  }
  auto st = Cli({"status", "--run-dir", run});
  CHECK(st.code == kExitOk);
  CHECK(st.out.find("4 jobs") != std::string::npos);
  CHECK(st.out.find("http_404") != std::string::npos);
  auto js = Cli({"status", "--run-dir", run, "--json"});
  REQUIRE(js.code == kExitOk);
  auto j = nlohmann::json::parse(js.out);
  CHECK(j["jobs"] == 4);
  CHECK(j["stages"]["uploaded"] == 1);
  CHECK(j["stages"]["checked"] == 1);
  CHECK(j["stages"]["pending"] == 2);
  CHECK(j["dead"] == 1);
  CHECK(j["failures"][0]["reason"] == "http_404");

  auto table = Cli({"sql", "--run-dir", run, "SELECT count(*) AS n FROM uploaded"});
  CHECK(table.code == kExitOk);
  CHECK(table.out == "n\n-\n1\n");
  auto csv = Cli({"sql", "--run-dir", run, "--format", "csv",
                  "SELECT barcode, 'a,b' AS x, NULL AS z FROM pending ORDER BY barcode"});
  CHECK(csv.out == "barcode,x,z\nABC003,\"a,b\",\nABC004,\"a,b\",\n");
  auto json = Cli({"sql", "--run-dir", run, "--format", "json",
                   "SELECT barcode, attempts FROM failed"});
  auto jj = nlohmann::json::parse(json.out);
  CHECK(jj.size() == 1);
  CHECK(jj[0]["barcode"] == "ABC003");
  CHECK(jj[0]["attempts"] == 1);

  // Writes are refused, and the data is unchanged.
  for (const char* q : {"DELETE FROM jobs", "UPDATE jobs SET stage='uploaded'",
                        "ATTACH DATABASE '/tmp/x.db' AS x", "DROP TABLE books",
                        "PRAGMA user_version = 7"}) {
    CAPTURE(q);
    auto w = Cli({"sql", "--run-dir", run, q});
    CHECK(w.code != kExitOk);
    CHECK(OneLine(w.err));
  }
  CHECK(Cli({"sql", "--run-dir", run, "SELECT count(*) FROM jobs"}).out.find("4") !=
        std::string::npos);
  auto bad = Cli({"sql", "--run-dir", run, "SELEC nonsense"});
  CHECK(bad.code == kExitUsage);
  CHECK(bad.err.find("SQL error") != std::string::npos);

  // retry brings the dead job back.
  auto rt = Cli({"retry", "--run-dir", run, "--reason", "http_4%"});
  CHECK(rt.code == kExitOk);
  CHECK(rt.out == "requeued 1 job\n");
  CHECK(Cli({"retry", "--run-dir", run, "--stage", "uploaded"}).code == kExitUsage);
}

TEST_CASE("retry on a run held by another writer exits 3, status still works") {
  TempDir dir;
  std::string run = dir.file("r2");
  REQUIRE(Cli({"init", "--run-dir", run}).code == kExitOk);
  storage::StateStoreOptions o;
  auto store = storage::SqliteStateStore::Open(run + "/books.db", o);
  REQUIRE(store.ok());
  auto r = Cli({"retry", "--run-dir", run});
  CHECK(r.code == kExitLocked);
  CHECK(OneLine(r.err));
  CHECK(r.err.find("in use") != std::string::npos);
  CHECK(Cli({"status", "--run-dir", run}).code == kExitOk);
  CHECK(Cli({"init", "--run-dir", run}).code == kExitLocked);
}

TEST_CASE("missing, corrupt and newer-schema databases: one line, exit 4") {
  TempDir dir;
  auto missing = Cli({"status", "--run-dir", dir.file("nothing")});
  CHECK(missing.code == kExitDatabase);
  CHECK(OneLine(missing.err));
  CHECK(missing.err.find("grin-jobs init") != std::string::npos);

  std::string run = dir.file("bad");
  REQUIRE(Cli({"init", "--run-dir", run}).code == kExitOk);
  grin::testing::WriteFile(run + "/books.db", std::string(10000, 'z'));
  for (const char* cmd : {"status", "sql", "retry"}) {
    CAPTURE(cmd);
    std::vector<std::string> args = {cmd, "--run-dir", run};
    if (std::string(cmd) == "sql") args.push_back("SELECT 1");
    auto r = Cli(args);
    CHECK(r.code == kExitDatabase);
    CHECK(OneLine(r.err));
    CHECK(r.err.find("books.db") != std::string::npos);
  }
  CHECK(grin::testing::ReadFile(run + "/books.db") == std::string(10000, 'z'));

  std::string newer = dir.file("newer");
  REQUIRE(Cli({"init", "--run-dir", newer}).code == kExitOk);
  {
    SQLite::Database db(newer + "/books.db", SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 999");
  }
  auto n = Cli({"status", "--run-dir", newer});
  CHECK(n.code == kExitDatabase);
  CHECK(n.err.find("newer grin-jobs") != std::string::npos);
}

TEST_CASE("status and sql answer correctly while a writer is busy") {
  TempDir dir;
  std::string run = dir.file("busy");
  REQUIRE(Cli({"init", "--run-dir", run}).code == kExitOk);
  storage::StateStoreOptions o;
  auto store = storage::SqliteStateStore::Open(run + "/books.db", o);
  REQUIRE(store.ok());
  std::vector<std::string> barcodes;
  for (int i = 0; i < 20000; ++i) barcodes.push_back("BUSY" + std::to_string(100000 + i));
  REQUIRE((*store)->Enqueue(barcodes).ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (;;) {
      auto items = (*store)->Claim(Stage::kPending, 8);
      if (!items.ok() || items->empty()) break;
      std::vector<Completion> c;
      for (auto& w : *items) c.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
      (void)(*store)->CompleteMany(std::move(c));
    }
    done = true;
  });
  int64_t last = -1;
  int reports = 0;
  while (!done || reports < 3) {
    auto r = Cli({"status", "--run-dir", run, "--json"});
    REQUIRE_MESSAGE(r.code == kExitOk, r.err);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["jobs"] == 20000);
    int64_t sum = 0;
    for (auto& [k, v] : j["stages"].items()) sum += v.get<int64_t>();
    CHECK(sum == 20000);  // every job in exactly one stage, at every moment
    int64_t up = j["stages"]["uploaded"];
    CHECK(up >= last);  // monotonic
    last = up;
    auto q = Cli({"sql", "--run-dir", run, "--format", "csv", "SELECT count(*) FROM uploaded"});
    REQUIRE_MESSAGE(q.code == kExitOk, q.err);
    ++reports;
  }
  writer.join();
  CHECK(reports >= 3);
  auto final_count = Cli({"sql", "--run-dir", run, "--format", "csv",
                          "SELECT count(*) AS n FROM uploaded"});
  CHECK(final_count.out == "n\n20000\n");
}

}  // namespace
}  // namespace grin::cli
