#pragma once
// The PostgreSQL schema: schema/postgres/NNNN_name.sql (schema/migrations.h kPgMigrations),
// applied forward-only, each in its own transaction, recorded in grin_schema_migrations
// (PostgreSQL's counterpart of SQLite's PRAGMA user_version).

#include "engine/base/result.h"
#include "storage/postgres/pg_connection.h"

namespace grin::storage::pg {

// Brings the database up to schema::PgLatestVersion() and returns the version it found.
// Several processes may start at once: a transaction-level advisory lock lets one migrate while
// the others wait, then find nothing to do. kFailedPrecondition when the database was migrated
// by a newer grin-jobs (its version is past ours).
Result<int> MigratePostgres(PgConnection& c);

// The version a database is at (0 = empty).
Result<int> PostgresSchemaVersion(PgConnection& c);

}  // namespace grin::storage::pg
