#pragma once
// MetricsServer: serves a Metrics registry (engine/base/metrics.h) over plain HTTP for
// Prometheus: GET /metrics answers the text exposition format (version 0.0.4); anything else is
// 404 (405 for a method other than GET or HEAD). One blocking accept loop on its own thread,
// one connection at a time, each closed after its answer (a client that sends nothing for 5 s
// is dropped). No TLS, no authentication: it binds to loopback unless told otherwise.
//
// Thread safety: Start and the destructor from one thread; port() and url() from any.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "engine/base/metrics.h"
#include "engine/base/result.h"

namespace grin::cli {

struct MetricsListenOptions {
  // "PORT", "HOST:PORT" or "[IPv6]:PORT"; HOST is a numeric address or "localhost" (no name
  // lookup). Port 0 picks a free port (see port()). Default host: 127.0.0.1.
  std::string address;
  // Required for an address that is not loopback (127.0.0.0/8, ::1), e.g. 0.0.0.0.
  bool allow_remote = false;
  // When the server is destroyed it keeps serving this long first (so a last scrape sees the
  // final values), or until *stop becomes non-zero.
  double linger_seconds = 0;
  const std::atomic<int>* stop = nullptr;
  // Called once when the linger starts (e.g. to flush what the command printed).
  std::function<void()> on_linger;
};

// Checks the address's form and the loopback rule without binding: InvalidArgument with the
// option named otherwise.
Status ValidateMetricsAddress(const std::string& address, bool allow_remote);

class MetricsServer {
 public:
  // Binds and starts serving `metrics` (not owned; must outlive the server). InvalidArgument for
  // a malformed or non-loopback address (without allow_remote); Unavailable if the bind fails
  // (the port is taken, say).
  static Result<std::unique_ptr<MetricsServer>> Start(const MetricsListenOptions& options,
                                                      Metrics* metrics);
  ~MetricsServer();  // lingers (see MetricsListenOptions), then stops and joins the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // http://HOST:PORT/metrics

 private:
  MetricsServer() = default;
  void Loop();
  void Serve(int fd);

  Metrics* metrics_ = nullptr;
  MetricsListenOptions options_;
  std::string host_;  // as bound (numeric)
  bool ipv6_ = false;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};  // a pipe: written to stop the loop
  std::thread thread_;
};

}  // namespace grin::cli
