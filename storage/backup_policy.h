#pragma once
// BackupPolicy: where a run's database backups go and which ones are kept, so that a backup
// holding fewer books never silently replaces one holding more.
//
// Local: <run>/backups/books_backup_<YYYYmmdd_HHMMSS>_<N>books.db.gz, N = the books in it.
// Retention keeps the newest `keep` backups and, always, the newest backup holding the most
// books (a run whose books table shrank never rotates its last full backup away). Backups named
// without a count (books_backup_<ts>.db.gz, from older versions) only count by age.
//
// Remote: meta/books_latest.db.gz carries user metadata "books" = N. Before it is replaced by a
// backup with fewer books (or when the stored one's count is unknown), the stored one is copied
// to meta/books_latest_kept_<YYYYmmdd_HHMMSS>.db.gz and the caller gets a one-line warning.
// Keys are built from the layout passed in: sync passes the run's meta layout
// (cli::RunMetaLayout, prefix "<run name>/"), so the comparison, the kept copies and the
// timestamped copies are per run, and runs sharing a meta bucket never replace each other's.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/object_store.h"

namespace grin::storage {

struct LocalBackup {
  std::string path;
  int64_t books = -1;   // -1: unknown (a backup named without a count)
  std::string stamp;    // YYYYmmdd_HHMMSS
};

// YYYYmmdd_HHMMSS (UTC) for unix_micros.
std::string BackupStamp(int64_t unix_micros);

// Backs db_path up into dir (created if missing) under the name above.
Result<LocalBackup> MakeLocalBackup(const std::string& db_path, const std::string& dir,
                                    int64_t now_micros);

// The backups in dir, newest first (files not named as above are not listed).
std::vector<LocalBackup> ListLocalBackups(const std::string& dir);

// Removes the backups beyond the newest `keep`, except the newest one holding the most books.
// Returns the removed paths.
std::vector<std::string> PruneLocalBackups(const std::string& dir, size_t keep);

// Uploads backup as meta/books_latest.db.gz with metadata books=N, first keeping the stored one
// (see above) when it holds more books than backup or an unknown number. Returns "" or the
// warning line to show (no trailing newline). scratch_dir holds the kept copy while it moves.
Result<std::string> PublishLatestBackup(ObjectStore& store, const StorageLayout& layout,
                                        const LocalBackup& backup, int64_t now_micros,
                                        const std::string& scratch_dir);

}  // namespace grin::storage
