#include "engine/net/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

namespace grin::net {

std::string_view RetryClassName(RetryClass c) {
  switch (c) {
    case RetryClass::kSuccess:
      return "success";
    case RetryClass::kRetryable:
      return "retryable";
    case RetryClass::kTimeout:
      return "timeout";
    case RetryClass::kThrottled:
      return "throttled";
    case RetryClass::kPermanent:
      return "permanent";
  }
  return "permanent";
}

RetryClass ClassifyAttempt(int curl_code, int http_status) {
  if (curl_code != CURLE_OK) {
    switch (static_cast<CURLcode>(curl_code)) {
      case CURLE_OPERATION_TIMEDOUT:
        return RetryClass::kTimeout;
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_CONNECT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_SSL_CONNECT_ERROR:  // a reset during the handshake; verification is 60, below
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_SEND_FAIL_REWIND:
        return RetryClass::kRetryable;
      default:
        // CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_URL_MALFORMAT,
        // CURLE_UNSUPPORTED_PROTOCOL, callback aborts, file errors...: retrying cannot help.
        return RetryClass::kPermanent;
    }
  }
  if (http_status == 429 || http_status == 503) return RetryClass::kThrottled;
  if (http_status == 408 || http_status >= 500) return RetryClass::kRetryable;
  if (http_status >= 400) return RetryClass::kPermanent;
  if (http_status == 0) return RetryClass::kRetryable;  // no status line: nothing arrived
  return RetryClass::kSuccess;
}

std::optional<int64_t> ParseRetryAfterMs(std::string_view value, int64_t now_micros) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) return std::nullopt;  // > 31 years: malformed for our purposes
    int64_t seconds = std::stoll(std::string(value));
    return seconds * 1000;
  }
  // HTTP-date. curl_getdate parses IMF-fixdate, RFC 850 and asctime forms without reading the
  // clock when the date is absolute (its `now` argument is only for relative forms).
  if (value.size() > 64) return std::nullopt;
  std::string s(value);
  time_t t = curl_getdate(s.c_str(), nullptr);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  int64_t delta = static_cast<int64_t>(t) * 1000 - now_micros / 1000;
  return std::max<int64_t>(0, delta);
}

int64_t BackoffDelayMs(const RetryOptions& options, int attempt, bool throttled, double u) {
  const int64_t base = throttled ? options.throttle_base_delay_ms : options.base_delay_ms;
  const int shift = std::clamp(attempt - 1, 0, 30);
  double cap = std::min(static_cast<double>(options.max_delay_ms),
                        static_cast<double>(base) * std::ldexp(1.0, shift));
  u = std::clamp(u, 0.0, 1.0);
  return static_cast<int64_t>(u * cap);
}

bool RetryBudget::TryAcquire(bool after_timeout) {
  std::lock_guard<std::mutex> l(mu_);
  const int cost = after_timeout ? timeout_cost_ : retry_cost_;
  if (tokens_ < cost) return false;
  tokens_ -= cost;
  return true;
}

void RetryBudget::OnSuccess() {
  std::lock_guard<std::mutex> l(mu_);
  tokens_ = std::min(capacity_, tokens_ + refund_);
}

int RetryBudget::available() const {
  std::lock_guard<std::mutex> l(mu_);
  return tokens_;
}

RetryDecision DecideRetry(const RetryOptions& options, int attempt, int curl_code, int http_status,
                          std::optional<std::string_view> retry_after, int64_t now_micros, double u,
                          RetryBudget* budget) {
  RetryDecision d;
  d.klass = ClassifyAttempt(curl_code, http_status);
  const std::string what = curl_code != 0 ? "curl error " + std::to_string(curl_code)
                                          : "http " + std::to_string(http_status);
  if (d.klass == RetryClass::kSuccess) {
    d.reason = "success";
    return d;
  }
  if (d.klass == RetryClass::kPermanent) {
    d.reason = what + " is permanent";
    return d;
  }
  if (attempt >= options.max_attempts) {
    d.reason = what + ", max attempts (" + std::to_string(options.max_attempts) + ") reached";
    return d;
  }
  const bool throttled = d.klass == RetryClass::kThrottled;
  int64_t delay = BackoffDelayMs(options, attempt, throttled, u);
  std::string why = what + ", backoff";
  if (retry_after && (throttled || http_status == 408 || http_status >= 500)) {
    std::optional<int64_t> ra = ParseRetryAfterMs(*retry_after, now_micros);
    if (ra) {
      if (*ra > options.max_retry_after_ms) {
        d.reason = what + ", retry-after " + std::to_string(*ra) + " ms exceeds the limit";
        return d;
      }
      delay = *ra;
      why = what + ", retry-after";
    }
  }
  if (budget != nullptr && !budget->TryAcquire(d.klass == RetryClass::kTimeout)) {
    d.reason = what + ", retry budget exhausted";
    return d;
  }
  d.retry = true;
  d.delay_ms = delay;
  d.reason = why + " " + std::to_string(delay) + " ms";
  return d;
}

RetryClass ClassifyBookFailure(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kBusy:
    case StatusCode::kResourceExhausted:
    case StatusCode::kCancelled:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return RetryClass::kRetryable;
    default:
      return RetryClass::kPermanent;
  }
}

}  // namespace grin::net
