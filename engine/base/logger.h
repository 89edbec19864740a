#pragma once
// Logger: structured events with key=value fields, injected (never a global singleton).
// Library code never writes to stderr itself; the CLI installs a StderrLogger.
//
// Events are stable dotted names, e.g. Log(kInfo, "job.claimed", {{"barcode", "X"}}).
// Thread safety: implementations must accept calls from any thread.

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grin {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using LogFields = std::vector<std::pair<std::string, std::string>>;

class Logger {
 public:
  virtual ~Logger() = default;
  virtual bool Enabled(LogLevel level) const = 0;
  virtual void Log(LogLevel level, std::string_view event, const LogFields& fields) = 0;
};

// Discards everything. The library default.
class NullLogger final : public Logger {
 public:
  bool Enabled(LogLevel) const override { return false; }
  void Log(LogLevel, std::string_view, const LogFields&) override {}
  static NullLogger* Default();
};

// Writes "LEVEL event k=v k=v" lines to stderr at or above a minimum level.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level) : min_(min_level) {}
  bool Enabled(LogLevel level) const override { return level >= min_; }
  void Log(LogLevel level, std::string_view event, const LogFields& fields) override;

 private:
  LogLevel min_;
  std::mutex mu_;
};

// Keeps every event in memory; for tests.
class CaptureLogger final : public Logger {
 public:
  struct Entry {
    LogLevel level;
    std::string event;
    LogFields fields;
  };
  bool Enabled(LogLevel) const override { return true; }
  void Log(LogLevel level, std::string_view event, const LogFields& fields) override {
    std::lock_guard<std::mutex> l(mu_);
    entries_.push_back({level, std::string(event), fields});
  }
  std::vector<Entry> entries() const {
    std::lock_guard<std::mutex> l(mu_);
    return entries_;
  }
  size_t Count(std::string_view event) const {
    std::lock_guard<std::mutex> l(mu_);
    size_t n = 0;
    for (const auto& e : entries_) n += (e.event == event);
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// Parses "debug|info|warning|error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);

}  // namespace grin
