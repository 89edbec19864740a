#include "engine/base/format.h"

#include <cstdio>

namespace grin {

std::string FormatDuration(double seconds) {
  char buf[64];
  if (seconds < 0) seconds = 0;
  if (seconds < 1.0) {
    std::snprintf(buf, sizeof buf, "%dms", static_cast<int>(seconds * 1000));
  } else if (seconds < 60.0) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600.0) {
    auto s = static_cast<int64_t>(seconds);
    std::snprintf(buf, sizeof buf, "%lldm %llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    auto s = static_cast<int64_t>(seconds);
    std::snprintf(buf, sizeof buf, "%lldh %lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  }
  return buf;
}

std::string FormatThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count && count % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++count;
  }
  if (n < 0) out.insert(out.begin(), '-');
  return out;
}

std::string EscapeNonPrintable(const std::string& s, bool escape_high) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f && c != '\\' && (c < 0x80 || !escape_high)) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

}  // namespace grin
