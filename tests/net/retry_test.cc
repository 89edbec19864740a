// Pure tests of the retry policy: classification, backoff, Retry-After, budget.

#include "engine/net/retry.h"

#include <curl/curl.h>
#include <doctest/doctest.h>

namespace grin::net {
namespace {

constexpr int64_t kNow = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z in micros

TEST_CASE("ClassifyAttempt: connection errors, timeouts and 408/429/5xx retry, other 4xx do not") {
  CHECK(ClassifyAttempt(CURLE_OK, 200) == RetryClass::kSuccess);
  CHECK(ClassifyAttempt(CURLE_OK, 304) == RetryClass::kSuccess);
  CHECK(ClassifyAttempt(CURLE_COULDNT_CONNECT, 0) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_RECV_ERROR, 0) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_PARTIAL_FILE, 200) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_GOT_NOTHING, 0) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_OPERATION_TIMEDOUT, 0) == RetryClass::kTimeout);
  CHECK(ClassifyAttempt(CURLE_PEER_FAILED_VERIFICATION, 0) == RetryClass::kPermanent);
  CHECK(ClassifyAttempt(CURLE_URL_MALFORMAT, 0) == RetryClass::kPermanent);
  CHECK(ClassifyAttempt(CURLE_WRITE_ERROR, 200) == RetryClass::kPermanent);
  CHECK(ClassifyAttempt(CURLE_OK, 408) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_OK, 429) == RetryClass::kThrottled);
  CHECK(ClassifyAttempt(CURLE_OK, 503) == RetryClass::kThrottled);
  CHECK(ClassifyAttempt(CURLE_OK, 500) == RetryClass::kRetryable);
  CHECK(ClassifyAttempt(CURLE_OK, 504) == RetryClass::kRetryable);
  for (int s : {400, 401, 403, 404, 409, 412, 416}) {
    CAPTURE(s);
    CHECK(ClassifyAttempt(CURLE_OK, s) == RetryClass::kPermanent);
  }
}

TEST_CASE("ClassifyBookFailure: what may pass by itself is retried, the rest is permanent") {
  for (StatusCode c : {StatusCode::kUnavailable, StatusCode::kBusy, StatusCode::kResourceExhausted,
                       StatusCode::kCancelled, StatusCode::kInternal, StatusCode::kDataLoss}) {
    CAPTURE(StatusCodeName(c));
    CHECK(ClassifyBookFailure(Status(c, "x")) == RetryClass::kRetryable);
  }
  for (StatusCode c : {StatusCode::kNotFound, StatusCode::kInvalidArgument,
                       StatusCode::kAlreadyExists, StatusCode::kConflict,
                       StatusCode::kPermissionDenied, StatusCode::kNoSpace,
                       StatusCode::kFailedPrecondition}) {
    CAPTURE(StatusCodeName(c));
    CHECK(ClassifyBookFailure(Status(c, "x")) == RetryClass::kPermanent);
  }
}

