// Failures that are not a book's fault (wrong passphrase, GRIN auth, TLS trust, full disks,
// storage bucket) stop the sync with one line naming the cause and the fix, and never fail a
// book: every job keeps its state, no attempt is counted, and after the fix the same command
// completes. Also the exit status and the summary: 5 when books ended dead or a queue could not
// be listed; "failed for good" counts the dead books from the state store.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

// The last non-empty line of `s`.
std::string LastLine(const std::string& s) {
  size_t end = s.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  size_t start = s.rfind('\n', end);
  size_t from = start == std::string::npos ? 0 : start + 1;
  return s.substr(from, end - from + 1);
}

bool OneLineErr(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

// Every job untouched by failures: none dead, none retrying, none leased, no attempt counted.
void CheckNoBookFailed(const SyncEnv& env) {
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'retry'") == 0);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  CHECK(env.Sql("SELECT coalesce(sum(attempts), 0) FROM jobs") == 0);
}

int64_t ArchiveGets(const SyncEnv& env) {
  int64_t n = 0;
  for (const auto& [k, v] : env.server->Stats().barcodes) n += v.gets;
  return n;
}

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

TEST_CASE("a wrong passphrase stops on the first book, fails none, the right one completes") {
  SyncEnv env(40);
  const std::string pass_file = env.server->state_dir() + "/gpg_passphrase.asc";
  grin::testing::WriteFile(pass_file, "not the passphrase\n");
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "12"}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(LastLine(r.err).find("passphrase") != std::string::npos);
  CHECK(LastLine(r.err).find("no book was failed") != std::string::npos);
  CHECK(env.Uploaded().empty());
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 12);
  CheckNoBookFailed(env);
  // Stopped at the first book: only the books already in flight were fetched at all.
  CHECK(ArchiveGets(env) <= 6);

  grin::testing::WriteFile(pass_file, env.server->passphrase("TEST") + "\n");
  auto again = Cli(env.SyncArgs({"--queue", "converted", "--limit", "12"}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == 12);
}

TEST_CASE("a revoked refresh token holds every book and stops, a working one completes") {
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 8);
  AddFault(env, R"({"endpoint": "token", "action": "invalid_grant"})");
  env.server->RevokeAccessTokens();
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(LastLine(r.err).find("invalid_grant") != std::string::npos);
  CHECK(LastLine(r.err).find("auth setup") != std::string::npos);
  CHECK(env.Uploaded().empty());
  CheckNoBookFailed(env);
  CHECK(r.out.find("0 failed for good") != std::string::npos);

  env.server->ClearFaults();
  auto again = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == books.size());
}

// One rule for a 403 from GRIN, wherever it comes: access is not the book's fault, so the run
// stops with the access-list line and no book is failed, on the HEAD, on a streamed GET (the
// check's own GET, or after a HEAD) and on a staged download (--stream-max-mb 0).
TEST_CASE("GRIN 403 on the HEAD and on the GET, streamed and staged: the same rule, no book dead") {
  std::vector<std::string> path;
  std::string path_name;
  SUBCASE("streamed") { path_name = "streamed"; }
  SUBCASE("staged") {
    path_name = "staged";
    path = {"--stream-max-mb", "0"};
  }
  CAPTURE(path_name);
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 8);
  for (const char* endpoint : {"archive_head", "archive_get"}) {
    for (bool inventory : {false, true}) {
      CAPTURE(endpoint);
      CAPTURE(inventory);
      // With the inventory (storage is empty) no book is HEADed: each GET stands for its check,
      // so a 403 on HEADs alone never reaches them.
      if (inventory && std::string(endpoint) == "archive_head") continue;
      env.server->ClearFaults();
      AddFault(env, std::string(R"({"endpoint": ")") + endpoint + R"(", "status": 403})");
      std::vector<std::string> args = {"--barcodes", Join(books)};
      args.insert(args.end(), path.begin(), path.end());
      // Without the inventory every book is HEADed first; with it (storage is empty) every book
      // is fetched by a GET alone, streamed or staged.
      if (!inventory) args.push_back("--no-inventory");
      auto r = Cli(env.SyncArgs(args));
      INFO(r.out << r.err);
      CHECK(r.code == 1);
      CHECK(LastLine(r.err).find("access list") != std::string::npos);
      CHECK(env.Uploaded().empty());
      CheckNoBookFailed(env);
      CHECK(r.out.find("0 failed for good") != std::string::npos);
    }
  }
  env.server->ClearFaults();
  std::vector<std::string> args = {"--barcodes", Join(books)};
  args.insert(args.end(), path.begin(), path.end());
  auto again = Cli(env.SyncArgs(args));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == books.size());
}

