#pragma once
// MemoryBudget: bounds the bytes the pipeline holds in memory for books streamed without staging
// (their decrypted archive waits in memory for the upload). A worker reserves a book's size
// before downloading it and releases it when the book is stored or failed.
//
// Thread safety: all methods may be called from any thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace grin::pipeline {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t capacity) : capacity_(capacity) {}

  uint64_t capacity() const { return capacity_; }

  // True if `bytes` could ever be reserved (bytes <= capacity).
  bool Fits(uint64_t bytes) const { return bytes <= capacity_; }

  // Waits until `bytes` are free and takes them. Returns false without taking anything if
  // `bytes` exceeds the capacity or `stop()` turns true (checked every 50 ms while waiting).
  bool Acquire(uint64_t bytes, const std::function<bool()>& stop);

  void Release(uint64_t bytes);

  uint64_t in_use() const;

 private:
  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ = 0;
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
