// Schema and OpenDatabase: migration from empty and from every earlier version, integrity after
// each, and bad input (corrupt file, newer schema, missing or read-only directory, full disk).
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/books_columns.h"
#include "engine/state_store.h"
#include "schema/migrations.h"
#include "storage/database.h"
#include "storage/sqlite_state_store.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

void CheckIntegrity(SQLite::Database& db) {
  CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
  SQLite::Statement fk(db, "PRAGMA foreign_key_check");
  CHECK_FALSE(fk.executeStep());
}

TEST_CASE("migrations apply from empty to the latest version, integrity ok") {
  TempDir dir;
  auto db = OpenDatabase(dir.file("books.db"), {});
  REQUIRE(db.ok());
  CHECK(SchemaVersion(**db, "x").value() == schema::LatestVersion());
  CheckIntegrity(**db);
  // The progress views exist and answer.
  for (const char* v : {"pending", "checked", "downloaded", "uploaded", "failed", "books"}) {
    CAPTURE(v);
    CHECK((*db)->execAndGet(std::string("SELECT count(*) FROM ") + v).getInt() == 0);
  }
}

TEST_CASE("the unused upload_parts table is gone after migration") {
  TempDir dir;
  auto db = OpenDatabase(dir.file("books.db"), {});
  REQUIRE(db.ok());
  CHECK((*db)->execAndGet("SELECT count(*) FROM sqlite_schema WHERE name = 'upload_parts'")
            .getInt() == 0);
  // Multipart progress lives in job checkpoints instead.
  CHECK((*db)->execAndGet("SELECT count(*) FROM sqlite_schema WHERE name = 'job_checkpoints'")
            .getInt() == 1);
}

TEST_CASE("the books table has exactly the columns of engine/books_columns.h, in order") {
  TempDir dir;
  auto db = OpenDatabase(dir.file("books.db"), {});
  REQUIRE(db.ok());
  std::vector<std::string> in_schema;
  SQLite::Statement info(**db, "SELECT name FROM pragma_table_info('books') ORDER BY cid");
  while (info.executeStep()) in_schema.push_back(info.getColumn(0).getString());
  std::vector<std::string> in_code;
  for (const BooksColumn& c : BooksColumns()) in_code.emplace_back(c.name);
  CHECK(in_schema == in_code);
  // MARC fields, enrichment columns and the sync's writable columns are subsets.
  CHECK(MarcFieldColumns().size() == 17);
  CHECK(EnrichmentColumns().size() == 24);
  CHECK(IsWritableBookColumn("marc_lccn"));
  CHECK(IsWritableBookColumn("encrypted_etag"));
  CHECK_FALSE(IsWritableBookColumn("grin_state"));
  CHECK_FALSE(IsWritableBookColumn("barcode"));
}

