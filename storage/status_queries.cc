#include "storage/status_queries.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include "storage/sqlite_status.h"

namespace grin::storage {
namespace {

constexpr const char* kBookCountSql = "SELECT n FROM book_count WHERE one = 1";
// The WHERE is books_convert_failed's, word for word, so the planner reads only that index's
// rows (in GROUP BY order) and never the whole table.
constexpr const char* kConvertFailedSql = R"sql(
SELECT coalesce(grin_convert_failed_info, ''), count(*) FROM books
WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL
GROUP BY 1 ORDER BY 2 DESC, 1)sql";

}  // namespace

Result<int64_t> QueryBookCount(SQLite::Database& db, const std::string& path) {
  try {
    SQLite::Statement q(db, kBookCountSql);
    return q.executeStep() ? q.getColumn(0).getInt64() : 0;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

Result<ConvertFailedSummary> QueryConvertFailed(SQLite::Database& db, const std::string& path,
                                                size_t top) {
  try {
    ConvertFailedSummary s;
    SQLite::Statement q(db, kConvertFailedSql);
    while (q.executeStep()) {
      const int64_t n = q.getColumn(1).getInt64();
      s.books += n;
      if (s.by_info.size() < top) s.by_info.emplace_back(q.getColumn(0).getString(), n);
    }
    return s;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

}  // namespace grin::storage
