#include "engine/base/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern char** environ;

namespace grin {

namespace {

// Moves fd to a number >= 10, close-on-exec.
Result<UniqueFd> HighFd(int fd) {
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  int saved = errno;
  ::close(fd);
  if (high < 0) return Status::Internal(std::string("fcntl(F_DUPFD_CLOEXEC): ") + strerror(saved));
  return UniqueFd(high);
}

// posix_spawn file actions / attributes with RAII.
struct SpawnActions {
  posix_spawn_file_actions_t fa;
  SpawnActions() { posix_spawn_file_actions_init(&fa); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&fa); }
};
struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};

}  // namespace

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), fds_(std::move(o.fds_)) {}

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    Kill();
    pid_ = std::exchange(o.pid_, -1);
    fds_ = std::move(o.fds_);
  }
  return *this;
}

Subprocess::~Subprocess() { Kill(); }

Result<Subprocess> Subprocess::Spawn(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env,
                                     const std::vector<ChildPipe>& pipes) {
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  std::string program = FindInPath(argv[0]);
  if (program.empty()) return Status::NotFound("program not found in PATH: " + argv[0]);

  Subprocess p;
  std::vector<UniqueFd> child_ends;
  for (const ChildPipe& cp : pipes) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return Status::ResourceExhausted(std::string("pipe2: ") + strerror(errno));
    }
    if (cp.capacity > 0) {
      // Best effort: an unprivileged process may not get the full size.
      ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(cp.capacity));
    }
    GRIN_ASSIGN_OR_RETURN(UniqueFd r, HighFd(fds[0]));
    GRIN_ASSIGN_OR_RETURN(UniqueFd w, HighFd(fds[1]));
    UniqueFd& parent = cp.dir == PipeDir::kChildReads ? w : r;
    ::fcntl(parent.get(), F_SETFL, ::fcntl(parent.get(), F_GETFL) | O_NONBLOCK);
    p.fds_.push_back(std::move(parent));
    child_ends.push_back(std::move(cp.dir == PipeDir::kChildReads ? r : w));
  }

  SpawnActions actions;
  bool mapped[3] = {false, false, false};
  for (size_t i = 0; i < pipes.size(); ++i) {
    posix_spawn_file_actions_adddup2(&actions.fa, child_ends[i].get(), pipes[i].child_fd);
    if (pipes[i].child_fd >= 0 && pipes[i].child_fd < 3) mapped[pipes[i].child_fd] = true;
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (!mapped[fd]) {
      posix_spawn_file_actions_addopen(&actions.fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY,
                                       0);
    }
  }
  SpawnAttr attr;
  sigset_t empty, def;
  sigemptyset(&empty);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&attr.attr, &empty);
  posix_spawnattr_setsigdefault(&attr.attr, &def);
  posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, program.c_str(), &actions.fa, &attr.attr, cargv.data(), cenv.data());
  if (rc != 0) return Status::Internal("posix_spawn " + program + ": " + strerror(rc));
  p.pid_ = pid;
  return p;  // child_ends close here: only the child holds them now
}

Result<int> Subprocess::Wait() {
  if (pid_ < 0) return Status::FailedPrecondition("no child to wait for");
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      pid_ = -1;
      return Status::Internal(std::string("waitpid: ") + strerror(errno));
    }
  }
  pid_ = -1;
  return status;
}

void Subprocess::Kill() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

ScopedSigpipeBlock::ScopedSigpipeBlock() {
  sigset_t pending, block;
  sigemptyset(&pending);
  sigpending(&pending);
  was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old_);
}

ScopedSigpipeBlock::~ScopedSigpipeBlock() {
  if (!was_pending_) {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

Status WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {fd, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    if (w < 0 && errno == EPIPE) return Status::Unavailable("broken pipe");
    return Status::Internal(std::string("write: ") + strerror(errno));
  }
  return Status();
}

std::string FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    // An empty PATH entry means the current directory.
    std::string candidate = end > start ? dirs.substr(start, end - start) : std::string(1, '.');
    candidate.push_back('/');
    candidate.append(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::vector<std::string> MinimalEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  env.push_back("LC_ALL=C");
  for (const auto& e : extra) env.push_back(e);
  return env;
}

std::vector<std::string> InheritedEnv(const std::vector<std::string>& extra) {
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& x : extra) replaced |= name_of(x) == name_of(entry);
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& x : extra) env.push_back(x);
  return env;
}

bool CapturedRun::exited_zero() const {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

Result<CapturedRun> RunAndCapture(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, std::string_view input,
                                  int input_fd) {
  if (input_fd == 1 || input_fd == 2) {
    return Status::InvalidArgument("RunAndCapture: input_fd must not be 1 or 2");
  }
  GRIN_ASSIGN_OR_RETURN(Subprocess child,
                        Subprocess::Spawn(argv, env,
                                          {{input_fd, PipeDir::kChildReads},
                                           {1, PipeDir::kChildWrites},
                                           {2, PipeDir::kChildWrites}}));
  ScopedSigpipeBlock no_sigpipe;
  std::vector<UniqueFd>& fds = child.parent_fds();
  UniqueFd& in = fds[0];
  CapturedRun run;
  std::string* sinks[2] = {&run.out, &run.err};
  size_t written = 0;
  if (input.empty()) in.Reset();
  char buf[65536];
  while (fds[1].valid() || fds[2].valid()) {
    pollfd p[3] = {{fds[1].get(), POLLIN, 0}, {fds[2].get(), POLLIN, 0}, {in.get(), POLLOUT, 0}};
    if (::poll(p, 3, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (!fds[i + 1].valid() || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i + 1].get(), buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        fds[i + 1].Reset();
      }
    }
    if (in.valid() && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written >= input.size()) in.Reset();
    }
  }
  in.Reset();
  GRIN_ASSIGN_OR_RETURN(run.wait_status, child.Wait());
  return run;
}

}  // namespace grin
