// Rows of the fault matrix (docs/reliability.md) shown by whole syncs against the fake GRIN over
// HTTPS: a wrong Content-Length on archive GETs, an archive re-converted (new ETag) while a run
// fetches it, and a run database that is read-only when sync starts. Every book ends stored
// byte-identical, or dead with a clear reason, or the run stops with one line and no book failed.
#include <sstream>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

void AddFault(SyncEnv& env, const std::string& rule) {
  auto r = fake::ParseFaultRule(rule);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  env.server->AddFault(*r);
}

std::vector<std::string> ConvertedBarcodes(SyncEnv& env, size_t n) {
  int64_t total = 0;
  std::vector<std::string> all;
  for (int64_t i : env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1000,
                                                    &total)) {
    all.push_back(fake::Corpus::BarcodeAt(i));
  }
  std::sort(all.begin(), all.end());
  if (all.size() > n) all.resize(n);
  return all;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& b : v) out += (out.empty() ? "" : ",") + b;
  return out;
}

std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Streamed (decrypted while downloading) and staged (--stream-max-mb 0) books.
std::vector<std::string> PathUnderTest() {
  std::vector<std::string> extra;
  SUBCASE("streamed") {}
  SUBCASE("staged") { extra = {"--stream-max-mb", "0"}; }
  return extra;
}

std::string Unquoted(std::string etag) {
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  return etag;
}

// The stored raw archive is the fixture's current version, decrypted by real gpg, and its
// metadata and the books row carry that version's ETag.
void CheckStoredCurrent(SyncEnv& env, const std::string& b) {
  CAPTURE(b);
  REQUIRE(std::filesystem::exists(env.RawPath(b)));
  CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
  auto meta = nlohmann::json::parse(grin::testing::ReadFile(env.RawPath(b) + ".grin-meta.json"));
  const std::string etag = Unquoted(env.server->CurrentETag("TEST", b));
  CHECK(meta["metadata"]["encrypted_etag"] == etag);
  CHECK(Unquoted(env.SqlText("SELECT encrypted_etag FROM books WHERE barcode = '" + b + "'")) ==
        etag);
}

int64_t Fires(SyncEnv& env) {
  int64_t n = 0;
  for (const auto& f : env.server->Faults()) n += f.fires;
  return n;
}

// ---- wrong Content-Length ----

TEST_CASE("matrix: a wrong Content-Length on archive GETs is retried, the book stored intact") {
  auto path = PathUnderTest();
  SyncEnv env(20, 0.6, 29);
  auto books = ConvertedBarcodes(env, 4);
  REQUIRE(books.size() == 4);
  // Declared short (the fake cuts the body to it: a well-formed but truncated archive) and
  // declared long (the connection closes before the promised bytes), once each per book.
  for (size_t i = 0; i < books.size(); ++i) {
    int64_t delta = i % 2 == 0 ? -700 : 900;
    AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + books[i] +
                      R"(", "times": 1, "action": "wrong_length", "length_delta": )" +
                      std::to_string(delta) + "}");
  }
  auto r = Cli(env.SyncArgs(Plus({"--barcodes", Join(books), "--retry-base-ms", "20"}, path)));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(Fires(env) == 4);
  CHECK(env.Uploaded().size() == books.size());
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  for (const auto& b : books) {
    CHECK(env.Gets(b) == 2);
    CheckStoredCurrent(env, b);
  }
  // Each bad GET was fetched again (never stored, never skipped): a declared-short body fails
  // decryption and the book's attempt; a declared-long one may be retried by the transport.
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'failed'") >= 2);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'failed'") <= 4);
  CHECK(std::filesystem::is_empty(env.run + "/staging"));
}

