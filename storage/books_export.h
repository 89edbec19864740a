#pragma once
// Run-level artefacts from the database: the books CSV in the reference tool's exact column order
// and header text (docs/books-table.md: NULL as an empty field, booleans TRUE/FALSE), and an
// online backup of the database (SQLite backup API, consistent while a writer runs), gzipped.
// Both read through their own read-only connection and write atomically (temp file + rename).
// The CSV reads either dialect (a PostgreSQL run's rows through storage/postgres/
// pg_books_export.h) and is byte for byte the same for the same rows.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::storage {

// The CSV header line's fields, in order.
const std::vector<std::string>& BooksCsvHeaders();

// How the CSV writes the dates that come from GRIN (Scanned, Converted, Downloaded, Processed,
// Analyzed and OCR Date; GRIN Check-In, Allow Download Updated, Viewability Updated and Convert
// Failed Date). The database always keeps ISO 8601 ("2009-12-23T18:41:00").
//   kIso   as stored: "2009-12-23T18:41:00" (the default).
//   kGrin  GRIN's own text: "2009/12/23 18:41" (":SS" added only if the seconds are not 0).
// Timestamps grin-jobs itself writes (Processing Request Timestamp, Enrichment Timestamp, Last
// ETag Check, Sync Timestamp, MARC Extraction Timestamp, Created At, Updated At) stay ISO 8601
// in both; a stored value that is not an ISO date is written as stored.
enum class CsvDateFormat { kIso, kGrin };

// "2009-12-23T18:41:00" -> "2009/12/23 18:41"; "2009-12-23T18:41:07" -> "2009/12/23 18:41:07";
// anything that is not "YYYY-MM-DDTHH:MM:SS" is returned as given.
std::string IsoToGrinDate(const std::string& iso);

// Writes every books row (ordered by barcode, byte order) to out_path; gzip level 1 when gzip is
// true. `location` is where the run's state is (cli's RunStateLocation): a books.db path, or a
// postgresql:// URI (one READ ONLY snapshot; kFailedPrecondition in a build without
// PostgreSQL). Returns the number of rows; errors name the database (never a password).
Result<int64_t> ExportBooksCsv(const std::string& location, const std::string& out_path, bool gzip,
                               CsvDateFormat dates = CsvDateFormat::kIso);

// Writes in_path gzipped (level 1) to out_path (through `<out_path>.tmp` and a rename). For the
// `.csv.gz` beside a CSV just written: one read of the database for both, the same rows in both.
Status GzipFile(const std::string& in_path, const std::string& out_path);

// Copies the database with the online-backup API into out_path, gzip level 1. If books is not
// null it gets the number of rows in the copy's books table.
Status BackupDatabaseGz(const std::string& db_path, const std::string& out_path,
                        int64_t* books = nullptr);

// Removes what an interrupted export or backup left in a run directory: the temporary files
// `<out>.tmp` / `<out>.db.tmp` (and SQLite's `-journal` beside them) under `backups/`, and
// `books_export.csv[.gz].tmp`. Only for a run whose lock the caller holds (nothing else writes
// them). Returns how many files were removed.
int64_t RemoveExportLeftovers(const std::string& run_dir);

}  // namespace grin::storage
