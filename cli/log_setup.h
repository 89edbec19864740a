#pragma once
// Logging of one command invocation: the options every command takes, and CommandLog, the run's
// log file that commands doing network work (sync, collect, enrich, request, doctor) write.
//
// Options (added to every command by ParseArgs):
//   -q, --quiet        console: only errors
//   -v, --verbose      console: every event the log file gets (--log-level)
//   --log-level LEVEL  the log file's level: debug, info (default), warning or error
//   --log-keep N       log files of the command kept in <run>/logs (default 20)
// Without -q / -v the console shows warnings and errors (and never lower than --log-level).
// What a command prints on stdout (its plan, progress and summary) is the same either way.
//
// The log file: <run>/logs/<command>-<UTC YYYYMMDDTHHMMSSZ>[-N].log, one per invocation (-N when
// the second is taken), created 0600. Its lines: "<UTC time> <LEVEL> <event> key=value ...", with
// the events the engine logs at --log-level, "command.started" / "command.finished", and every line
// the command printed: stdout as INFO "stdout text=...", stderr as ERROR "stderr text=..." (WARN
// for a line saying "warning:"). Secrets never reach it (see FormatLogLine / RedactLogValue in
// engine/base/logger.h). Rotation by count: after opening its file a command keeps the newest
// --log-keep files of that command and removes older ones; a file another process still writes (it
// holds an flock on its own log) is never removed. A log that cannot be created (run dir not
// writable, disk full) costs one warning line and the command goes on; a line that cannot be
// written later is dropped and counted (one warning on the console, the count in the final "Log:"
// line): logging never stops a run.

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "cli/option_rules.h"
#include "engine/base/logger.h"

namespace grin::cli {

inline constexpr int kDefaultLogKeep = 20;

// Adds -q, -v, --log-level and --log-keep (group "logging").
void AddLogOptions(cxxopts::Options& options);

// The rules of AddLogOptions' values (--log-level one of four, --log-keep 1..10000).
OptionRules LogRules();

// LogRules() plus "-q and -v together" refused; kInvalidArgument with one line.
Status CheckLogOptions(const cxxopts::ParseResult& parsed);

struct LogLevels {
  LogLevel file = LogLevel::kInfo;
  LogLevel console = LogLevel::kWarning;
  int keep = kDefaultLogKeep;
};

// The levels AddLogOptions' options give (after CheckLogOptions passed).
LogLevels LogLevelsFrom(const cxxopts::ParseResult& parsed);

class LineTeeBuf;

// The console logger and, when `run_dir` holds a run (books.db or run_config.json), the run's
// log file for one invocation of `command`. Create it right after the arguments are checked and
// the run directory resolved, before any work; keep it for the whole command (RAII: closing the
// file, restoring the streams). It prints "Log: PATH" on `notices` when it opens the file and
// again when it is destroyed (the summary), with the number of lines that could not be
// written, if any. While it lives, lines written to `out` and `err` are also copied into the
// log file (`out` and `err` must outlive it).
class CommandLog {
 public:
  CommandLog(std::string command, const std::string& run_dir, const cxxopts::ParseResult& parsed,
             std::ostream& out, std::ostream& err, std::ostream* notices = nullptr);
  ~CommandLog();
  CommandLog(const CommandLog&) = delete;
  CommandLog& operator=(const CommandLog&) = delete;

  // The logger to inject: the console and the log file, each at its level. Thread-safe.
  Logger* logger() { return logger_; }
  // The log file's path; "" when there is none.
  std::string path() const;

 private:
  std::string command_;
  std::ostream& out_;
  std::ostream& err_;
  std::ostream& notices_;
  int64_t started_micros_ = 0;
  std::unique_ptr<StderrLogger> console_;
  std::unique_ptr<FileLogger> file_;
  std::unique_ptr<TeeLogger> tee_;
  Logger* logger_ = nullptr;
  std::unique_ptr<LineTeeBuf> out_tee_;
  std::unique_ptr<LineTeeBuf> err_tee_;
  std::streambuf* out_buf_ = nullptr;
  std::streambuf* err_buf_ = nullptr;
};

// Removes all but the newest `keep` log files of `command` in `logs_dir` (names as above; other
// files are left alone), except files another process holds an flock on. Returns how many it
// removed.
int PruneLogs(const std::string& logs_dir, const std::string& command, int keep);

}  // namespace grin::cli
