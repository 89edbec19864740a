#include "tests/net/fake_transport.h"

#include <fstream>
#include <iterator>
#include <utility>

#include "engine/base/clock.h"

namespace grin::net::testing {
namespace {

Status ReadBody(const BodySource& b, std::string* out) {
  out->clear();
  switch (b.kind) {
    case BodySource::Kind::kNone:
      return Status::Ok();
    case BodySource::Kind::kMemory:
      if (b.data) *out = *b.data;
      return Status::Ok();
    case BodySource::Kind::kFile: {
      std::ifstream f(b.path, std::ios::binary);
      if (!f) return Status::NotFound("cannot open request body file " + b.path);
      std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (b.offset > static_cast<int64_t>(all.size())) return Status::InvalidArgument("range");
      *out = all.substr(static_cast<size_t>(b.offset),
                        b.length < 0 ? std::string::npos : static_cast<size_t>(b.length));
      return Status::Ok();
    }
    case BodySource::Kind::kCallback: {
      char buf[16384];
      for (;;) {
        size_t n = b.read(buf, sizeof buf);
        if (n == 0) return Status::Ok();
        if (n == kBodyPause) return Status::Internal("FakeTransport cannot pause a body");
        if (n == kBodyAbort || n > sizeof buf) {
          return Status::Cancelled("aborted by the request body source");
        }
        out->append(buf, n);
      }
    }
  }
  return Status::Ok();
}

// Delivers a 2xx body to the sink. Sets *unrewindable when a callback sink without rewind got
// bytes.
Status Deliver(const ResponseSink& s, const std::string& body, Response* r, bool* unrewindable) {
  switch (s.kind) {
    case ResponseSink::Kind::kMemory:
      if (s.max_bytes > 0 && static_cast<int64_t>(body.size()) > s.max_bytes) {
        return Status::ResourceExhausted("response body too large");
      }
      r->body = body;
      return Status::Ok();
    case ResponseSink::Kind::kFile: {
      std::fstream f(s.path, std::ios::in | std::ios::out | std::ios::binary);
      if (!f) f.open(s.path, std::ios::out | std::ios::binary);
      if (!f) return Status::NotFound("cannot open response file " + s.path);
      f.seekp(s.offset);
      f.write(body.data(), static_cast<std::streamsize>(body.size()));
      return f ? Status::Ok() : Status::Internal("cannot write response file");
    }
    case ResponseSink::Kind::kCallback: {
      if (body.empty()) return Status::Ok();
      if (s.rewind && !s.rewind()) return Status::Internal("sink rewind failed");
      size_t n = s.write(body.data(), body.size());
      if (!s.rewind) *unrewindable = true;
      if (n == kBodyPause) return Status::Internal("FakeTransport cannot pause a sink");
      if (n != body.size()) return Status::Cancelled("aborted by the response sink");
      return Status::Ok();
    }
    case ResponseSink::Kind::kDiscard:
      return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace

FakeTransport::FakeTransport(Handler handler, RetryOptions retry)
    : handler_(std::move(handler)), retry_(retry) {
  counters_.host = "fake";
}

RequestId FakeTransport::Submit(Request req, CompletionFn done) {
  RequestId id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = next_id_++;
  }
  const RetryOptions ro = req.retry.value_or(retry_);
  Response r;
  Status st;
  for (int attempt = 1;; ++attempt) {
    r = Response();
    r.attempts = attempt;
    if (req.prepare) {
      st = req.prepare(req, attempt);
      if (!st.ok()) {
        st = st.WithContext("prepare");
        break;
      }
    }
    Sent sent{req.method, req.url, req.headers, {}, attempt};
    st = ReadBody(req.body, &sent.body);
    if (!st.ok()) break;
    {
      std::lock_guard<std::mutex> l(mu_);
      sent_.push_back(sent);
      counters_.attempts++;
      counters_.bytes_up += sent.body.size();
    }
    Reply reply = handler_(sent);
    bool unrewindable = false;
    r.curl_code = reply.curl_code;
    if (reply.curl_code != 0) {
      st = reply.curl_code == 18 ? Status::DataLoss("response body truncated (fake)")
                                 : Status::Unavailable("transport error " +
                                                       std::to_string(reply.curl_code) + " (fake)");
    } else {
      r.http_status = reply.http_status;
      r.headers = reply.headers;
      r.bytes_down = static_cast<int64_t>(reply.body.size());
      if (reply.http_status >= 200 && reply.http_status < 300) {
        st = Deliver(req.sink, reply.body, &r, &unrewindable);
      } else {
        r.body = reply.body.substr(0, 64 * 1024);
        st = Status::Ok();
      }
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      const int cls = r.http_status / 100;
      counters_.status_class[cls >= 1 && cls <= 5 ? cls : 0]++;
      counters_.bytes_down += static_cast<uint64_t>(r.bytes_down);
      if (reply.curl_code != 0) counters_.transport_errors++;
    }
    if (!st.ok() && reply.curl_code == 0) break;  // a local failure: never retried
    if (!req.body.Replayable() || unrewindable) break;
    std::optional<std::string> ra = FindHeader(r.headers, "Retry-After");
    RetryDecision d = DecideRetry(ro, attempt, reply.curl_code, r.http_status,
                                  ra ? std::optional<std::string_view>(*ra) : std::nullopt,
                                  SystemClock::Default()->NowMicros(), 0.0, nullptr);
    if (!d.retry) break;
    std::lock_guard<std::mutex> l(mu_);
    delays_.push_back(d.delay_ms);
    counters_.retries++;
  }
  r.transport_status = st;
  {
    std::lock_guard<std::mutex> l(mu_);
    counters_.requests++;
  }
  if (done) done(std::move(r));
  return id;
}

std::vector<HostCounters> FakeTransport::HostStats() const {
  std::lock_guard<std::mutex> l(mu_);
  return {counters_};
}

std::vector<FakeTransport::Sent> FakeTransport::sent() const {
  std::lock_guard<std::mutex> l(mu_);
  return sent_;
}

std::vector<int64_t> FakeTransport::retry_delays_ms() const {
  std::lock_guard<std::mutex> l(mu_);
  return delays_;
}

}  // namespace grin::net::testing
