// BackupPolicy against real parts: a real SQLite run database, backups made with the online
// backup API, published to the local-folder object store.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>
#include <zlib.h>

#include <filesystem>

#include "storage/backup_policy.h"
#include "storage/database.h"
#include "storage/local_object_store.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

namespace fs = std::filesystem;
using grin::testing::TempDir;

constexpr int64_t kT0 = 1'800'000'000'000'000;  // 2027-01-15

void SetBooks(const std::string& db_path, int n) {
  auto db = OpenDatabase(db_path, {});
  REQUIRE(db.ok());
  (*db)->exec("DELETE FROM books");
  SQLite::Statement ins(**db, "INSERT INTO books(barcode, created_at, updated_at) "
                              "VALUES (?1, 'x', 'x')");
  for (int i = 0; i < n; ++i) {
    ins.reset();
    ins.bind(1, "BK" + std::to_string(100000 + i));
    ins.exec();
  }
}

// Books in a gzipped database backup, counted by opening it (independent of the metadata).
int64_t BooksInBackup(const std::string& gz, const std::string& scratch) {
  gzFile f = gzopen(gz.c_str(), "rb");
  REQUIRE(f);
  std::string bytes;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  gzclose(f);
  grin::testing::WriteFile(scratch, bytes);
  SQLite::Database db(scratch, SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM books").getInt64();
}

TEST_CASE("a backup with fewer books never replaces books_latest.db.gz without keeping it") {
  TempDir dir;
  std::string db = dir.file("books.db");
  std::string backups = dir.file("backups");
  auto store = LocalObjectStore::Open(dir.file("storage")).value();
  REQUIRE(store->EnsureBucket("meta").ok());
  StorageLayout layout;
  std::string latest = dir.file("storage") + "/meta/books_latest.db.gz";

  SetBooks(db, 400);
  auto b1 = MakeLocalBackup(db, backups, kT0);
  REQUIRE(b1.ok());
  CHECK(b1->books == 400);
  CHECK(fs::path(b1->path).filename() == "books_backup_20270115_080000_400books.db.gz");
  auto w1 = PublishLatestBackup(*store, layout, *b1, kT0, backups);
  REQUIRE(w1.ok());
  CHECK(w1->empty());
  CHECK(*FindMetadata(store->Head("meta", "books_latest.db.gz")->metadata, "books") == "400");

  // More books: replaced, no warning, nothing kept.
  SetBooks(db, 401);
  auto b2 = MakeLocalBackup(db, backups, kT0 + 60'000'000);
  REQUIRE(b2.ok());
  auto w2 = PublishLatestBackup(*store, layout, *b2, kT0 + 60'000'000, backups);
  REQUIRE(w2.ok());
  CHECK(w2->empty());
  CHECK(BooksInBackup(latest, dir.file("check.db")) == 401);

  // Near empty: the stored 401-book backup is kept under a dated name, with one warning line.
  SetBooks(db, 3);
  auto b3 = MakeLocalBackup(db, backups, kT0 + 120'000'000);
  REQUIRE(b3.ok());
  auto w3 = PublishLatestBackup(*store, layout, *b3, kT0 + 120'000'000, backups);
  REQUIRE(w3.ok());
  CHECK(w3->find("holds 3 books, the stored one 401") != std::string::npos);
  CHECK(w3->find("meta/books_latest_kept_20270115_080200.db.gz") != std::string::npos);
  CHECK(w3->find('\n') == std::string::npos);
  std::string kept = dir.file("storage") + "/meta/books_latest_kept_20270115_080200.db.gz";
  REQUIRE(fs::exists(kept));
  CHECK(BooksInBackup(kept, dir.file("check2.db")) == 401);
  CHECK(*FindMetadata(store->Head("meta", "books_latest_kept_20270115_080200.db.gz")->metadata,
                      "books") == "401");
  CHECK(BooksInBackup(latest, dir.file("check3.db")) == 3);
  // No scratch files left behind.
  for (const auto& e : fs::directory_iterator(backups)) {
    CHECK(e.path().filename().string().find("partial") == std::string::npos);
  }

  // A stored backup without a count (older versions) is kept too.
  {
    auto src = FileSource::Open(b1->path).value();
    REQUIRE(store->Put("meta", "books_latest.db.gz", *src, PutOptions{}).ok());
  }
  auto w4 = PublishLatestBackup(*store, layout, *b3, kT0 + 180'000'000, backups);
  REQUIRE(w4.ok());
  CHECK(w4->find("an unknown number") != std::string::npos);
  CHECK(fs::exists(dir.file("storage") + "/meta/books_latest_kept_20270115_080300.db.gz"));
}

TEST_CASE("local retention never drops the newest backup with the most books") {
  TempDir dir;
  std::string db = dir.file("books.db");
  std::string backups = dir.file("backups");
  SetBooks(db, 50);
  REQUIRE(MakeLocalBackup(db, backups, kT0).ok());
  SetBooks(db, 400);
  auto full = MakeLocalBackup(db, backups, kT0 + 1'000'000);
  REQUIRE(full.ok());
  // Then 12 small backups: the 400-book one is far past the newest 10.
  SetBooks(db, 2);
  for (int i = 0; i < 12; ++i) {
    REQUIRE(MakeLocalBackup(db, backups, kT0 + (10 + i) * 1'000'000).ok());
  }
  // Litter and legacy names: legacy ones count by age only, other files are not touched.
  grin::testing::WriteFile(backups + "/books_backup_20200101_000000.db.gz", "legacy");
  grin::testing::WriteFile(backups + "/notes.txt", "x");
  auto removed = PruneLocalBackups(backups, 10);
  auto left = ListLocalBackups(backups);
  CHECK(left.size() == 11);
  CHECK(left.front().stamp == "20270115_080021");
  CHECK(std::any_of(left.begin(), left.end(),
                    [&](const LocalBackup& b) { return b.path == full->path && b.books == 400; }));
  CHECK(removed.size() == 4);  // the 50-book one, the oldest two small ones, and the legacy one
  CHECK(fs::exists(backups + "/notes.txt"));
  CHECK_FALSE(fs::exists(backups + "/books_backup_20200101_000000.db.gz"));
}

}  // namespace
}  // namespace grin::storage
