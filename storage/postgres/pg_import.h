#pragma once
// Moving a run's state from its SQLite file to PostgreSQL (`grin-jobs migrate-state`), and
// checking that both hold the same run.
//
// ImportSqliteRun copies every table of the run's state (books, runs, jobs, events,
// job_checkpoints, collect_cursor, book_enrichment, conversion_request, and any other table both
// schemas have) row for row: ids, fencing tokens, times, checkpoints and the order of events are
// kept as they are. The tables kept by the stores or by triggers (job_counts, book_count,
// uploaded_per_second) are recomputed from the copied rows. The identity sequences continue
// after the copied ids. A job that was leased in the SQLite file (its process is gone: the caller
// holds the run lock) becomes ready, or retry when it has failed attempts, with its lease token
// kept, so a late write on that lease is refused by fencing; nothing else differs.
//
// All of it is one PostgreSQL transaction (after the schema migrations, which run first in their
// own): a failure anywhere, the verification included, rolls it back and leaves the target with
// no rows. Before committing, VerifyRun's digests are compared inside that transaction; the
// copy commits only when every table matches.
//
// The target must hold no run. A target that already holds exactly this run (every digest
// matches) is left alone and reported as already done; any other non-empty target is refused.
//
// Thread safety: the functions are independent; the caller keeps the SQLite run from being
// written meanwhile (RunLock).

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::storage {

// One table as read for the verification: its row count and a SHA-256 over its rows in key order
// (every column as text, NULL distinct from '').
struct TableDigest {
  std::string table;
  int64_t rows = 0;
  std::string sha256;  // hex
};

struct ImportReport {
  std::vector<TableDigest> tables;  // the copied and the recomputed tables, as verified
  int64_t leases_released = 0;      // leased jobs that became ready/retry
  bool already_done = false;        // the target already held this run; nothing was written
  int64_t micros = 0;               // wall time of the whole import
};

// Copies the run in the SQLite database at sqlite_path (migrated to the latest schema first, as
// any writing command does) into the PostgreSQL database `conninfo` (migrated first). Errors:
// kAlreadyExists when the target holds another run (naming a table that has rows);
// kFailedPrecondition when a table or column of the SQLite run has no place in the PostgreSQL
// schema; kDataLoss when a table's digest differs after the copy (naming it; nothing committed);
// the PostgreSQL errors of PgConnection (kUnavailable, kPermissionDenied, kConflict for a row a
// constraint refuses, kInvalidArgument for a value PostgreSQL cannot store, ...); SQLite errors
// as OpenDatabase's.
Result<ImportReport> ImportSqliteRun(const std::string& sqlite_path, const std::string& conninfo);

// Reads both databases independently (the SQLite file read-only, PostgreSQL in one read-only
// snapshot) and compares every copied table's rows and digest, and the recomputed tables against
// what the SQLite rows say they must be. The digests when all match; kDataLoss naming the first
// table that differs (and how: rows or content) otherwise.
Result<std::vector<TableDigest>> VerifyRun(const std::string& sqlite_path,
                                           const std::string& conninfo);

// True when a libpq connection string or URI carries a password (user:password@ in a URI, or a
// password= parameter): such strings end up in shell history and `ps`.
bool ConninfoHasPassword(const std::string& conninfo);

}  // namespace grin::storage
