#include "engine/net/curl_transport.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "engine/base/errno_status.h"
#include "engine/net/curl_transport_internal.h"

namespace grin::net {
namespace {

constexpr size_t kErrorBodyLimit = 64 * 1024;

// Splits "host:port" out of a URL; empty on a malformed URL.
std::string HostKey(const std::string& url) {
  CurlUrl u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  char* host = nullptr;
  char* port = nullptr;
  std::string key;
  if (curl_url_get(u.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u.get(), CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    key = std::string(host) + ":" + port;
  }
  curl_free(host);
  curl_free(port);
  return key;
}

// The TLS suite of the connection `e` is using ("" for plain HTTP or another TLS backend).
std::string NegotiatedCipher(CURL* e) {
  curl_tlssessioninfo* info = nullptr;
  if (curl_easy_getinfo(e, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == nullptr ||
      info->backend != CURLSSLBACKEND_OPENSSL || info->internals == nullptr) {
    return "";
  }
  const SSL_CIPHER* c = SSL_get_current_cipher(static_cast<SSL*>(info->internals));
  const char* name = c ? SSL_CIPHER_get_name(c) : nullptr;
  return name ? name : "";
}

}  // namespace

Result<std::string> HostKeyOf(const std::string& url) {
  std::string key = HostKey(url);
  if (key.empty()) {
    return Status::InvalidArgument("'" + url.substr(0, 200) + "' is not a URL with a host");
  }
  return key;
}

Status CurlTransport::Impl::Init() {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return Status::Internal("curl_global_init failed");
  }
  global_init_ = true;
  share_.reset(curl_share_init());
  multi_.reset(curl_multi_init());
  if (!share_ || !multi_) return Status::Internal("cannot create curl multi/share handles");
  // TLS sessions and DNS answers shared by all easy handles; only the loop thread uses the share,
  // so it needs no lock callbacks. The connection cache lives in the multi already.
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  CURLM* m = multi_.get();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(opts_.max_connections_per_host));
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    static_cast<long>(opts_.max_total_connections));
  // The idle cache must hold every connection we may open, or libcurl closes one and a later
  // request opens it again (a TLS handshake each time).
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(opts_.max_total_connections) * 2);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, opts_.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
  if (opts_.http2) {
    curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS,
                      static_cast<long>(opts_.max_streams_per_host));
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

RequestId CurlTransport::Impl::Submit(Request request, CompletionFn done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_.fetch_add(1);
  t->req = std::move(request);
  t->done = std::move(done);
  t->impl = this;
  t->submit_us = SteadyMicros();
  const RequestId id = t->id;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopping_) {
      inbox_.push_back(std::move(t));
    }
  }
  if (t) {  // refused: the transport is shut down
    Response r;
    r.transport_status = Status::Cancelled("transport is shut down");
    if (t->done) t->done(std::move(r));
    return id;
  }
  curl_multi_wakeup(multi_.get());
  return id;
}

void CurlTransport::Impl::PostCancelAll() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    cancel_all_ = true;
  }
  curl_multi_wakeup(multi_.get());
}

void CurlTransport::Impl::Post(RequestId id, bool cancel) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    signals_.emplace_back(id, cancel);
  }
  curl_multi_wakeup(multi_.get());
}

void CurlTransport::Impl::SetHostLimits(const std::string& host, const HostLimits& l) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    host_limits_[host] = l;
    limit_updates_.emplace_back(host, l);
    std::erase_if(rate_updates_, [&](const auto& u) { return u.first == host; });  // replaced
  }
  curl_multi_wakeup(multi_.get());
}

void CurlTransport::Impl::SetHostRequestRate(const std::string& host, double rps) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A host not seen yet starts at this rate (Host()); a known one changes in the loop.
    auto it = host_limits_.emplace(host, opts_.default_host_limits).first;
    it->second.requests_per_second =
        std::isinf(rps) ? 0 : (rps > 0 ? rps : HostState::kPausedRate);
    rate_updates_.emplace_back(host, rps);
  }
  curl_multi_wakeup(multi_.get());
}

