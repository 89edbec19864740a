#pragma once
// RunQueries: the read-only questions `grin-jobs status` and `grin-jobs report` ask about a run's
// state, one interface over both dialects (SqliteRunQueries: the run's books.db;
// PgRunQueries: a PostgreSQL run, storage/postgres/pg_run_queries.h). Both answer every question
// alike for the same rows (tests/storage/run_queries_conformance_test.cc); open one with
// OpenRunQueries (open_run_queries.h).
//
// Cost: what `status` asks (Counts, Failures, CompletedSince, BookCount, ConvertFailed) is O(1)
// or O(the rows it reports), never O(books) or O(jobs): kept counts (job_counts, book_count,
// uploaded_per_second) and partial indexes. The report's questions read the event history.
//
// Event times are unix seconds with milliseconds, exact, from events.at. A "completion" is an
// event that took a book to `uploaded` (not a failure, release, requeue, reset or reclaim
// recorded at that stage); a "failure" is an event with outcome failed or dead. Text orders
// (reasons, infos, barcodes) are by byte value in both dialects.
//
// Thread safety: a RunQueries is one read connection; use it from one thread at a time.
// Errors: kNotFound / kDataLoss / kFailedPrecondition when opening (no such run, not a run
// database, a schema newer or older than this build), kUnavailable when a server cannot be
// reached; messages name the database (never a password).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/state_store.h"

namespace grin::storage {

// Books GRIN's _failed list named, as of the last enrich (a Convert Failed Date or Info).
struct ConvertFailedSummary {
  int64_t books = 0;  // all of them
  // Books per Convert Failed Info ("" = none given), most first, then by info; at most `top`.
  std::vector<std::pair<std::string, int64_t>> by_info;
};

// Books completed (reached `uploaded`) since a moment, and the time (unix micros, millisecond
// precision) of the first of them (0 if none).
struct RecentCount {
  int64_t count = 0;
  int64_t first_micros = 0;
};

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

class RunQueries {
 public:
  virtual ~RunQueries() = default;

  // Where the state is, for messages: the database file, or the redacted connection string.
  virtual const std::string& what() const = 0;

  // Jobs per stage, leased, retrying, dead and awaiting, from one read snapshot (the whole run:
  // no scope).
  virtual Result<StageCounts> Counts() = 0;
  // Failed jobs grouped by stage, reason, class and dead; most first, then by stage and reason.
  virtual Result<std::vector<FailureSummary>> Failures() = 0;
  // Books completed since since_micros (>= 0), from the event history.
  virtual Result<RecentCount> CompletedSince(int64_t since_micros) = 0;
  // Rows in books.
  virtual Result<int64_t> BookCount() = 0;
  // GRIN's conversion failures by info, the `top` most common.
  virtual Result<ConvertFailedSummary> ConvertFailed(size_t top) = 0;

  // The first and last completion or failure; nullopt if there is none.
  virtual Result<std::optional<EventSpan>> CompletionOrFailureSpan() = 0;
  // Completions (with their bytes) per bucket of `grid`, by bucket; empty buckets left out.
  virtual Result<std::vector<BucketCount>> CompletionsPerBucket(const EventGrid& grid) = 0;
  // The `max_reasons` failure reasons with the most events (ties by reason), each with its
  // events per bucket of `grid` and up to `max_examples` barcodes.
  virtual Result<std::vector<FailureReasonEvents>> TopFailureReasons(const EventGrid& grid,
                                                                     int max_reasons,
                                                                     int max_examples) = 0;
  // Completions in the `window_s` seconds before the last one (from the first, if the run's
  // completions span less); {0, 0} if there are none.
  virtual Result<RecentCompletions> RecentCompletionsIn(double window_s) = 0;
  // Up to `limit` jobs awaiting conversion, longest-waiting first (ties by barcode).
  virtual Result<std::vector<AwaitingBook>> LongestAwaiting(int limit) = 0;
  // Up to `limit` stored books with the longest last lease, slowest first (ties by barcode).
  virtual Result<std::vector<SlowBook>> SlowestBooks(int limit) = 0;
};

}  // namespace grin::storage
