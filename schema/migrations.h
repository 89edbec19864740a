#pragma once
// The SQLite schema migrations in schema/migrations/NNNN_name.sql, embedded at build time in file
// order.
// Migration N brings a database from PRAGMA user_version N-1 to N.

#include <string_view>

namespace grin::schema {

struct Migration {
  int version;
  const char* name;
  std::string_view sql;
};

extern const Migration kMigrations[];
extern const int kMigrationCount;

// The user_version a fully migrated database has.
inline int LatestVersion() { return kMigrations[kMigrationCount - 1].version; }

// The PostgreSQL dialect: schema/postgres/NNNN_name.sql, numbered on their own (postgres 0001
// is SQLite 0001-0010 at once), applied by storage/postgres/pg_migrate.h. At the latest version
// of each dialect both have the same tables, views and columns (tests/storage/pg_schema_test).
extern const Migration kPgMigrations[];
extern const int kPgMigrationCount;
inline int PgLatestVersion() { return kPgMigrations[kPgMigrationCount - 1].version; }

}  // namespace grin::schema
