#pragma once
// SharedLimits: the port through which a sync learns how much of GRIN's politeness it may use
// now — download slots and the GRIN request rate — when several processes (on several hosts)
// share one run's limits. The PostgreSQL adapter (storage/postgres/pg_workers.h) hands out
// shares of the run's limits through the database; LocalLimits is the one-process default: the
// configured numbers, never changing.
//
// Contract, for any implementation:
//  - TryAcquireDownload() takes one download slot only if fewer than DownloadLimit() are in use
//    and this process's hold on its share is still valid (an implementation with leases checks
//    the lease here, before a slot is used); the check and the count are one atomic step, so a
//    limit lowered concurrently is never overrun. Every true is matched by one
//    ReleaseDownload().
//  - DownloadLimit() may go down at any time (slots in use are not taken away; new ones are
//    refused until the count is below it) and up when the share grows.
//  - GrinRequestRate() is requests/s this process may send to GRIN now: 0 = none,
//    kUnlimitedRate = no limit. The rate listener hears every change, lowered before the share
//    is given up and raised only after it was taken, so the sum over processes never exceeds
//    the run's rate.
//
// Thread safety: every method may be called from any thread.

#include <functional>
#include <limits>
#include <mutex>

namespace grin::pipeline {

class SharedLimits {
 public:
  static constexpr double kUnlimitedRate = std::numeric_limits<double>::infinity();
  using RateListener = std::function<void(double requests_per_second)>;

  virtual ~SharedLimits() = default;
  virtual bool TryAcquireDownload() = 0;
  virtual void ReleaseDownload() = 0;
  virtual int DownloadLimit() const = 0;
  virtual double GrinRequestRate() const = 0;
  // Replaces the listener (nullptr: none) and calls it once at once with the current rate.
  // Called from the implementation's own threads afterwards; it must not call back into this
  // object's acquire/release.
  virtual void SetRateListener(RateListener listener) = 0;
};

// One process alone: the configured download concurrency and rate (0 = unlimited, as
// SyncOptions and HostLimits take it), never changing.
class LocalLimits final : public SharedLimits {
 public:
  LocalLimits(int download_slots, double requests_per_second)
      : slots_(download_slots),
        rate_(requests_per_second > 0 ? requests_per_second : kUnlimitedRate) {}
  bool TryAcquireDownload() override {
    std::lock_guard<std::mutex> l(mu_);
    if (in_use_ >= slots_) return false;
    ++in_use_;
    return true;
  }
  void ReleaseDownload() override {
    std::lock_guard<std::mutex> l(mu_);
    if (in_use_ > 0) --in_use_;
  }
  int DownloadLimit() const override { return slots_; }
  double GrinRequestRate() const override { return rate_; }
  void SetRateListener(RateListener listener) override {
    if (listener) listener(rate_);
  }

 private:
  std::mutex mu_;
  const int slots_;
  const double rate_;
  int in_use_ = 0;  // guarded by mu_
};

}  // namespace grin::pipeline
