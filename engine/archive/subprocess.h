#pragma once
// Subprocess: posix_spawn with an argv array (never a shell string) and pipes mapped onto chosen
// child descriptors. Used by the gpg backend and by tests that run real gpg.
//
// Every descriptor we create is close-on-exec and numbered >= 10 before the file actions run, so
// dup2 onto 0..9 in the child can never clobber a source descriptor. The child starts with an
// empty signal mask and default SIGPIPE handling.
//
// Thread safety: a Subprocess is used by one thread at a time. Spawning from several threads at
// once is safe (close-on-exec descriptors do not leak into other children).

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::archive {

// An owned file descriptor.
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
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// Which way a pipe runs, seen from the child.
enum class PipeDir { kChildReads, kChildWrites };

struct ChildPipe {
  int child_fd;  // descriptor number inside the child (0, 1, 2, 3, ...)
  PipeDir dir;
  // Pipe capacity to request (F_SETPIPE_SZ; the kernel caps it at fs.pipe-max-size, 1 MiB by
  // default). 0 keeps the 64 KiB default. Bulk pipes want it large: fewer wake-ups per MiB.
  size_t capacity = 0;
};

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(Subprocess&&) noexcept;
  Subprocess& operator=(Subprocess&&) noexcept;
  // Kills (SIGKILL) and reaps a child that was neither waited for nor killed.
  ~Subprocess();

  // Starts argv[0] (searched in PATH when it has no '/') with exactly the environment env
  // ("NAME=value" strings). Child descriptors not listed in pipes are /dev/null for 0..2 and
  // closed otherwise. parent_fds() returns our ends in the order of pipes (non-blocking).
  static Result<Subprocess> Spawn(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env,
                                  const std::vector<ChildPipe>& pipes);

  std::vector<UniqueFd>& parent_fds() { return fds_; }
  pid_t pid() const { return pid_; }

  // Waits for the child; returns its raw wait status (use WIFEXITED etc.).
  Result<int> Wait();
  // Sends SIGKILL if the child still runs, then reaps it.
  void Kill();

 private:
  pid_t pid_ = -1;
  std::vector<UniqueFd> fds_;
};

// Blocks SIGPIPE on the calling thread for its lifetime so a write to a pipe whose reader died
// fails with EPIPE instead of killing the process; a SIGPIPE raised meanwhile is consumed.
// (A library must not change the process-wide disposition.)
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock();
  ~ScopedSigpipeBlock();
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// Writes all n bytes to a blocking or non-blocking fd, polling when it would block. Returns
// kUnavailable("broken pipe") if the reader went away.
Status WriteAll(int fd, const void* data, size_t n);

// Finds an executable in $PATH (or returns name if it contains '/'); empty if not found.
std::string FindInPath(const std::string& name);

// A minimal environment for children: PATH from ours, LC_ALL=C, plus extra entries.
std::vector<std::string> MinimalEnv(const std::vector<std::string>& extra);

}  // namespace grin::archive
