#pragma once
// Run-level artefacts from the database: the books CSV in the reference tool's exact column order
// and header text (reference-tool.md §10: NULL as an empty field, booleans TRUE/FALSE), and an
// online backup of the database (SQLite backup API, consistent while a writer runs), gzipped.
// Both read through their own read-only connection and write atomically (temp file + rename).

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::storage {

// The CSV header line's fields, in order.
const std::vector<std::string>& BooksCsvHeaders();

// Writes every books row (ordered by barcode) to out_path; gzip level 1 when gzip is true.
// Returns the number of rows.
Result<int64_t> ExportBooksCsv(const std::string& db_path, const std::string& out_path, bool gzip);

// Copies the database with the online-backup API into out_path, gzip level 1. If books is not
// null it gets the number of rows in the copy's books table.
Status BackupDatabaseGz(const std::string& db_path, const std::string& out_path,
                        int64_t* books = nullptr);

}  // namespace grin::storage
