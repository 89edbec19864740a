#pragma once
// Clock: the seam for time. Everything that signs, expires, backs off or leases takes a Clock so
// tests can drive time by hand (FakeClock) instead of sleeping.
//
// Thread safety: Now() may be called from any thread. FakeClock's setters are thread-safe too.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace grin {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t NowMicros() const = 0;
  int64_t NowMillis() const { return NowMicros() / 1000; }
  double NowSeconds() const { return static_cast<double>(NowMicros()) / 1e6; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that only moves when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  void AdvanceMicros(int64_t d) { now_ += d; }
  void AdvanceSeconds(double s) { now_ += static_cast<int64_t>(s * 1e6); }
  void SetMicros(int64_t t) { now_ = t; }

 private:
  std::atomic<int64_t> now_;
};

// Formats micros-since-epoch as ISO 8601 UTC with second precision: "2026-11-28T21:02:20Z".
std::string FormatIsoUtc(int64_t micros);
// Same with milliseconds: "2026-11-28T21:02:20.123Z". Sorts lexicographically in time order.
std::string FormatIsoUtcMillis(int64_t micros);

}  // namespace grin
