#pragma once
// The read-only queries behind a run's HTML report (`grin-jobs report`, and the one a sync
// writes at its end): counts, the completion and failure events on a time grid, the books
// waiting for GRIN's conversion and the slowest books. The SQL lives here; the report's own
// shaping (the grid's width, clamping, the rate) stays in cli/report_data.cc.
//
// Event times are unix seconds with milliseconds, exact, from events.at. A "completion" is an
// event that took a book to `uploaded` (not a failure, release, requeue, reset or reclaim
// recorded at that stage); a "failure" is an event with outcome failed or dead.
//
// Thread safety: a ReportQueries is one read connection; use it from one thread at a time.
// Errors: the Status of storage::FromSqliteException, naming the database file.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/state_store.h"

namespace grin::storage {

class StateReader;

// A time grid: bucket i covers [t0_s + i * bucket_s, t0_s + (i + 1) * bucket_s).
struct EventGrid {
  double t0_s = 0;
  double bucket_s = 60;
};

// The first and last of some events (unix seconds).
struct EventSpan {
  double first_s = 0;
  double last_s = 0;
};

// Events counted in one bucket of a grid; `bucket` may fall outside the caller's range.
struct BucketCount {
  int64_t bucket = 0;
  int64_t events = 0;
  int64_t bytes = 0;  // completions: the sum of their archive bytes (detail.bytes); else 0
};

// One failure reason (detail.reason, "(none)" if absent) and its events.
struct FailureReasonEvents {
  std::string reason;
  int64_t events = 0;                   // failed or dead events with this reason
  std::vector<BucketCount> per_bucket;  // the same per bucket of the grid, by bucket
  std::vector<std::string> examples;    // barcodes, in the order they first failed
};

// Completions over a recent window: `books` completed in the last `span_s` seconds up to the
// last completion.
struct RecentCompletions {
  int64_t books = 0;
  double span_s = 0;
};

// A job waiting for GRIN's conversion, and since when (jobs.failed_at, micros; 0 if unset).
struct AwaitingBook {
  std::string barcode;
  int64_t since_micros = 0;
};

// A stored book and how long its last lease took to reach `uploaded`.
struct SlowBook {
  std::string barcode;
  std::string title;   // books.title, "" if none
  double seconds = 0;  // jobs.updated_at - jobs.leased_at
  int64_t bytes = 0;   // its last `uploaded` event's detail.bytes; 0 if none
};

class ReportQueries {
 public:
  // kNotFound / kDataLoss / kFailedPrecondition as StateReader::Open.
  static Result<std::unique_ptr<ReportQueries>> Open(const std::string& db_path);
  ~ReportQueries();

  Result<StageCounts> Counts();                     // as StateReader::Counts
  Result<std::vector<FailureSummary>> Failures();   // as StateReader::Failures
  Result<int64_t> BookCount();                      // rows in books

  // The first and last completion or failure; nullopt if there is none.
  Result<std::optional<EventSpan>> CompletionOrFailureSpan();
  // Completions (with their bytes) per bucket of `grid`, by bucket; empty buckets left out.
  Result<std::vector<BucketCount>> CompletionsPerBucket(const EventGrid& grid);
  // The `max_reasons` failure reasons with the most events (ties by reason), each with its
  // events per bucket of `grid` and up to `max_examples` barcodes.
  Result<std::vector<FailureReasonEvents>> TopFailureReasons(const EventGrid& grid,
                                                             int max_reasons, int max_examples);
  // Completions in the `window_s` seconds before the last one (from the first, if the run's
  // completions span less); {0, 0} if there are none.
  Result<RecentCompletions> RecentCompletionsIn(double window_s);
  // Up to `limit` jobs awaiting conversion, longest-waiting first (ties by barcode).
  Result<std::vector<AwaitingBook>> LongestAwaiting(int limit);
  // Up to `limit` stored books with the longest last lease, slowest first (ties by barcode).
  Result<std::vector<SlowBook>> SlowestBooks(int limit);

 private:
  explicit ReportQueries(std::unique_ptr<StateReader> reader);
  std::unique_ptr<StateReader> reader_;
};

}  // namespace grin::storage
