#include "engine/base/logger.h"

#include <cstdio>

namespace grin {

NullLogger* NullLogger::Default() {
  static NullLogger* logger = new NullLogger();
  return logger;
}

void StderrLogger::Log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!Enabled(level)) return;
  static const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  std::string line = kNames[static_cast<int>(level)];
  line += ' ';
  line += event;
  for (const auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    bool quote = v.find(' ') != std::string::npos || v.empty();
    if (quote) line += '"';
    line += v;
    if (quote) line += '"';
  }
  line += '\n';
  std::lock_guard<std::mutex> l(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
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
