#pragma once
// PgRunQueries: RunQueries (storage/run_queries.h) on a PostgreSQL run: the same questions,
// statement for statement storage/sqlite_run_queries.cc and the SQLite status queries, with
// the same answers for the same rows. Counts are PgStateStore's own statements (pg_state_sql.h)
// in one REPEATABLE READ snapshot; the book count, the completions since a
// moment and the convert failures read the kept counts of schema/postgres/0002 (O(1) or O(the
// rows reported), as on SQLite). Text is ordered by byte value (COLLATE "C") whatever the
// database's collation; event times (events.at, ISO text written by the server) are compared as
// text, as on SQLite.
//
// One connection of its own, read-only (default_transaction_read_only): it never migrates and
// never records a run. A connection that broke (server restart) is opened again on the next
// call. Thread safety: one thread at a time.

#include <memory>
#include <string>

#include "storage/postgres/pg_connection.h"
#include "storage/run_queries.h"

namespace grin::storage {

class PgRunQueries final : public RunQueries {
 public:
  // Connects (libpq URI or key/value string). kNotFound when the database holds no grin-jobs
  // run (schema version 0), kFailedPrecondition when its schema is newer than this build or not
  // yet migrated to this build's version (any writing command migrates it); errors of
  // PgConnection::Connect otherwise.
  static Result<std::unique_ptr<PgRunQueries>> Open(const std::string& conninfo);
  ~PgRunQueries() override;

  const std::string& what() const override { return what_; }
  Result<StageCounts> Counts() override;
  Result<std::vector<FailureSummary>> Failures() override;
  Result<RecentCount> CompletedSince(int64_t since_micros) override;
  Result<int64_t> BookCount() override;
  Result<ConvertFailedSummary> ConvertFailed(size_t top) override;
  Result<std::optional<EventSpan>> CompletionOrFailureSpan() override;
  Result<std::vector<BucketCount>> CompletionsPerBucket(const EventGrid& grid) override;
  Result<std::vector<FailureReasonEvents>> TopFailureReasons(const EventGrid& grid,
                                                             int max_reasons,
                                                             int max_examples) override;
  Result<RecentCompletions> RecentCompletionsIn(double window_s) override;
  Result<std::vector<AwaitingBook>> LongestAwaiting(int limit) override;
  Result<std::vector<SlowBook>> SlowestBooks(int limit) override;

 private:
  PgRunQueries(std::string conninfo, std::string what);
  // The connection, opened again if it broke.
  Result<pg::PgConnection*> Conn();
  Result<pg::PgResult> Exec(std::string_view sql, const pg::Params& params = {});

  std::string conninfo_;
  std::string what_;  // the database, password removed
  std::unique_ptr<pg::PgConnection> conn_;
};

}  // namespace grin::storage
