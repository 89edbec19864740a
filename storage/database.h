#pragma once
// Opening a run database: the one place that knows the pragmas and applies schema migrations.
//
// Writers get WAL, foreign keys, a busy timeout, synchronous=NORMAL (FULL when durable), a
// 64 MiB page cache, and
// wal_autocheckpoint=0 (the state store's writer checkpoints itself, so a commit never stalls on
// a checkpoint and the WAL stays bounded). Readers get a read-only connection with query_only.
//
// Migrations are the files in schema/migrations, embedded at build time; each pending one runs in
// its own BEGIN IMMEDIATE transaction, with foreign keys off (so a table rebuild cannot cascade)
// and a foreign_key_check before its commit, and bumps PRAGMA user_version. A database from a
// newer grin-jobs is refused, never touched.

#include <memory>
#include <string>

#include "engine/base/result.h"

namespace SQLite {
class Database;
}

namespace grin::storage {

struct DatabaseOptions {
  bool read_only = false;    // open an existing database read-only (query_only); never migrates
  bool create = true;        // writers: create the file (and its schema) if missing
  // Writers: give an existing file that holds no schema at all (e.g. 0 bytes) a fresh schema.
  // Only `grin-jobs init` sets it: any other open refuses such a file (kDataLoss), so a truncated
  // books.db is never silently re-initialised.
  bool init_empty = false;
  bool durable = false;      // synchronous=FULL instead of NORMAL
  int busy_timeout_ms = 60'000;
};

// Opens (and for writers creates and migrates) the database at path. Errors name the file and
// say what to do: kNotFound (no such database), kDataLoss (not a database / corrupt / an
// existing file with no schema, unless init_empty),
// kFailedPrecondition (newer schema, or a reader on a not-yet-migrated file),
// kPermissionDenied (unreadable/unwritable), kNoSpace (disk full).
// Readers on a run that cannot be written (read-only mount or directory, where SQLite cannot
// create the WAL's -shm file) read the file as immutable, provided no -wal holds changes that
// are not in the database yet (then kFailedPrecondition: copy the run somewhere writable).
Result<std::unique_ptr<SQLite::Database>> OpenDatabase(const std::string& path,
                                                       const DatabaseOptions& options);

// Opens the state store's checkpointer connection on an existing, migrated database: read-write,
// no migrations or integrity check, synchronous NORMAL (FULL when durable; a checkpoint syncs
// the WAL and the database file at that level). It only runs wal_checkpoint.
Result<std::unique_ptr<SQLite::Database>> OpenCheckpointer(const std::string& path,
                                                           bool durable);

// Applies every pending migration (each in its own BEGIN IMMEDIATE transaction) up to
// target_version (default: the latest). Used by OpenDatabase and by migration tests.
Status Migrate(SQLite::Database& db, const std::string& path, int target_version = -1);

// PRAGMA user_version.
Result<int> SchemaVersion(SQLite::Database& db, const std::string& path);

// What `doctor` reports about a run database, read as the file is.
struct DatabaseHealth {
  std::string quick_check;  // the first line PRAGMA quick_check answers: "ok" when sound
  int schema_version = 0;   // PRAGMA user_version (may be newer than this build's)
  int latest_version = 0;   // this build's latest schema version for the database's dialect
};

// Opens path read-only without migrating it or checking its schema version (waiting up to 5 s
// for a writer's lock) and reads its DatabaseHealth. Errors are "<path>: <what SQLite said>",
// coded as FromSqliteException codes them (kDataLoss for a file that is not a database, ...).
// A postgresql:// location is read by storage/postgres/pg_health.h instead (quick_check: the
// kept counts against the rows; schema_version: grin_schema_migrations); kFailedPrecondition
// in a build without PostgreSQL.
Result<DatabaseHealth> ReadDatabaseHealth(const std::string& path);

}  // namespace grin::storage
