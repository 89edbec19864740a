#include "engine/net/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace grin::net {

TokenBucket::TokenBucket(double rate_per_second, double capacity, int64_t now_us)
    : rate_(rate_per_second), capacity_(capacity), tokens_(capacity), last_us_(now_us) {}

void TokenBucket::Refill(int64_t now_us) {
  if (now_us > last_us_) {
    tokens_ = std::min(capacity_, tokens_ + rate_ * static_cast<double>(now_us - last_us_) / 1e6);
    last_us_ = now_us;
  }
}

void TokenBucket::SetRate(double rate_per_second, int64_t now_us) {
  Refill(now_us);
  rate_ = rate_per_second;
  tokens_ = std::min(tokens_, capacity_);
}

double TokenBucket::Available(int64_t now_us) {
  if (unlimited()) return 1e18;
  Refill(now_us);
  return tokens_;
}

void TokenBucket::Take(double n, int64_t now_us) {
  if (unlimited()) return;
  Refill(now_us);
  tokens_ -= n;
}

int64_t TokenBucket::MicrosUntil(double n, int64_t now_us) {
  if (unlimited()) return 0;
  Refill(now_us);
  if (tokens_ >= n) return 0;
  return static_cast<int64_t>(std::ceil((n - tokens_) / rate_ * 1e6));
}

Aimd::Aimd(int max_limit, int64_t cooldown_us)
    : max_(std::max(1, max_limit)), limit_(max_), cooldown_us_(cooldown_us) {}

void Aimd::SetMax(int max_limit) {
  max_ = std::max(1, max_limit);
  limit_ = std::min(limit_, max_);
}

bool Aimd::OnThrottled(int64_t now_us) {
  if (last_decrease_us_ >= 0 && now_us - last_decrease_us_ < cooldown_us_) return false;
  last_decrease_us_ = now_us;
  limit_ = std::max(1.0, std::floor(limit_ / 2));
  rate_factor_ = std::max(1.0 / 64, rate_factor_ / 2);
  return true;
}

void Aimd::OnSuccess() {
  limit_ = std::min(max_, limit_ + 1.0 / limit_);
  rate_factor_ = std::min(1.0, rate_factor_ + 0.05 / limit_);
}

}  // namespace grin::net
