#include "cli/log_setup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <streambuf>
#include <tuple>
#include <vector>

#include "engine/base/clock.h"

namespace grin::cli {

namespace fs = std::filesystem;

// Copies each whole line written through it into a logger, and passes every byte on to `dest`.
// At `level`; for kError (stderr), a line holding "warning:" at kWarning.
// A line ended by '\r' (a progress line about to be redrawn) is logged at most once a minute;
// terminal escape sequences are dropped from logged lines. Thread-safe.
class LineTeeBuf : public std::streambuf {
 public:
  LineTeeBuf(std::streambuf* dest, Logger* log, LogLevel level, const char* event)
      : dest_(dest), log_(log), level_(level), event_(event) {}

  // Logs a line left without its '\n'.
  void FlushLine() {
    std::lock_guard<std::mutex> l(mu_);
    Emit();
  }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    char ch = traits_type::to_char_type(c);
    std::lock_guard<std::mutex> l(mu_);
    Take(&ch, 1);
    return dest_->sputc(ch);
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard<std::mutex> l(mu_);
    Take(s, static_cast<size_t>(n));
    return dest_->sputn(s, n);
  }

  int sync() override {
    std::lock_guard<std::mutex> l(mu_);
    return dest_->pubsync();
  }

 private:
  static constexpr size_t kMaxLine = 64 << 10;

  void Take(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      char c = s[i];
      if (c == '\n') {
        Emit();
      } else if (c == '\r') {
        int64_t now = SystemClock::Default()->NowMicros();
        if (now - last_redrawn_micros_ >= 60'000'000) {
          last_redrawn_micros_ = now;
          Emit();
        }
        line_.clear();
      } else {
        line_.push_back(c);
        if (line_.size() >= kMaxLine) Emit();
      }
    }
  }

  void Emit() {
    std::string text;
    text.reserve(line_.size());
    for (size_t i = 0; i < line_.size(); ++i) {
      if (line_[i] == '\033') {  // ESC [ parameters final-byte
        ++i;
        if (i < line_.size() && line_[i] == '[') {
          ++i;
          while (i < line_.size() && !(line_[i] >= '@' && line_[i] <= '~')) ++i;
        }
        continue;
      }
      text.push_back(line_[i]);
    }
    line_.clear();
    if (text.find_first_not_of(" \t") == std::string::npos) return;
    // stderr: a line saying "warning:" is a warning, any other an error.
    LogLevel level = level_;
    if (level == LogLevel::kError && text.find("warning:") != std::string::npos) {
      level = LogLevel::kWarning;
    }
    log_->Log(level, event_, {{"text", text}});
  }

  std::mutex mu_;
  std::streambuf* dest_;
  Logger* log_;
  LogLevel level_;
  const char* event_;
  std::string line_;
  int64_t last_redrawn_micros_ = 0;
};

