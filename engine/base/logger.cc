#include "engine/base/logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/base/errno_status.h"

namespace grin {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

// Keys whose whole value is a secret.
constexpr const char* kSecretKeyWords[] = {"token",     "secret",     "passphrase", "password",
                                           "authorization", "signature", "credential", "cookie",
                                           "api_key",   "apikey",     "private_key"};

// Headers whose value (to the end of the line) is a secret.
constexpr const char* kSecretHeaders[] = {"authorization:", "proxy-authorization:", "cookie:",
                                          "set-cookie:", "x-amz-security-token:",
                                          "x-goog-api-key:"};

// Query / form parameters and JSON members whose value is a secret.
constexpr const char* kSecretParams[] = {
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature",
    "access_token",    "refresh_token",    "id_token",             "client_secret",
    "token",           "password",         "passphrase",           "secret_access_key",
    "aws_secret_access_key", "secret_key", "sig"};

using Range = std::pair<size_t, size_t>;  // [begin, end) of the original value

bool ValueDelimiter(char c) {
  return c == '&' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' ||
         c == ',' || c == ';' || c == ')' || c == '>' || c == '#';
}

// Adds the ranges of secret parts of `v` (lower-cased as `low`) to *out.
void FindSecrets(std::string_view v, const std::string& low, std::vector<Range>* out) {
  // Header values: to the end of the line.
  for (const char* h : kSecretHeaders) {
    const size_t n = std::strlen(h);
    for (size_t at = low.find(h); at != std::string::npos; at = low.find(h, at + n)) {
      if (at > 0 && IsNameChar(low[at - 1])) continue;
      size_t b = at + n;
      while (b < v.size() && v[b] == ' ') ++b;
      size_t e = b;
      while (e < v.size() && v[e] != '\r' && v[e] != '\n') ++e;
      if (e > b) out->push_back({b, e});
    }
  }
  // "Bearer <token>" anywhere (a header value seen without its name, an error message).
  for (size_t at = low.find("bearer "); at != std::string::npos; at = low.find("bearer ", at + 7)) {
    if (at > 0 && IsNameChar(low[at - 1])) continue;
    size_t b = at + 7;
    size_t e = b;
    while (e < v.size() && !ValueDelimiter(v[e])) ++e;
    if (e > b) out->push_back({b, e});
  }
  for (const char* p : kSecretParams) {
    const size_t n = std::strlen(p);
    for (size_t at = low.find(p); at != std::string::npos; at = low.find(p, at + n)) {
      if (at > 0 && IsNameChar(low[at - 1])) continue;
      size_t i = at + n;
      if (i < v.size() && v[i] == '=') {
        // name=value (URL query, form body, AWS4 "Signature=..." list).
        size_t b = i + 1;
        size_t e = b;
        while (e < v.size() && !ValueDelimiter(v[e])) ++e;
        if (e > b) out->push_back({b, e});
        continue;
      }
      // "name": "value" (JSON).
      if (at == 0 || v[at - 1] != '"' || i >= v.size() || v[i] != '"') continue;
      ++i;
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
      if (i >= v.size() || v[i] != ':') continue;
      ++i;
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
      if (i >= v.size() || v[i] != '"') continue;
      size_t b = i + 1;
      size_t e = b;
      while (e < v.size() && v[e] != '"') e += (v[e] == '\\') ? 2 : 1;
      e = std::min(e, v.size());
      if (e > b) out->push_back({b, e});
    }
  }
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

void AppendValue(std::string* line, std::string_view v) {
  if (!NeedsQuotes(v)) {
    line->append(v);
    return;
  }
  line->push_back('"');
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': line->append("\\\""); break;
      case '\\': line->append("\\\\"); break;
      case '\n': line->append("\\n"); break;
      case '\r': line->append("\\r"); break;
      case '\t': line->append("\\t"); break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\x%02x", u);
          line->append(hex);
        } else {
          line->push_back(c);
        }
    }
  }
  line->push_back('"');
}

}  // namespace

NullLogger* NullLogger::Default() {
  static NullLogger* logger = new NullLogger();
  return logger;
}

const char* LogLevelName(LogLevel level) {
  static const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  int i = static_cast<int>(level);
  return i >= 0 && i <= 3 ? kNames[i] : "INFO";
}

std::string RedactLogValue(std::string_view key, std::string_view value) {
  const std::string low_key = LowerCopy(key);
  for (const char* w : kSecretKeyWords) {
    if (low_key.find(w) != std::string::npos) return value.empty() ? "" : "[redacted]";
  }
  const std::string low = LowerCopy(value);
  std::vector<Range> ranges;
  FindSecrets(value, low, &ranges);
  if (ranges.empty()) return std::string(value);
  std::sort(ranges.begin(), ranges.end());
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : ranges) {
    if (e <= pos) continue;  // inside a range already redacted
    if (b > pos) out.append(value.substr(pos, b - pos));
    out.append("[redacted]");
    pos = e;
  }
  out.append(value.substr(std::min(pos, value.size())));
  return out;
}

std::string FormatLogLine(std::string_view event, const LogFields& fields) {
  std::string line(event);
  for (const auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    AppendValue(&line, RedactLogValue(k, v));
  }
  return line;
}

void StderrLogger::Log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!Enabled(level)) return;
  std::string line = LogLevelName(level);
  line += ' ';
  line += FormatLogLine(event, fields);
  line += '\n';
  std::lock_guard<std::mutex> l(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void TeeLogger::Log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (a_->Enabled(level)) a_->Log(level, event, fields);
  if (b_->Enabled(level)) b_->Log(level, event, fields);
}

Result<std::unique_ptr<FileLogger>> FileLogger::Open(const std::string& path, Options options) {
  int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
  if (options.create_new) flags |= O_EXCL;
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int e = errno;
    if (e == EEXIST) return Status::AlreadyExists("log file " + path + ": " + std::strerror(e));
    return ErrnoStatus(e, "log file " + path, StatusCode::kUnavailable);
  }
  if (options.clock == nullptr) options.clock = SystemClock::Default();
  return std::unique_ptr<FileLogger>(new FileLogger(path, fd, std::move(options)));
}

FileLogger::FileLogger(std::string path, int fd, Options options)
    : path_(std::move(path)), fd_(fd), options_(std::move(options)) {}

FileLogger::~FileLogger() {
  if (fd_ >= 0) ::close(fd_);
}

std::string FileLogger::first_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return first_error_;
}

void FileLogger::Log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!Enabled(level)) return;
  std::string line = FormatIsoUtcMillis(options_.clock->NowMicros());
  line += ' ';
  line += LogLevelName(level);
  line += ' ';
  line += FormatLogLine(event, fields);
  line += '\n';
  std::lock_guard<std::mutex> l(mu_);
  if (partial_) line.insert(line.begin(), '\n');
  size_t done = 0;
  int error = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (error == 0) {
    partial_ = false;
    return;
  }
  if (done > 0) partial_ = true;  // the line stopped midway (else: as it was)
  if (dropped_.fetch_add(1) == 0) {
    first_error_ = std::strerror(error);
    if (options_.on_first_drop) options_.on_first_drop(first_error_);
  }
}

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") *out = LogLevel::kDebug;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "warning" || text == "warn") *out = LogLevel::kWarning;
  else if (text == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

}  // namespace grin
