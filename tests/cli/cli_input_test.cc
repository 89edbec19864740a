// Bad command-line input is refused before any work: exit 2 and one line naming the option and
// what it allows, before the run's database is opened, its lock taken or the network touched.
// Option values are never split at commas. Secret files open to other users are refused.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "engine/archive/passphrase.h"
#include "engine/grin/oauth.h"
#include "storage/run_lock.h"
#include "tests/cli/cli_harness.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using grin::testing::ReadFile;
using grin::testing::TempDir;
using grin::testing::WriteFile;

using testing::Cli;
using testing::OneLine;

void Chmod(const std::string& path, fs::perms p) { fs::permissions(path, p); }
constexpr fs::perms kOwnerRw = fs::perms::owner_read | fs::perms::owner_write;

// Accepts (and at once closes) TCP connections on 127.0.0.1, counting them: a URL pointing here
// shows whether a command touched the network.
class CountingListener {
 public:
  CountingListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) == 1) {
          int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) {
            ++accepted_;
            ::close(c);
          }
        }
      }
    });
  }
  ~CountingListener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/"; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// A run whose GRIN and token endpoints are a CountingListener, with credentials (0600), a
// passphrase file (0600) and local storage: everything a sync needs to start working.
struct ReadyRun {
  TempDir dir;
  CountingListener grin;
  std::string run = dir.file("run");
  std::string pass = dir.file("gpg_passphrase.asc");
  ReadyRun() {
    REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "TEST", "--grin-base-url",
                 grin.url()})
                .code == kExitOk);
    auto cfg = nlohmann::json::parse(ReadFile(run + "/run_config.json"));
    cfg["grin_token_url"] = grin.url() + "token";
    cfg["credentials_dir"] = dir.file("creds");
    WriteFile(run + "/run_config.json", cfg.dump(2));
    fs::create_directories(dir.file("creds"));
    grin_client::OAuthCredentials c;
    c.client_id = "id";
    c.client_secret = "secret";
    c.refresh_token = "refresh";
    c.token_uri = grin.url() + "token";
    REQUIRE(grin_client::SaveCredentials(dir.file("creds") + "/credentials.json", c).ok());
    WriteFile(pass, "not the passphrase\n");
    Chmod(pass, kOwnerRw);
  }
  int64_t Jobs() const {
    SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY);
    return db.execAndGet("SELECT count(*) FROM jobs").getInt64();
  }
};

struct Case {
  std::vector<std::string> args;  // after the command and its --run-dir
  const char* option;             // the option the error line must name
};

// Every case must be refused with exit 2 and one line naming `option`.
void ExpectRefused(const std::string& command, const std::vector<std::string>& lead,
                   const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    std::vector<std::string> args = {command};
    args.insert(args.end(), lead.begin(), lead.end());
    args.insert(args.end(), c.args.begin(), c.args.end());
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    CAPTURE(shown);
    auto r = Cli(args);
    CHECK(r.code == kExitUsage);
    CHECK(OneLine(r.err));
    CHECK(r.err.find(c.option) != std::string::npos);
  }
}

// The bad values of each command (ISSUE: --limit -5 meant "no limit", --workers 0 failed only
// after enqueuing, --barcodes-file /missing exited 4).
std::vector<Case> SyncCases(const TempDir& dir) {
  WriteFile(dir.file("a-file"), "x");
  return {
      {{"--limit", "-5"}, "--limit"},
      {{"--limit", "0"}, "--limit"},
      {{"--workers", "0"}, "--workers"},
      {{"--workers", "-3"}, "--workers"},
      {{"--workers=0"}, "--workers"},
      {{"--workers", "abc"}, "--workers"},
      {{"--download-concurrency", "0"}, "--download-concurrency"},
      {{"--check-concurrency", "0"}, "--check-concurrency"},
      {{"--grin-rate", "-1"}, "--grin-rate"},
      {{"--grin-bandwidth", "-1"}, "--grin-bandwidth"},
      {{"--retry-base-ms", "-100"}, "--retry-base-ms"},
      {{"--staging-limit-mb", "-5"}, "--staging-limit-mb"},
      {{"--stream-max-mb", "-1"}, "--stream-max-mb"},
      {{"--memory-limit-mb", "0"}, "--memory-limit-mb"},
      {{"--memory-limit-mb", "-512"}, "--memory-limit-mb"},
      {{"--multipart-threshold-mb", "4"}, "--multipart-threshold-mb"},
      {{"--barcodes-file", "/missing/barcodes.txt"}, "--barcodes-file"},
      {{"--barcodes-file", dir.path().string()}, "--barcodes-file"},
      {{"--passphrase-file", "/missing/pass.asc"}, "--passphrase-file"},
      {{"--staging-dir", dir.file("a-file")}, "--staging-dir"},
      {{"--queue", "converted", "--queue", "bogus"}, "--queue"},
      {{"--decrypt-backend", "magic"}, "--decrypt-backend"},
      {{"--log-level", "loud"}, "--log-level"},
      {{"--barcodes", ","}, "--barcodes"},
  };
}

