#pragma once
// BufferPool: reusable, uninitialised byte buffers for request bodies the S3 store must hold in
// memory (a multipart part, a small body: hashed before the request is signed). Taking a fresh
// 8 MiB std::string for every part zero-fills it and page-faults every page in again after
// malloc returned it to the kernel; on the storage benchmark that was ~7 % of the client's CPU.
//
// A buffer goes back to the pool when its last reference drops (a request body may outlive the
// call that filled it, e.g. inside the transport); idle buffers beyond max_idle_bytes are freed.
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
