#pragma once
// MemoryBudget: bounds the bytes the pipeline holds in memory for books streamed without staging
// (their decrypted archive waits in memory for the upload). A worker reserves a book's size
// before downloading it and releases it when the book is stored or failed.
//
// The budget also keeps the buffers those books used, for the next books: a 50 MiB buffer
// allocated afresh costs ~12,800 page faults (the kernel zeroes every page), about as much CPU as
// hashing it. Idle buffers count against the capacity: reservations evict them (largest first)
// when reserved + idle bytes would exceed it, so the memory held stays within the capacity.
//
// Thread safety: all methods may be called from any thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace grin::pipeline {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t capacity) : capacity_(capacity) {}

  uint64_t capacity() const { return capacity_; }

  // True if `bytes` could ever be reserved (bytes <= capacity).
  bool Fits(uint64_t bytes) const { return bytes <= capacity_; }

  // Waits until `bytes` are free and takes them. Returns false without taking anything if
  // `bytes` exceeds the capacity or `stop()` turns true (checked every 50 ms while waiting; a
  // `stop` that is already true makes this a try that never waits).
  bool Acquire(uint64_t bytes, const std::function<bool()>& stop);

  // Acquire for a book whose buffer needs `buffer_bytes` (included in `bytes`): also moves into
  // `buffer` the smallest kept buffer with at least that capacity, if the budget has room for
  // its surplus, and reserves the surplus too (kept buffers are handed out before any is
  // evicted). `*reserved` gets what to Release: bytes plus the surplus. Without a kept buffer
  // to hand out, `buffer` is left empty.
  bool Acquire(uint64_t bytes, uint64_t buffer_bytes, const std::function<bool()>& stop,
               std::string* buffer, uint64_t* reserved);

  void Release(uint64_t bytes);
  // Release(bytes) and ReturnBuffer(buffer) in one step, so that a reservation waiting for the
  // released bytes is handed the kept buffer too instead of faulting in a fresh one.
  void Release(uint64_t bytes, std::string buffer);

  uint64_t in_use() const;
  // Bytes a reservation could take now without waiting (kept buffers are evictable).
  uint64_t available() const;

  // Keeps `buffer` (cleared) for a later TakeBuffer if reserved + idle bytes stay within the
  // capacity; frees it otherwise. Call it after releasing the reservation that covered it.
  void ReturnBuffer(std::string buffer);

  uint64_t idle_bytes() const;

 private:
  // Removes idle buffers (largest first) until used_ + idle_ <= capacity_; returns them so
  // they are freed outside the lock.
  std::vector<std::string> TrimLocked();

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ = 0;
  uint64_t idle_ = 0;                // sum of idle_buffers_ capacities
  std::vector<std::string> idle_buffers_;
};

// Releases a reservation when it goes out of scope.
class BudgetLease {
 public:
  BudgetLease(MemoryBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
  ~BudgetLease() {
    if (budget_ != nullptr) budget_->Release(bytes_);
  }
  BudgetLease(const BudgetLease&) = delete;
  BudgetLease& operator=(const BudgetLease&) = delete;

 private:
  MemoryBudget* budget_;
  uint64_t bytes_;
};

}  // namespace grin::pipeline