TEST_CASE("matrix: a Content-Length wrong on every GET ends the book dead with the reason") {
  auto path = PathUnderTest();
  SyncEnv env(20, 0.6, 31);
  auto books = ConvertedBarcodes(env, 4);
  REQUIRE(books.size() == 4);
  // Permanent for two books: one declared short, one declared long, on every GET.
  const std::string shorter = books[0], longer = books[1];
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + shorter +
                    R"(", "action": "wrong_length", "length_delta": -500})");
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + longer +
                    R"(", "action": "wrong_length", "length_delta": 500})");
  auto r = Cli(env.SyncArgs(Plus({"--barcodes", Join(books), "--retry-base-ms", "5"}, path)));
  INFO(r.out << r.err);
  // Declared long, the fake still sends every true byte before it closes: the body is cut off
  // each time, dead, streamed or staged (a new book has no HEAD: its size is the GET's
  // Content-Length, which lies every time; before, a staged book's HEAD told the true size and
  // the partial file was taken as complete).
  const bool staged = !path.empty();
  std::vector<std::pair<std::string, std::string>> dead = {{shorter, "archive_invalid"},
                                                           {longer, "download_failed"}};
  CHECK(r.code == 5);  // books ended dead
  CHECK(r.out.find(std::to_string(dead.size()) + " failed for good") != std::string::npos);
  auto up = env.Uploaded();
  CHECK(up.size() == books.size() - dead.size());
  for (size_t i = 2; i < books.size(); ++i) CheckStoredCurrent(env, books[i]);
  for (const auto& [victim, reason] : dead) {
    CAPTURE(victim);
    // Never stored wrong: no object, no uploaded row.
    CHECK_FALSE(std::filesystem::exists(env.RawPath(victim)));
    CHECK(up.count(victim) == 0);
    CHECK(env.SqlText("SELECT status FROM jobs WHERE barcode = '" + victim + "'") == "dead");
    CHECK(env.Sql("SELECT attempts FROM jobs WHERE barcode = '" + victim + "'") == 5);
    CHECK(env.Gets(victim) >= 5);
    // The reason names the fault (a body that does not decrypt, a short body), with the error.
    CHECK(env.SqlText("SELECT reason FROM failed WHERE barcode = '" + victim + "'") == reason);
    const std::string detail =
        env.SqlText("SELECT coalesce(detail, '') FROM failed WHERE barcode = '" + victim + "'");
    CAPTURE(detail);
    CHECK_FALSE(detail.empty());
  }
  if (staged) {
    // The dead book's partial download stays until the next run removes it (litter of a dead
    // job) — nothing else is left.
    for (const auto& e : std::filesystem::directory_iterator(env.run + "/staging")) {
      CHECK(e.path().filename().string() == longer + ".tar.gz.gpg");
    }
    auto again = Cli(env.SyncArgs({"--barcodes", Join(books)}));
    INFO(again.out << again.err);
  }
  CHECK(std::filesystem::is_empty(env.run + "/staging"));
}

// ---- ETag change mid-run ----

TEST_CASE("matrix: re-conversion between HEAD and GET stores the new archive and its ETag") {
  auto path = PathUnderTest();
  SyncEnv env(20, 0.6, 37);
  auto books = ConvertedBarcodes(env, 3);
  REQUIRE(books.size() == 3);
  const std::string victim = books[1];
  const std::string old_etag = env.server->CurrentETag("TEST", victim);
  const std::string old_plain = env.FixturePlaintext(victim);
  AddFault(env, R"({"endpoint": "archive_head", "barcode": ")" + victim +
                    R"(", "times": 1, "action": "reconvert"})");
  // --no-inventory: every book is HEADed before its GET.
  auto r = Cli(env.SyncArgs(
      Plus({"--barcodes", Join(books), "--retry-base-ms", "20", "--no-inventory"}, path)));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(Fires(env) == 1);
  REQUIRE(env.server->CurrentETag("TEST", victim) != old_etag);
  CHECK(env.Uploaded().size() == 3);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  for (const auto& b : books) CheckStoredCurrent(env, b);
  CHECK(grin::testing::ReadFile(env.RawPath(victim)) != old_plain);
}

TEST_CASE("matrix: re-conversion in the middle of a body stores the new archive, none dead") {
  auto path = PathUnderTest();
  SyncEnv env(20, 0.6, 41);
  auto books = ConvertedBarcodes(env, 3);
  REQUIRE(books.size() == 3);
  const std::string victim = books[0];
  const std::string old_etag = env.server->CurrentETag("TEST", victim);
  // The GET's headers carry the old ETag, its body switches to the new version at byte 1000.
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + victim +
                    R"(", "times": 1, "action": "reconvert", "at_byte": 1000})");
  auto r = Cli(env.SyncArgs(Plus({"--barcodes", Join(books), "--retry-base-ms", "20"}, path)));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(Fires(env) == 1);
  REQUIRE(env.server->CurrentETag("TEST", victim) != old_etag);
  CHECK(env.Uploaded().size() == 3);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  for (const auto& b : books) CheckStoredCurrent(env, b);
}

TEST_CASE("matrix: a staged download resumed after re-conversion restarts from zero") {
  SyncEnv env(20, 0.6, 43, /*image_bytes=*/20000);
  auto books = ConvertedBarcodes(env, 2);
  REQUIRE(books.size() == 2);
  const std::string victim = books[0];
  const std::string old_etag = env.server->CurrentETag("TEST", victim);
  // The transport retries a cut-off body itself (4 tries); all four are cut at byte 6000, and
  // on the last one the body switches to a new version at byte 2000. The attempt fails with a
  // staged partial file of mixed versions; the book's retry resumes it (Range + If-Range with
  // the old ETag) and must not append to it.
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + victim +
                    R"(", "nth": 4, "action": "reconvert", "at_byte": 2000})");
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + victim +
                    R"(", "times": 4, "action": "truncate", "at_byte": 6000})");
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books), "--retry-base-ms", "20",
                             "--stream-max-mb", "0", "--no-inventory"}));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(Fires(env) == 5);
  REQUIRE(env.server->CurrentETag("TEST", victim) != old_etag);
  auto st = env.server->Stats().barcodes["TEST/" + victim];
  // The resume was tried (If-Range failed, so no 206) and the body fetched whole again.
  CHECK(st.gets >= 5);
  CHECK(st.ranged_gets == 0);
  // Only the cut-off GET failed an attempt: the resume saw the If-Range mismatch and restarted
  // from zero itself (appending the new body to the old bytes would fail a second attempt).
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'failed' AND barcode = '" + victim +
                "'") == 1);
  CHECK(env.Uploaded().size() == 2);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  for (const auto& b : books) CheckStoredCurrent(env, b);
  CHECK(std::filesystem::is_empty(env.run + "/staging"));
}

