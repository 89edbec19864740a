// CurlTransport's event loop: admission, timers, completion, retries and counters. Setup of easy
// handles and the libcurl callbacks are in curl_transport.cc.

#include <strings.h>

#include <algorithm>

#include "engine/net/curl_transport_internal.h"

namespace grin::net {
namespace {

constexpr int64_t kIdleWaitUs = 5'000'000;  // poll bound when nothing is due; wakeups cut it short

// Maps a failed attempt to a Status whose message says what went wrong (never the URL's query).
Status TransportError(CURLcode code, const Transfer& t) {
  std::string detail = t.errbuf[0] ? std::string(t.errbuf) : std::string(curl_easy_strerror(code));
  std::string where = " (" + t.host_key + ")";
  switch (code) {
    case CURLE_PARTIAL_FILE:
      return Status::DataLoss("response body truncated: " + detail + where);
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Unavailable("timeout: " + detail + where);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
      return Status::FailedPrecondition(std::string(kTlsUntrustedText) + ": " + detail + where +
                                        "; for a private CA set the CA file (--ca-file)");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument("bad URL: " + detail);
    default:
      return Status::Unavailable(std::string(curl_easy_strerror(code)) + ": " + detail + where);
  }
}

}  // namespace

void CurlTransport::Impl::Loop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    loop_id_ = std::this_thread::get_id();
  }
  bool stop = false;
  while (true) {
    iterations_.fetch_add(1, std::memory_order_relaxed);
    DrainInbox(&stop);
    if (stop) break;
    int64_t now = SteadyMicros();
    int64_t next = now + kIdleWaitUs;
    RunTimers(now, &next);
    Admit(now);
    int running = 0;
    curl_multi_perform(multi_.get(), &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_.get(), &left)) {
      if (m->msg == CURLMSG_DONE) OnDone(m->easy_handle, m->data.result);
    }
    now = SteadyMicros();
    if (!backoff_.empty()) next = std::min(next, backoff_.begin()->first);  // retries just queued
    for (auto& [key, h] : hosts_) {
      if (!h->queue.empty() && h->in_flight < h->InFlightLimit()) {
        next = h->RequestRate() > 0 ? std::min(next, now + h->requests.MicrosUntil(1, now)) : now;
      }
      if (!h->rate_paused.empty()) {
        next =
            std::min(next, now + std::max(h->down.MicrosUntil(1, now), h->up.MicrosUntil(1, now)));
      }
    }
    const int64_t wait_ms = std::clamp<int64_t>((next - now + 999) / 1000, 0, kIdleWaitUs / 1000);
    if (wait_ms > 0) curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(wait_ms), nullptr);
  }
  // Shutdown: everything still known completes with Cancelled, in id order.
  std::vector<RequestId> ids;
  for (auto& [id, t] : transfers_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (RequestId id : ids) {
    auto it = transfers_.find(id);
    if (it != transfers_.end())
      Complete(it->second.get(), Status::Cancelled("transport shut down"));
  }
  pool_.clear();
}

void CurlTransport::Impl::RunTimers(int64_t now, int64_t* next_us) {
  while (!backoff_.empty()) {
    auto it = backoff_.begin();
    if (it->first > now) {
      *next_us = std::min(*next_us, it->first);
      break;
    }
    RequestId id = it->second;
    backoff_.erase(it);
    auto t = transfers_.find(id);
    if (t == transfers_.end() || t->second->state != Transfer::State::kBackoff) continue;
    t->second->state = Transfer::State::kQueued;
    t->second->host->queue.push_front(id);  // retries go first
  }
  for (auto& [key, h] : hosts_) {
    if (h->rate_paused.empty()) continue;
    if (h->down.Available(now) <= 0 || h->up.Available(now) <= 0) continue;
    std::vector<RequestId> ids;
    ids.swap(h->rate_paused);  // curl_easy_pause may re-enter OnWrite/OnRead and pause again
    for (RequestId id : ids) {
      auto t = transfers_.find(id);
      if (t == transfers_.end() || t->second->state != Transfer::State::kActive) continue;
      t->second->rate_paused = false;
      curl_easy_pause(t->second->easy.get(), CURLPAUSE_CONT);
    }
  }
}

void CurlTransport::Impl::ReleaseEasy(Transfer* t) {
  if (!t->easy) return;
  curl_easy_reset(t->easy.get());  // keeps the handle's caches; drops our pointers
  if (pool_.size() < static_cast<size_t>(opts_.max_total_connections) * 2) {
    pool_.push_back(std::move(t->easy));
  } else {
    t->easy.reset();
  }
  t->header_list.reset();
  t->in_fd.Reset();
  t->out_fd.Reset();
}

