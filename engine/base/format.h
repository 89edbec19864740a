#pragma once
// Human-readable formatting shared by progress lines and `status`.

#include <cstdint>
#include <string>

namespace grin {

// The reference tool's duration format: < 1 s "NNNms"; < 60 s "N.Ns"; < 1 h "Xm Ys";
// otherwise "Xh Ym".
std::string FormatDuration(double seconds);

// 1234567 -> "1,234,567".
std::string FormatThousands(int64_t n);

// s with control bytes, DEL, bytes >= 0x80 (if escape_high) and backslashes as "\xNN": a name
// from an untrusted file shown on one line.
std::string EscapeNonPrintable(const std::string& s, bool escape_high = true);

}  // namespace grin
