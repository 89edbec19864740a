#pragma once
// Cancellation of a running sync, from any thread (or a signal handler: every method is one
// lock-free atomic operation).
//
//   Drain()  stop claiming books; the books in flight finish (or fail) normally, then Sync()
//            returns with SyncReport::interrupted. Nothing is lost; a later sync continues.
//   Abort()  as Drain(), and at once give back the leases of the books in flight without
//            counting an attempt (their workers are fenced out: what they still write is
//            refused). Meant for a host that is about to exit.

#include <atomic>

namespace grin::jobs {

class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  void Drain() {
    int cur = level_.load();
    while (cur < 1 && !level_.compare_exchange_weak(cur, 1)) {
    }
  }
  void Abort() {
    int cur = level_.load();
    while (cur < 2 && !level_.compare_exchange_weak(cur, 2)) {
    }
  }
  // One more request (a signal handler's Ctrl-C): the first drains, the second aborts.
  // Returns how many requests came before this one.
  int Escalate() { return level_.fetch_add(1); }
  // Back to "running" (before reusing the object for another sync).
  void Reset() { level_.store(0); }

  bool draining() const { return level_.load() >= 1; }
  bool aborting() const { return level_.load() >= 2; }
  // The counter the pipeline polls (non-zero: drain). For the implementation.
  const std::atomic<int>* counter() const { return &level_; }

 private:
  static_assert(std::atomic<int>::is_always_lock_free);
  std::atomic<int> level_{0};
};

}  // namespace grin::jobs