void CurlTransport::Impl::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    if (joined_) return;
    if (std::this_thread::get_id() == loop_id_) return;  // from a callback: the owner joins later
    joined_ = true;
  }
  if (multi_) curl_multi_wakeup(multi_.get());
  if (thread_.joinable()) thread_.join();
}

HostState* CurlTransport::Impl::Host(const std::string& key, int64_t now) {
  auto it = hosts_.find(key);
  if (it != hosts_.end()) return it->second.get();
  HostLimits l = opts_.default_host_limits;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto o = host_limits_.find(key);
    if (o != host_limits_.end()) l = o->second;
  }
  const int flight = opts_.http2 ? opts_.max_streams_per_host : opts_.max_connections_per_host;
  auto h = std::make_unique<HostState>(l, std::max(1, flight), !opts_.http2,
                                       opts_.retry_budget_capacity, now);
  if (l.requests_per_second == HostState::kPausedRate) h->SetRequestRate(0, now);  // starts empty
  HostState* raw = h.get();
  hosts_.emplace(key, std::move(h));
  return raw;
}

void CurlTransport::Impl::DrainInbox(bool* stop) {
  std::vector<std::unique_ptr<Transfer>> in;
  std::vector<std::pair<RequestId, bool>> sig;
  std::vector<std::pair<std::string, HostLimits>> lim;
  std::vector<std::pair<std::string, double>> rates;
  bool cancel_all = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    in.swap(inbox_);
    sig.swap(signals_);
    cancel_all = std::exchange(cancel_all_, false);
    lim.swap(limit_updates_);
    rates.swap(rate_updates_);
    *stop = stopping_;
  }
  const int64_t now = SteadyMicros();
  for (auto& [key, l] : lim) {
    auto it = hosts_.find(key);
    if (it != hosts_.end()) it->second->Configure(l, now);
  }
  for (auto& [key, rps] : rates) {
    auto it = hosts_.find(key);
    if (it != hosts_.end()) it->second->SetRequestRate(rps, now);
  }
  for (auto& t : in) {
    Transfer* raw = t.get();
    raw->host_key = HostKey(raw->req.url);
    transfers_.emplace(raw->id, std::move(t));
    if (raw->host_key.empty()) {
      Complete(raw, Status::InvalidArgument("malformed URL"));
      continue;
    }
    raw->host = Host(raw->host_key, now);
    raw->host->queue.push_back(raw->id);
  }
  if (cancel_all) {  // everything known now, the inbox's newcomers included
    std::vector<RequestId> ids;
    ids.reserve(transfers_.size());
    for (const auto& [id, t] : transfers_) ids.push_back(id);
    for (RequestId id : ids) {
      auto it = transfers_.find(id);
      if (it != transfers_.end()) Complete(it->second.get(), Status::Cancelled("request cancelled"));
    }
  }
  for (auto [id, cancel] : sig) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;
    Transfer* t = it->second.get();
    if (cancel) {
      Complete(t, Status::Cancelled("request cancelled"));
    } else if (t->state == Transfer::State::kActive) {
      curl_easy_pause(t->easy.get(), CURLPAUSE_CONT);  // may call OnWrite/OnRead right here
    }
  }
}

void CurlTransport::Impl::Admit(int64_t now) {
  for (auto& [key, h] : hosts_) {
    while (!h->queue.empty() && h->in_flight < h->InFlightLimit()) {
      auto it = transfers_.find(h->queue.front());
      if (it == transfers_.end() || it->second->state != Transfer::State::kQueued) {
        h->queue.pop_front();  // cancelled meanwhile
        continue;
      }
      const double rate = h->RequestRate();
      if (rate > 0) {
        if (h->requests.rate() != rate) h->requests.SetRate(rate, now);
        if (h->requests.Available(now) < 1) break;
        h->requests.Take(1, now);
      }
      h->queue.pop_front();
      StartAttempt(it->second.get(), now);
    }
  }
}

