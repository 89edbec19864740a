#pragma once
// Small helpers shared by the fuzz targets (tests/fuzz/*_fuzz.cc).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grin::fuzz {

// Chunk boundaries for streaming parsers, derived from the input itself (so a crash reproduces
// from the input alone): up to three cut points.
inline std::vector<size_t> CutPoints(const uint8_t* data, size_t n) {
  std::vector<size_t> cuts;
  if (n < 2) return cuts;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n && i < 64; ++i) h = (h ^ data[i]) * 16777619u;
  size_t last = 0;
  for (int k = 0; k < 3; ++k) {
    h = h * 1103515245u + 12345u;
    size_t at = last + 1 + (h >> 8) % (n - last);
    if (at >= n) break;
    cuts.push_back(at);
    last = at;
  }
  return cuts;
}

// Calls feed(ptr, len) for consecutive chunks of data split at CutPoints; stops at the first
// false return.
template <typename Feed>
void FeedChunked(const uint8_t* data, size_t n, Feed feed) {
  size_t pos = 0;
  for (size_t cut : CutPoints(data, n)) {
    if (!feed(data + pos, cut - pos)) return;
    pos = cut;
  }
  if (pos < n) feed(data + pos, n - pos);
}

inline std::string_view AsView(const uint8_t* data, size_t n) {
  return n ? std::string_view(reinterpret_cast<const char*>(data), n) : std::string_view();
}

// Writes bytes to a file (for parsers whose entry point takes a path); aborts if it cannot.
void WriteFileOrDie(const std::string& path, std::string_view bytes, int mode);
// A private directory for this process (in /dev/shm when writable), removed at exit.
const std::string& ScratchDir();

}  // namespace grin::fuzz
