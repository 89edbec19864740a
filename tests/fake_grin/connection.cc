#include "tests/fake_grin/connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace grin::fake {
namespace {

int SslExIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

int PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

}  // namespace

int64_t ConnectionTracker::Next(const httplib::Request& req, bool* is_new, bool* resumed) {
  *resumed = false;
  if (req.ssl != nullptr) {
    // The SSL object belongs to this connection alone; the count is stored in it as an integer.
    SSL* ssl = const_cast<SSL*>(req.ssl);
    const int64_t n = reinterpret_cast<intptr_t>(SSL_get_ex_data(ssl, SslExIndex())) + 1;
    SSL_set_ex_data(ssl, SslExIndex(), reinterpret_cast<void*>(static_cast<intptr_t>(n)));
    *is_new = n == 1;
    *resumed = *is_new && SSL_session_reused(ssl) == 1;
    return n;
  }
  std::lock_guard<std::mutex> l(mu_);
  const int64_t n = ++plain_[req.remote_port];
  *is_new = n == 1;
  return n;
}

int ConnectionFd(const httplib::Request& req) {
  if (req.ssl != nullptr) return SSL_get_fd(req.ssl);
  // Plain HTTP: find the socket whose local and peer ports are this request's.
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) {
      continue;
    }
    if (PortOf(local) == req.local_port && PortOf(peer) == req.remote_port) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(d);
  return found;
}

void AbortConnection(int fd, int drain_ms) {
  if (fd < 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
  int queued = 0;
  while (drain_ms > 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  (void)connect(fd, &unspec, sizeof unspec);  // TCP: tcp_disconnect, which sends RST
}

void BlockSigpipeOnThisThread() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

}  // namespace grin::fake
