#pragma once
// What `doctor` can say about a PostgreSQL run's database, as SQLite's ReadDatabaseHealth
// (storage/database.h) says it about a books.db: the schema version, and a consistency check in
// place of PRAGMA quick_check: the counts the schema keeps (job_counts per stage, book_count)
// against counting the rows. Costs O(jobs + books) (one pass each); read-only.

#include <string>

#include "engine/base/result.h"

namespace grin::storage {

struct PgHealth {
  // "ok" when the kept counts equal the rows; else the first difference, e.g.
  // "job_counts says 5 jobs at checked, jobs holds 6". "" when the schema is not there yet.
  std::string check;
  int schema_version = 0;  // grin_schema_migrations (0: no run; may be newer than this build's)
};

// Connects read-only (libpq URI or key/value string) and reads the PgHealth. Errors as
// PgConnection::Connect (kUnavailable, kPermissionDenied); messages never hold the password.
Result<PgHealth> ReadPgHealth(const std::string& conninfo);

}  // namespace grin::storage
