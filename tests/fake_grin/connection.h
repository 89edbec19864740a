#pragma once
// Per-connection facts and abortive closes for the fake GRIN server's transport faults
// (faults.h: "reset" on keep-alive reuse, "truncate" with close_mode rst).
//
// ConnectionTracker numbers the requests of each connection (1 = the first). Over TLS the count
// lives in the connection's SSL object (ex_data), so it is exact; over plain HTTP it is keyed by
// the peer's port, so a port the kernel reuses later continues the old count (tests use TLS).
//
// AbortConnection resets a connection without closing its descriptor (the server still owns and
// closes it): connect(AF_UNSPEC) makes the kernel send RST and drop the socket's state, so the
// peer sees "connection reset" and the server's later writes fail with EPIPE. SIGPIPE must be
// blocked on the threads that write (BlockSigpipeOnThisThread, before the worker pool starts).
//
// Thread safety: ConnectionTracker may be used from any thread; a connection's requests are
// sequential, which is what makes its count race-free.

#include <httplib.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace grin::fake {

class ConnectionTracker {
 public:
  // The request's 1-based number on its connection. *is_new is set for the first, and
  // *resumed when that connection's TLS session was resumed.
  int64_t Next(const httplib::Request& req, bool* is_new, bool* resumed);

 private:
  std::mutex mu_;
  std::unordered_map<int, int64_t> plain_;  // remote port -> requests so far (plain HTTP)
};

// The socket descriptor serving `req`, or -1 if it cannot be found.
int ConnectionFd(const httplib::Request& req);

// Resets the connection (RST). With drain_ms > 0, first waits up to that long for the bytes
// already written to leave the send queue, so the peer receives them before the reset.
void AbortConnection(int fd, int drain_ms);

void BlockSigpipeOnThisThread();

}  // namespace grin::fake
