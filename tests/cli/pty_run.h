#pragma once
// Runs a program on a fresh pseudo-terminal of a given size (forkpty) and collects everything it
// wrote to the terminal, for tests of what an operator sees.

#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

extern char** environ;

namespace grin::testing {

struct PtyRun {
  int code = -1;       // exit code, or 128 + signal
  std::string output;  // the bytes written to the terminal
};

// argv[0] is a path. `env` entries ("K=V") are added to (or replace) the test's environment;
// "K=" with an empty value removes K. `on_output` (optional) sees the output so far after every
// read and may act on the terminal's master fd (e.g. resize it).
inline PtyRun RunOnPty(const std::vector<std::string>& args, int cols, int rows,
                       const std::vector<std::string>& env, int timeout_s = 120,
                       const std::function<void(int master, const std::string&)>& on_output = {}) {
  // Everything the child needs is prepared before fork (the test process has threads).
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const auto& o : env) {
      if (kv.compare(0, o.find('=') + 1, o, 0, o.find('=') + 1) == 0) replaced = true;
    }
    if (!replaced) envs.push_back(kv);
  }
  for (const auto& o : env) {
    if (o.back() != '=') envs.push_back(o);
  }
  std::vector<char*> argv, envp;
  std::vector<std::string> a = args;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : envs) envp.push_back(s.data());
  envp.push_back(nullptr);

  struct winsize ws{};
  ws.ws_col = static_cast<unsigned short>(cols);
  ws.ws_row = static_cast<unsigned short>(rows);
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  PtyRun r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  char buf[4096];
  for (;;) {
    pollfd pfd{master, POLLIN, 0};
    int n = poll(&pfd, 1, 200);
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      FAIL("the program on the pty did not finish within " << timeout_s << " s; output so far:\n"
                                                           << r.output);
    }
    if (n <= 0) continue;
    ssize_t got = read(master, buf, sizeof buf);
    if (got > 0) {
      r.output.append(buf, static_cast<size_t>(got));
      if (on_output) on_output(master, r.output);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    break;  // EIO: the child side is closed
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  close(master);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace grin::testing