namespace {

constexpr int kMaxLogKeep = 10'000;

// "20261205T034500Z".
std::string CompactUtc(int64_t micros) {
  std::time_t t = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Parses "<command>-YYYYMMDDTHHMMSSZ[-N].log" into (stamp, N); false for any other name.
bool ParseLogName(const std::string& name, const std::string& command, std::string* stamp,
                  int* seq) {
  const std::string head = command + "-";
  constexpr size_t kStamp = 16;  // YYYYMMDDTHHMMSSZ
  if (name.size() < head.size() + kStamp + 4 || name.compare(0, head.size(), head) != 0) {
    return false;
  }
  if (name.compare(name.size() - 4, 4, ".log") != 0) return false;
  std::string s = name.substr(head.size(), kStamp);
  for (size_t i = 0; i < kStamp; ++i) {
    bool ok = i == 8 ? s[i] == 'T' : i == 15 ? s[i] == 'Z' : (s[i] >= '0' && s[i] <= '9');
    if (!ok) return false;
  }
  std::string rest = name.substr(head.size() + kStamp, name.size() - 4 - head.size() - kStamp);
  int n = 1;
  if (!rest.empty()) {
    if (rest.size() < 2 || rest.size() > 6 || rest[0] != '-') return false;
    n = 0;
    for (size_t i = 1; i < rest.size(); ++i) {
      if (rest[i] < '0' || rest[i] > '9') return false;
      n = n * 10 + (rest[i] - '0');
    }
  }
  *stamp = s;
  *seq = n;
  return true;
}

bool IsRun(const std::string& run_dir) {
  std::error_code ec;
  return !run_dir.empty() && (fs::exists(fs::path(run_dir) / "books.db", ec) ||
                              fs::exists(fs::path(run_dir) / "run_config.json", ec));
}

}  // namespace

void AddLogOptions(cxxopts::Options& options) {
  options.add_options("logging")("q,quiet", "Console: only errors")(
      "v,verbose", "Console: every event the log file gets (--log-level)")(
      "log-level",
      "Log file level: debug, info, warning or error (commands that write <run>/logs)",
      cxxopts::value<std::string>()->default_value("info"))(
      "log-keep", "Log files of this command kept in <run>/logs",
      cxxopts::value<int>()->default_value(std::to_string(kDefaultLogKeep)));
}

OptionRules LogRules() {
  OptionRules rules;
  rules.OneOf("log-level", {"debug", "info", "warning", "error"})
      .Int<int>("log-keep", 1, kMaxLogKeep);
  return rules;
}

Status CheckLogOptions(const cxxopts::ParseResult& parsed) {
  if (parsed.count("quiet") && parsed.count("verbose")) {
    return Status::InvalidArgument("-q and -v: give one of them, not both");
  }
  return LogRules().Check(parsed);
}

LogLevels LogLevelsFrom(const cxxopts::ParseResult& parsed) {
  LogLevels l;
  if (parsed.count("log-level")) {
    (void)ParseLogLevel(parsed["log-level"].as<std::string>(), &l.file);
  }
  if (parsed.count("log-keep")) l.keep = std::clamp(parsed["log-keep"].as<int>(), 1, kMaxLogKeep);
  if (parsed.count("quiet")) {
    l.console = LogLevel::kError;
  } else if (parsed.count("verbose")) {
    l.console = l.file;
  } else {
    l.console = std::max(LogLevel::kWarning, l.file);
  }
  return l;
}

int PruneLogs(const std::string& logs_dir, const std::string& command, int keep) {
  std::vector<std::tuple<std::string, int, std::string>> logs;  // stamp, seq, name
  std::error_code ec;
  for (fs::directory_iterator it(logs_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string stamp;
    int seq = 0;
    if (!ParseLogName(name, command, &stamp, &seq)) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    logs.emplace_back(stamp, seq, name);
  }
  if (static_cast<int>(logs.size()) <= keep) return 0;
  std::sort(logs.begin(), logs.end(), std::greater<>());
  int removed = 0;
  for (size_t i = static_cast<size_t>(std::max(keep, 0)); i < logs.size(); ++i) {
    std::string path = (fs::path(logs_dir) / std::get<2>(logs[i])).string();
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    // A process still writing its log holds an flock on it: leave that file alone.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::unlink(path.c_str()) == 0) ++removed;
    ::close(fd);
  }
  return removed;
}

CommandLog::CommandLog(std::string command, const std::string& run_dir,
                       const cxxopts::ParseResult& parsed, std::ostream& out, std::ostream& err,
                       std::ostream* notices)
    : command_(std::move(command)),
      out_(out),
      err_(err),
      notices_(notices != nullptr ? *notices : out),
      started_micros_(SystemClock::Default()->NowMicros()) {
  const LogLevels levels = LogLevelsFrom(parsed);
  console_ = std::make_unique<StderrLogger>(levels.console);
  logger_ = console_.get();
  if (!IsRun(run_dir)) return;  // the command itself reports a missing run

  const fs::path dir = fs::path(run_dir) / "logs";
  std::error_code mkdir_ec, ec;
  fs::create_directories(dir, mkdir_ec);
  FileLogger::Options fo;
  fo.min_level = levels.file;
  StderrLogger* console = console_.get();
  std::string shown;  // the path, for the drop warning
  Status failed;
  // After every log of the same second (-2, -3, ...), even one already rotated away, so names
  // keep sorting in time order.
  const std::string stamp = CompactUtc(started_micros_);
  const std::string stem = command_ + "-" + stamp;
  int first = 1;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string s;
    int seq = 0;
    if (ParseLogName(it->path().filename().string(), command_, &s, &seq) && s == stamp) {
      first = std::max(first, seq + 1);
    }
  }
  ec.clear();
  for (int n = first; n < first + 1000 && !file_; ++n) {
    std::string path = (dir / (stem + (n == 1 ? "" : "-" + std::to_string(n)) + ".log")).string();
    fo.on_first_drop = [console, path](const std::string& error) {
      console->Log(LogLevel::kWarning, "log.write_failed",
                   {{"path", path},
                    {"error", error},
                    {"note", "log lines are dropped (counted in the final Log: line); the "
                             "command goes on"}});
    };
    auto f = FileLogger::Open(path, fo);
    if (f.ok()) {
      file_ = std::move(f).value();
    } else if (f.status().code() != StatusCode::kAlreadyExists) {
      failed = f.status();
      break;
    }
  }
  if (!file_) {
    if (failed.ok()) failed = Status::Unavailable("no free log file name in " + dir.string());
    if (mkdir_ec) failed = Status::Unavailable(dir.string() + ": " + mkdir_ec.message());
    err_ << "grin-jobs " << command_ << ": warning: no log file (" << failed.message()
         << "); going on without one\n";
    return;
  }
  // Held until the file is closed: PruneLogs in another process leaves a log in use alone.
  (void)::flock(file_->fd(), LOCK_EX | LOCK_NB);
  tee_ = std::make_unique<TeeLogger>(console_.get(), file_.get());
  logger_ = tee_.get();

  std::string args;
  for (const auto& kv : parsed.arguments()) {
    if (!args.empty()) args += ' ';
    args += "--" + kv.key();
    if (!kv.value().empty() && kv.value() != "true") args += "=" + kv.value();
  }
  logger_->Log(LogLevel::kInfo, "command.started",
             {{"command", command_}, {"run_dir", run_dir}, {"pid", std::to_string(::getpid())},
              {"args", args}, {"log_level", LogLevelName(levels.file)},
              {"log_keep", std::to_string(levels.keep)}});
  int pruned = PruneLogs(dir.string(), command_, levels.keep);
  if (pruned > 0) {
    file_->Log(LogLevel::kInfo, "log.rotated", {{"removed", std::to_string(pruned)},
                                                 {"kept", std::to_string(levels.keep)}});
  }
  notices_ << "Log: " << file_->path() << "\n";
  notices_.flush();
  // From here on, what the command prints goes into the log too.
  out_tee_ = std::make_unique<LineTeeBuf>(out_.rdbuf(), file_.get(), LogLevel::kInfo, "stdout");
  out_buf_ = out_.rdbuf(out_tee_.get());
  if (&err_ != &out_) {
    err_tee_ =
        std::make_unique<LineTeeBuf>(err_.rdbuf(), file_.get(), LogLevel::kError, "stderr");
    err_buf_ = err_.rdbuf(err_tee_.get());
  }
}

CommandLog::~CommandLog() {
  if (!file_) return;
  if (out_tee_) {
    out_.flush();
    out_tee_->FlushLine();
    out_.rdbuf(out_buf_);
  }
  if (err_tee_) {
    err_.flush();
    err_tee_->FlushLine();
    err_.rdbuf(err_buf_);
  }
  double seconds = static_cast<double>(SystemClock::Default()->NowMicros() - started_micros_) / 1e6;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", seconds);
  logger_->Log(LogLevel::kInfo, "command.finished", {{"command", command_}, {"seconds", secs}});
  notices_ << "Log: " << file_->path();
  if (int64_t d = file_->dropped(); d > 0) {
    notices_ << " (" << d << " line" << (d == 1 ? "" : "s") << " could not be written: "
             << file_->first_error() << ")";
  }
  notices_ << "\n";
  notices_.flush();
}

std::string CommandLog::path() const { return file_ ? file_->path() : ""; }

}  // namespace grin::cli