TEST_CASE("cli input: sync refuses bad values before any work, exit 2, one line naming it") {
  TempDir dir;
  // A run that does not exist: refused as usage (2), not as a missing database (4).
  ExpectRefused("sync", {"--run-dir", dir.file("no-run")}, SyncCases(dir));
  CHECK(!fs::exists(dir.file("no-run")));
  // A run whose lock another process holds: refused as usage (2), not as busy (3).
  std::string run = dir.file("locked");
  REQUIRE(Cli({"init", "--run-dir", run}).code == kExitOk);
  auto lock = storage::RunLock::Acquire(run + "/books.db");
  REQUIRE(lock.ok());
  ExpectRefused("sync", {"--run-dir", run}, SyncCases(dir));
  ExpectRefused("sync", {"--run-dir", run, "--dry-run"}, SyncCases(dir));
}

TEST_CASE("cli input: the refusal names the value and what is allowed") {
  TempDir dir;
  auto r = Cli({"sync", "--run-dir", dir.file("r"), "--limit", "-5"});
  CHECK(r.err == "grin-jobs sync: --limit -5: use a whole number of at least 1\n");
  r = Cli({"sync", "--run-dir", dir.file("r"), "--workers", "0"});
  CHECK(r.err == "grin-jobs sync: --workers 0: use a whole number from 1 to 512\n");
  // A value cxxopts cannot even parse (negative for an unsigned option) is explained the same way.
  r = Cli({"sync", "--run-dir", dir.file("r"), "--staging-limit-mb", "-5"});
  CHECK(r.err ==
        "grin-jobs sync: --staging-limit-mb -5: use a whole number from 0 to 16777216 "
        "(0 = no limit)\n");
  r = Cli({"sync", "--run-dir", dir.file("r"), "--barcodes-file", "/missing"});
  CHECK(r.code == kExitUsage);
  CHECK(r.err ==
        "grin-jobs sync: --barcodes-file /missing: no such file; give an existing, readable "
        "file\n");
  // An empty barcodes file would select nothing and so continue every other job of the run.
  WriteFile(dir.file("empty.txt"), "# nothing here\n\n");
  REQUIRE(Cli({"init", "--run-dir", dir.file("r")}).code == kExitOk);
  r = Cli({"sync", "--run-dir", dir.file("r"), "--barcodes-file", dir.file("empty.txt")});
  CHECK(r.code == kExitUsage);
  CHECK(OneLine(r.err));
  CHECK(r.err.find("empty.txt: no barcode") != std::string::npos);
}

TEST_CASE("cli input: sync --workers 0 enqueues nothing and never touches the network") {
  ReadyRun env;
  for (const char* bad : {"--workers", "--download-concurrency", "--check-concurrency"}) {
    CAPTURE(bad);
    auto r = Cli({"sync", "--run-dir", env.run, "--barcodes", "AAA111,BBB222", "--passphrase-file",
                  env.pass, bad, "0"});
    CHECK(r.code == kExitUsage);
    CHECK(OneLine(r.err));
    CHECK(r.err.find(bad) != std::string::npos);
    CHECK(env.Jobs() == 0);
    CHECK(env.grin.accepted() == 0);
  }
  auto r = Cli({"sync", "--run-dir", env.run, "--queue", "converted", "--limit", "-5"});
  CHECK(r.code == kExitUsage);
  CHECK(env.Jobs() == 0);
  CHECK(env.grin.accepted() == 0);
}