void CurlTransport::Impl::StartAttempt(Transfer* t, int64_t now) {
  t->attempt++;
  if (t->first_start_us < 0) t->first_start_us = now;
  t->delivered = 0;
  t->sink_used_unrewindable = false;
  t->sink_started = false;
  t->tls_cipher.clear();
  t->local_error = Status::Ok();
  t->rate_paused = false;
  t->resp.headers.clear();
  t->resp.http_status = 0;
  t->resp.body.clear();
  t->errbuf[0] = '\0';
  if (t->req.prepare) {
    Status s;
    try {
      s = t->req.prepare(t->req, t->attempt);
    } catch (...) {  // never let a hook's exception unwind through the loop thread
      s = Status::Internal("prepare hook threw");
    }
    if (!s.ok()) return Complete(t, s.WithContext("prepare"));
  }
  Status s = SetupEasy(t);
  if (!s.ok()) return Complete(t, s);
  t->state = Transfer::State::kActive;
  t->host->in_flight++;
  if (curl_multi_add_handle(multi_.get(), t->easy.get()) != CURLM_OK) {
    t->host->in_flight--;
    t->state = Transfer::State::kQueued;
    return Complete(t, Status::Internal("curl_multi_add_handle failed"));
  }
}

Status CurlTransport::Impl::SetupEasy(Transfer* t) {
  const Request& r = t->req;
  // Body source.
  t->in_pos = 0;
  t->in_end = 0;
  int64_t body_len = -1;
  switch (r.body.kind) {
    case BodySource::Kind::kNone:
      body_len = 0;
      break;
    case BodySource::Kind::kMemory:
      body_len = r.body.data ? static_cast<int64_t>(r.body.data->size()) : 0;
      t->in_end = body_len;
      break;
    case BodySource::Kind::kFile: {
      t->in_fd = UniqueFd(::open(r.body.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (t->in_fd.get() < 0)
        return Status::NotFound("cannot open request body file " + r.body.path);
      int64_t size = ::lseek(t->in_fd.get(), 0, SEEK_END);
      int64_t len = r.body.length >= 0 ? r.body.length : size - r.body.offset;
      if (r.body.offset < 0 || len < 0 || r.body.offset + len > size) {
        return Status::InvalidArgument("request body range outside file " + r.body.path);
      }
      t->in_pos = r.body.offset;
      t->in_end = r.body.offset + len;
      body_len = len;
      break;
    }
    case BodySource::Kind::kCallback:
      body_len = r.body.length;
      if (t->attempt > 1 && r.body.rewind && !r.body.rewind()) {
        return Status::Internal("request body could not be rewound");
      }
      break;
  }
  // Sink.
  t->out_pos = r.sink.offset;
  if (r.sink.kind == ResponseSink::Kind::kFile) {
    t->out_fd = UniqueFd(::open(r.sink.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (t->out_fd.get() < 0) {
      const int e = errno;
      std::string m = "cannot open response file " + r.sink.path + ": " + std::strerror(e);
      return IsNoSpaceErrno(e) ? Status::NoSpace(std::move(m)) : Status::NotFound(std::move(m));
    }
    if (::ftruncate(t->out_fd.get(), r.sink.offset) != 0) {
      return Status::Internal("cannot truncate response file " + r.sink.path);
    }
  } else if (r.sink.kind == ResponseSink::Kind::kCallback && t->attempt > 1 && r.sink.rewind) {
    if (!r.sink.rewind()) return Status::Internal("response sink could not be rewound");
  }

  if (!pool_.empty()) {
    t->easy = std::move(pool_.back());
    pool_.pop_back();
  } else {
    t->easy.reset(curl_easy_init());
    if (!t->easy) return Status::Internal("curl_easy_init failed");
  }
  CURL* e = t->easy.get();
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(t));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts_.tls13_ciphers.empty()) {
    curl_easy_setopt(e, CURLOPT_TLS13_CIPHERS, opts_.tls13_ciphers.c_str());
  }
  if (!opts_.tls12_ciphers.empty()) {
    curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, opts_.tls12_ciphers.c_str());
  }
  if (!opts_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opts_.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   opts_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  if (opts_.http2) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout_ms));
  const int64_t low_speed_time =
      r.low_speed_time_seconds >= 0 ? r.low_speed_time_seconds : opts_.low_speed_time_seconds;
  if (opts_.low_speed_bytes_per_second > 0 && low_speed_time > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(opts_.low_speed_bytes_per_second));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(low_speed_time));
  } else {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 0L);
  }
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, static_cast<long>(opts_.tcp_keepalive_idle_seconds));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL,
                   static_cast<long>(opts_.tcp_keepalive_interval_seconds));
  if (opts_.max_idle_connection_age_seconds > 0) {
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN,
                     static_cast<long>(opts_.max_idle_connection_age_seconds));
  }
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, opts_.receive_buffer_bytes);
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, opts_.upload_buffer_bytes);
  curl_easy_setopt(e, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  if (opts_.forbid_reuse || r.forbid_reuse) {
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  }
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(t));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(t));

  const bool has_body = r.body.kind != BodySource::Kind::kNone;
  switch (r.method) {
    case Method::kGet:
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
      break;
    case Method::kHead:
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
      break;
    case Method::kPut:
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_len));
      break;
    case Method::kPost:
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_len));
      break;
    case Method::kDelete:
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
      break;
  }
  if (r.method == Method::kPut || r.method == Method::kPost || has_body) {
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Impl::OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, static_cast<void*>(t));
    // Without a seek callback libcurl cannot resend on a dead reused connection
    // (CURLE_SEND_FAIL_REWIND).
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &Impl::OnSeek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, static_cast<void*>(t));
  }
  curl_slist* list = nullptr;
  bool has_expect = false, has_type = false;
  for (const auto& [k, v] : r.headers) {
    std::string line = v.empty() ? k + ";" : k + ": " + v;  // "k;" sends an empty header
    if (strcasecmp(k.c_str(), "expect") == 0) has_expect = true;
    if (strcasecmp(k.c_str(), "content-type") == 0) has_type = true;
    curl_slist* n = curl_slist_append(list, line.c_str());
    if (n == nullptr) {
      curl_slist_free_all(list);
      return Status::Internal("out of memory building headers");
    }
    list = n;
  }
  if (!has_expect && (r.method == Method::kPut || r.method == Method::kPost)) {
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  }
  if (!has_type && r.method == Method::kPost) {
    list = curl_slist_append(list, "Content-Type:");  // not libcurl's form-urlencoded default
  }
  t->header_list.reset(list);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  return Status::Ok();
}

