#pragma once
// UniqueFd: an owned POSIX file descriptor, closed when the owner goes away (the descriptor
// counterpart of std::unique_ptr). Move-only. -1 means "none".
//
// Thread safety: like any value; one owner at a time.

#include <utility>

namespace grin {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes the descriptor (if any); the object then holds -1. close()'s result is ignored: on
  // Linux the descriptor is released even when close() reports an error.
  void Reset();
  // Gives up ownership without closing; returns the descriptor.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

}  // namespace grin