void CurlTransport::Impl::OnDone(CURL* easy, CURLcode code) {
  char* priv = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
  auto* t = reinterpret_cast<Transfer*>(priv);
  const int64_t now = SteadyMicros();
  long status = 0, nconn = 0;
  curl_off_t down = 0, up = 0;
  curl_off_t tm[5] = {0, 0, 0, 0, 0};
  char* eff = nullptr;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &nconn);
  curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
  curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &tm[0]);
  curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &tm[1]);
  curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &tm[2]);
  curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &tm[3]);
  curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &tm[4]);
  curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) t->resp.effective_url = eff;
  long version = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
  t->resp.http_version = version == CURL_HTTP_VERSION_1_0   ? "HTTP/1.0"
                         : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
                         : version == CURL_HTTP_VERSION_2_0 ? "HTTP/2"
                         : version == CURL_HTTP_VERSION_3   ? "HTTP/3"
                                                            : "";
  curl_multi_remove_handle(multi_.get(), easy);
  t->state = Transfer::State::kQueued;
  t->host->in_flight--;
  ReleaseEasy(t);

  Response& r = t->resp;
  r.curl_code = static_cast<int>(code);
  r.http_status = static_cast<int>(status);
  r.bytes_down = down;
  r.bytes_up = up;
  t->total_new_connections += static_cast<int>(nconn);
  r.timing = Timing{t->first_start_us - t->submit_us, tm[0], tm[1], tm[2], tm[3], tm[4], 0};

  Status st = t->local_error.ok() && code != CURLE_OK ? TransportError(code, *t) : t->local_error;
  const bool response_ok = st.ok() && code == CURLE_OK;
  const bool throttled = response_ok && (status == 429 || status == 503);
  HostState* h = t->host;
  if (throttled && t->req.throttle_is_answer) {
    // Not about the host's load: neither slow down nor count it as a success.
  } else if (throttled) {
    if (h->aimd.OnThrottled(now)) {
      log_->Log(LogLevel::kWarning, "net.slow_down",
                {{"host", t->host_key}, {"limit", std::to_string(h->aimd.limit())}});
    }
  } else if (response_ok && status < 500) {
    h->aimd.OnSuccess();
  }

  // Retry?
  bool retry = false;
  RetryDecision d;
  if (t->local_error.ok()) {
    const RetryOptions ro = t->req.retry.value_or(opts_.retry);
    const bool replayable = t->req.body.Replayable() && !t->sink_used_unrewindable;
    RetryClass klass = ClassifyAttempt(static_cast<int>(code), static_cast<int>(status));
    if (klass == RetryClass::kSuccess) {
      h->budget.OnSuccess();
    } else if (replayable) {
      std::optional<std::string> ra = FindHeader(r.headers, "Retry-After");
      std::uniform_real_distribution<double> u(0.0, 1.0);
      d = DecideRetry(ro, t->attempt, static_cast<int>(code), static_cast<int>(status),
                      ra ? std::optional<std::string_view>(*ra) : std::nullopt, clock_->NowMicros(),
                      u(rng_), opts_.retry_budget_capacity > 0 ? &h->budget : nullptr);
      retry = d.retry;
    }
  }
  int64_t times[6] = {t->attempt == 1 ? r.timing.queued_us : 0, tm[0], tm[1], tm[2], tm[3], tm[4]};
  Count(t, /*final=*/!retry, retry, throttled, times, nconn, down, up);
  if (retry) {
    if (log_->Enabled(LogLevel::kInfo)) {
      log_->Log(LogLevel::kInfo, "net.retry",
                {{"host", t->host_key},
                 {"label", t->req.label},
                 {"attempt", std::to_string(t->attempt)},
                 {"reason", d.reason}});
    }
    t->state = Transfer::State::kBackoff;
    t->retry_at_us = now + d.delay_ms * 1000;
    backoff_.emplace(t->retry_at_us, t->id);
    return;
  }
  Complete(t, st);
}