TEST_CASE("migrations apply from every earlier version") {
  for (int from = 0; from < schema::LatestVersion(); ++from) {
    CAPTURE(from);
    TempDir dir;
    std::string path = dir.file("books.db");
    {
      SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      REQUIRE(Migrate(raw, path, from).ok());
      CHECK(raw.execAndGet("PRAGMA user_version").getInt() == from);
      if (from >= 1) {
        raw.exec("INSERT INTO jobs(barcode, created_at, updated_at) VALUES ('OLD001', 1, 1)");
        raw.exec("INSERT INTO jobs(barcode, stage, created_at, updated_at) "
                 "VALUES ('OLD002', 'uploaded', 1, 1), ('OLD003', 'uploaded', 1, 1)");
        raw.exec("INSERT INTO jobs(barcode, stage, status, error_class, error_reason, "
                 "created_at, updated_at) VALUES ('OLD004', 'checked', 'dead', 'permanent', "
                 "'gone', 1, 1)");
        raw.exec("INSERT INTO books(barcode, created_at, updated_at) "
                 "VALUES ('OLD001', 't', 't'), ('OLD002', 't', 't'), ('OLD005', 't', 't')");
        raw.exec("INSERT INTO events(at, barcode, stage, outcome) VALUES "
                 "('2026-01-01T00:00:00.100Z', 'OLD002', 'uploaded', 'completed'), "
                 "('2026-01-01T00:00:00.900Z', 'OLD003', 'uploaded', 'completed'), "
                 "('2026-01-01T00:00:01.000Z', 'OLD001', 'checked', 'completed')");
      }
    }
    // Version 0 is a file with no schema at all: only `init` (init_empty) may fill it.
    DatabaseOptions init;
    init.init_empty = from == 0;
    if (from == 0) CHECK(OpenDatabase(path, {}).status().code() == StatusCode::kDataLoss);
    auto db = OpenDatabase(path, init);
    REQUIRE(db.ok());
    CHECK(SchemaVersion(**db, path).value() == schema::LatestVersion());
    CheckIntegrity(**db);
    if (from >= 1) {
      CHECK((*db)->execAndGet("SELECT count(*) FROM pending").getInt() == 1);
      CHECK((*db)->execAndGet("SELECT count(*) FROM uploaded").getInt() == 2);
      CHECK((*db)->execAndGet("SELECT count(*) FROM failed").getInt() == 1);
    }
    // 0004's job_counts starts equal to the jobs table, whatever the version upgraded from.
    std::map<std::string, int64_t> n;
    {
      SQLite::Statement counts(**db, "SELECT stage, n FROM job_counts");
      while (counts.executeStep()) {
        n[counts.getColumn(0).getString()] = counts.getColumn(1).getInt64();
      }
    }
    CHECK(n.size() == 4);
    CHECK(n["pending"] == (from >= 1 ? 1 : 0));
    CHECK(n["checked"] == (from >= 1 ? 1 : 0));
    CHECK(n["downloaded"] == 0);
    CHECK(n["uploaded"] == (from >= 1 ? 2 : 0));
    // 0011's book_count starts equal to the books table too, and its triggers keep it so.
    CHECK((*db)->execAndGet("SELECT n FROM book_count").getInt64() == (from >= 1 ? 3 : 0));
    (*db)->exec("INSERT INTO books(barcode, created_at, updated_at) VALUES ('NEW001', 't', 't')");
    (*db)->exec("DELETE FROM books WHERE barcode = 'OLD001'");
    CHECK((*db)->execAndGet("SELECT n FROM book_count").getInt64() ==
          (*db)->execAndGet("SELECT count(*) FROM books").getInt64());
    // ... and uploaded_per_second the uploaded events per second (2026-01-01T00:00:00Z: 2).
    CHECK((*db)->execAndGet("SELECT coalesce(group_concat(sec || ':' || n), '') "
                            "FROM uploaded_per_second").getString() ==
          (from >= 1 ? "1767225600:2" : ""));
    if (from >= 1) {
      // ... and a store opened on the upgraded file reads them.
      db->reset();
      StateStoreOptions o;
      auto store = SqliteStateStore::Open(path, o);
      REQUIRE(store.ok());
      auto c = (*store)->Counts().value();
      CHECK(c.total == 4);
      CHECK(c.at[3] == 2);
      CHECK(c.dead == 1);
      auto failures = (*store)->Failures().value();
      REQUIRE(failures.size() == 1);
      CHECK(failures[0].reason == "gone");
    }
  }
}

TEST_CASE("events are append-only") {
  TempDir dir;
  auto db = OpenDatabase(dir.file("books.db"), {});
  REQUIRE(db.ok());
  (*db)->exec("INSERT INTO events(at, stage, outcome) VALUES ('t', 'pending', 'x')");
  CHECK_THROWS((*db)->exec("UPDATE events SET outcome = 'y'"));
  CHECK_THROWS((*db)->exec("DELETE FROM events"));
}

TEST_CASE("a database from a newer schema is refused and left untouched") {
  TempDir dir;
  std::string path = dir.file("books.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("PRAGMA user_version = 999");
  }
  auto before = grin::testing::ReadFile(path);
  auto db = OpenDatabase(path, {});
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == StatusCode::kFailedPrecondition);
  CHECK(db.status().message().find(path) != std::string::npos);
  CHECK(db.status().message().find("newer grin-jobs") != std::string::npos);
  CHECK(grin::testing::ReadFile(path) == before);
}

