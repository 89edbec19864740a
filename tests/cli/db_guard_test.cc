// The run database as the CLI guards it: only init creates a schema (a 0-byte, missing or
// non-database books.db is exit 4 for every other command, left untouched); `sql` runs exactly
// one read-only statement; status, sql and export work on a read-only copy of a run; a corrupt
// database is exit 4.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "cli/cli.h"
#include "tests/cli/cli_harness.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using grin::testing::TempDir;

using testing::Cli;
using testing::OneLine;

// A run with `books` rows in books and a few jobs, its WAL checkpointed into books.db.
std::string MakeRun(const TempDir& dir, const std::string& name, int books) {
  std::string run = dir.file(name);
  REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "TEST"}).code == kExitOk);
  SQLite::Database db(run + "/books.db", SQLite::OPEN_READWRITE);
  SQLite::Statement ins(db, "INSERT INTO books(barcode, title, created_at, updated_at) "
                            "VALUES (?1, ?2, 'x', 'x')");
  for (int i = 0; i < books; ++i) {
    ins.reset();
    ins.bind(1, "GUARD" + std::to_string(10000 + i));
    ins.bind(2, std::string(200, 't'));
    ins.exec();
  }
  return run;
}

std::vector<std::vector<std::string>> Commands(const std::string& run) {
  return {{"status", "--run-dir", run},
          {"sql", "--run-dir", run, "SELECT count(*) FROM books"},
          {"export", "--run-dir", run},
          {"retry", "--run-dir", run},
          {"sync", "--run-dir", run, "--barcodes", "GUARD10000"},
          {"collect", "--run-dir", run}};
}

TEST_CASE("a 0-byte books.db is never re-initialised: every command but init exits 4") {
  TempDir dir;
  std::string run = MakeRun(dir, "r", 3);
  grin::testing::WriteFile(run + "/books.db", "");
  for (auto& args : Commands(run)) {
    CAPTURE(args[0]);
    auto r = Cli(args);
    CHECK(r.code == kExitDatabase);
    CHECK(OneLine(r.err));
    CHECK(r.err.find("books.db") != std::string::npos);
    CHECK(r.err.find("no grin-jobs database") != std::string::npos);
    // Before: sync created a fresh schema in it and went on (exit 0).
    CHECK(fs::file_size(run + "/books.db") == 0);
  }
  // init on the existing run refuses too (it would empty the run's state); a new run may.
  auto again = Cli({"init", "--run-dir", run});
  CHECK(again.code == kExitDatabase);
  CHECK(fs::file_size(run + "/books.db") == 0);
  std::string fresh = dir.file("fresh");
  fs::create_directories(fresh);
  grin::testing::WriteFile(fresh + "/books.db", "");
  CHECK(Cli({"init", "--run-dir", fresh}).code == kExitOk);
  CHECK(Cli({"status", "--run-dir", fresh}).code == kExitOk);
}

TEST_CASE("a missing or non-database books.db: exit 4, one line, nothing created") {
  TempDir dir;
  std::string run = MakeRun(dir, "r", 3);
  fs::remove(run + "/books.db");
  for (auto& args : Commands(run)) {
    CAPTURE(args[0]);
    auto r = Cli(args);
    CHECK(r.code == kExitDatabase);
    CHECK(OneLine(r.err));
    CHECK_FALSE(fs::exists(run + "/books.db"));
  }
  grin::testing::WriteFile(run + "/books.db", std::string(8192, 'q'));
  for (auto& args : Commands(run)) {
    CAPTURE(args[0]);
    auto r = Cli(args);
    CHECK(r.code == kExitDatabase);
    CHECK(OneLine(r.err));
  }
  CHECK(grin::testing::ReadFile(run + "/books.db") == std::string(8192, 'q'));
}

