#pragma once
// CurlTransport: the Transport on one libcurl multi handle driven by one event-loop thread.
//
// Design:
//   - One CURLM owned by one thread; Submit() queues under a mutex and calls curl_multi_wakeup,
//     the one multi call that is safe from any thread. The loop waits in curl_multi_poll.
//   - Easy handles are pooled (curl_easy_reset keeps their caches) and tied to their transfer with
//     CURLOPT_PRIVATE. A share handle carries TLS sessions and DNS between easy handles; only the
//     loop thread touches it, so it needs no locks.
//   - Connection reuse: CURLMOPT_MAX_HOST_CONNECTIONS / MAX_TOTAL_CONNECTIONS cap sockets,
//     CURLMOPT_MAXCONNECTS is set large enough that idle connections are not closed while work
//     remains. The transport also keeps its own per-host admission queue (in-flight limit with
//     AIMD on 429/503, request-rate token bucket), so requests wait in our queue, not libcurl's,
//     and PrepareFn (signing) runs when a request really starts.
//   - Timeouts: connect timeout and a low-speed limit only; no total-time limit, so slow large
//     bodies are fine and stalled ones fail.
//   - TLS peer and host verification are always on; ca_file adds a private CA bundle. There is no
//     insecure mode.
//
// Thread safety: as Transport. Create() may be called from any thread; libcurl's global init is
// done once (thread-safe in Debian's 7.88 build, CURL_VERSION_THREADSAFE).

#include <memory>
#include <string>
#include <vector>

#include "engine/base/clock.h"
#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/net/transport.h"

namespace grin::net {

// Rate limits for one host ("host:port"). 0 means unlimited. Byte limits are enforced by pausing
// transfers (CURL_*FUNC_PAUSE), so they never count against the low-speed limit. A download may
// overdraw the bucket by one receive buffer (libcurl hands a whole buffer to the write callback);
// uploads are cut to what the bucket allows.
struct HostLimits {
  double requests_per_second = 0;
  double bytes_per_second_down = 0;
  double bytes_per_second_up = 0;
  // Seconds of burst the buckets hold (capacity = rate * burst_seconds, at least one request or
  // 64 KiB).
  double burst_seconds = 1.0;
  // Halve the allowed concurrency and request rate on 429/503, add back slowly on successes.
  bool adaptive = true;
  // The host's connection pool: at most this many requests in flight to it, each on its own
  // connection (HTTP/1.1); more wait in the transport's queue for a free one, so new
  // connections (TLS handshakes) to the host stay within the pool for the whole run, however
  // many callers submit at once (e.g. parallel parts of several multipart uploads). A
  // connection is replaced only when the server closes it, a transfer fails or is cancelled
  // (its connection cannot be reused), or it sat idle past max_idle_connection_age_seconds.
  // 0, or more than TransportOptions::max_connections_per_host: that cap. Ignored with http2.
  int max_connections = 0;
};

struct TransportOptions {
  // Connection caps. max_connections_per_host is also the in-flight limit per host unless
  // http2 multiplexing raises it (max_streams_per_host); HostLimits::max_connections lowers it
  // for one host.
  int max_connections_per_host = 8;
  int max_total_connections = 64;
  // HTTP/2 via ALPN with multiplexing; off means HTTP/1.1 only (one request per connection).
  bool http2 = false;
  int max_streams_per_host = 32;  // in-flight limit per host when http2 is on
  // PEM bundle of extra trusted CAs (a private CA). Empty: the system store.
  std::string ca_file;
  int64_t connect_timeout_ms = 15'000;
  // A transfer moving fewer than low_speed_bytes_per_second for low_speed_time_seconds fails with
  // a timeout (a paused transfer is not counted). 0 disables.
  int64_t low_speed_bytes_per_second = 1024;
  int64_t low_speed_time_seconds = 60;
  int64_t tcp_keepalive_idle_seconds = 30;
  int64_t tcp_keepalive_interval_seconds = 15;
  // Idle connections older than this are not reused (0: libcurl's default, 118 s).
  int64_t max_idle_connection_age_seconds = 0;
  // TLS 1.3 cipher suites in order of preference (CURLOPT_TLS13_CIPHERS; empty: OpenSSL's order,
  // AES-256-GCM first). AES-128-GCM first by default: TLS 1.3's mandatory suite, and with AES-NI
  // ~25 % cheaper than AES-256-GCM for both ends of every byte (4.3 vs 3.4 GB/s here).
  std::string tls13_ciphers =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
  // The same preference for TLS 1.2 servers (CURLOPT_SSL_CIPHER_LIST): the AES-128-GCM ECDHE
  // suites, then OpenSSL's DEFAULT list in its own order (empty: DEFAULT alone).
  std::string tls12_ciphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:DEFAULT";
  // Receive buffer per transfer (CURLOPT_BUFFERSIZE) and upload buffer.
  long receive_buffer_bytes = 256 * 1024;
  long upload_buffer_bytes = 512 * 1024;
  // Never reuse a connection (benchmark baseline).
  bool forbid_reuse = false;
  std::string user_agent = "grin-jobs/0.1";
  RetryOptions retry;
  HostLimits default_host_limits;
  // Retry quota per host (RetryBudget): capacity, 0 disables the budget.
  int retry_budget_capacity = 500;
  Logger* logger = nullptr;  // not owned; null = NullLogger
  Clock* clock = nullptr;    // not owned; null = SystemClock (Retry-After dates, stats)
};

class CurlTransport final : public Transport {
 public:
  // Starts the event-loop thread. Fails (InvalidArgument) on nonsensical options or a missing
  // ca_file, (Internal) if libcurl cannot be initialised.
  static Result<std::unique_ptr<CurlTransport>> Create(TransportOptions options);

  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  RequestId Submit(Request request, CompletionFn done) override;
  void Cancel(RequestId id) override;
  void CancelAll() override;
  void Resume(RequestId id) override;
  std::vector<HostCounters> HostStats() const override;
  void Shutdown() override;

  // Replaces the limits of one host ("host:port", e.g. "books.google.com:443"); takes effect for
  // requests started afterwards. Thread-safe.
  void SetHostLimits(const std::string& host_port, const HostLimits& limits);
  // Changes only the request rate of one host, keeping what its bucket holds (SetHostLimits
  // starts a fresh, full bucket): for a rate that moves while requests flow, e.g. this process's
  // share of a rate several processes split (engine/pipeline/shared_limits.h). > 0: that rate;
  // 0: no new requests until raised (what the bucket held is dropped); +infinity: no limit.
  // Thread-safe; the loop is woken and applies it at once (a request it admits meanwhile goes
  // by the old rate). A later SetHostLimits for the host replaces it.
  void SetHostRequestRate(const std::string& host_port, double requests_per_second);

  // How many times the loop thread has woken up (tests: wakeups are prompt, not busy loops).
  uint64_t LoopIterations() const;

  class Impl;  // engine/net/curl_transport.cc

 private:
  explicit CurlTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The "host:port" key the transport files a URL's requests under (SetHostLimits, HostStats):
// curl's own parse, the scheme's default port filled in, user info and path dropped.
// kInvalidArgument naming the URL if curl cannot parse it or it has no host.
Result<std::string> HostKeyOf(const std::string& url);

}  // namespace grin::net
