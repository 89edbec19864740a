#pragma once
// SqliteRunQueries: RunQueries (run_queries.h) on a run's SQLite books.db, read-only, through a
// StateReader (works while a writer runs: WAL). The status questions are StateReader's (the
// state store's own count and failure queries, status_queries.h); the report's SQL lives here.

#include <memory>
#include <string>

#include "storage/run_queries.h"

namespace grin::storage {

class StateReader;

class SqliteRunQueries final : public RunQueries {
 public:
  // kNotFound / kDataLoss / kFailedPrecondition as StateReader::Open.
  static Result<std::unique_ptr<SqliteRunQueries>> Open(const std::string& db_path);
  ~SqliteRunQueries() override;

  const std::string& what() const override;
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
  explicit SqliteRunQueries(std::unique_ptr<StateReader> reader);
  std::unique_ptr<StateReader> reader_;
};

}  // namespace grin::storage
