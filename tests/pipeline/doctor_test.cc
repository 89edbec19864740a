// grin-jobs doctor against the fake GRIN over HTTPS and a local-folder store (and the Swift S3
// server for a missing bucket): every check passes on a healthy run; each injected failure
// (wrong passphrase, revoked sign-in, unwritable bucket, missing bucket, skewed clock, full
// disk) fails its own check with its fix and exit 1. Also CheckPassphrase on real archives.
#include <sys/mount.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/archive/passphrase_check.h"
#include "schema/migrations.h"
#include "storage/run_lock.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

// Archives of ~120 KB (3 pages of 40 KB images): larger than the 64 KiB doctor reads.
constexpr int kImageBytes = 40'000;

std::vector<std::string> DoctorArgs(const SyncEnv& env, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"doctor", "--run-dir", env.run, "--staging-limit-mb", "16"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The output line of check `name` ("" if none).
std::string Line(const CliRun& r, const std::string& name) {
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(": ");
    if (line.size() > 6 && colon != std::string::npos && line.substr(6, colon - 6) == name) {
      return line;
    }
  }
  return "";
}

// The skew in seconds a clock line reports ("... clock is 5m 0s behind ..."), -1 if none.
int SkewSeconds(const std::string& line) {
  int m = 0, sec = 0;
  auto at = line.find("clock is ");
  if (at == std::string::npos) return -1;
  if (std::sscanf(line.c_str() + at, "clock is %dm %ds", &m, &sec) != 2) return -1;
  return m * 60 + sec;
}

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Archive GETs and body bytes the fake served, over every book.
struct Served {
  int64_t gets = 0, ranged = 0, bytes = 0;
};
Served ArchiveTraffic(const SyncEnv& env) {
  Served s;
  for (const auto& [k, b] : env.server->Stats().barcodes) {
    s.gets += b.gets;
    s.ranged += b.ranged_gets;
    s.bytes += b.bytes;
  }
  return s;
}

void WritePassphrase(const SyncEnv& env, const std::string& value) {
  const std::string path = env.server->state_dir() + "/gpg_passphrase.asc";
  grin::testing::WriteFile(path, value + "\n");
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace);
}

TEST_CASE("doctor: every check passes on a healthy run, reading only a prefix of one archive") {
  SyncEnv env(20, 0.6, 5, kImageBytes);
  env.server->ResetStats();
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  for (const char* name : {"database", "run lock", "disk", "oauth", "passphrase", "storage raw",
                           "storage full", "storage meta", "clock GRIN", "queue"}) {
    CHECK_MESSAGE(StartsWith(Line(r, name), "pass  "), name);
  }
  CHECK(r.out.find("warn  ") == std::string::npos);
  CHECK(r.out.find("fail  ") == std::string::npos);
  // One ranged GET of 64 KiB, never the whole archive.
  Served s = ArchiveTraffic(env);
  CHECK(s.gets == 1);
  CHECK(s.ranged == 1);
  CHECK(s.bytes == int64_t{archive::kPassphraseCheckBytes});
  // The probe objects are gone.
  for (const char* b : {"raw", "full", "meta"}) {
    auto dir = std::filesystem::path(env.storage) / b;
    if (!std::filesystem::exists(dir)) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      CHECK_MESSAGE(e.path().filename().string().find("doctor-probe") == std::string::npos,
                    e.path().string());
    }
  }
  // JSON: the same checks.
  auto j = Cli(DoctorArgs(env, {"--json"}));
  REQUIRE(j.code == 0);
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["ok"] == true);
  CHECK(doc["checks"].size() >= 10);
  for (const auto& c : doc["checks"]) CHECK_MESSAGE(c["status"] == "pass", c.dump());
}

TEST_CASE("doctor: listed in the help, bad usage is exit 2") {
  auto h = Cli({"--help"});
  CHECK(h.out.find("doctor") != std::string::npos);
  auto d = Cli({"doctor", "--help"});
  CHECK(d.code == 0);
  CHECK(d.out.find("--staging-limit-mb") != std::string::npos);
  CHECK(Cli({"doctor"}).code == 2);
  CHECK(Cli({"doctor", "--run-dir", "/nonexistent", "--staging-limit-mb", "-1"}).code == 2);
}

TEST_CASE("doctor: a wrong passphrase fails its check from a 64 KiB prefix") {
  SyncEnv env(20, 0.6, 5, kImageBytes);
  WritePassphrase(env, "not the passphrase");
  env.server->ResetStats();
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  const std::string line = Line(r, "passphrase");
  CHECK(StartsWith(line, "fail  passphrase: "));
  CHECK(line.find("does not open") != std::string::npos);
  CHECK(line.find("Fix: put the library's GRIN passphrase") != std::string::npos);
  CHECK(r.out.find("not the passphrase") == std::string::npos);  // never the secret
  CHECK(StartsWith(Line(r, "oauth"), "pass  "));
  Served s = ArchiveTraffic(env);
  CHECK(s.gets == 1);
  CHECK(s.bytes <= int64_t{archive::kPassphraseCheckBytes});
}

