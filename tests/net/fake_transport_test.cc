// FakeTransport behaves like CurlTransport where callers can tell: prepare per attempt, retries
// of replayable bodies only, error bodies kept out of sinks.

#include "tests/net/fake_transport.h"

#include <doctest/doctest.h>

namespace grin::net::testing {
namespace {

TEST_CASE("FakeTransport: scripted replies, retries with prepare, recorded requests") {
  int calls = 0;
  FakeTransport fake([&calls](const FakeTransport::Sent& s) {
    FakeTransport::Reply r;
    if (++calls == 1) {
      r.http_status = 503;
      r.headers = {{"Retry-After", "2"}};
      r.body = "<Error><Code>SlowDown</Code></Error>";
      return r;
    }
    r.body = "got " + s.body + " signed " + FindHeader(s.headers, "Authorization").value_or("-");
    return r;
  });
  Request req;
  req.method = Method::kPut;
  req.url = "https://s3.example/bucket/key";
  req.body = BodySource::Memory("payload");
  req.prepare = [](Request& r, int attempt) {
    r.headers = {{"Authorization", "sig" + std::to_string(attempt)}};
    return Status::Ok();
  };
  Response r = fake.SubmitFuture(req).get();  // synchronous: ready at once
  REQUIRE(r.ToStatus().ok());
  CHECK(r.attempts == 2);
  CHECK(r.body == "got payload signed sig2");
  CHECK(fake.retry_delays_ms() == std::vector<int64_t>{2000});
  auto sent = fake.sent();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].body == "payload");
  CHECK(FindHeader(sent[0].headers, "Authorization") == std::optional<std::string>("sig1"));
  CHECK(fake.HostStats()[0].retries == 1);
}

TEST_CASE("FakeTransport: transport errors, permanent statuses, unreplayable bodies") {
  FakeTransport fake([](const FakeTransport::Sent& s) {
    FakeTransport::Reply r;
    if (s.url.find("/down") != std::string::npos) r.curl_code = 7;
    if (s.url.find("/missing") != std::string::npos) r.http_status = 404;
    if (s.url.find("/busy") != std::string::npos) r.http_status = 503;
    return r;
  });
  Request down;
  down.url = "https://x/down";
  Response r = fake.SubmitFuture(down).get();
  CHECK(r.transport_status.code() == StatusCode::kUnavailable);
  CHECK(r.attempts == 4);  // default RetryOptions::max_attempts
  Request missing;
  missing.url = "https://x/missing";
  r = fake.SubmitFuture(missing).get();
  CHECK(r.ToStatus().code() == StatusCode::kNotFound);
  CHECK(r.attempts == 1);
  Request busy;
  busy.url = "https://x/busy";
  busy.body = BodySource::Callback([](char*, size_t) -> size_t { return 0; });
  r = fake.SubmitFuture(busy).get();
  CHECK(r.http_status == 503);
  CHECK(r.attempts == 1);
}

}  // namespace
}  // namespace grin::net::testing
