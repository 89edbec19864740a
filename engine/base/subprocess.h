#pragma once
// Subprocess: posix_spawn with an argv array (never a shell string) and pipes mapped onto chosen
// child descriptors: the one way the project starts a program (the gpg backend, and tests that run
// gpg, python3 or awscli).
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
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"
#include "engine/base/unique_fd.h"

namespace grin {

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

// Our whole environment, with extra "NAME=value" entries added or replacing ours of that name
// (tests that run python3/awscli/gpg the way a user would).
std::vector<std::string> InheritedEnv(const std::vector<std::string>& extra);

// What RunAndCapture saw: the raw wait status and everything the child wrote on 1 and 2.
struct CapturedRun {
  int wait_status = 0;  // use WIFEXITED / WEXITSTATUS
  std::string out;
  std::string err;
  bool exited_zero() const;
};

// Spawns argv (as Spawn does), writes `input` to the child's descriptor input_fd (0 = stdin;
// gpg takes a passphrase on 3) and closes it, collects stdout and stderr until both close, and
// reaps the child. Descriptors 0..2 not used are /dev/null. A child that stops reading early
// leaves the rest of input unwritten (no SIGPIPE). Errors: those of Spawn, and
// kInvalidArgument for input_fd 1 or 2.
Result<CapturedRun> RunAndCapture(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, std::string_view input,
                                  int input_fd = 0);

}  // namespace grin
