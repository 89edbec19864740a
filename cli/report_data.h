#pragma once
// The facts of a run's HTML report, read from its database (read-only; works while a sync
// runs) and its process_summary.json (per-host requests and retries, if a sync wrote one).
//
// Time series share one grid: buckets of `bucket_s` seconds from `t0_s` (unix seconds) covering
// the first to the last completion or failure event.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/state_store.h"
#include "storage/run_queries.h"

namespace grin::cli {

struct ReportData {
  std::string run_dir;
  int64_t generated_micros = 0;
  StageCounts counts;
  int64_t books = 0;  // rows in books
  std::vector<FailureSummary> failures;  // failed jobs now, by stage and reason

  double t0_s = 0;
  double bucket_s = 60;
  struct Bucket {
    int64_t books = 0;  // books that reached `uploaded`
    int64_t bytes = 0;  // their archive bytes
  };
  std::vector<Bucket> throughput;  // one per bucket

  struct Reason {
    std::string reason;
    int64_t events = 0;                 // failed or dead events with this reason
    std::vector<int64_t> per_bucket;    // the same, per bucket
    std::vector<std::string> examples;  // up to 3 barcodes
  };
  std::vector<Reason> failure_reasons;  // most events first, at most 8

  double recent_books_per_s = 0;  // over the last hour of completions (or all, if shorter)
  int64_t remaining = 0;          // jobs neither uploaded, dead nor awaiting conversion

  using Waiting = storage::AwaitingBook;
  std::vector<Waiting> awaiting;  // the longest-waiting 10

  using SlowBook = storage::SlowBook;  // seconds: last lease to upload
  std::vector<SlowBook> slowest;  // at most 10

  struct Host {
    std::string host;
    int64_t requests = 0;
    int64_t retries = 0;
    int64_t new_connections = 0;
    int64_t bytes_down = 0;
  };
  std::vector<Host> hosts;  // empty if no sync has written process_summary.json
};

// Reads the run in `run_dir` (its state at RunStateLocation, cli/state_factory.h). Errors name
// the database.
Result<ReportData> LoadReportData(const std::string& run_dir);

// The bucket width for a span: 1, 5, 10, 30 s, 1, 5, 10, 30 min, 1, 3, 6, 12 h, 1 day..., the
// smallest giving at most `max_buckets` buckets.
double BucketSeconds(double span_s, int max_buckets = 60);

}  // namespace grin::cli
