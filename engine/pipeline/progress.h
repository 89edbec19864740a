#pragma once
// Progress reporting for sync, in the reference tool's exact format (docs/compatibility.md,
// Progress line):
//   {done:,}/{total:,} ({pct:.1f}%) - {rate:.1f} books/sec - elapsed: {dur}{ (ETA: {dur})}
//   [downloads: {a}/{b}, processing: {n}, waiting to download: {n}, waiting to be processed: {n}]
// The rate is a sliding window over the last 20 progress points smoothed by an EMA (alpha 0.1);
// before two points exist, the overall rate.
//
// Thread safety: ProgressTracker is not synchronised; the pipeline calls it under its own lock.

#include <cstdint>
#include <deque>
#include <string>

namespace grin::pipeline {

struct ProgressSnapshot {
  int64_t done = 0;
  int64_t total = 0;
  double elapsed_s = 0;
  int active_downloads = 0;
  int download_limit = 0;
  int processing = 0;
  int64_t waiting_download = 0;
  int64_t waiting_process = 0;
  int64_t bytes = 0;  // archive bytes downloaded so far (for the terminal bar's MB/s)
};

class ProgressTracker {
 public:
  // Records that `done` books were finished at time t (seconds since start); returns the
  // smoothed rate in books/s.
  double Record(double t, int64_t done);
  double rate() const { return rate_; }

 private:
  std::deque<std::pair<double, int64_t>> points_;
  double rate_ = 0;
  bool have_ema_ = false;
};

// The progress line for a snapshot and a rate (books/s).
std::string FormatProgressLine(const ProgressSnapshot& s, double rate);

}  // namespace grin::pipeline
