#include "engine/pipeline/memory_budget.h"

#include <chrono>
#include <utility>

namespace grin::pipeline {

MemoryBudget::~MemoryBudget() = default;

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

void MemoryBudget::KeepLocked(std::vector<Chunk>* chunks, std::vector<Chunk>* freed) {
  for (auto& c : *chunks) {
    if (c == nullptr) continue;
    --out_;
    if ((out_ + idle_.size() + 1) * kChunkBytes <= capacity_) {
      idle_.push_back(std::move(c));
    } else {
      freed->push_back(std::move(c));
    }
  }
  chunks->clear();
}

MemoryBudget::Chunk MemoryBudget::TakeChunk() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++out_;
    if (!idle_.empty()) {
      Chunk c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  // Not value-initialised: the pages are touched only when the book writes them.
  return Chunk(new char[kChunkBytes]);
}

void MemoryBudget::ReturnChunks(std::vector<Chunk>* chunks) {
  std::vector<Chunk> freed;
  std::lock_guard<std::mutex> l(mu_);
  KeepLocked(chunks, &freed);
}

void MemoryBudget::Release(uint64_t bytes, std::vector<Chunk>* chunks) {
  std::vector<Chunk> freed;
  {
    std::lock_guard<std::mutex> l(mu_);
    used_ = bytes > used_ ? 0 : used_ - bytes;
    KeepLocked(chunks, &freed);
  }
  cv_.notify_all();
}

uint64_t MemoryBudget::chunk_bytes_out() const {
  std::lock_guard<std::mutex> l(mu_);
  return out_ * kChunkBytes;
}

uint64_t MemoryBudget::idle_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return idle_.size() * kChunkBytes;
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
