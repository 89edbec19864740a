// A book is done only when every output it should have is in place: the raw archive, the OCR
// object and the MARC columns. A stored raw archive whose derived outputs went missing (a kill
// or a failed OCR upload between the raw upload and the commit) gets them rebuilt from storage,
// with no GRIN download; a stored copy that is not a readable book is fetched again. And what
// killed runs leave behind (temp objects, staging files, backup temporaries) is removed.
#include <SQLiteCpp/Database.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "storage/local_object_store.h"

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

struct Marc {
  std::string title, control, stamp;
};

Marc ReadMarc(const SyncEnv& env, const std::string& b) {
  SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READONLY, 10000);
  SQLite::Statement q(db,
                      "SELECT coalesce(marc_title, ''), coalesce(marc_control_number, ''), "
                      "coalesce(marc_extraction_timestamp, '') FROM books WHERE barcode = ?");
  q.bind(1, b);
  REQUIRE(q.executeStep());
  return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString()};
}

void ClearMarc(const SyncEnv& env, const std::string& b) {
  SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE, 10000);
  SQLite::Statement q(db, "UPDATE books SET marc_title = NULL, marc_control_number = NULL, "
                          "marc_extraction_timestamp = NULL WHERE barcode = ?");
  q.bind(1, b);
  REQUIRE(q.exec() == 1);
}

