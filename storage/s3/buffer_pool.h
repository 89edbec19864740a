#pragma once
// BufferPool: reusable, uninitialised byte buffers. The S3 store reads a body it must hash before
// signing through one (256 KiB) when the source cannot be read in place (ByteSource::
// VisitInPlace). A fresh buffer is zero-filled and page-faulted in again after malloc returned
// it to the kernel: on the storage benchmark machine that costs 0.6-1.3 CPU-s/GB.
//
// A buffer goes back to the pool when its last reference drops (it may outlive the call that
// took it); idle buffers beyond max_idle_bytes are freed.
// Thread safety: Take() and the release of buffers may happen concurrently from any thread. The
// pool may be destroyed while buffers are still out (they are then simply freed).

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace grin::s3 {

class PooledBuffer {
 public:
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  friend class BufferPool;
  PooledBuffer(std::unique_ptr<char[]> data, size_t capacity)
      : data_(std::move(data)), capacity_(capacity) {}
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

class BufferPool {
 public:
  explicit BufferPool(size_t max_idle_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of exactly n bytes (size() == n), contents unspecified: an idle one whose capacity
  // is in [n, 2n], else a new one.
  std::shared_ptr<PooledBuffer> Take(size_t n);

  size_t idle_bytes() const;  // tests

 private:
  struct State {
    std::mutex mu;
    std::vector<std::unique_ptr<PooledBuffer>> idle;
    size_t idle_bytes = 0;
    size_t max_idle_bytes = 0;
  };
  static void Release(const std::weak_ptr<State>& state, PooledBuffer* b);
  std::shared_ptr<State> state_;
};

}  // namespace grin::s3
