#include "storage/s3/buffer_pool.h"

#include <algorithm>

namespace grin::s3 {

BufferPool::BufferPool(size_t max_idle_bytes) : state_(std::make_shared<State>()) {
  state_->max_idle_bytes = max_idle_bytes;
}

BufferPool::~BufferPool() = default;

std::shared_ptr<PooledBuffer> BufferPool::Take(size_t n) {
  std::unique_ptr<PooledBuffer> b;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    auto& idle = state_->idle;
    auto it = std::find_if(idle.begin(), idle.end(), [n](const auto& p) {
      return p->capacity() >= n && p->capacity() / 2 <= n;
    });
    if (it != idle.end()) {
      b = std::move(*it);
      *it = std::move(idle.back());
      idle.pop_back();
      state_->idle_bytes -= b->capacity();
    }
  }
  if (!b) {
    // new char[] leaves the bytes uninitialised (make_unique<char[]> would zero them).
    b.reset(new PooledBuffer(std::unique_ptr<char[]>(new char[std::max<size_t>(n, 1)]), n));
  }
  b->size_ = n;
  std::weak_ptr<State> weak = state_;
  return std::shared_ptr<PooledBuffer>(b.release(),
                                       [weak](PooledBuffer* p) { Release(weak, p); });
}

void BufferPool::Release(const std::weak_ptr<State>& weak, PooledBuffer* b) {
  std::unique_ptr<PooledBuffer> owned(b);
  std::shared_ptr<State> state = weak.lock();
  if (!state) return;
  std::lock_guard<std::mutex> l(state->mu);
  if (state->idle_bytes + owned->capacity() > state->max_idle_bytes) return;  // freed
  state->idle_bytes += owned->capacity();
  state->idle.push_back(std::move(owned));
}

size_t BufferPool::idle_bytes() const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->idle_bytes;
}

}  // namespace grin::s3
