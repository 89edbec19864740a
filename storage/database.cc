#include "storage/database.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <unistd.h>

#include <filesystem>

#include "schema/migrations.h"
#include "storage/open_run_queries.h"
#include "storage/sqlite_status.h"
#ifdef GRIN_HAVE_POSTGRES
#include "storage/postgres/pg_health.h"
#endif

namespace grin::storage {
namespace {

// Denies ATTACH/DETACH on read-only connections so ad-hoc SQL cannot open other files.
int ReadOnlyAuthorizer(void*, int action, const char*, const char*, const char*, const char*) {
  if (action == SQLITE_ATTACH || action == SQLITE_DETACH) return SQLITE_DENY;
  return SQLITE_OK;
}

// A file: URI for path (RFC 3986 percent-encoding of what SQLite's URI parser treats specially).
std::string FileUri(const std::string& path, const char* query) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x21 || c >= 0x7f) {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?" + query;
}

// True when this process cannot create files next to path (read-only mount or directory), so a
// reader cannot create the WAL's -shm file.
bool DirectoryReadOnly(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  return ::access(parent.c_str(), W_OK) != 0;
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  uint64_t n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

// The message for a file that exists but holds no schema at all (e.g. truncated to 0 bytes).
Status NoSchema(const std::string& path) {
  return Status::DataLoss(path + ": holds no grin-jobs database (" +
                          std::to_string(FileSize(path)) +
                          " bytes, no tables); restore it from a backup (gunzip the newest "
                          "backups/books_backup_*.db.gz over it), or remove it and run "
                          "'grin-jobs init' to start the run's state anew");
}

// True if db has no tables, views or indexes at all.
bool HasNoSchema(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sqlite_master").getInt64() == 0;
}

}  // namespace

Result<int> SchemaVersion(SQLite::Database& db, const std::string& path) {
  try {
    return db.execAndGet("PRAGMA user_version").getInt();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

Result<DatabaseHealth> ReadDatabaseHealth(const std::string& path) {
  if (IsPostgresLocation(path)) {
#ifdef GRIN_HAVE_POSTGRES
    GRIN_ASSIGN_OR_RETURN(PgHealth pg, ReadPgHealth(path));
    return DatabaseHealth{pg.check, pg.schema_version, schema::PgLatestVersion()};
#else
    return Status::FailedPrecondition(
        "the run's state is on PostgreSQL, but this grin-jobs was built without PostgreSQL "
        "support: install libpq-dev and rebuild (GRIN_POSTGRES=ON)");
#endif
  }
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY, 5000);
    DatabaseHealth h;
    h.quick_check = db.execAndGet("PRAGMA quick_check").getString();
    h.schema_version = db.execAndGet("PRAGMA user_version").getInt();
    h.latest_version = schema::LatestVersion();
    return h;
  } catch (const SQLite::Exception& e) {
    return Status(FromSqliteException(e, path).code(), path + ": " + e.what());
  }
}

Status Migrate(SQLite::Database& db, const std::string& path, int target_version) {
  if (target_version < 0) target_version = schema::LatestVersion();
  try {
    // Migrations run with foreign keys off (it can only change outside a transaction): a table
    // rebuild (0005) drops the old table, whose implicit DELETE would otherwise fire the
    // ON DELETE CASCADEs of the tables referring to it. Each migration checks the foreign keys
    // before it commits instead; the connection's setting is restored afterwards.
    bool fk = db.execAndGet("PRAGMA foreign_keys").getInt() != 0;
    if (fk) db.exec("PRAGMA foreign_keys = OFF");
    struct RestoreFk {
      SQLite::Database& db;
      bool on;
      ~RestoreFk() {
        if (on) {
          sqlite3_exec(db.getHandle(), "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr);
        }
      }
    } restore{db, fk};
    for (int i = 0; i < schema::kMigrationCount; ++i) {
      const auto& m = schema::kMigrations[i];
      if (m.version > target_version) break;
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      // Re-read inside the write lock: another process may have migrated meanwhile.
      int current = db.execAndGet("PRAGMA user_version").getInt();
      if (current >= m.version) continue;
      if (current != m.version - 1) {
        return Status::FailedPrecondition(path + ": schema version " + std::to_string(current) +
                                          " cannot be migrated by migration " + m.name);
      }
      db.exec(std::string(m.sql));
      {
        SQLite::Statement fkc(db, "PRAGMA foreign_key_check");
        if (fkc.executeStep()) {
          return Status::DataLoss(path + ": migration " + m.name + " would break a foreign key (" +
                                  fkc.getColumn(0).getString() + "); nothing was changed");
        }
      }
      db.exec("PRAGMA user_version = " + std::to_string(m.version));
      tx.commit();
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path).WithContext("migrating");
  }
  return Status::Ok();
}

namespace {

Status NewerSchema(const std::string& path, int version) {
  return Status::FailedPrecondition(
      path + ": written by a newer grin-jobs (schema " + std::to_string(version) +
      ", this build knows " + std::to_string(schema::LatestVersion()) +
      "); upgrade grin-jobs to use it");
}

// One read-only connection; immutable: the file cannot change while we read it (read-only mount
// or directory), so SQLite needs no -shm file.
Result<std::unique_ptr<SQLite::Database>> OpenReaderOnce(const std::string& path,
                                                         const DatabaseOptions& options,
                                                         bool immutable) {
  int flags = SQLite::OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  if (immutable) flags |= SQLITE_OPEN_URI;
  auto db = std::make_unique<SQLite::Database>(
      immutable ? FileUri(path, "mode=ro&immutable=1") : path, flags, options.busy_timeout_ms);
  // Touch the file: a non-database file fails here with SQLITE_NOTADB, a read-only directory
  // without a -shm file with SQLITE_CANTOPEN.
  db->execAndGet("PRAGMA user_version");
  return db;
}

Result<std::unique_ptr<SQLite::Database>> OpenReader(const std::string& path,
                                                     const DatabaseOptions& options) {
  std::unique_ptr<SQLite::Database> db;
  try {
    try {
      GRIN_ASSIGN_OR_RETURN(db, OpenReaderOnce(path, options, false));
    } catch (const SQLite::Exception& e) {
      int rc = e.getErrorCode();
      bool cannot_open = rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY || rc == SQLITE_PERM ||
                         rc == SQLITE_IOERR;
      if (!cannot_open || !DirectoryReadOnly(path)) throw;
      // A read-only copy of a run: nothing can write it, so reading it as immutable is exact,
      // unless a -wal file holds commits the database file does not have yet.
      if (FileSize(path + "-wal") > 0) {
        return Status::FailedPrecondition(
            path + ": the run is read-only and its books.db-wal holds changes not yet in the "
                   "database; copy the run directory somewhere writable and rerun");
      }
      GRIN_ASSIGN_OR_RETURN(db, OpenReaderOnce(path, options, true));
    }
    int version = db->execAndGet("PRAGMA user_version").getInt();
    int latest = schema::LatestVersion();
    if (version > latest) return NewerSchema(path, version);
    if (version == 0 && HasNoSchema(*db)) return NoSchema(path);
    if (version < latest) {
      return Status::FailedPrecondition(
          path + ": schema " + std::to_string(version) + " is older than this build's " +
          std::to_string(latest) + "; run a writing command (e.g. 'grin-jobs init') to upgrade it");
    }
    db->exec("PRAGMA query_only = 1");
    sqlite3_set_authorizer(db->getHandle(), ReadOnlyAuthorizer, nullptr);
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
  return db;
}

}  // namespace

Result<std::unique_ptr<SQLite::Database>> OpenDatabase(const std::string& path,
                                                       const DatabaseOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  bool exists = fs::exists(path, ec);
  if (!exists && (options.read_only || !options.create)) {
    return Status::NotFound(path + ": no run database here; create one with 'grin-jobs init'");
  }
  if (!exists) {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      return Status::NotFound(parent.string() + ": directory does not exist");
    }
  }
  std::unique_ptr<SQLite::Database> db;
  if (options.read_only) return OpenReader(path, options);
  try {
    int flags = SQLite::OPEN_READWRITE | (options.create ? SQLite::OPEN_CREATE : 0);
    flags |= SQLITE_OPEN_NOMUTEX;  // one connection per thread (or the writer thread)
    db = std::make_unique<SQLite::Database>(path, flags, options.busy_timeout_ms);
    // Touch the file: a non-database file fails here with SQLITE_NOTADB.
    int version = db->execAndGet("PRAGMA user_version").getInt();
    int latest = schema::LatestVersion();
    if (version > latest) return NewerSchema(path, version);
    // Only a file this call created, or `init` (init_empty), gets a fresh schema: an existing
    // file with none (truncated, 0 bytes) is refused rather than silently emptied.
    if (version == 0 && exists && !options.init_empty && HasNoSchema(*db)) return NoSchema(path);
    db->exec("PRAGMA journal_mode = WAL");
    db->exec("PRAGMA foreign_keys = ON");
    db->exec(options.durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA temp_store = MEMORY");
    // 64 MiB of page cache (default 2 MiB): a bulk enqueue or a busy run's hot index pages stay
    // in memory instead of being spilled to the WAL mid-transaction and read back.
    db->exec("PRAGMA cache_size = -65536");
    db->exec("PRAGMA wal_autocheckpoint = 0");
    db->exec("PRAGMA journal_size_limit = 67108864");
    GRIN_RETURN_IF_ERROR(Migrate(*db, path));
    // A database this file's migrations produced passes the integrity check; a damaged one is
    // refused before anything writes to it.
    std::string qc = db->execAndGet("PRAGMA quick_check(1)").getString();
    if (qc != "ok") {
      return Status::DataLoss(path + ": database failed its integrity check (" + qc +
                              "); restore it from a backup in the run's backups/ folder");
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
  return db;
}

Result<std::unique_ptr<SQLite::Database>> OpenCheckpointer(const std::string& path,
                                                           bool durable) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, DatabaseOptions{}.busy_timeout_ms);
    db->exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA wal_autocheckpoint = 0");
    db->execAndGet("PRAGMA user_version");  // opens the file and its WAL now
    return db;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

}  // namespace grin::storage