TEST_CASE("a corrupt file is refused with one line naming it, and not modified") {
  TempDir dir;
  std::string path = dir.file("books.db");
  std::string junk(8192, 'x');
  grin::testing::WriteFile(path, "this is not a database" + junk);
  auto db = OpenDatabase(path, {});
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == StatusCode::kDataLoss);
  CHECK(db.status().message().find(path) != std::string::npos);
  CHECK(db.status().message().find('\n') == std::string::npos);
  CHECK(grin::testing::ReadFile(path) == "this is not a database" + junk);
  StateStoreOptions o;
  auto store = SqliteStateStore::Open(path, o);
  CHECK(store.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a damaged page in a real database is detected") {
  TempDir dir;
  std::string path = dir.file("books.db");
  {
    auto db = OpenDatabase(path, {});
    REQUIRE(db.ok());
    SQLite::Statement ins(**db, "INSERT INTO jobs(barcode, created_at, updated_at) VALUES (?,1,1)");
    for (int i = 0; i < 3000; ++i) {
      ins.bind(1, "BC" + std::to_string(100000 + i));
      ins.exec();
      ins.reset();
    }
    (*db)->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    (*db)->exec("PRAGMA journal_mode = DELETE");
  }
  std::string bytes = grin::testing::ReadFile(path);
  REQUIRE(bytes.size() > 40000);
  for (size_t i = 20000; i < 36000; ++i) bytes[i] = static_cast<char>(i * 7);
  grin::testing::WriteFile(path, bytes);
  auto db = OpenDatabase(path, {});
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == StatusCode::kDataLoss);
  CHECK(db.status().message().find(path) != std::string::npos);
}

TEST_CASE("missing and read-only directories give one clear line") {
  TempDir dir;
  auto missing = OpenDatabase(dir.file("nope/books.db"), {});
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("nope") != std::string::npos);

  DatabaseOptions ro;
  ro.read_only = true;
  auto absent = OpenDatabase(dir.file("books.db"), ro);
  CHECK(absent.status().code() == StatusCode::kNotFound);
  CHECK(absent.status().message().find("grin-jobs init") != std::string::npos);

  std::filesystem::path rodir = dir.path() / "ro";
  std::filesystem::create_directory(rodir);
  std::filesystem::permissions(rodir, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_exec);
  if (geteuid() != 0) {
    auto r = OpenDatabase((rodir / "books.db").string(), {});
    CHECK_FALSE(r.ok());
    CHECK(r.status().message().find("ro/books.db") != std::string::npos);
  } else {
    // Root ignores permission bits; a read-only mount does not lie.
    if (mount("tmpfs", rodir.c_str(), "tmpfs", MS_RDONLY, "size=1m") == 0) {
      auto r = OpenDatabase((rodir / "books.db").string(), {});
      CHECK_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kPermissionDenied);
      CHECK(r.status().message().find("ro/books.db") != std::string::npos);
      umount(rodir.c_str());
    } else {
      FAIL("cannot mount a read-only tmpfs for the test (need root or CAP_SYS_ADMIN)");
    }
  }
}

TEST_CASE("a full disk fails the write with one line and leaves the database usable") {
  TempDir dir;
  std::filesystem::path small = dir.path() / "small";
  std::filesystem::create_directory(small);
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=600k") != 0) {
    FAIL("cannot mount a small tmpfs for the full-disk test (need root or CAP_SYS_ADMIN)");
    return;
  }
  std::string path = (small / "books.db").string();
  {
    StateStoreOptions o;
    auto store = SqliteStateStore::Open(path, o);
    REQUIRE(store.ok());
    REQUIRE((*store)->Enqueue({"KEEP001", "KEEP002"}).ok());
    // Fill the disk with a big enqueue; it must fail cleanly, all or nothing.
    std::vector<std::string> many;
    for (int i = 0; i < 40000; ++i) many.push_back("FILLER" + std::to_string(1000000 + i));
    auto r = (*store)->Enqueue(many);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kNoSpace);
    CHECK(r.status().message().find("books.db") != std::string::npos);
    CHECK(r.status().message().find("disk full") != std::string::npos);
  }
  // Nothing further damaged: the earlier rows are there, the failed batch is not.
  {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(small)) {
      if (e.path().filename() == "filler") std::filesystem::remove(e.path(), ec);
    }
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
    CHECK(db.execAndGet("SELECT count(*) FROM jobs").getInt() == 2);
  }
  umount2(small.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace grin::storage
