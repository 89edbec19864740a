#pragma once
// A run wired to an in-process fake GRIN over HTTPS and a local-folder store, for sync tests.

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <zlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "tests/cli/cli_harness.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/swift_server.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace grin::pipeline::testing {

using CliRun = cli::testing::Run;
using cli::testing::Cli;

// Runs a program (argv[0] looked up in PATH) and waits; returns its exit code.
inline int RunProgram(std::vector<std::string> argv) {
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(s.data());
  a.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, a[0], nullptr, nullptr, a.data(), environ) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#ifdef GRIN_JOBS_BIN
// Starts the grin-jobs binary with `args` (without argv[0]), stdout and stderr appended to log.
inline pid_t SpawnGrinJobs(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), GRIN_JOBS_BIN);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}
#endif

// Waits for a child; its exit code, or 128 + signal.
inline int WaitChild(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::string Gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

struct SyncEnv {
  // image_bytes: size of each page image in the archives (0 = the fake's default, ~KBs).
  explicit SyncEnv(int64_t books, double frac_converted = 0.6, uint64_t seed = 3,
                   int image_bytes = 0) {
    fake::FakeGrinOptions o;
    if (image_bytes > 0) o.archive.image_bytes = image_bytes;
    o.corpus.size = books;
    o.corpus.seed = seed;
    o.corpus.frac_converted = frac_converted;
    o.corpus.frac_in_process = 0.1;
    o.corpus.frac_failed = 0.1;
    o.corpus.frac_not_allowed = 0.0;
    o.range_support = true;
    o.threads = 32;
    o.state_dir = (tmp.path() / "fake").string();
    std::filesystem::create_directories(o.state_dir);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    grin::testing::WriteFile(server->state_dir() + "/gpg_passphrase.asc",
                             server->passphrase("TEST") + "\n");
    // A secret: 0600, or sync refuses it like a world-readable credentials.json.
    std::filesystem::permissions(server->state_dir() + "/gpg_passphrase.asc",
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write);
    storage = (tmp.path() / "storage").string();
    run = InitRun((tmp.path() / "run").string());
  }

  // `init`s a run in `dir` on this fake GRIN and storage folder (its state on `state`, a
  // postgresql:// URI, if given; else books.db) and points its config at the fake's token URL,
  // credentials and CA. Returns dir.
  std::string InitRun(const std::string& dir, const std::string& state = "") const {
    std::vector<std::string> args = {"init", "--run-dir", dir, "--library-directory", "TEST",
                                     "--grin-base-url", server->base_url(), "--storage", "local",
                                     "--storage-path", storage};
    if (!state.empty()) args.insert(args.end(), {"--state", state});
    auto init = Cli(args);
    REQUIRE_MESSAGE(init.code == 0, init.err);
    auto cfg = nlohmann::json::parse(grin::testing::ReadFile(dir + "/run_config.json"));
    if (!state.empty()) REQUIRE(cfg["state"] == state);
    cfg["grin_token_url"] = server->token_url();
    cfg["credentials_dir"] = server->state_dir();
    cfg["ca_file"] = server->ca_file();
    grin::testing::WriteFile(dir + "/run_config.json", cfg.dump(2));
    return dir;
  }

  std::vector<std::string> SyncArgs(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"sync", "--run-dir", run, "--workers", "4",
                                  "--grin-rate", "0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  int64_t Sql(const std::string& q) const {
    SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY, 10000);
    return db.execAndGet(q).getInt64();
  }

  std::string SqlText(const std::string& q) const {
    SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY, 10000);
    return db.execAndGet(q).getString();
  }

  std::set<std::string> Uploaded() const {
    std::set<std::string> out;
    if (!std::filesystem::exists(run + "/books.db")) return out;
    SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY, 10000);
    SQLite::Statement s(db, "SELECT barcode FROM uploaded");
    while (s.executeStep()) out.insert(s.getColumn(0).getString());
    return out;
  }

  int64_t Gets(const std::string& barcode) const {
    auto st = server->Stats();
    auto it = st.barcodes.find("TEST/" + barcode);
    return it == st.barcodes.end() ? 0 : it->second.gets;
  }

  std::string RawPath(const std::string& b) const { return storage + "/raw/" + b + "/" + b + ".tar.gz"; }
  std::string OcrPath(const std::string& b) const { return storage + "/full/" + b + "_ocr.jsonl.gz"; }

  // The fixture's plaintext for a book, decrypted by the real gpg (an independent client).
  std::string FixturePlaintext(const std::string& barcode) {
    auto enc = server->ArchiveBytes("TEST", barcode);
    REQUIRE(enc.ok());
    std::string in = (tmp.path() / (barcode + ".gpg")).string();
    std::string out = (tmp.path() / (barcode + ".plain")).string();
    std::string home = (tmp.path() / "gnupg").string();
    std::filesystem::create_directories(home);
    std::filesystem::permissions(home, std::filesystem::perms::owner_all);
    grin::testing::WriteFile(in, **enc);
    std::filesystem::remove(out);
    int rc = RunProgram({"gpg", "--batch", "--quiet", "--homedir", home, "--pinentry-mode",
                         "loopback", "--passphrase-file",
                         server->state_dir() + "/gpg_passphrase.asc", "--output", out,
                         "--decrypt", in});
    REQUIRE(rc == 0);
    return grin::testing::ReadFile(out);
  }

  grin::testing::TempDir tmp;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::string run;
  std::string storage;
};

// Writes the Swift server's access keys to <env.tmp>/aws_credentials (0600: sync refuses a
// secret others can read) and returns its path.
inline std::string WriteSwiftCredentials(const SyncEnv& env,
                                         const grin::testing::SwiftServer& swift) {
  std::string creds = (env.tmp.path() / "aws_credentials").string();
  grin::testing::WriteFile(creds, "[default]\naws_access_key_id = " +
                                      swift.get("GRIN_S3_ACCESS_KEY") +
                                      "\naws_secret_access_key = " +
                                      swift.get("GRIN_S3_SECRET_KEY") + "\n");
  std::filesystem::permissions(creds, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  return creds;
}

// Points the run's storage at the Swift server (its endpoint, region and CA, path style) with
// the buckets grin-raw-<suffix>, grin-meta-<suffix> and grin-full-<suffix>, in run_config.json.
// Returns the storage settings written.
inline nlohmann::json PointRunAtSwift(SyncEnv& env, const grin::testing::SwiftServer& swift,
                                      const std::string& suffix) {
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["storage"] = {{"type", "s3"},
                    {"endpoint_url", swift.get("GRIN_S3_ENDPOINT")},
                    {"region", swift.get("GRIN_S3_REGION")},
                    {"ca_file", swift.get("GRIN_S3_CA_FILE")},
                    {"credentials_file", WriteSwiftCredentials(env, swift)},
                    {"path_style", true},
                    {"bucket_raw", "grin-raw-" + suffix},
                    {"bucket_meta", "grin-meta-" + suffix},
                    {"bucket_full", "grin-full-" + suffix}};
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  return cfg["storage"];
}

}  // namespace grin::pipeline::testing
