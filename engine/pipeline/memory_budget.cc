#include "engine/pipeline/memory_budget.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace grin::pipeline {

bool MemoryBudget::Acquire(uint64_t bytes, const std::function<bool()>& stop) {
  uint64_t reserved = 0;
  return Acquire(bytes, 0, stop, nullptr, &reserved);
}

bool MemoryBudget::Acquire(uint64_t bytes, uint64_t buffer_bytes,
                           const std::function<bool()>& stop, std::string* buffer,
                           uint64_t* reserved) {
  if (bytes > capacity_) return false;
  std::unique_lock<std::mutex> l(mu_);
  while (capacity_ - used_ < bytes) {
    if (stop && stop()) return false;
    cv_.wait_for(l, std::chrono::milliseconds(50));
  }
  used_ += bytes;
  *reserved = bytes;
  if (buffer != nullptr) {
    auto best = idle_buffers_.end();
    for (auto it = idle_buffers_.begin(); it != idle_buffers_.end(); ++it) {
      uint64_t cap = it->capacity();
      if (cap >= buffer_bytes && cap - buffer_bytes <= capacity_ - used_ &&
          (best == idle_buffers_.end() || cap < best->capacity())) {
        best = it;
      }
    }
    if (best != idle_buffers_.end()) {
      uint64_t surplus = best->capacity() - buffer_bytes;
      used_ += surplus;
      *reserved += surplus;
      idle_ -= best->capacity();
      *buffer = std::move(*best);
      buffer->clear();
      idle_buffers_.erase(best);
    }
  }
  std::vector<std::string> evicted = TrimLocked();
  l.unlock();
  return true;  // `evicted` is freed here, outside the lock
}

std::vector<std::string> MemoryBudget::TrimLocked() {
  std::vector<std::string> evicted;
  while (!idle_buffers_.empty() && used_ + idle_ > capacity_) {
    auto largest = std::max_element(
        idle_buffers_.begin(), idle_buffers_.end(),
        [](const std::string& a, const std::string& b) { return a.capacity() < b.capacity(); });
    idle_ -= largest->capacity();
    evicted.push_back(std::move(*largest));
    idle_buffers_.erase(largest);
  }
  return evicted;
}

void MemoryBudget::ReturnBuffer(std::string buffer) {
  buffer.clear();
  if (buffer.capacity() == 0) return;
  std::lock_guard<std::mutex> l(mu_);
  if (used_ + idle_ + buffer.capacity() > capacity_) return;  // freed on return
  idle_ += buffer.capacity();
  idle_buffers_.push_back(std::move(buffer));
}

uint64_t MemoryBudget::idle_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return idle_;
}

void MemoryBudget::Release(uint64_t bytes, std::string buffer) {
  buffer.clear();
  {
    std::lock_guard<std::mutex> l(mu_);
    used_ = bytes > used_ ? 0 : used_ - bytes;
    if (buffer.capacity() > 0 && used_ + idle_ + buffer.capacity() <= capacity_) {
      idle_ += buffer.capacity();
      idle_buffers_.push_back(std::move(buffer));
    }
  }
  cv_.notify_all();
}  // a buffer without room is freed here, outside the lock

void MemoryBudget::Release(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> l(mu_);
    used_ = bytes > used_ ? 0 : used_ - bytes;
  }
  cv_.notify_all();
}

uint64_t MemoryBudget::available() const {
  std::lock_guard<std::mutex> l(mu_);
  return capacity_ - used_;
}

uint64_t MemoryBudget::in_use() const {
  std::lock_guard<std::mutex> l(mu_);
  return used_;
}

}  // namespace grin::pipeline
