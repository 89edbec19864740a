#pragma once
// The end of a sync, after its pipeline returned: what a run leaves for its operator beside the
// books. In this order:
//   1. books_export.csv and .csv.gz in the run directory (unless skipped); the .gz uploaded to
//      the meta bucket as books_latest.csv.gz and a timestamped copy;
//   2. a gzipped online backup of books.db into <run>/backups/, published as
//      books_latest.db.gz (a backup with fewer books never replaces the stored one without
//      keeping it: storage/backup_policy.h), then local retention (10 newest; never the newest
//      with the most books);
//   3. process_summary.json (the caller's fields plus backup_books, csv_rows, teardown_errors),
//      written to the run directory and uploaded (latest and timestamped);
//   4. report.html (cli/report_html.h), uploaded.
// A failed step never stops the later ones: it is recorded in `errors` (steps 1-3: the sync
// then exits 1) or `warnings` (a stored backup with more books was kept; the HTML report).
//
// On a PostgreSQL run (db_path "") step 2 is skipped (the server keeps its own backups: pg_dump);
// the CSV export and the HTML report read the database run_config.json names, and are the same
// as a SQLite run's for the same rows.
//
// Thread safety: call once per sync, from one thread, with the run lock held.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/object_store.h"

namespace grin::jobs {

struct TeardownInput {
  std::string run_dir;
  std::string db_path;           // books.db; "" on a PostgreSQL run
  ObjectStore* store = nullptr;  // not owned; the run's object store
  StorageLayout meta_layout;     // the run's meta scope (cli::RunMetaLayout)
  int64_t now_micros = 0;        // names the timestamped copies
  bool csv_export = true;
  nlohmann::json summary = nlohmann::json::object();  // process_summary.json's fields so far
  std::vector<std::string> errors;                    // failures before teardown (a flush)
};

struct TeardownResult {
  std::vector<std::string> errors;    // one line each, in step order
  std::vector<std::string> warnings;  // one line each, in step order
};

TeardownResult RunTeardown(TeardownInput in);

}  // namespace grin::jobs