TEST_CASE("sql runs exactly one read-only statement") {
  TempDir dir;
  std::string run = MakeRun(dir, "r", 3);
  for (const char* q : {"SELECT 1; DELETE FROM books", "SELECT 1;SELECT 2",
                        "SELECT 1; PRAGMA writable_schema = 1", "PRAGMA writable_schema = 1",
                        "PRAGMA writable_schema", "PRAGMA user_version = 7",
                        "PRAGMA journal_mode = DELETE", "DELETE FROM books",
                        "ATTACH 'x.db' AS x"}) {
    CAPTURE(q);
    auto r = Cli({"sql", "--run-dir", run, q});
    CHECK(r.code == kExitUsage);
    CHECK(OneLine(r.err));
    CHECK(r.out.empty());
  }
  CHECK(Cli({"sql", "--run-dir", run, "SELECT count(*) FROM books"}).out.find("3") !=
        std::string::npos);
  for (const char* q : {"SELECT count(*) FROM books;", "SELECT 1; -- a comment",
                        "PRAGMA table_info(books)", "PRAGMA integrity_check",
                        "PRAGMA user_version", "SELECT * FROM pragma_table_info('jobs')"}) {
    CAPTURE(q);
    auto r = Cli({"sql", "--run-dir", run, q});
    CHECK(r.code == kExitOk);
    CHECK(r.err.empty());
  }
}

TEST_CASE("sql on a corrupt database exits 4") {
  TempDir dir;
  std::string run = MakeRun(dir, "r", 400);
  {
    // Every page but the first (the schema) overwritten.
    std::string bytes = grin::testing::ReadFile(run + "/books.db");
    REQUIRE(bytes.size() > 3 * 4096);
    for (size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0xA5);
    grin::testing::WriteFile(run + "/books.db", bytes);
  }
  auto r = Cli({"sql", "--run-dir", run, "SELECT count(*), max(title) FROM books"});
  CHECK(r.code == kExitDatabase);
  CHECK(OneLine(r.err));
  CHECK(r.err.find("books.db") != std::string::npos);
}

// Runs status, sql and export (output outside the run) on `run` inside a child process where
// the run is read-only: as root, a read-only bind mount of it in a private mount namespace;
// otherwise chmod 0555 on the directory and 0444 on books.db. Returns a bitmask of the commands
// that did not exit 0 (64: the setup failed).
int ReadOnlyCommands(const std::string& run, const std::string& out_dir) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (geteuid() == 0) {
      if (unshare(CLONE_NEWNS) != 0) _exit(64);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(64);
      if (mount(run.c_str(), run.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(64);
      if (mount(nullptr, run.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
        _exit(64);
      }
    } else {
      chmod((run + "/books.db").c_str(), 0444);
      chmod(run.c_str(), 0555);
    }
    int failed = 0;
    auto st = Cli({"status", "--run-dir", run, "--json"});
    if (st.code != 0 || st.out.find("\"books\":250") == std::string::npos) failed |= 1;
    auto sq = Cli({"sql", "--run-dir", run, "--format", "csv", "SELECT count(*) FROM books"});
    if (sq.code != 0 || sq.out.find("250") == std::string::npos) failed |= 2;
    auto ex = Cli({"export", "--run-dir", run, "--output", out_dir + "/books.csv"});
    if (ex.code != 0) failed |= 4;
    // Into the read-only run folder itself: one line that says what to do.
    auto into = Cli({"export", "--run-dir", run});
    if (into.code == 0 || into.err.find("--output") == std::string::npos ||
        into.err.find('\n') != into.err.size() - 1) {
      failed |= 8;
    }
    if (failed) {
      std::fprintf(stderr, "%s%s%s%s", st.err.c_str(), sq.err.c_str(), ex.err.c_str(),
                   into.err.c_str());
    }
    _exit(failed);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  chmod(run.c_str(), 0755);
  chmod((run + "/books.db").c_str(), 0644);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST_CASE("status, sql and export work on a read-only copy of a run") {
  TempDir dir;
  std::string run = MakeRun(dir, "r", 250);
  std::string out = dir.file("out");
  fs::create_directories(out);
  REQUIRE_FALSE(fs::exists(run + "/books.db-wal"));
  REQUIRE_FALSE(fs::exists(run + "/books.db-shm"));
  // Before: all three exited 4 (SQLite could not create books.db-shm).
  CHECK(ReadOnlyCommands(run, out) == 0);
  std::string csv = grin::testing::ReadFile(out + "/books.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 251);
  // Nothing was written into the run.
  CHECK_FALSE(fs::exists(run + "/books.db-shm"));
}

}  // namespace
}  // namespace grin::cli
