#pragma once
// SQLite: the queries `grin-jobs status` asks beyond the state store's own counts
// (state_reader.h; SqliteRunQueries answers RunQueries with them): how many books the run
// knows and GRIN's conversion failures by reason. Each costs O(1) or O(the rows it reports),
// never O(books): the book count is kept by triggers in book_count, the failures are read
// through the partial index books_convert_failed (schema 0011).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "storage/run_queries.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace grin::storage {

// Rows of books (book_count; always equal to SELECT count(*) FROM books). Errors name `path`.
Result<int64_t> QueryBookCount(SQLite::Database& db, const std::string& path);

// ConvertFailedSummary: see run_queries.h.
Result<ConvertFailedSummary> QueryConvertFailed(SQLite::Database& db, const std::string& path,
                                                size_t top);

}  // namespace grin::storage
