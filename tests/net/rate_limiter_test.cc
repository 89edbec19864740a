// Pure tests of the token bucket and AIMD used for per-host rate control.

#include "engine/net/rate_limiter.h"

#include <doctest/doctest.h>

namespace grin::net {
namespace {

TEST_CASE("TokenBucket: burst, refill, debt and waiting time") {
  TokenBucket b(10, 5, 0);  // 10/s, burst 5
  CHECK(b.Available(0) == doctest::Approx(5));
  for (int i = 0; i < 5; ++i) b.Take(1, 0);
  CHECK(b.Available(0) == doctest::Approx(0));
  CHECK(b.MicrosUntil(1, 0) == 100'000);
  CHECK(b.Available(250'000) == doctest::Approx(2.5));
  CHECK(b.Available(10'000'000) == doctest::Approx(5));  // capped at the burst
  b.Take(20, 10'000'000);                                // overdraw: debt of 15
  CHECK(b.Available(10'000'000) == doctest::Approx(-15));
  CHECK(b.MicrosUntil(1, 10'000'000) == 1'600'000);
  TokenBucket unlimited;
  CHECK(unlimited.unlimited());
  CHECK(unlimited.MicrosUntil(1e9, 0) == 0);
}

TEST_CASE("TokenBucket: rate over a long run matches the configured rate") {
  TokenBucket b(100, 1, 0);
  int64_t t = 0;
  int taken = 0;
  while (t < 10'000'000) {             // 10 s simulated, taking whenever a token is there
    if (b.Available(t) >= 1 - 1e-9) {  // refill sums 0.1 tokens: allow rounding
      b.Take(1, t);
      ++taken;
    }
    t += 1000;
  }
  CHECK(taken >= 999);
  CHECK(taken <= 1001);
}

TEST_CASE("Aimd: halves on throttling once per cool-down, recovers additively") {
  Aimd a(16, 1'000'000);
  CHECK(a.limit() == 16);
  CHECK(a.OnThrottled(0));
  CHECK(a.limit() == 8);
  CHECK_FALSE(a.OnThrottled(500'000));  // same burst
  CHECK(a.limit() == 8);
  CHECK(a.OnThrottled(1'500'000));
  CHECK(a.limit() == 4);
  CHECK(a.rate_factor() == doctest::Approx(0.25));
  for (int i = 0; i < 3; ++i) a.OnThrottled(10'000'000 + i * 2'000'000);
  CHECK(a.limit() == 1);  // never below one
  int successes = 0;
  while (a.limit() < 16 && successes < 10'000) {
    a.OnSuccess();
    ++successes;
  }
  CHECK(a.limit() == 16);
  CHECK(successes > 16);  // additive: about one slot per window, not a jump back
  CHECK(successes < 200);
}

}  // namespace
}  // namespace grin::net