size_t CurlTransport::Impl::OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line: interim 1xx or the final response
    t->resp.headers.clear();
    size_t sp = line.find(' ');
    t->resp.http_status =
        sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
    if (t->tls_cipher.empty()) t->tls_cipher = NegotiatedCipher(t->easy.get());
    return len;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    t->resp.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
  }
  return len;
}

size_t CurlTransport::Impl::OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  const int64_t now = SteadyMicros();
  HostState* h = t->host;
  if (!h->down.unlimited() && h->down.Available(now) <= 0) {
    if (!t->rate_paused) h->rate_paused.push_back(t->id);
    t->rate_paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  const ResponseSink& s = t->req.sink;
  const int status = t->resp.http_status;
  if (s.kind != ResponseSink::Kind::kMemory && (status < 200 || status >= 300)) {
    // An error reply's body (S3's <Error> XML, a 503 page) must not reach a file or a streaming
    // consumer: keep its head in Response::body for the caller and drop the rest.
    const size_t room = kErrorBodyLimit - std::min(kErrorBodyLimit, t->resp.body.size());
    t->resp.body.append(data, std::min(room, len));
    h->down.Take(static_cast<double>(len), now);
    return len;
  }
  switch (s.kind) {
    case ResponseSink::Kind::kMemory:
      if (s.max_bytes > 0 && static_cast<int64_t>(t->resp.body.size() + len) > s.max_bytes) {
        t->local_error = Status::ResourceExhausted("response body larger than " +
                                                   std::to_string(s.max_bytes) + " bytes");
        return 0;
      }
      t->resp.body.append(data, len);
      break;
    case ResponseSink::Kind::kFile: {
      size_t off = 0;
      while (off < len) {
        ssize_t w = ::pwrite(t->out_fd.get(), data + off, len - off, t->out_pos);
        if (w <= 0) {
          const int e = errno;
          std::string m = "cannot write response file " + s.path + ": " + std::strerror(e);
          // A full disk is not a transfer error (a retry cannot help): say so.
          t->local_error =
              IsNoSpaceErrno(e) ? Status::NoSpace(std::move(m)) : Status::Internal(std::move(m));
          return 0;
        }
        off += static_cast<size_t>(w);
        t->out_pos += w;
      }
      break;
    }
    case ResponseSink::Kind::kCallback: {
      size_t r;
      try {
        if (!t->sink_started) {
          t->sink_started = true;
          if (s.on_start) s.on_start(status, t->resp.headers);
        }
        r = s.write(data, len);
      } catch (...) {
        r = kBodyAbort;
      }
      if (r == kBodyPause) return CURL_WRITEFUNC_PAUSE;
      if (r != len) {
        t->local_error = r == kBodyAbort ? Status::Cancelled("aborted by the response sink")
                                         : Status::Internal("response sink took a partial write");
        return 0;
      }
      if (!s.rewind) t->sink_used_unrewindable = true;
      break;
    }
    case ResponseSink::Kind::kDiscard:
      break;
  }
  t->delivered += static_cast<int64_t>(len);
  h->down.Take(static_cast<double>(len), now);
  return len;
}

