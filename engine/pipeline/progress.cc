#include "engine/pipeline/progress.h"

#include <cstdio>

#include "engine/base/format.h"

namespace grin::pipeline {

double ProgressTracker::Record(double t, int64_t done) {
  points_.emplace_back(t, done);
  while (points_.size() > 20) points_.pop_front();
  double window_rate;
  if (points_.size() < 2) {
    window_rate = t > 0 ? static_cast<double>(done) / t : 0;
  } else {
    double dt = points_.back().first - points_.front().first;
    double dn = static_cast<double>(points_.back().second - points_.front().second);
    window_rate = dt > 0 ? dn / dt : rate_;
  }
  if (points_.size() < 2 || !have_ema_) {
    rate_ = window_rate;
    have_ema_ = points_.size() >= 2;
  } else {
    rate_ = 0.1 * window_rate + 0.9 * rate_;
  }
  return rate_;
}

std::string FormatProgressLine(const ProgressSnapshot& s, double rate) {
  double pct = s.total > 0 ? 100.0 * static_cast<double>(s.done) / static_cast<double>(s.total)
                           : 0.0;
  char head[128];
  std::snprintf(head, sizeof head, " (%.1f%%) - %.1f books/sec - elapsed: ", pct, rate);
  std::string line = FormatThousands(s.done) + "/" + FormatThousands(s.total) + head +
                     FormatDuration(s.elapsed_s);
  if (rate > 0 && s.total >= s.done) {
    line += " (ETA: " + FormatDuration(static_cast<double>(s.total - s.done) / rate) + ")";
  }
  line += " [downloads: " + std::to_string(s.active_downloads) + "/" +
          std::to_string(s.download_limit) + ", processing: " + std::to_string(s.processing) +
          ", waiting to download: " + std::to_string(s.waiting_download) +
          ", waiting to be processed: " + std::to_string(s.waiting_process) + "]";
  return line;
}

}  // namespace grin::pipeline
