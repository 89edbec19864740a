#pragma once
// Cancellation of a running sync, from any thread or a signal handler: every method is lock-free
// (atomic operations and, to wake the sync, a futex wake through std::atomic::notify_all; errno
// is left as it was).
//
//   Drain()  stop claiming books; the books in flight finish (or fail) normally, then Sync()
//            returns with SyncReport::interrupted. Nothing is lost; a later sync continues.
//   Abort()  as Drain(), and at once give back the leases of the books in flight without
//            counting an attempt (their workers are fenced out: what they still write is
//            refused); on a PostgreSQL run also end this sync's worker registration and give
//            its GRIN download slots back, so another sync may use them at once. Meant for a
//            host that is about to exit: the downloads still running are not stopped, and
//            until the host exits they run beyond the run's shared slots.
// The running sync is woken by every request: it sees an Abort() at once, not at a next poll.

#include <atomic>
#include <cerrno>
#include <cstdint>

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
    Wake();
  }
  void Abort() {
    int cur = level_.load();
    while (cur < 2 && !level_.compare_exchange_weak(cur, 2)) {
    }
    Wake();
  }
  // One more request (a signal handler's Ctrl-C): the first drains, the second aborts.
  // Returns how many requests came before this one.
  int Escalate() {
    const int before = level_.fetch_add(1);
    Wake();
    return before;
  }
  // Back to "running" (before reusing the object for another sync).
  void Reset() { level_.store(0); }

  bool draining() const { return level_.load() >= 1; }
  bool aborting() const { return level_.load() >= 2; }
  // The counter the pipeline polls (non-zero: drain). For the implementation.
  const std::atomic<int>* counter() const { return &level_; }

  // For the implementation: waiting for a request without polling. wakes() changes after every
  // request (its level first) and every Wake(); WaitForWake(seen) returns once wakes() != seen
  // (at once if it already differs). Read wakes(), then check the level, then wait: nothing is
  // missed. Wake() also lets a session end its own wait.
  uint32_t wakes() const { return wakes_.load(); }
  void WaitForWake(uint32_t seen) const { wakes_.wait(seen); }
  void Wake() {
    const int saved_errno = errno;
    wakes_.fetch_add(1);
    wakes_.notify_all();
    errno = saved_errno;
  }

 private:
  static_assert(std::atomic<int>::is_always_lock_free);
  static_assert(std::atomic<uint32_t>::is_always_lock_free);
  std::atomic<int> level_{0};
  std::atomic<uint32_t> wakes_{0};
};

}  // namespace grin::jobs