TEST_CASE("BackoffDelayMs: full jitter under an exponential cap") {
  RetryOptions o;
  o.base_delay_ms = 100;
  o.throttle_base_delay_ms = 500;
  o.max_delay_ms = 20'000;
  CHECK(BackoffDelayMs(o, 1, false, 0.0) == 0);
  CHECK(BackoffDelayMs(o, 1, false, 0.999) == 99);
  CHECK(BackoffDelayMs(o, 2, false, 0.5) == 100);      // 0.5 * 200
  CHECK(BackoffDelayMs(o, 4, false, 0.5) == 400);      // 0.5 * 800
  CHECK(BackoffDelayMs(o, 3, true, 0.5) == 1000);      // 0.5 * 2000
  CHECK(BackoffDelayMs(o, 20, false, 0.5) == 10'000);  // capped at 20 s
  CHECK(BackoffDelayMs(o, 1000, true, 0.999) <= 20'000);
  // Jitter spreads: different u, different delays, all within [0, cap).
  for (double u = 0; u < 1; u += 0.125) CHECK(BackoffDelayMs(o, 5, false, u) < 1600);
}

TEST_CASE("ParseRetryAfterMs: seconds and the three HTTP-date forms") {
  CHECK(ParseRetryAfterMs("120", kNow) == 120'000);
  CHECK(ParseRetryAfterMs(" 0 ", kNow) == 0);
  CHECK(ParseRetryAfterMs("", kNow) == std::nullopt);
  CHECK(ParseRetryAfterMs("-5", kNow) == std::nullopt);
  CHECK(ParseRetryAfterMs("soon", kNow) == std::nullopt);
  CHECK(ParseRetryAfterMs("9999999999", kNow) == std::nullopt);
  // kNow is Tue, 14 Nov 2023 22:13:20 GMT.
  CHECK(ParseRetryAfterMs("Tue, 14 Nov 2023 22:13:50 GMT", kNow) == 30'000);
  CHECK(ParseRetryAfterMs("Tuesday, 14-Nov-23 22:14:20 GMT", kNow) == 60'000);
  CHECK(ParseRetryAfterMs("Tue Nov 14 22:13:25 2023", kNow) == 5'000);
  CHECK(ParseRetryAfterMs("Tue, 14 Nov 2023 22:00:00 GMT", kNow) == 0);  // past: now
}

TEST_CASE("RetryBudget: retries cost, successes refund, exhaustion refuses") {
  RetryBudget b(20, 5, 10, 1);
  CHECK(b.TryAcquire(false));
  CHECK(b.TryAcquire(true));
  CHECK(b.available() == 5);
  CHECK(b.TryAcquire(false));
  CHECK_FALSE(b.TryAcquire(false));
  CHECK(b.available() == 0);
  for (int i = 0; i < 5; ++i) b.OnSuccess();
  CHECK(b.TryAcquire(false));
  for (int i = 0; i < 100; ++i) b.OnSuccess();
  CHECK(b.available() == 20);  // capped
}

TEST_CASE("DecideRetry: max attempts, permanence, Retry-After and the budget") {
  RetryOptions o;
  o.max_attempts = 3;
  o.max_retry_after_ms = 60'000;
  RetryDecision d = DecideRetry(o, 1, CURLE_OK, 200, std::nullopt, kNow, 0.5, nullptr);
  CHECK_FALSE(d.retry);
  CHECK(d.klass == RetryClass::kSuccess);

  d = DecideRetry(o, 1, CURLE_OK, 404, std::nullopt, kNow, 0.5, nullptr);
  CHECK_FALSE(d.retry);
  CHECK(d.klass == RetryClass::kPermanent);

  d = DecideRetry(o, 1, CURLE_COULDNT_CONNECT, 0, std::nullopt, kNow, 0.5, nullptr);
  CHECK(d.retry);
  CHECK(d.delay_ms == 50);
  d = DecideRetry(o, 3, CURLE_COULDNT_CONNECT, 0, std::nullopt, kNow, 0.5, nullptr);
  CHECK_FALSE(d.retry);
  CHECK(d.reason.find("max attempts") != std::string::npos);

  d = DecideRetry(o, 1, CURLE_OK, 429, std::string_view("7"), kNow, 0.5, nullptr);
  CHECK(d.retry);
  CHECK(d.delay_ms == 7000);
  d = DecideRetry(o, 1, CURLE_OK, 503, std::string_view("Tue, 14 Nov 2023 22:13:22 GMT"), kNow, 0.5,
                  nullptr);
  CHECK(d.retry);
  CHECK(d.delay_ms == 2000);
  d = DecideRetry(o, 1, CURLE_OK, 429, std::string_view("3600"), kNow, 0.5, nullptr);
  CHECK_FALSE(d.retry);  // an hour: give up and let the caller reschedule
  d = DecideRetry(o, 1, CURLE_OK, 429, std::string_view("garbage"), kNow, 0.5, nullptr);
  CHECK(d.retry);
  CHECK(d.delay_ms == 250);  // falls back to the throttle backoff: 0.5 * 500

  // A storm against a dead server: the budget stops retries well before every request retries.
  RetryBudget budget(50, 5, 10, 1);
  int retried = 0;
  for (int i = 0; i < 100; ++i) {
    if (DecideRetry(o, 1, CURLE_COULDNT_CONNECT, 0, std::nullopt, kNow, 0.1, &budget).retry) {
      ++retried;
    }
  }
  CHECK(retried == 10);
  // Non-retryable outcomes never take from the budget.
  RetryBudget b2(10);
  (void)DecideRetry(o, 1, CURLE_OK, 404, std::nullopt, kNow, 0.1, &b2);
  CHECK(b2.available() == 10);
}

}  // namespace
}  // namespace grin::net
