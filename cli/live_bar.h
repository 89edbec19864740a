#pragma once
// The live progress bar of `sync` on a terminal: one line, redrawn in place ("\r" + ESC[2K),
// fitted to the terminal's width (TIOCGWINSZ, re-read after SIGWINCH), with books/s and MB/s
// over the last kRecentWindowSeconds (not the average since the start). Log lines go through
// LiveBar::Above (or a LiveBarLogger), which clears the bar, writes the line and redraws it, so
// a log line never lands in the middle of the bar. Colour (the bar's filled part) only when
// NO_COLOR is unset or empty and TERM is not "dumb".
//
// Thread safety: every public method takes the bar's own lock; call from any thread.

#include <deque>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "engine/base/logger.h"
#include "engine/pipeline/progress.h"

namespace grin::cli {

inline constexpr double kRecentWindowSeconds = 30;

// Books/s and bytes/s over a sliding window of progress points.
class RecentRates {
 public:
  explicit RecentRates(double window_s = kRecentWindowSeconds) : window_s_(window_s) {}
  // A point: t seconds since the start, books done, bytes downloaded so far.
  void Add(double t, int64_t done, int64_t bytes);
  // Over the points within the window (and the last one before it, so the span covers the
  // window); with a single point, the averages since the start.
  double books_per_s() const;
  double bytes_per_s() const;

 private:
  struct Point {
    double t;
    int64_t done;
    int64_t bytes;
  };
  double Rate(int64_t Point::*field) const;
  double window_s_;
  std::deque<Point> points_;
};

// The bar's text for a snapshot, at most `width - 1` columns wide (the last column stays free so
// no terminal auto-wraps). Drops details (queues, elapsed, the bar itself) as the width shrinks.
// With `color`, the filled part is green (escape codes are not counted as columns).
std::string FormatLiveBar(const pipeline::ProgressSnapshot& s, double books_per_s,
                          double bytes_per_s, int width, bool color);

// Whether colour is allowed by the environment (NO_COLOR, TERM).
bool ColorAllowed();

class LiveBar {
 public:
  // `out` writes to the terminal `fd` (flushed after every draw).
  LiveBar(std::ostream& out, int fd);
  ~LiveBar();  // restores the previous SIGWINCH handler
  LiveBar(const LiveBar&) = delete;
  LiveBar& operator=(const LiveBar&) = delete;

  // Records a snapshot and redraws.
  void Update(const pipeline::ProgressSnapshot& s);
  // Clears the bar, runs `write` (which writes whole lines to the terminal), redraws the bar.
  template <typename F>
  void Above(F&& write) {
    std::lock_guard<std::mutex> l(mu_);
    ClearLocked();
    write();
    DrawLocked();
  }
  // Leaves the last bar on its own line (a newline after it, if one was drawn).
  void Finish();

  int width() const;

 private:
  void ClearLocked();
  void DrawLocked();
  void RefreshWidthLocked();

  mutable std::mutex mu_;
  std::ostream& out_;
  int fd_;
  int width_ = 80;
  bool color_ = false;
  bool drawn_ = false;
  bool have_snapshot_ = false;
  pipeline::ProgressSnapshot last_;
  RecentRates rates_;
};

// A Logger that writes through `inner` above the bar (which must outlive it).
class LiveBarLogger final : public Logger {
 public:
  LiveBarLogger(Logger* inner, LiveBar* bar) : inner_(inner), bar_(bar) {}
  bool Enabled(LogLevel level) const override { return inner_->Enabled(level); }
  void Log(LogLevel level, std::string_view event, const LogFields& fields) override {
    if (!inner_->Enabled(level)) return;
    bar_->Above([&] { inner_->Log(level, event, fields); });
  }

 private:
  Logger* inner_;
  LiveBar* bar_;
};

}  // namespace grin::cli
