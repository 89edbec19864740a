#include "storage/postgres/pg_health.h"

#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_migrate.h"

namespace grin::storage {
namespace {

// Each kept count beside the rows it counts; a row for every stage either side names.
constexpr const char* kJobCountsSql = R"sql(
SELECT coalesce(k.stage, j.stage), coalesce(k.n, 0), coalesce(j.n, 0)
FROM (SELECT stage, sum(n) AS n FROM job_counts GROUP BY stage) k
FULL JOIN (SELECT stage, count(*) AS n FROM jobs GROUP BY stage) j ON j.stage = k.stage
ORDER BY coalesce(k.stage, j.stage) COLLATE "C")sql";
constexpr const char* kBookCountSql =
    "SELECT (SELECT coalesce(sum(n), 0) FROM book_count), (SELECT count(*) FROM books)";

}  // namespace

Result<PgHealth> ReadPgHealth(const std::string& conninfo) {
  GRIN_ASSIGN_OR_RETURN(auto c, pg::PgConnection::Connect(conninfo, pg::RedactConninfo(conninfo)));
  GRIN_RETURN_IF_ERROR(c->Exec("SET default_transaction_read_only = on").status());
  PgHealth h;
  GRIN_ASSIGN_OR_RETURN(h.schema_version, pg::PostgresSchemaVersion(*c));
  // 0002 (book_count) is the first version with every kept count checked here.
  if (h.schema_version < 2) return h;
  pg::PgTransaction tx(*c);  // one snapshot for the counts and the rows
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(
      c->Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
  GRIN_ASSIGN_OR_RETURN(pg::PgResult j, c->Exec(kJobCountsSql));
  for (int i = 0; i < j.rows() && h.check.empty(); ++i) {
    if (j.Int(i, 1) != j.Int(i, 2)) {
      h.check = "job_counts says " + std::to_string(j.Int(i, 1)) + " jobs at " + j.Text(i, 0) +
                ", jobs holds " + std::to_string(j.Int(i, 2));
    }
  }
  GRIN_ASSIGN_OR_RETURN(pg::PgResult b, c->Exec(kBookCountSql));
  if (h.check.empty() && b.Int(0, 0) != b.Int(0, 1)) {
    h.check = "book_count says " + std::to_string(b.Int(0, 0)) + " books, books holds " +
              std::to_string(b.Int(0, 1));
  }
  GRIN_RETURN_IF_ERROR(tx.Commit());
  if (h.check.empty()) h.check = "ok";
  return h;
}

}  // namespace grin::storage