TEST_CASE("--stop-after-systemic N: the run stops at the Nth consecutive book, not before") {
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 8);
  AddFault(env, R"({"endpoint": "archive_head", "status": 403})");
  for (int n : {1, 2}) {
    CAPTURE(n);
    env.server->ResetStats();
    // One worker, no inventory: one HEAD per book, in order, nothing else in flight.
    auto r = Cli(env.SyncArgs({"--barcodes", Join(books), "--workers", "1", "--no-inventory",
                               "--stop-after-systemic", std::to_string(n)}));
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    auto endpoints = env.server->Stats().endpoints;
    int64_t heads = endpoints.count("archive_head") ? endpoints["archive_head"].requests : 0;
    CHECK(heads == n);
    CHECK(r.out.find(std::to_string(n) + " held back unchanged") != std::string::npos);
    CheckNoBookFailed(env);
  }
}

TEST_CASE("GRIN 403 on the converted listing stops with exit 1, another listing failure exits 5") {
  SyncEnv env(30);
  AddFault(env, R"({"endpoint": "converted", "status": 403})");
  auto r = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(OneLineErr(r.err));
  CHECK(r.err.find("access list") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 0);
  CHECK(Cli(env.SyncArgs({"--queue", "converted", "--stop-after-systemic", "0"})).code == 2);

  env.server->ClearFaults();
  AddFault(env, R"({"endpoint": "converted", "status": 500})");
  // Two attempts, not the dozen over many minutes a real GRIN's listing gets.
  auto m = Cli(env.SyncArgs({"--queue", "converted", "--grin-list-attempts", "2"}));
  INFO(m.out << m.err);
  CHECK(m.code == 5);
  CHECK(m.err.find("could not be listed") != std::string::npos);
}

TEST_CASE("an untrusted TLS certificate holds explicit barcodes and stops, trusted completes") {
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 6);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  const std::string ca = cfg["ca_file"];
  cfg["ca_file"] = "";
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(LastLine(r.err).find("TLS certificate not trusted") != std::string::npos);
  CHECK(env.Uploaded().empty());
  CheckNoBookFailed(env);

  cfg["ca_file"] = ca;
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));
  auto again = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == books.size());
}

TEST_CASE("a book that dies makes exit 5, and the summary counts dead books from the store") {
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 5);
  // One book's archive is always corrupt (past the passphrase check): it dies after 5 tries.
  AddFault(env, R"({"endpoint": "archive_get", "barcode": ")" + books[2] +
                    R"(", "action": "corrupt", "at_byte": 3000})");
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books), "--retry-base-ms", "1"}));
  INFO(r.out << r.err);
  CHECK(r.code == 5);
  CHECK(r.out.find("1 failed for good") != std::string::npos);
  CHECK(LastLine(r.err).find(books[2]) != std::string::npos);
  CHECK(env.Uploaded().size() == books.size() - 1);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'dead'") == 1);

  // A rerun has nothing to do, but the dead book is still one of the selection: still 5, still
  // counted (the summary counts from the store, not from what died during this run).
  auto again = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(again.out << again.err);
  CHECK(again.code == 5);
  CHECK(again.out.find("1 failed for good") != std::string::npos);
  // The other books alone: exit 0.
  std::vector<std::string> good = books;
  good.erase(good.begin() + 2);
  auto ok = Cli(env.SyncArgs({"--barcodes", Join(good)}));
  INFO(ok.out << ok.err);
  CHECK(ok.code == 0);
  CHECK(ok.out.find("0 failed for good") != std::string::npos);
}

