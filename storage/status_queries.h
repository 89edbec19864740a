#pragma once
// The queries `grin-jobs status` asks beyond the state store's own counts (state_reader.h): how
// many books the run knows and GRIN's conversion failures by reason. Each costs O(1) or O(the
// rows it reports), never O(books): the book count is kept by triggers in book_count, the
// failures are read through the partial index books_convert_failed (schema 0011).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace grin::storage {

// Rows of books (book_count; always equal to SELECT count(*) FROM books). Errors name `path`.
Result<int64_t> QueryBookCount(SQLite::Database& db, const std::string& path);

// Books GRIN's _failed list named, as of the last enrich (a Convert Failed Date or Info).
struct ConvertFailedSummary {
  int64_t books = 0;  // all of them
  // Books per Convert Failed Info ("" = none given), most first, then by info; at most `top`.
  std::vector<std::pair<std::string, int64_t>> by_info;
};
Result<ConvertFailedSummary> QueryConvertFailed(SQLite::Database& db, const std::string& path,
                                                size_t top);

}  // namespace grin::storage