TEST_CASE("cli input: collect, enrich, request, status, retry, export, auth refuse bad values") {
  TempDir dir;
  std::string run = dir.file("locked");
  REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "TEST"}).code == kExitOk);
  auto lock = storage::RunLock::Acquire(run + "/books.db");
  REQUIRE(lock.ok());
  for (const std::string& r : {dir.file("no-run"), run}) {
    CAPTURE(r);
    const std::vector<std::string> lead = {"--run-dir", r};
    ExpectRefused("collect", lead,
                  {{{"--page-size", "0"}, "--page-size"},
                   {{"--max-pages", "-1"}, "--max-pages"},
                   {{"--rate", "0"}, "--rate"},
                   {{"--rate", "-1"}, "--rate"},
                   {{"--log-level", "x"}, "--log-level"}});
    ExpectRefused("enrich", lead,
                  {{{"--limit", "-1"}, "--limit"}, {{"--concurrency", "0"}, "--concurrency"}});
    ExpectRefused("request", lead,
                  {{{"--limit", "-5"}, "--limit"},
                   {{"--limit", "0"}, "--limit"},
                   {{"--batch", "0"}, "--batch"},
                   {{"--batch", "-1"}, "--batch"}});
    ExpectRefused("status", lead, {{{"--watch", "0"}, "--watch"}, {{"--count", "0"}, "--count"}});
    ExpectRefused("export", lead,
                  {{{"--output", dir.file("missing-dir/books.csv")}, "--output"},
                   {{"--output", dir.path().string()}, "--output"}});
    ExpectRefused("auth", {"setup", "--run-dir", r},
                  {{{"--port", "-1"}, "--port"},
                   {{"--port", "70000"}, "--port"},
                   {{"--timeout", "0"}, "--timeout"},
                   {{"--client-secret", "/missing/client_secret.json"}, "--client-secret"},
                   {{"--ca-file", "/missing/ca.pem"}, "--ca-file"}});
  }
  CHECK(!fs::exists(dir.file("no-run")));
}

TEST_CASE("cli input: init refuses bad values before creating the run") {
  TempDir dir;
  WriteFile(dir.file("a-file"), "x");
  const std::string run = dir.file("new-run");
  ExpectRefused("init", {"--run-dir", run},
                {{{"--storage", "floppy"}, "--storage"},
                 {{"--storage-config", "endpoint_url"}, "--storage-config"},
                 {{"--storage-config", "=x"}, "--storage-config"},
                 {{"--storage-config", "bukket_raw=x"}, "--storage-config"},
                 {{"--storage-config", "prefix=a", "--storage-config", "prefix=b"},
                  "--storage-config"},
                 {{"--library-directory", "a/b"}, "--library-directory"},
                 {{"--library-directory", ""}, "--library-directory"},
                 {{"--grin-base-url", "ftp://example.org/"}, "--grin-base-url"},
                 {{"--storage-path", dir.file("a-file")}, "--storage-path"}});
  CHECK(!fs::exists(run));  // nothing created, no database, no lock file
}

TEST_CASE("cli input: storage and extract refuse missing paths and bad values") {
  TempDir dir;
  WriteFile(dir.file("a-file"), "x");
  ExpectRefused("storage", {},
                {{{"--storage-path", dir.file("a-file"), "ls"}, "--storage-path"},
                 {{"--storage", "floppy", "ls"}, "--storage"},
                 {{"--storage", "s3", "--endpoint-url", "s3.example.org", "ls"}, "--endpoint-url"},
                 {{"--storage", "s3", "--credentials-file", "/missing/creds", "ls"},
                  "--credentials-file"},
                 {{"--storage", "s3", "--ca-file", "/missing/ca.pem", "ls"}, "--ca-file"}});
  ExpectRefused("extract", {},
                {{{"--passphrase-file", "/missing/pass.asc", dir.file("x.tar.gz.gpg")},
                  "--passphrase-file"},
                 {{"--secrets-dir", dir.file("missing"), dir.file("x.tar.gz.gpg")},
                  "--secrets-dir"},
                 {{"-o", dir.file("a-file"), dir.file("x.tar.gz.gpg")}, "--output-dir"},
                 {{"--backend", "magic", dir.file("x.tar.gz.gpg")}, "--backend"}});
}

