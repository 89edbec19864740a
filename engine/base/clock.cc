#include "engine/base/clock.h"

#include <cstdio>
#include <ctime>

namespace grin {

SystemClock* SystemClock::Default() {
  static SystemClock* clock = new SystemClock();
  return clock;
}

std::string FormatIsoUtc(int64_t micros) {
  std::time_t secs = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatIsoUtcMillis(int64_t micros) {
  std::string s = FormatIsoUtc(micros);  // ...SSZ
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>((micros / 1000) % 1000));
  s.pop_back();
  s += ms;
  return s;
}

}  // namespace grin
