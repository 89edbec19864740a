#pragma once
// The rows of a PostgreSQL run's books table for the CSV export (storage/books_export.h, which
// formats them exactly as it formats a books.db's): every row, ordered by barcode in byte order
// (COLLATE "C", as SQLite's ORDER BY barcode), from one READ ONLY, REPEATABLE READ snapshot,
// fetched through a cursor a batch at a time (memory stays O(batch) on a run of millions).
//
// Thread safety: one call per thread; it opens a connection of its own.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace grin::storage {

// One row's values in `columns` order; std::nullopt for NULL, text otherwise (is_decrypted as
// "0" / "1"). A non-OK return stops the scan and is returned.
using BookRowFn = std::function<Status(const std::vector<std::optional<std::string>>& row)>;

// Calls `fn` for every books row, `columns` selected (names from engine/books_columns.h, never
// from input: they are written into the SQL). Errors as PgConnection::Connect / Exec (the
// database named redacted, never the password); kNotFound when the database holds no books
// table (no grin-jobs run).
Status ForEachPgBookRow(const std::string& conninfo, const std::vector<std::string>& columns,
                        const BookRowFn& fn);

}  // namespace grin::storage