TEST_CASE("doctor: a revoked sign-in fails the oauth check") {
  SyncEnv env(10, 0.6, 5);
  env.server->RevokeRefreshToken();
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  const std::string line = Line(r, "oauth");
  CHECK(StartsWith(line, "fail  oauth: cannot refresh the GRIN access token"));
  CHECK(line.find("Fix: run `grin-jobs auth setup`") != std::string::npos);
  CHECK(StartsWith(Line(r, "passphrase"), "warn  "));
  CHECK(StartsWith(Line(r, "storage raw"), "pass  "));  // the other checks still ran
}

TEST_CASE("doctor: an account not on GRIN's access list fails the oauth check with the fix") {
  SyncEnv env(10, 0.6, 5);
  auto rule = fake::ParseFaultRule(R"({"endpoint": "probe", "action": "status", "status": 403})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  const std::string line = Line(r, "oauth");
  CHECK(StartsWith(line, "fail  oauth: token refreshed for tester@example.org"));
  CHECK(line.find("Fix: ask the library's GRIN contact to add tester@example.org to the access "
                  "list of 'TEST'") != std::string::npos);
}

TEST_CASE("doctor: a GRIN that answers 503 with a long Retry-After fails in seconds") {
  SyncEnv env(10, 0.6, 5);
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "grin", "action": "status", "status": 503, "retry_after": 3600})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Cli(DoctorArgs(env));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "oauth"), "fail  oauth: "));
  CHECK(Line(r, "oauth").find("Fix: GRIN is busy or down") != std::string::npos);
  CHECK(took < 20);
}

TEST_CASE("doctor: a storage folder that cannot be written fails the storage check") {
  SyncEnv env(10, 0.6, 5);
  // A file where the raw bucket's folder should be (root ignores permission bits).
  std::filesystem::create_directories(env.storage);
  std::filesystem::remove_all(env.storage + "/raw");
  grin::testing::WriteFile(env.storage + "/raw", "not a folder");
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "storage raw"), "fail  storage raw: bucket 'raw'"));
  CHECK(Line(r, "storage raw").find("Fix: make the storage folder (bucket 'raw') writable") !=
        std::string::npos);
  CHECK(StartsWith(Line(r, "storage full"), "pass  "));
}

TEST_CASE("doctor: a read-only storage folder fails every bucket with the fix") {
  SyncEnv env(10, 0.6, 5);
  std::string mnt = (env.tmp.path() / "ro").string();
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    MESSAGE("skipping: cannot mount a tmpfs here (needs root)");
    return;
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  for (const char* b : {"raw", "full", "meta"}) std::filesystem::create_directories(mnt + "/" + b);
  REQUIRE(::mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, "size=1m") == 0);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["storage"]["base_path"] = mnt;
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  for (const char* name : {"storage raw", "storage full", "storage meta"}) {
    const std::string line = Line(r, name);
    CHECK_MESSAGE(StartsWith(line, "fail  " + std::string(name) + ": bucket '"), name);
    CHECK_MESSAGE(line.find("Fix: make the storage folder (bucket '") != std::string::npos, line);
  }
}

TEST_CASE("doctor: a skewed clock warns beyond a minute and fails beyond 15 minutes") {
  SyncEnv env(10, 0.6, 5);
  env.server->SetDateOffset(5 * 60);
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  // Date has whole seconds and the machine is busy: the skew within 2 s.
  CHECK(StartsWith(Line(r, "clock GRIN"), "warn  clock GRIN: this machine's clock is "));
  CHECK(std::abs(SkewSeconds(Line(r, "clock GRIN")) - 300) <= 2);
  CHECK(Line(r, "clock GRIN").find("s behind GRIN's") != std::string::npos);
  env.server->SetDateOffset(-20 * 60);
  r = Cli(DoctorArgs(env));
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "clock GRIN"), "fail  clock GRIN: this machine's clock is "));
  CHECK(std::abs(SkewSeconds(Line(r, "clock GRIN")) - 1200) <= 2);
  CHECK(Line(r, "clock GRIN").find("s ahead of GRIN's") != std::string::npos);
  CHECK(Line(r, "clock GRIN").find("Fix: synchronise the clock") != std::string::npos);
}

