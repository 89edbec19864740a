#pragma once
// The schema migrations in schema/migrations/NNNN_name.sql, embedded at build time in file order.
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

}  // namespace grin::schema
