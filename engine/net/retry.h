#pragma once
// Retry policy: pure functions deciding whether and when an HTTP attempt is tried again. No
// clock, no randomness and no I/O inside: the caller passes the time and a uniform random number,
// so every decision is reproducible in a test. This is the transport's one retry decision point.
//
// Classification:
//   - retryable: connection-level curl errors (connect, resolve, send, recv, got nothing,
//     partial body, TLS connect reset, HTTP/2 stream errors), timeouts, HTTP 408, 5xx;
//   - throttled (retryable, longer base delay, slows the host down): HTTP 429 and 503;
//   - permanent: other 4xx, TLS verification failures, bad URLs, local errors (file, callback).
// Backoff: full jitter, delay = u * min(max_delay, base * 2^(attempt-1)), u in [0, 1).
// Retry-After (seconds or HTTP-date) replaces the backoff when present on 429/503, capped by
// max_retry_after_ms: a longer wait gives up instead (the caller reschedules the job).
// A RetryBudget (AWS "standard" mode quota) bounds retries when an endpoint is failing, so a
// dead server does not turn every request into max_attempts requests.
//
// Thread safety: the functions are pure; RetryBudget is internally synchronised.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace grin::net {

struct RetryOptions {
  int max_attempts = 4;                  // including the first; 1 disables retries
  int64_t base_delay_ms = 100;           // transient errors
  int64_t throttle_base_delay_ms = 500;  // 429 / 503
  int64_t max_delay_ms = 20'000;         // cap of the exponential part
  int64_t max_retry_after_ms = 120'000;  // a longer Retry-After gives up instead of waiting
};

enum class RetryClass { kSuccess, kRetryable, kTimeout, kThrottled, kPermanent };
std::string_view RetryClassName(RetryClass c);

// Classifies one attempt. `curl_code` is the CURLcode (0 = a complete response arrived), and
// `http_status` the response status (0 if none). 2xx/3xx with curl_code 0 is kSuccess.
RetryClass ClassifyAttempt(int curl_code, int http_status);

// Parses a Retry-After value: delay-seconds ("120") or an IMF-fixdate / RFC 850 / asctime
// HTTP-date, relative to `now_micros` (Unix epoch). Returns the delay in ms (0 for dates in the
// past), or nullopt if the value is malformed.
std::optional<int64_t> ParseRetryAfterMs(std::string_view value, int64_t now_micros);

// Full-jitter backoff after failed attempt number `attempt` (1-based). `u` in [0, 1).
int64_t BackoffDelayMs(const RetryOptions& options, int attempt, bool throttled, double u);

// A retry quota shared by the requests to one host: starts full, each retry takes `retry_cost`
// (`timeout_cost` after a timeout), each success gives back `success_refund` up to capacity.
class RetryBudget {
 public:
  explicit RetryBudget(int capacity = 500, int retry_cost = 5, int timeout_cost = 10,
                       int success_refund = 1)
      : capacity_(capacity),
        retry_cost_(retry_cost),
        timeout_cost_(timeout_cost),
        refund_(success_refund),
        tokens_(capacity) {}

  // Takes the cost of one retry; false (and nothing taken) if the quota is exhausted.
  bool TryAcquire(bool after_timeout);
  void OnSuccess();
  int available() const;

 private:
  const int capacity_, retry_cost_, timeout_cost_, refund_;
  mutable std::mutex mu_;
  int tokens_;
};

struct RetryDecision {
  bool retry = false;
  int64_t delay_ms = 0;
  RetryClass klass = RetryClass::kPermanent;
  std::string reason;  // e.g. "http 503, retry-after 2000 ms" or "max attempts reached"
};

// Decides what to do after attempt number `attempt` (1-based) ended with (curl_code, http_status).
// `retry_after` is the raw Retry-After header, if any. `budget` may be null (no quota). Never
// retries a kSuccess or kPermanent outcome. Takes from the budget only when it decides to retry.
RetryDecision DecideRetry(const RetryOptions& options, int attempt, int curl_code, int http_status,
                          std::optional<std::string_view> retry_after, int64_t now_micros, double u,
                          RetryBudget* budget);

}  // namespace grin::net