void CurlTransport::Impl::Count(Transfer* t, bool final, bool retried, bool throttled,
                                const int64_t times[6], long nconn, int64_t down, int64_t up) {
  const bool https = t->req.url.size() > 6 && strncasecmp(t->req.url.c_str(), "https:", 6) == 0;
  std::lock_guard<std::mutex> l(stats_mu_);
  HostCounters& c = counters_[t->host_key];
  c.host = t->host_key;
  c.attempts++;
  if (final) {
    c.requests++;
    t->counted = true;
  }
  if (retried) c.retries++;
  if (throttled) c.throttled++;
  const int cls = t->resp.http_status / 100;
  c.status_class[cls >= 1 && cls <= 5 ? cls : 0]++;
  if (t->resp.curl_code != 0 || !t->local_error.ok()) c.transport_errors++;
  c.bytes_down += static_cast<uint64_t>(std::max<int64_t>(0, down));
  c.bytes_up += static_cast<uint64_t>(std::max<int64_t>(0, up));
  c.new_connections += static_cast<uint64_t>(nconn);
  if (https) c.tls_handshakes += static_cast<uint64_t>(nconn);
  if (nconn > 0 && !t->tls_cipher.empty()) c.tls_cipher = t->tls_cipher;
  if (nconn == 0) c.reused++;
  c.queued_us += static_cast<uint64_t>(std::max<int64_t>(0, times[0]));
  c.name_lookup_us += static_cast<uint64_t>(times[1]);
  c.connect_us += static_cast<uint64_t>(times[2]);
  c.tls_us += static_cast<uint64_t>(times[3]);
  c.first_byte_us += static_cast<uint64_t>(times[4]);
  c.total_us += static_cast<uint64_t>(times[5]);
  if (t->host) {
    c.current_request_rate = t->host->RequestRate();
    c.current_concurrency = t->host->InFlightLimit();
  }
}

void CurlTransport::Impl::Complete(Transfer* t, Status status) {
  if (t->state == Transfer::State::kActive) {
    curl_multi_remove_handle(multi_.get(), t->easy.get());
    t->host->in_flight--;
    ReleaseEasy(t);
  }
  if (!t->counted && !t->host_key.empty()) {  // cancelled or failed before an attempt ended
    std::lock_guard<std::mutex> l(stats_mu_);
    HostCounters& c = counters_[t->host_key];
    c.host = t->host_key;
    c.requests++;
  }
  t->state = Transfer::State::kQueued;
  Response r = std::move(t->resp);
  r.transport_status = std::move(status);
  r.attempts = t->attempt;
  r.new_connections = t->total_new_connections;
  r.timing.elapsed_us = SteadyMicros() - t->submit_us;
  if (t->first_start_us < 0) r.timing.queued_us = r.timing.elapsed_us;
  CompletionFn done = std::move(t->done);
  transfers_.erase(t->id);  // t is gone from here on
  if (done) {
    try {
      done(std::move(r));
    } catch (...) {
      log_->Log(LogLevel::kError, "net.completion_threw", {});
    }
  }
}

std::vector<HostCounters> CurlTransport::Impl::Stats() const {
  std::lock_guard<std::mutex> l(stats_mu_);
  std::vector<HostCounters> out;
  for (const auto& [k, c] : counters_) out.push_back(c);
  return out;
}

// --- CurlTransport ---------------------------------------------------------------------------

Result<std::unique_ptr<CurlTransport>> CurlTransport::Create(TransportOptions options) {
  if (options.max_connections_per_host < 1 || options.max_total_connections < 1 ||
      options.max_streams_per_host < 1) {
    return Status::InvalidArgument("connection limits must be at least 1");
  }
  if (!options.ca_file.empty() && ::access(options.ca_file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("CA file not readable: " + options.ca_file);
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  GRIN_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<CurlTransport>(new CurlTransport(std::move(impl)));
}

CurlTransport::CurlTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CurlTransport::~CurlTransport() { impl_->Shutdown(); }

RequestId CurlTransport::Submit(Request request, CompletionFn done) {
  return impl_->Submit(std::move(request), std::move(done));
}
void CurlTransport::Cancel(RequestId id) { impl_->Post(id, /*cancel=*/true); }
void CurlTransport::CancelAll() { impl_->PostCancelAll(); }
void CurlTransport::Resume(RequestId id) { impl_->Post(id, /*cancel=*/false); }
std::vector<HostCounters> CurlTransport::HostStats() const { return impl_->Stats(); }
void CurlTransport::Shutdown() { impl_->Shutdown(); }
void CurlTransport::SetHostLimits(const std::string& host_port, const HostLimits& limits) {
  impl_->SetHostLimits(host_port, limits);
}

void CurlTransport::SetHostRequestRate(const std::string& host_port, double requests_per_second) {
  impl_->SetHostRequestRate(host_port, requests_per_second);
}
uint64_t CurlTransport::LoopIterations() const { return impl_->iterations(); }

}  // namespace grin::net