TEST_CASE("doctor: too little disk for the staging limit fails the disk check") {
  SyncEnv env(10, 0.6, 5);
  // No disk here has 16 TiB free.
  auto r = Cli({"doctor", "--run-dir", env.run, "--staging-limit-mb", "16777216"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "disk"), "fail  disk: "));
  CHECK(Line(r, "disk").find("--staging-limit-mb") != std::string::npos);

  // A real full disk: a 4 MiB tmpfs as staging (root only).
  std::string mnt = (env.tmp.path() / "small").string();
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0) {
    MESSAGE("skipping the tmpfs part: cannot mount a tmpfs here (needs root)");
    return;
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  grin::testing::WriteFile(mnt + "/filler", std::string(3 << 20, 'x'));
  r = Cli({"doctor", "--run-dir", env.run, "--staging-dir", mnt, "--staging-limit-mb", "2"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "disk"), "fail  disk: "));
  CHECK(Line(r, "disk").find("staging " + mnt + ": ") != std::string::npos);
  CHECK(Line(r, "disk").find(" MiB free, needs 2 MiB. Fix: free space on " + mnt) !=
        std::string::npos);
  std::filesystem::remove(mnt + "/filler");
  r = Cli({"doctor", "--run-dir", env.run, "--staging-dir", mnt, "--staging-limit-mb", "1"});
  CHECK(StartsWith(Line(r, "disk"), "pass  disk: "));
}

TEST_CASE("doctor: a run locked by another process is reported, not failed") {
  SyncEnv env(10, 0.6, 5);
  auto lock = storage::RunLock::Acquire(env.run + "/books.db");
  REQUIRE(lock.ok());
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(StartsWith(Line(r, "run lock"), "warn  run lock: "));
  CHECK(Line(r, "run lock").find("in use by another grin-jobs process") != std::string::npos);
}

TEST_CASE("doctor: a run database from a newer grin-jobs, or not a database, fails its check") {
  SyncEnv env(10, 0.6, 5);
  const std::string db = env.run + "/books.db";
  auto ok = Cli(DoctorArgs(env));
  CHECK(Line(ok, "database") == "pass  database: " + db + ": quick_check ok, schema version " +
                                    std::to_string(schema::LatestVersion()) + " (current)");
  const int newer = schema::LatestVersion() + 1;
  {
    SQLite::Database d(db, SQLite::OPEN_READWRITE);
    d.exec("PRAGMA user_version = " + std::to_string(newer));
  }
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(StartsWith(Line(r, "database"), "fail  database: " + db + ": schema version " +
                                            std::to_string(newer) + " is newer than this build's " +
                                            std::to_string(schema::LatestVersion())));
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  grin::testing::WriteFile(db, "this is not a database" + std::string(8192, 'x'));
  r = Cli(DoctorArgs(env));
  CHECK(r.code == 1);
  CHECK(Line(r, "database") == "fail  database: " + db + ": file is not a database. Fix: check "
                                   "the file's permissions, or restore the latest backup");
}

TEST_CASE("doctor: a missing S3 bucket fails with the bucket named and how to create it") {
  if (std::getenv("GRIN_S3_ENV") == nullptr) {
    MESSAGE("skipping: set GRIN_S3_ENV for the Swift S3 server");
    return;
  }
  SyncEnv env(10, 0.6, 5);
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  const std::string suffix = "doctor-missing-" + std::to_string(::getpid());
  PointRunAtSwift(env, swift, suffix);
  auto r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  const std::string line = Line(r, "storage raw");
  CHECK(StartsWith(line, "fail  storage raw: bucket 'grin-raw-" + suffix + "'"));
  CHECK(line.find("Fix: create the bucket 'grin-raw-" + suffix + "'") != std::string::npos);
  CHECK(StartsWith(Line(r, "clock storage"), "pass  "));  // Swift dates its replies
  CHECK(StartsWith(Line(r, "oauth"), "pass  "));
  CHECK(line.find("..") == std::string::npos);

  // Once sync has created the buckets, every bucket passes through the real signing path.
  auto sync = Cli({"sync", "--run-dir", env.run});
  REQUIRE_MESSAGE(sync.code == 0, sync.err);
  r = Cli(DoctorArgs(env));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  for (const char* name : {"storage raw", "storage full", "storage meta", "clock storage"}) {
    CHECK_MESSAGE(StartsWith(Line(r, name), "pass  "), name);
  }
}

TEST_CASE("CheckPassphrase: right, wrong and too few bytes of a real gpg archive") {
  SyncEnv env(10, 1.0, 5);
  auto bytes = env.server->ArchiveBytes("TEST", env.server->corpus("TEST")->Get(0).barcode);
  REQUIRE(bytes.ok());
  const auto* p = reinterpret_cast<const uint8_t*>((*bytes)->data());
  const size_t n = std::min((*bytes)->size(), archive::kPassphraseCheckBytes);
  using V = archive::PassphraseCheck::Verdict;
  archive::Secret right(env.server->passphrase("TEST")), wrong("wrong");
  CHECK(archive::CheckPassphrase(p, n, right).verdict == V::kOk);
  auto w = archive::CheckPassphrase(p, n, wrong);
  CHECK(w.verdict == V::kWrong);
  CHECK(w.detail.find("wrong passphrase") != std::string::npos);
  auto few = archive::CheckPassphrase(p, 12, right);
  CHECK(few.verdict == V::kUndecidable);
  auto junk = archive::CheckPassphrase(reinterpret_cast<const uint8_t*>("hello world"), 11, right);
  CHECK(junk.verdict == V::kUndecidable);
}

}  // namespace
}  // namespace grin::pipeline::testing