TEST_CASE("a stored book missing its OCR object or MARC columns gets them rebuilt from storage") {
  SyncEnv env(30);
  auto first = Cli(env.SyncArgs({"--queue", "converted", "--limit", "5"}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  auto up = env.Uploaded();
  REQUIRE(up.size() == 5);
  std::vector<std::string> b(up.begin(), up.end());
  std::map<std::string, std::string> ocr;
  std::map<std::string, Marc> marc;
  for (const auto& x : b) {
    ocr[x] = Gunzip(env.OcrPath(x));
    REQUIRE_FALSE(ocr[x].empty());
    marc[x] = ReadMarc(env, x);
    REQUIRE_FALSE(marc[x].title.empty());
  }
  // b0: OCR object gone; b1: MARC columns gone; b2: both; b3: both, and the stored raw archive
  // is no longer a readable book; b4 untouched.
  std::filesystem::remove(env.OcrPath(b[0]));
  ClearMarc(env, b[1]);
  std::filesystem::remove(env.OcrPath(b[2]));
  ClearMarc(env, b[2]);
  std::filesystem::remove(env.OcrPath(b[3]));
  ClearMarc(env, b[3]);
  grin::testing::WriteFile(env.RawPath(b[3]), "not a tar.gz");
  // The state a kill between the raw upload and the commit leaves: the job back at pending with
  // the raw archive stored under the matching encrypted_etag (what --recheck sets up too).
  auto again = Cli(env.SyncArgs({"--recheck", "--barcodes", b[0] + "," + b[1] + "," + b[2] + "," +
                                                               b[3] + "," + b[4]}));
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(env.Uploaded().size() == 5);
  for (const auto& x : b) {
    CAPTURE(x);
    // Every output in place, with the same content as the first run wrote.
    CHECK(Gunzip(env.OcrPath(x)) == ocr[x]);
    Marc m = ReadMarc(env, x);
    CHECK(m.title == marc[x].title);
    CHECK(m.control == marc[x].control);
    CHECK_FALSE(m.stamp.empty());
    CHECK(grin::testing::ReadFile(env.RawPath(x)) == env.FixturePlaintext(x));
  }
  // Rebuilt from storage: no second GRIN download for b0..b2 (nor b4); b3 fetched again.
  CHECK(env.Gets(b[0]) == 1);
  CHECK(env.Gets(b[1]) == 1);
  CHECK(env.Gets(b[2]) == 1);
  CHECK(env.Gets(b[3]) == 2);
  CHECK(env.Gets(b[4]) == 1);
  auto outcome = [&](const std::string& x) {
    return env.SqlText("SELECT outcome FROM events WHERE barcode = '" + x +
                       "' AND stage = 'uploaded' ORDER BY event_id DESC LIMIT 1");
  };
  CHECK(outcome(b[0]) == "rebuilt_outputs");
  CHECK(outcome(b[1]) == "rebuilt_outputs");
  CHECK(outcome(b[2]) == "rebuilt_outputs");
  CHECK(outcome(b[3]) == "completed");
  CHECK(outcome(b[4]) == "skipped_etag_match");
  CHECK(env.SqlText("SELECT detail FROM events WHERE barcode = '" + b[2] +
                    "' AND outcome = 'rebuilt_outputs'")
            .find("[\"ocr\",\"marc\"]") != std::string::npos);
  // And a rerun with --recheck finds everything in place.
  auto third = Cli(env.SyncArgs({"--recheck", "--barcodes", b[0] + "," + b[1] + "," + b[2]}));
  REQUIRE_MESSAGE(third.code == 0, third.err);
  for (int i = 0; i < 3; ++i) CHECK(outcome(b[i]) == "skipped_etag_match");
}

TEST_CASE("without the inventory the OCR object is HEADed, and --skip-extract-ocr needs none") {
  SyncEnv env(20);
  auto first = Cli(env.SyncArgs({"--queue", "converted", "--limit", "2"}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  std::vector<std::string> b;
  for (const auto& x : env.Uploaded()) b.push_back(x);
  REQUIRE(b.size() == 2);
  std::string ocr0 = Gunzip(env.OcrPath(b[0]));
  std::filesystem::remove(env.OcrPath(b[0]));
  std::filesystem::remove(env.OcrPath(b[1]));
  // OCR skipped: a missing OCR object is not a missing output.
  auto skip = Cli(env.SyncArgs({"--recheck", "--skip-extract-ocr", "--barcodes", b[1]}));
  REQUIRE_MESSAGE(skip.code == 0, skip.err);
  CHECK_FALSE(std::filesystem::exists(env.OcrPath(b[1])));
  auto again = Cli(env.SyncArgs({"--recheck", "--no-inventory", "--barcodes", b[0]}));
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(Gunzip(env.OcrPath(b[0])) == ocr0);
  CHECK(env.Gets(b[0]) == 1);
  CHECK(env.Gets(b[1]) == 1);
}

// A body that hands out `ready` bytes, then blocks forever: a writer killed mid-put.
class StuckSource final : public ByteSource {
 public:
  explicit StuckSource(uint64_t ready) : ready_(ready) {}
  uint64_t size() const override { return 64 * kMiB; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    if (offset >= ready_) {
      for (;;) ::pause();
    }
    n = static_cast<size_t>(std::min<uint64_t>(n, ready_ - offset));
    std::memset(buf, 'x', n);
    return n;
  }

 private:
  uint64_t ready_;
};

// Forks a process that puts `key` into the local store at `base` and is killed with SIGKILL
// once its temp file holds 4 MiB: the .grin-tmp-* file a kill leaves. Returns its path.
std::string KilledPut(const std::string& base, const std::string& bucket, const std::string& key) {
  std::string dir = std::filesystem::path(base + "/" + bucket + "/" + key).parent_path().string();
  auto tmp_files = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().filename().string().rfind(".grin-tmp-", 0) == 0) {
        out.push_back(e.path().string());
      }
    }
    return out;
  };
  REQUIRE(tmp_files().empty());
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto store = storage::LocalObjectStore::Open(base);
    if (!store.ok()) ::_exit(1);
    StuckSource body(4 * kMiB);
    (void)(*store)->Put(bucket, key, body, PutOptions{});
    ::_exit(2);
  }
  std::string found;
  for (int i = 0; i < 500 && found.empty(); ++i) {
    for (const auto& f : tmp_files()) {
      std::error_code ec;
      if (std::filesystem::file_size(f, ec) >= 4 * kMiB) found = f;
    }
    if (found.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  CHECK(WaitChild(pid) == 128 + SIGKILL);
  REQUIRE_FALSE(found.empty());
  return found;
}

TEST_CASE("a run removes the litter of killed earlier runs and leaves real objects alone") {
  SyncEnv env(30);
  auto first = Cli(env.SyncArgs({"--queue", "converted", "--limit", "3"}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  std::vector<std::string> b;
  for (const auto& x : env.Uploaded()) b.push_back(x);
  REQUIRE(b.size() == 3);
  std::map<std::string, std::string> raw, ocr;
  for (const auto& x : b) {
    raw[x] = grin::testing::ReadFile(env.RawPath(x));
    ocr[x] = grin::testing::ReadFile(env.OcrPath(x));
  }
  // Storage: writers killed mid-put of a raw archive and an OCR file (over stored books).
  std::string raw_tmp = KilledPut(env.storage, "raw", b[0] + "/" + b[0] + ".tar.gz");
  std::string full_tmp = KilledPut(env.storage, "full", b[1] + "_ocr.jsonl.gz");
  // ... and of a meta object (the teardown's backup upload, killed by chaos).
  std::string meta_tmp = KilledPut(env.storage, "meta", "run/books_latest.db.gz");
  // A temp file of a writer that is alive (this process) is not litter.
  std::string live_tmp = env.storage + "/raw/" + b[2] + "/.grin-tmp-" + std::to_string(::getpid()) +
                         "@" + [] {
                           char h[256] = {0};
                           ::gethostname(h, sizeof h - 1);
                           return std::string(h);
                         }() + "-00000000deadbeef";
  grin::testing::WriteFile(live_tmp, "in progress");
  // Staging: partial downloads of stored books and of no book of the run, a decrypted copy and
  // OCR spill files of an interrupted process stage.
  std::string staging = env.run + "/staging";
  std::filesystem::create_directories(staging);
  std::string partial(5'400'000, 'p');
  for (const std::string& name :
       {b[0] + ".tar.gz.gpg", std::string("39015099999999.tar.gz.gpg"), b[1] + ".tar.gz",
        b[1] + "_ocr.jsonl.gz", b[2] + "_ocr.jsonl.gz.part"}) {
    grin::testing::WriteFile(staging + "/" + name, partial);
  }
  // Backups: an interrupted backup's temporary files next to a finished backup.
  std::string backups = env.run + "/backups";
  std::vector<std::string> finished;
  for (const auto& e : std::filesystem::directory_iterator(backups)) finished.push_back(e.path());
  REQUIRE_FALSE(finished.empty());
  for (const char* name : {"books_backup_20261205_000000.db.gz.tmp",
                           "books_backup_20261205_000000.db.gz.db.tmp",
                           "books_backup_20261205_000000.db.gz.db.tmp-journal"}) {
    grin::testing::WriteFile(backups + "/" + name, partial);
  }

  auto again = Cli(env.SyncArgs({"--queue", "converted", "--limit", "4"}));
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(env.Uploaded().size() == 7);  // --limit counts books not stored yet
  CHECK_FALSE(std::filesystem::exists(raw_tmp));
  CHECK_FALSE(std::filesystem::exists(full_tmp));
  CHECK_FALSE(std::filesystem::exists(meta_tmp));
  CHECK(std::filesystem::exists(live_tmp));
  for (const auto& e : std::filesystem::directory_iterator(staging)) {
    CHECK_MESSAGE(false, "left in staging: " << e.path().string());
  }
  for (const char* name : {"books_backup_20261205_000000.db.gz.tmp",
                           "books_backup_20261205_000000.db.gz.db.tmp",
                           "books_backup_20261205_000000.db.gz.db.tmp-journal"}) {
    CHECK_FALSE(std::filesystem::exists(backups + "/" + std::string(name)));
  }
  for (const auto& f : finished) CHECK(std::filesystem::exists(f));
  for (const auto& x : b) {
    CAPTURE(x);
    CHECK(grin::testing::ReadFile(env.RawPath(x)) == raw[x]);
    CHECK(grin::testing::ReadFile(env.OcrPath(x)) == ocr[x]);
    CHECK(env.Gets(x) == 1);
  }
  std::filesystem::remove(live_tmp);

  // A run killed in its teardown (the meta uploads) leaves a temp object; the next run has no
  // book to do, and still removes it.
  const std::set<std::string> seven = env.Uploaded();
  std::string teardown_tmp = KilledPut(env.storage, "meta", "run/books_latest.csv.gz");
  std::string list;
  for (const auto& x : seven) list += (list.empty() ? "" : ",") + x;
  auto idle = Cli(env.SyncArgs({"--barcodes", list}));
  INFO(idle.out << idle.err);
  CHECK(idle.code == 0);
  CHECK(idle.out.find("nothing to do") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(teardown_tmp));
}

}  // namespace
}  // namespace grin::pipeline::testing
