#pragma once
// Per-host rate control, as pure classes that take the time as an argument (tests drive them
// with made-up timestamps; the transport passes a steady clock in microseconds).
//
//   TokenBucket  requests/s or bytes/s with a burst capacity. Take() may overdraw (a 16 KiB write
//                is accepted whole when any token is left); the debt delays the next one.
//   Aimd         additive-increase / multiplicative-decrease of a host's allowed concurrency and
//                request rate: halve on 429/503 (at most once per cool-down, so one burst of
//                throttled replies counts once), creep back by one slot per window of successes.
//
// Thread safety: none; the transport uses them from its loop thread only.

#include <cstdint>

namespace grin::net {

class TokenBucket {
 public:
  TokenBucket() = default;
  // rate <= 0 means unlimited. The bucket starts full.
  TokenBucket(double rate_per_second, double capacity, int64_t now_us);

  bool unlimited() const { return rate_ <= 0; }
  double rate() const { return rate_; }
  // Changes the refill rate, keeping the current balance (clamped to the capacity).
  void SetRate(double rate_per_second, int64_t now_us);
  // Tokens available now (negative while in debt). Unlimited buckets report a large number.
  double Available(int64_t now_us);
  void Take(double n, int64_t now_us);
  // Microseconds until at least `n` tokens are available (0 if already; never negative).
  int64_t MicrosUntil(double n, int64_t now_us);

 private:
  void Refill(int64_t now_us);
  double rate_ = 0;
  double capacity_ = 0;
  double tokens_ = 0;
  int64_t last_us_ = 0;
};

class Aimd {
 public:
  // `max_limit`: the ceiling (and the start). `cooldown_us`: minimum time between two decreases.
  explicit Aimd(int max_limit = 8, int64_t cooldown_us = 1'000'000);

  // The in-flight limit now allowed, in [1, max_limit].
  int limit() const { return static_cast<int>(limit_); }
  // Factor in (0, 1] to apply to a configured request rate.
  double rate_factor() const { return rate_factor_; }
  void SetMax(int max_limit);

  // A 429/503 reply: halve (once per cool-down). Returns true if it decreased.
  bool OnThrottled(int64_t now_us);
  // A reply that was not throttled: +1/limit slot (about +1 per window of `limit` successes) and
  // +5 % of the rate factor per window.
  void OnSuccess();

 private:
  double max_;
  double limit_;
  double rate_factor_ = 1.0;
  int64_t cooldown_us_;
  int64_t last_decrease_us_ = -1;
};

}  // namespace grin::net