// ---- full disks: real small tmpfs mounts (root only) ----

// A tmpfs of `kb` KiB mounted on `dir` (created) for the test's lifetime.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int kb) : dir_(dir) {
    std::filesystem::create_directories(dir);
    std::string opts = "size=" + std::to_string(kb) + "k";
    mounted_ = ::geteuid() == 0 && ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Grows the disk (the operator freed space).
  bool Grow(int kb) {
    std::string opts = "size=" + std::to_string(kb) + "k";
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, opts.c_str()) == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

#define REQUIRE_SMALL_DISK(disk)                                                       \
  if (!(disk).mounted()) {                                                             \
    MESSAGE("skipped: needs root to mount a small tmpfs (mount -t tmpfs) for a full disk"); \
    return;                                                                            \
  }

TEST_CASE("a full staging disk holds the books and stops, naming the path and the space") {
  // Archives of a few hundred kB, staged: they cannot fit a 64 KiB staging disk.
  SyncEnv env(30, 0.6, 3, /*image_bytes=*/100000);
  std::string staging = (env.tmp.path() / "staging-disk").string();
  SmallDisk disk(staging, 64);
  REQUIRE_SMALL_DISK(disk);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8", "--stream-max-mb", "0",
                             "--staging-dir", staging}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  std::string line = LastLine(r.err);
  CHECK(line.find("disk full") != std::string::npos);
  CHECK(line.find(staging) != std::string::npos);
  CHECK(line.find("free at least") != std::string::npos);
  CHECK(env.Uploaded().empty());
  CheckNoBookFailed(env);

  REQUIRE(disk.Grow(64 * 1024));
  auto again = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8", "--stream-max-mb", "0",
                                 "--staging-dir", staging}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == 8);
}

TEST_CASE("a full storage folder holds the books and stops, then the same command completes") {
  SyncEnv env(30, 0.6, 3, /*image_bytes=*/100000);
  SmallDisk disk(env.storage, 64);
  REQUIRE_SMALL_DISK(disk);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  std::string line = LastLine(r.err);
  CHECK(line.find("disk full") != std::string::npos);
  CHECK(line.find(env.storage) != std::string::npos);
  CHECK(env.Uploaded().empty());
  CheckNoBookFailed(env);

  REQUIRE(disk.Grow(64 * 1024));
  auto again = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == 8);
}

// Writes zeros to `path` until the disk is full; returns the bytes written.
int64_t FillDisk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::string block(4096, '\0');
  int64_t n = 0;
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) n += 4096;
  std::fclose(f);
  return n;
}

TEST_CASE("a full disk under the run database stops the sync naming it, then it completes") {
  SyncEnv env(30);
  auto books = ConvertedBarcodes(env, 8);
  std::string run = (env.tmp.path() / "run-disk").string();
  SmallDisk disk(run, 4096);
  REQUIRE_SMALL_DISK(disk);
  std::filesystem::copy(env.run, run, std::filesystem::copy_options::recursive);
  env.run = run;
  // Jobs in the run: a first sync that GRIN refuses holds them all at `pending`.
  AddFault(env, R"({"endpoint": "archive", "status": 403})");
  auto first = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(first.out << first.err);
  REQUIRE(first.code == 1);
  REQUIRE(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'pending'") == 8);
  env.server->ClearFaults();

  const std::string filler = run + "/filler";
  REQUIRE(FillDisk(filler) > 0);
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  std::string line = LastLine(r.err);
  CHECK(line.find(run + "/books.db") != std::string::npos);
  CHECK(line.find("free at least") != std::string::npos);

  std::filesystem::remove(filler);  // the operator frees space
  auto again = Cli(env.SyncArgs({"--barcodes", Join(books)}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == books.size());
  CheckNoBookFailed(env);
}

}  // namespace
}  // namespace grin::pipeline::testing
