#pragma once
// StateReader: read-only access to a run's state database for `status`, `sql` and the sync's
// progress; works while a writer runs (WAL). Also the two summary queries SqliteStateStore
// answers Counts() and Failures() with, so both give the same answers.

#include <memory>
#include <string>
#include <vector>

#include "engine/state_store.h"
#include "storage/status_queries.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace grin::storage {

// StateReader: read-only access for status and ad-hoc SQL; works while a writer runs.
class StateReader {
 public:
  static Result<std::unique_ptr<StateReader>> Open(const std::string& db_path);
  ~StateReader();
  Result<StageCounts> Counts();
  Result<std::vector<FailureSummary>> Failures();
  // Books completed (reached `uploaded`) since since_micros, from the event history, and the
  // time (micros) of the first of them (0 if none). O(1): the per-second counts of 0011.
  using Recent = RecentCount;
  Result<Recent> CompletedSince(int64_t since_micros);
  // QueryBookCount and QueryConvertFailed (status_queries.h) on this reader's connection.
  Result<int64_t> Books();
  Result<ConvertFailedSummary> ConvertFailed(size_t top);
  SQLite::Database& db() { return *db_; }
  const std::string& path() const { return path_; }

 private:
  StateReader(std::string path, std::unique_ptr<SQLite::Database> db);
  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
};

// Jobs per stage, leased, retrying and dead, from one read snapshot of `db` (errors name `path`).
Result<StageCounts> QueryStageCounts(SQLite::Database& db, const std::string& path);
// The same, for the jobs of the barcodes in a JSON array only (a scoped run, SetScope); one
// query, O(barcodes).
Result<StageCounts> QueryScopedStageCounts(SQLite::Database& db, const std::string& path,
                                           const std::string& barcodes_json);
// Failed jobs grouped by stage and reason.
Result<std::vector<FailureSummary>> QueryFailures(SQLite::Database& db, const std::string& path);

}  // namespace grin::storage
