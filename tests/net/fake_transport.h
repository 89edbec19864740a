#pragma once
// FakeTransport: a scripted, synchronous Transport for unit tests of code built on the transport
// (the S3 client, the GRIN client, the engine). No network, no threads: Submit() runs the whole
// exchange on the caller's thread and calls the completion before returning.
//
// Per attempt it runs the request's prepare hook, reads the request body completely (memory,
// file or callback), records what was "sent" (sent()), asks the handler for a Reply, and delivers
// the reply body like CurlTransport does (2xx to the sink, other statuses to Response::body). It
// retries like CurlTransport — same DecideRetry policy and replayability rules — but without
// waiting (Retry-After and backoff delays are recorded in retry_delays_ms() instead).
// Callbacks that return kBodyPause fail the request (there is no loop to resume).
//
// Thread safety: Submit may be called from several threads; the handler then runs concurrently.

#include <mutex>
#include <string>
#include <vector>

#include "engine/net/transport.h"

namespace grin::net::testing {

class FakeTransport final : public Transport {
 public:
  struct Reply {
    int http_status = 200;
    Headers headers;
    std::string body;
    // Non-zero simulates a transport failure with this CURLcode (e.g. 7 couldn't connect,
    // 18 truncated body, 28 timeout); http_status and body are then ignored.
    int curl_code = 0;
  };
  struct Sent {
    Method method;
    std::string url;
    Headers headers;
    std::string body;
    int attempt;
  };
  using Handler = std::function<Reply(const Sent& request)>;

  explicit FakeTransport(Handler handler, RetryOptions retry = {});

  RequestId Submit(Request request, CompletionFn done) override;
  void Cancel(RequestId) override {}
  void CancelAll() override {}
  void Resume(RequestId) override {}
  std::vector<HostCounters> HostStats() const override;
  void Shutdown() override {}

  std::vector<Sent> sent() const;
  std::vector<int64_t> retry_delays_ms() const;

 private:
  Handler handler_;
  RetryOptions retry_;
  mutable std::mutex mu_;
  RequestId next_id_ = 1;
  std::vector<Sent> sent_;
  std::vector<int64_t> delays_;
  HostCounters counters_;
};

}  // namespace grin::net::testing
