#include "engine/archive/bounded_pipe.h"

#include <algorithm>
#include <cstring>

namespace grin::archive {

BoundedPipe::BoundedPipe(size_t capacity) : buf_(std::max<size_t>(capacity, 1)) {}

bool BoundedPipe::Write(const uint8_t* data, size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  while (n > 0) {
    can_write_.wait(l, [&] { return read_closed_ || size_ < buf_.size(); });
    if (read_closed_) return false;
    // Copy into the free region, which may wrap around the end of the ring.
    size_t tail = (head_ + size_) % buf_.size();
    size_t room = std::min(buf_.size() - size_, buf_.size() - tail);
    size_t k = std::min(room, n);
    std::memcpy(buf_.data() + tail, data, k);
    size_ += k;
    data += k;
    n -= k;
    can_read_.notify_one();
  }
  return !read_closed_;
}

void BoundedPipe::CloseWrite(bool abort) {
  std::lock_guard<std::mutex> l(mu_);
  write_closed_ = true;
  write_aborted_ = write_aborted_ || abort;
  can_read_.notify_all();
}

long BoundedPipe::Read(uint8_t* out, size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  can_read_.wait(l, [&] { return size_ > 0 || write_closed_; });
  if (write_aborted_) return -1;
  if (size_ == 0) return 0;
  size_t total = 0;
  while (n > 0 && size_ > 0) {
    size_t k = std::min({n, size_, buf_.size() - head_});
    std::memcpy(out, buf_.data() + head_, k);
    head_ = (head_ + k) % buf_.size();
    size_ -= k;
    out += k;
    n -= k;
    total += k;
  }
  can_write_.notify_one();
  return static_cast<long>(total);
}

void BoundedPipe::CloseRead() {
  std::lock_guard<std::mutex> l(mu_);
  read_closed_ = true;
  can_write_.notify_all();
}

}  // namespace grin::archive