size_t CurlTransport::Impl::OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t cap = size * n;
  const int64_t now = SteadyMicros();
  HostState* h = t->host;
  if (!h->up.unlimited()) {
    const double avail = h->up.Available(now);
    if (avail <= 0) {
      if (!t->rate_paused) h->rate_paused.push_back(t->id);
      t->rate_paused = true;
      return CURL_READFUNC_PAUSE;
    }
    // Unlike a download chunk, an upload chunk can be cut to what the bucket allows (at least
    // 16 KiB, so a slow rate still moves whole TLS records).
    cap = std::min(cap, std::max<size_t>(16384, static_cast<size_t>(avail)));
  }
  size_t got = 0;
  const BodySource& b = t->req.body;
  switch (b.kind) {
    case BodySource::Kind::kNone:
      return 0;
    case BodySource::Kind::kMemory:
      got =
          static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(cap), t->in_end - t->in_pos));
      std::memcpy(buf, b.data->data() + t->in_pos, got);
      break;
    case BodySource::Kind::kFile: {
      const size_t want =
          static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(cap), t->in_end - t->in_pos));
      if (want == 0) return 0;
      ssize_t r = ::pread(t->in_fd.get(), buf, want, t->in_pos);
      if (r <= 0) {
        t->local_error = Status::DataLoss("request body file " + b.path + " shrank or failed");
        return CURL_READFUNC_ABORT;
      }
      got = static_cast<size_t>(r);
      break;
    }
    case BodySource::Kind::kCallback: {
      size_t r;
      try {
        r = b.read(buf, cap);
      } catch (...) {
        r = kBodyAbort;
      }
      if (r == kBodyPause) return CURL_READFUNC_PAUSE;
      if (r == kBodyAbort || r > cap) {
        t->local_error = Status::Cancelled("aborted by the request body source");
        return CURL_READFUNC_ABORT;
      }
      got = r;
      break;
    }
  }
  t->in_pos += static_cast<int64_t>(got);
  h->up.Take(static_cast<double>(got), now);
  return got;
}

int CurlTransport::Impl::OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  const BodySource& b = t->req.body;
  switch (b.kind) {
    case BodySource::Kind::kMemory:
    case BodySource::Kind::kFile: {
      const int64_t base = b.kind == BodySource::Kind::kFile ? b.offset : 0;
      if (offset < 0 || base + offset > t->in_end) return CURL_SEEKFUNC_FAIL;
      t->in_pos = base + offset;
      return CURL_SEEKFUNC_OK;
    }
    case BodySource::Kind::kCallback:
      if (offset == 0 && b.rewind && b.rewind()) return CURL_SEEKFUNC_OK;
      return CURL_SEEKFUNC_CANTSEEK;
    case BodySource::Kind::kNone:
      return offset == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
  }
  return CURL_SEEKFUNC_CANTSEEK;
}

}  // namespace grin::net
