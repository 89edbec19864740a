#include "storage/postgres/pg_books_export.h"

#include "storage/postgres/pg_connection.h"

namespace grin::storage {
namespace {

constexpr int kBatch = 2000;

}  // namespace

Status ForEachPgBookRow(const std::string& conninfo, const std::vector<std::string>& columns,
                        const BookRowFn& fn) {
  GRIN_ASSIGN_OR_RETURN(auto c, pg::PgConnection::Connect(conninfo, pg::RedactConninfo(conninfo)));
  GRIN_RETURN_IF_ERROR(c->Exec("SET default_transaction_read_only = on").status());
  GRIN_ASSIGN_OR_RETURN(pg::PgResult t, c->Exec("SELECT to_regclass('books') IS NOT NULL"));
  if (t.Int(0, 0) == 0) {
    return Status::NotFound(c->what() + ": no grin-jobs run in this database (no books table)");
  }
  pg::PgTransaction tx(*c);
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(
      c->Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
  std::string sql = "DECLARE books_export NO SCROLL CURSOR FOR SELECT ";
  for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + columns[i];
  sql += " FROM books ORDER BY barcode COLLATE \"C\"";
  GRIN_RETURN_IF_ERROR(c->Exec(sql).status());
  const std::string fetch = "FETCH FORWARD " + std::to_string(kBatch) + " FROM books_export";
  std::vector<std::optional<std::string>> row(columns.size());
  for (;;) {
    GRIN_ASSIGN_OR_RETURN(pg::PgResult r, c->Exec(fetch));
    for (int i = 0; i < r.rows(); ++i) {
      for (int j = 0; j < r.columns() && j < static_cast<int>(row.size()); ++j) {
        if (r.IsNull(i, j)) {
          row[static_cast<size_t>(j)].reset();
        } else {
          row[static_cast<size_t>(j)] = r.Text(i, j);
        }
      }
      GRIN_RETURN_IF_ERROR(fn(row));
    }
    if (r.rows() < kBatch) break;
  }
  return tx.Commit();
}

}  // namespace grin::storage
