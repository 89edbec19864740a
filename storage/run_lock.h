#pragma once
// RunLock: the per-run lock. A process that opens a run for writing holds an exclusive,
// non-blocking flock on "<db>.lock" for its lifetime (the kernel drops it if the process dies,
// so kill -9 never leaves a stale lock). Readers (status, sql) never take it.

#include <string>

#include "engine/base/result.h"

namespace grin::storage {

class RunLock {
 public:
  // Takes the lock or returns kBusy naming the holder's pid:
  //   "<db>: run is in use by another grin-jobs process (pid N); ..."
  static Result<RunLock> Acquire(const std::string& db_path);

  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace grin::storage
