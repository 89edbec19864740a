#pragma once
// Logger: structured events with key=value fields, injected (never a global singleton).
// Library code never writes to stderr itself; the CLI installs a StderrLogger (the console) and,
// for commands that do network work, a FileLogger (the run's log file) behind a TeeLogger.
//
// Events are stable dotted names, e.g. Log(kInfo, "job.claimed", {{"barcode", "X"}}).
// Thread safety: implementations must accept calls from any thread.
//
// Secrets never reach a log: every logger here formats through FormatLogLine, which redacts
// values that are or carry secrets (RedactLogValue). Callers still must not log secrets.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/clock.h"
#include "engine/base/result.h"

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

// Writes "LEVEL event k=v k=v" lines (FormatLogLine) to stderr at or above a minimum level.
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

// Sends each event to both loggers, each at its own level. Owns neither.
class TeeLogger final : public Logger {
 public:
  TeeLogger(Logger* a, Logger* b) : a_(a), b_(b) {}
  bool Enabled(LogLevel level) const override { return a_->Enabled(level) || b_->Enabled(level); }
  void Log(LogLevel level, std::string_view event, const LogFields& fields) override;

 private:
  Logger* a_;
  Logger* b_;
};

// Appends one line per event at or above a minimum level to a file:
//   2026-12-05T03:45:00.123Z INFO sync.started run=output/x
// (UTC time to the millisecond, then FormatLogLine). Each line is a single write(2) under a lock,
// so lines logged from many threads never interleave. A line that cannot be written (a full
// disk, an I/O error) is dropped and counted, and the caller's work goes on: logging never
// fails a run. The first such failure is reported once through `on_first_drop`.
// The file is closed when the logger is destroyed.
class FileLogger final : public Logger {
 public:
  struct Options {
    LogLevel min_level = LogLevel::kInfo;
    Clock* clock = nullptr;  // default SystemClock
    // Create the file; fail with kAlreadyExists if the name is taken (never appends to, or
    // follows a link at, an existing name). false: append to it (create it if missing).
    bool create_new = true;
    // Called once, with the error ("No space left on device"), the first time a line is
    // dropped; from the logging thread, under the logger's lock: it must not log to this logger.
    std::function<void(const std::string& error)> on_first_drop;
  };

  // Opens `path` for appending (created 0600). Errors name the path and errno's text.
  static Result<std::unique_ptr<FileLogger>> Open(const std::string& path, Options options);
  ~FileLogger() override;
  FileLogger(const FileLogger&) = delete;
  FileLogger& operator=(const FileLogger&) = delete;

  bool Enabled(LogLevel level) const override { return level >= options_.min_level; }
  void Log(LogLevel level, std::string_view event, const LogFields& fields) override;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }  // for flock(2) by the owner; stays owned by the logger
  // Lines dropped because a write failed, and the first failure's error ("" if none).
  int64_t dropped() const { return dropped_.load(); }
  std::string first_error() const;

 private:
  FileLogger(std::string path, int fd, Options options);
  std::string path_;
  int fd_;
  Options options_;
  mutable std::mutex mu_;
  bool partial_ = false;  // a write stopped mid-line: the next line starts on a new one
  std::atomic<int64_t> dropped_{0};
  std::string first_error_;
};

// "event k=v k=v" with each value redacted (RedactLogValue) and quoted when it is empty or holds
// a space, '"', '=', '\\' or a control character (inside quotes: \" \\ \n \r \t \xHH), so one
// event is always one line and a value cannot forge fields or lines.
std::string FormatLogLine(std::string_view event, const LogFields& fields);

// "DEBUG", "INFO", "WARN" or "ERROR".
const char* LogLevelName(LogLevel level);

// A field value with its secrets replaced by "[redacted]": the whole value when the key names a
// secret (token, secret, passphrase, password, authorization, signature, credential, cookie,
// api_key, private_key); otherwise the secret parts of the value: an Authorization / Cookie /
// X-Amz-Security-Token header's value, a "Bearer" token, URL query and form parameters
// (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, Signature, access_token,
// refresh_token, id_token, client_secret, token, password, passphrase, secret_access_key,
// aws_secret_access_key, secret_key, sig) and the same names as JSON string members.
std::string RedactLogValue(std::string_view key, std::string_view value);

// Parses "debug|info|warning|error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);

}  // namespace grin
