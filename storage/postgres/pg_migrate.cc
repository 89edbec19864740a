#include "storage/postgres/pg_migrate.h"

#include <string>

#include "schema/migrations.h"

namespace grin::storage::pg {
namespace {

// Any constant both processes agree on: "grin" in ASCII.
constexpr const char* kMigrateLockSql = "SELECT pg_advisory_xact_lock(1735551342)";
constexpr const char* kCreateVersionsSql = R"sql(
CREATE TABLE IF NOT EXISTS grin_schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()))sql";
constexpr const char* kVersionSql =
    "SELECT coalesce(max(version), 0) FROM grin_schema_migrations";
constexpr const char* kHasVersionsSql =
    "SELECT to_regclass('grin_schema_migrations') IS NOT NULL";
constexpr const char* kRecordSql =
    "INSERT INTO grin_schema_migrations(version, name) VALUES ($1::integer, $2)";

}  // namespace

Result<int> PostgresSchemaVersion(PgConnection& c) {
  GRIN_ASSIGN_OR_RETURN(PgResult has, c.Exec(kHasVersionsSql));
  if (has.Int(0, 0) == 0) return 0;
  GRIN_ASSIGN_OR_RETURN(PgResult v, c.Exec(kVersionSql));
  return static_cast<int>(v.Int(0, 0));
}

Result<int> MigratePostgres(PgConnection& c) {
  int found = -1;
  for (;;) {
    PgTransaction tx(c);
    GRIN_RETURN_IF_ERROR(tx.Begin());
    GRIN_ASSIGN_OR_RETURN(PgResult lock, c.Exec(kMigrateLockSql));
    GRIN_ASSIGN_OR_RETURN(PgResult made, c.Exec(kCreateVersionsSql));
    GRIN_ASSIGN_OR_RETURN(PgResult v, c.Exec(kVersionSql));
    int version = static_cast<int>(v.Int(0, 0));
    if (found < 0) found = version;
    if (version > schema::PgLatestVersion()) {
      return Status::FailedPrecondition(
          c.what() + ": the database is at schema version " + std::to_string(version) +
          ", newer than this grin-jobs knows (" + std::to_string(schema::PgLatestVersion()) +
          "); upgrade grin-jobs");
    }
    // The lowest version above the database's: numbers are reserved per change and a reserved
    // one may never be used, so a gap (e.g. 2 -> 4) is skipped, not a stop.
    const schema::Migration* next = nullptr;
    for (int i = 0; i < schema::kPgMigrationCount; ++i) {
      const auto& m = schema::kPgMigrations[i];
      if (m.version > version && (next == nullptr || m.version < next->version)) next = &m;
    }
    if (next == nullptr) {
      GRIN_RETURN_IF_ERROR(tx.Commit());
      return found;
    }
    Status s = c.ExecScript(next->sql);
    if (!s.ok()) return s.WithContext(std::string("migration ") + next->name);
    GRIN_ASSIGN_OR_RETURN(PgResult rec,
                          c.Exec(kRecordSql, {std::to_string(next->version), next->name}));
    GRIN_RETURN_IF_ERROR(tx.Commit());
  }
}

}  // namespace grin::storage::pg