TEST_CASE("cli input: option values are never split at commas") {
  TempDir dir;
  // init --storage-config keeps the whole value.
  const std::string run = dir.file("run");
  auto r = Cli({"init", "--run-dir", run, "--storage-config", "prefix=a,b", "--storage-config",
                "bucket_raw=raw"});
  REQUIRE_MESSAGE(r.code == kExitOk, r.err);
  auto cfg = nlohmann::json::parse(ReadFile(run + "/run_config.json"));
  CHECK(cfg["storage"]["prefix"] == "a,b");
  CHECK(cfg["storage"]["bucket_raw"] == "raw");

  // storage: one argument names one object, a --meta value keeps its commas.
  const std::string base = dir.file("store");
  fs::create_directories(base);
  WriteFile(dir.file("body"), "hello");
  const std::vector<std::string> s = {"storage", "--storage-path", base};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = s;
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(a);
  };
  for (const char* key : {"a", "b", "a,b"}) {
    auto up = with({"cp", dir.file("body"), std::string("s3://bkt/") + key});
    REQUIRE_MESSAGE(up.code == kExitOk, up.err);
  }
  auto meta = with({"cp", "--meta", "tags=x,y,z", dir.file("body"), "s3://bkt/m"});
  REQUIRE_MESSAGE(meta.code == kExitOk, meta.err);
  auto head = with({"head", "s3://bkt/m"});
  CHECK(head.out.find("meta.tags: x,y,z\n") != std::string::npos);
  auto rm = with({"rm", "--yes", "s3://bkt/a,b"});
  CHECK(rm.code == kExitOk);
  CHECK(rm.out == "deleted 1 object(s)\n");
  CHECK(fs::exists(base + "/bkt/a"));
  CHECK(fs::exists(base + "/bkt/b"));
  CHECK(!fs::exists(base + "/bkt/a,b"));
  // A positional list still takes several arguments.
  rm = with({"rm", "--yes", "s3://bkt/a", "s3://bkt/b"});
  CHECK(rm.out == "deleted 2 object(s)\n");

  // extract: a file name with a comma is one file.
  auto ex = Cli({"extract", "-o", dir.file("out"), dir.file("a,b.tar.gz")});
  CHECK(ex.code == kExitFailure);
  CHECK(OneLine(ex.err));
  CHECK(ex.err.find("a,b.tar.gz: cannot open") != std::string::npos);
}

TEST_CASE("cli input: a passphrase file open to other users is refused like credentials.json") {
  TempDir dir;
  const std::string pass = dir.file("gpg_passphrase.asc");
  WriteFile(pass, "secret words\n");
  for (fs::perms open : {fs::perms::others_read, fs::perms::group_read,
                         fs::perms::others_read | fs::perms::group_read}) {
    Chmod(pass, kOwnerRw | open);
    auto s = archive::ReadPassphraseFile(pass);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == StatusCode::kPermissionDenied);
    CHECK(s.status().message().find(pass) != std::string::npos);
    CHECK(s.status().message().find("chmod 600 " + pass) != std::string::npos);
    CHECK(s.status().message().find("secret words") == std::string::npos);
    // Through the CLI: one line naming the file and the fix, exit 1, the secret never shown.
    WriteFile(dir.file("book.tar.gz.gpg"), "not read");
    auto r = Cli({"extract", "--passphrase-file", pass, "-o", dir.file("out"),
                  dir.file("book.tar.gz.gpg")});
    CHECK(r.code == kExitFailure);
    CHECK(OneLine(r.err));
    CHECK(r.err.find("chmod 600 " + pass) != std::string::npos);
    CHECK(r.err.find("secret words") == std::string::npos);
  }
  Chmod(pass, kOwnerRw);
  auto ok = archive::ReadPassphraseFile(pass);
  REQUIRE(ok.ok());
  CHECK(ok->reveal() == "secret words");
  Chmod(pass, fs::perms::owner_read);
  CHECK(archive::ReadPassphraseFile(pass).ok());

  // credentials.json: the same rule and the same words.
  const std::string creds = dir.file("credentials.json");
  grin_client::OAuthCredentials c;
  c.client_id = "id";
  c.client_secret = "s";
  c.refresh_token = "r";
  REQUIRE(grin_client::SaveCredentials(creds, c).ok());
  CHECK(grin_client::LoadCredentials(creds).ok());
  Chmod(creds, kOwnerRw | fs::perms::group_read);
  auto lc = grin_client::LoadCredentials(creds);
  REQUIRE(!lc.ok());
  CHECK(lc.status().code() == StatusCode::kPermissionDenied);
  CHECK(lc.status().message().find("chmod 600 " + creds) != std::string::npos);
}

}  // namespace
}  // namespace grin::cli
