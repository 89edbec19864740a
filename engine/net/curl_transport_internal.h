#pragma once
// Internals of CurlTransport shared by curl_transport.cc (setup, libcurl callbacks) and
// curl_transport_loop.cc (event loop, completion, counters). Not part of the public API.

#include <curl/curl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/base/unique_fd.h"
#include "engine/net/curl_handles.h"
#include "engine/net/curl_transport.h"
#include "engine/net/rate_limiter.h"

namespace grin::net {
namespace internal {

inline int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace internal

using internal::SteadyMicros;

struct Transfer;

// Per-host state, loop thread only (except `counters`, under Impl::stats_mu_).
struct HostState {
  HostLimits limits;
  TokenBucket requests, down, up;
  Aimd aimd;
  RetryBudget budget;
  int max_in_flight = 1;
  int in_flight = 0;
  std::deque<RequestId> queue;         // admitted in order
  std::vector<RequestId> rate_paused;  // paused by a byte bucket; unpaused by the loop

  // max_flight: the transport's in-flight cap per host; pooled: it counts connections (HTTP/1.1),
  // so HostLimits::max_connections may lower it.
  HostState(const HostLimits& l, int max_flight, bool pooled, int budget_capacity, int64_t now)
      : aimd(max_flight),
        budget(budget_capacity > 0 ? budget_capacity : 1 << 30),
        max_in_flight(max_flight),
        transport_cap_(max_flight),
        pooled_(pooled) {
    Configure(l, now);
  }
  void Configure(const HostLimits& l, int64_t now) {
    limits = l;
    max_in_flight = pooled_ && l.max_connections > 0 ? std::min(l.max_connections, transport_cap_)
                                                     : transport_cap_;
    aimd.SetMax(max_in_flight);
    const double b = std::max(0.05, l.burst_seconds);
    requests = TokenBucket(l.requests_per_second, std::max(1.0, l.requests_per_second * b), now);
    down =
        TokenBucket(l.bytes_per_second_down, std::max(65536.0, l.bytes_per_second_down * b), now);
    up = TokenBucket(l.bytes_per_second_up, std::max(65536.0, l.bytes_per_second_up * b), now);
  }
  // SetHostRequestRate(…, 0): a rate so low nothing is admitted (0 itself means no limit).
  static constexpr double kPausedRate = 1e-9;
  // Changes the request rate keeping the bucket's balance; 0 = paused (balance dropped),
  // +infinity = no limit.
  void SetRequestRate(double rps, int64_t now) {
    if (std::isinf(rps)) {
      limits.requests_per_second = 0;
      return;
    }
    limits.requests_per_second = rps > 0 ? rps : kPausedRate;
    requests.SetRate(RequestRate(), now);
    if (rps <= 0) {
      const double left = requests.Available(now);
      if (left > 0) requests.Take(left, now);
    }
  }
  int InFlightLimit() const {
    return limits.adaptive ? std::min(max_in_flight, aimd.limit()) : max_in_flight;
  }
  double RequestRate() const {
    if (limits.requests_per_second <= 0) return 0;
    return limits.requests_per_second * (limits.adaptive ? aimd.rate_factor() : 1.0);
  }

 private:
  int transport_cap_;
  bool pooled_;
};

struct Transfer {
  enum class State { kQueued, kBackoff, kActive };
  RequestId id = 0;
  Request req;
  CompletionFn done;
  CurlTransport::Impl* impl = nullptr;
  std::string host_key;
  HostState* host = nullptr;
  State state = State::kQueued;
  int attempt = 0;
  int64_t submit_us = 0;
  int64_t first_start_us = -1;
  int64_t retry_at_us = 0;
  int total_new_connections = 0;
  std::string tls_cipher;  // this attempt's connection's TLS suite, read at its status line
  CurlEasy easy;
  CurlSlist header_list;
  char errbuf[CURL_ERROR_SIZE] = {0};
  Response resp;
  // Body source state.
  UniqueFd in_fd;
  int64_t in_pos = 0, in_end = 0;
  // Sink state.
  UniqueFd out_fd;
  int64_t out_pos = 0;
  int64_t delivered = 0;  // body bytes handed to the sink this attempt
  bool sink_used_unrewindable = false;
  bool sink_started = false;  // ResponseSink::on_start was called this attempt
  Status local_error;  // set by a callback that failed the attempt
  bool rate_paused = false;
  bool counted = false;  // the final attempt was counted in HostCounters::requests
};

class CurlTransport::Impl {
 public:
  explicit Impl(TransportOptions o) : opts_(std::move(o)) {
    log_ = opts_.logger ? opts_.logger : NullLogger::Default();
    clock_ = opts_.clock ? opts_.clock : SystemClock::Default();
  }
  ~Impl() {
    Shutdown();
    // Handles go before the global cleanup that balances Init's curl_global_init (reference
    // counted by libcurl, so other users of libcurl in the process are unaffected).
    pool_.clear();
    multi_.reset();
    share_.reset();
    if (global_init_) curl_global_cleanup();
  }

  Status Init();
  RequestId Submit(Request request, CompletionFn done);
  void Post(RequestId id, bool cancel);
  void PostCancelAll();  // CancelAll()
  std::vector<HostCounters> Stats() const;
  void Shutdown();
  void SetHostLimits(const std::string& host, const HostLimits& l);
  void SetHostRequestRate(const std::string& host, double rps);
  uint64_t iterations() const { return iterations_.load(); }

  // libcurl callbacks (loop thread).
  static size_t OnHeader(char* data, size_t size, size_t n, void* user);
  static size_t OnWrite(char* data, size_t size, size_t n, void* user);
  static size_t OnRead(char* buf, size_t size, size_t n, void* user);
  static int OnSeek(void* user, curl_off_t offset, int origin);

 private:
  void Loop();
  void DrainInbox(bool* stop);
  void Admit(int64_t now);
  void StartAttempt(Transfer* t, int64_t now);
  Status SetupEasy(Transfer* t);
  void OnDone(CURL* easy, CURLcode code);
  void Complete(Transfer* t, Status status);
  void ReleaseEasy(Transfer* t);
  void RunTimers(int64_t now, int64_t* next_us);
  HostState* Host(const std::string& key, int64_t now);
  void Count(Transfer* t, bool final, bool retried, bool throttled, const int64_t times[6],
             long nconn, int64_t down, int64_t up);

  TransportOptions opts_;
  Logger* log_;
  Clock* clock_;
  bool global_init_ = false;
  CurlShare share_;
  CurlMulti multi_;
  std::vector<CurlEasy> pool_;
  std::thread thread_;
  std::thread::id loop_id_;
  std::atomic<uint64_t> iterations_{0};
  std::atomic<uint64_t> next_id_{1};

  // Shared with other threads.
  std::mutex mu_;
  bool stopping_ = false;
  bool joined_ = false;
  std::vector<std::unique_ptr<Transfer>> inbox_;
  std::vector<std::pair<RequestId, bool>> signals_;  // (id, cancel?) else resume
  bool cancel_all_ = false;                           // CancelAll() since the last DrainInbox
  std::vector<std::pair<std::string, HostLimits>> limit_updates_;
  std::vector<std::pair<std::string, double>> rate_updates_;  // SetHostRequestRate, in order
  std::map<std::string, HostLimits> host_limits_;  // configured overrides

  mutable std::mutex stats_mu_;
  std::map<std::string, HostCounters> counters_;

  // Loop thread only.
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> transfers_;
  std::map<std::string, std::unique_ptr<HostState>> hosts_;
  std::multimap<int64_t, RequestId> backoff_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace grin::net
