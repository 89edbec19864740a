#include "engine/pipeline/memory_budget.h"

#include <chrono>

namespace grin::pipeline {

bool MemoryBudget::Acquire(uint64_t bytes, const std::function<bool()>& stop) {
  if (bytes > capacity_) return false;
  std::unique_lock<std::mutex> l(mu_);
  while (capacity_ - used_ < bytes) {
    if (stop && stop()) return false;
    cv_.wait_for(l, std::chrono::milliseconds(50));
  }
  used_ += bytes;
  return true;
}

void MemoryBudget::Release(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> l(mu_);
    used_ = bytes > used_ ? 0 : used_ - bytes;
  }
  cv_.notify_all();
}

uint64_t MemoryBudget::in_use() const {
  std::lock_guard<std::mutex> l(mu_);
  return used_;
}

}  // namespace grin::pipeline