// ---- read-only run database ----

// A child process in which `run` is a read-only bind mount (a private mount namespace): it runs
// `args` there, writes the result to `<result>.ro.json`, waits for Continue(), remounts the run
// read-write, runs `args` again and writes `<result>.rw.json`.
class ReadOnlyRun {
 public:
  ReadOnlyRun(const std::string& run, const std::vector<std::string>& args,
              const std::string& result) {
    REQUIRE(pipe(go_) == 0);
    REQUIRE(pipe(ready_) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      auto report = [&](char c) { (void)!write(ready_[1], &c, 1); };
      if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
          mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          mount(run.c_str(), run.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
          mount(nullptr, run.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
        report('s');
        _exit(64);
      }
      auto ro = Cli(args);
      std::ofstream(result + ".ro.json")
          << nlohmann::json{{"code", ro.code}, {"out", ro.out}, {"err", ro.err}}.dump();
      report('r');
      char c = 0;
      if (read(go_[0], &c, 1) != 1) _exit(66);
      if (mount(nullptr, run.c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr) != 0) _exit(65);
      auto rw = Cli(args);
      std::ofstream(result + ".rw.json")
          << nlohmann::json{{"code", rw.code}, {"out", rw.out}, {"err", rw.err}}.dump();
      _exit(0);
    }
    char c = 0;
    REQUIRE(read(ready_[0], &c, 1) == 1);
    mounted_ = c == 'r';
  }
  ~ReadOnlyRun() {
    if (pid_ > 0) {
      Continue();
      (void)Wait();
    }
    for (int fd : {go_[0], go_[1], ready_[0], ready_[1]}) close(fd);
  }
  bool mounted() const { return mounted_; }
  void Continue() {
    if (go_[1] >= 0) {
      (void)!write(go_[1], "g", 1);
      close(go_[1]);
      go_[1] = -1;
    }
  }
  int Wait() {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

 private:
  int go_[2] = {-1, -1};
  int ready_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool mounted_ = false;
};

TEST_CASE("matrix: a read-only run database stops sync with one line, none dead, then completes") {
  SyncEnv env(30, 0.6, 47);
  auto books = ConvertedBarcodes(env, 8);
  REQUIRE(books.size() == 8);
  // A run with state: three books done, five not started.
  auto first = Cli(env.SyncArgs({"--barcodes", Join({books[0], books[1], books[2]})}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  const int64_t jobs_before = env.Sql("SELECT count(*) FROM jobs");
  const int64_t events_before = env.Sql("SELECT count(*) FROM events");
  const std::string result = (env.tmp.path() / "result").string();
  ReadOnlyRun child(env.run, env.SyncArgs({"--barcodes", Join(books)}), result);
  if (!child.mounted()) {
    MESSAGE("skipped: needs root and a private mount namespace for a read-only bind mount");
    return;
  }
  auto ro = nlohmann::json::parse(grin::testing::ReadFile(result + ".ro.json"));
  // The error, without the warning that the read-only run directory takes no log file either.
  std::string ro_err;
  {
    std::istringstream in(ro["err"].get<std::string>());
    for (std::string line; std::getline(in, line);) {
      if (line.find("warning: no log file") == std::string::npos) ro_err += line + "\n";
    }
  }
  const int ro_code = ro["code"];
  INFO("read-only run: " << ro["out"].get<std::string>() << ro_err);
  CHECK((ro_code == 4 || ro_code == 1));
  // One line, naming the file under the run directory and why.
  CHECK(!ro_err.empty());
  CHECK(ro_err.find('\n') == ro_err.size() - 1);
  CHECK(ro_err.find(env.run) != std::string::npos);
  std::string lower = ro_err;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  CHECK(lower.find("read-only") != std::string::npos);
  // The state store is untouched: nothing fetched, no job added, failed or dead.
  for (size_t i = 3; i < books.size(); ++i) CHECK(env.Gets(books[i]) == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == jobs_before);
  CHECK(env.Sql("SELECT count(*) FROM events") == events_before);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status IN ('dead', 'retry')") == 0);

  // Remounted read-write: the same command completes.
  child.Continue();
  REQUIRE(child.Wait() == 0);
  auto rw = nlohmann::json::parse(grin::testing::ReadFile(result + ".rw.json"));
  INFO("writable run: " << rw["out"].get<std::string>() << rw["err"].get<std::string>());
  CHECK(rw["code"] == 0);
  CHECK(env.Uploaded().size() == books.size());
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  for (const auto& b : books) CheckStoredCurrent(env, b);
}

}  // namespace
}  // namespace grin::pipeline::testing
