#pragma once
// LoopbackServer: an in-process HTTPS server on 127.0.0.1 with an ephemeral port (Debian's
// cpp-httplib 0.11.4 with OpenSSL), for transport integration tests and the benchmark. It counts,
// on the server side, TLS connections accepted, completed handshakes, resumed sessions, requests
// and distinct client ports that sent requests — what the client claims about connection reuse
// is checked against these.
//
// Setup: TCP_NODELAY on (small TLS replies otherwise meet Nagle and
// delayed ACKs), and more worker threads than client connections (each keep-alive connection
// holds a worker). Keep-alive is unlimited in count (httplib's default closes after 5 requests).
//
// Use: construct, register handlers on http(), Start(), use url(); the destructor stops it.
// Handlers must return within a bounded time (stopping() tells long ones to give up).

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "tests/net/test_pki.h"

namespace grin::net::testing {

class LoopbackServer {
 public:
  // max_tls_version: an OpenSSL version constant (TLS1_2_VERSION) to cap the protocol; 0: none.
  LoopbackServer(const TestPki& pki, int worker_threads = 32, int max_tls_version = 0);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  httplib::Server& http() { return *server_; }
  // Binds 127.0.0.1:0 and starts serving; false on failure.
  bool Start();
  void Stop();
  bool stopping() const { return stopping_.load(); }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  uint64_t tls_connections() const { return tls_connections_.load(); }
  uint64_t handshakes() const { return handshakes_.load(); }
  uint64_t resumed() const { return resumed_.load(); }
  uint64_t requests() const { return requests_.load(); }
  uint64_t distinct_client_ports() const;

 private:
  static void InfoCallback(const SSL* ssl, int where, int ret);

  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> tls_connections_{0}, handshakes_{0}, resumed_{0}, requests_{0};
  mutable std::mutex mu_;
  std::set<int> ports_;
};

}  // namespace grin::net::testing
