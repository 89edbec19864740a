#include "cli/live_bar.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "engine/base/format.h"

namespace grin::cli {
namespace {

volatile sig_atomic_t g_winch = 0;
struct sigaction g_old_winch;
int g_bars = 0;  // LiveBars alive (guarded by g_bars_mu); the handler is installed while > 0
std::mutex g_bars_mu;

extern "C" void OnWinch(int) { g_winch = 1; }

std::string Rate(double v, const char* unit) {
  char b[48];
  std::snprintf(b, sizeof b, v >= 100 ? "%.0f %s" : "%.1f %s", v, unit);
  return b;
}

}  // namespace

void RecentRates::Add(double t, int64_t done, int64_t bytes) {
  points_.push_back({t, done, bytes});
  // Keep one point at or before the window's start so the span covers the whole window.
  while (points_.size() > 2 && points_[1].t <= t - window_s_) points_.pop_front();
}

double RecentRates::Rate(int64_t Point::*field) const {
  if (points_.empty()) return 0;
  const Point& last = points_.back();
  if (points_.size() == 1) {
    return last.t > 0 ? static_cast<double>(last.*field) / last.t : 0;
  }
  const Point& first = points_.front();
  double span = last.t - first.t;
  if (span <= 0) return last.t > 0 ? static_cast<double>(last.*field) / last.t : 0;
  return static_cast<double>(last.*field - first.*field) / span;
}

double RecentRates::books_per_s() const { return Rate(&Point::done); }
double RecentRates::bytes_per_s() const { return Rate(&Point::bytes); }

std::string FormatLiveBar(const pipeline::ProgressSnapshot& s, double books_per_s,
                          double bytes_per_s, int width, bool color) {
  const size_t room = static_cast<size_t>(std::max(width - 1, 1));
  double frac = s.total > 0 ? std::clamp(static_cast<double>(s.done) /
                                             static_cast<double>(s.total), 0.0, 1.0)
                            : 0.0;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * frac);
  const std::string count = FormatThousands(s.done) + "/" + FormatThousands(s.total);
  const std::string books = Rate(books_per_s, "books/s");
  const std::string mbs = Rate(bytes_per_s / 1e6, "MB/s");
  std::string eta;
  if (books_per_s > 0 && s.total > s.done) {
    eta = "ETA " + FormatDuration(static_cast<double>(s.total - s.done) / books_per_s);
  }
  const std::string elapsed = "elapsed " + FormatDuration(s.elapsed_s);
  const std::string queues = "[dl " + std::to_string(s.active_downloads) + "/" +
                             std::to_string(s.download_limit) + ", proc " +
                             std::to_string(s.processing) + ", waiting dl " +
                             std::to_string(s.waiting_download) + ", proc " +
                             std::to_string(s.waiting_process) + "]";
  auto join = [](std::initializer_list<const std::string*> parts) {
    std::string out;
    for (const std::string* p : parts) {
      if (p->empty()) continue;
      if (!out.empty()) out += ' ';
      out += *p;
    }
    return out;
  };
  const std::string pct_s = std::string("(") + pct + ")";
  // Most detailed first; the first that fits (with a bar of at least 10 cells, or without the
  // bar for the shortest) wins.
  const std::vector<std::string> texts = {
      join({&count, &pct_s, &books, &mbs, &elapsed, &eta, &queues}),
      join({&count, &pct_s, &books, &mbs, &elapsed, &eta}),
      join({&count, &pct_s, &books, &mbs, &eta}),
      join({&count, &books, &mbs, &eta}),
      join({&count, &books, &mbs}),
      join({&count, &books}),
  };
  constexpr size_t kMinBar = 10, kMaxBar = 40;
  for (const auto& text : texts) {
    if (text.size() + kMinBar + 3 > room) continue;  // "[" bar "] " text
    size_t cells = std::min(kMaxBar, room - text.size() - 3);
    size_t filled = static_cast<size_t>(frac * static_cast<double>(cells) + 0.5);
    std::string out = "[";
    if (color && filled > 0) out += "\033[32m";
    out += std::string(filled, '#');
    if (color && filled > 0) out += "\033[0m";
    out += std::string(cells - filled, '.') + "] " + text;
    return out;
  }
  for (const auto& text : texts) {
    if (text.size() <= room) return text;
  }
  return count.substr(0, room);
}

bool ColorAllowed() {
  const char* no = std::getenv("NO_COLOR");
  if (no && *no) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::string_view(term) == "dumb");
}

LiveBar::LiveBar(std::ostream& out, int fd) : out_(out), fd_(fd), color_(ColorAllowed()) {
  {
    std::lock_guard<std::mutex> l(g_bars_mu);
    if (g_bars++ == 0) {
      struct sigaction sa{};
      sa.sa_handler = OnWinch;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      sigaction(SIGWINCH, &sa, &g_old_winch);
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  RefreshWidthLocked();
}

LiveBar::~LiveBar() {
  std::lock_guard<std::mutex> l(g_bars_mu);
  if (--g_bars == 0) sigaction(SIGWINCH, &g_old_winch, nullptr);
}

void LiveBar::RefreshWidthLocked() {
  g_winch = 0;
  struct winsize ws{};
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    width_ = ws.ws_col;
    return;
  }
  const char* cols = std::getenv("COLUMNS");
  int n = cols ? std::atoi(cols) : 0;
  width_ = n > 0 ? n : 80;
}

int LiveBar::width() const {
  std::lock_guard<std::mutex> l(mu_);
  return width_;
}

void LiveBar::Update(const pipeline::ProgressSnapshot& s) {
  std::lock_guard<std::mutex> l(mu_);
  last_ = s;
  have_snapshot_ = true;
  rates_.Add(s.elapsed_s, s.done, s.bytes);
  DrawLocked();
}

void LiveBar::ClearLocked() {
  if (!drawn_) return;
  out_ << "\r\033[2K" << std::flush;
  drawn_ = false;
}

void LiveBar::DrawLocked() {
  if (!have_snapshot_) return;
  if (g_winch) RefreshWidthLocked();
  out_ << "\r\033[2K"
       << FormatLiveBar(last_, rates_.books_per_s(), rates_.bytes_per_s(), width_, color_)
       << std::flush;
  drawn_ = true;
}

void LiveBar::Finish() {
  std::lock_guard<std::mutex> l(mu_);
  if (drawn_) out_ << "\n" << std::flush;
  drawn_ = false;
  have_snapshot_ = false;
}

}  // namespace grin::cli
