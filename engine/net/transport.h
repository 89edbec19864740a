#pragma once
// Transport: the one way grin-jobs speaks HTTP(S). Everything the engine knows of HTTP is here;
// CurlTransport (engine/net/curl_transport.h) implements it on one libcurl multi handle, and tests
// may implement it with a scripted fake.
//
// Model: any thread Submit()s a Request and later receives exactly one Response, through a
// completion callback or a std::future. Bodies can stream both ways: a request body can come from
// memory, a file or a callback; a response body can go to memory, a file or a callback. Callbacks
// may ask to pause (back-pressure); the producer/consumer then calls Resume(id) from any thread.
//
// Outcome contract (Response):
//   - transport_status.ok() means a complete HTTP response was received: the status line, the
//     headers and the whole body (a Content-Length or chunked body that ends early is an error,
//     never OK). Any HTTP status can come with an OK transport_status: a 404 is a response.
//   - Response::ToStatus() folds both into one Status (HttpStatusToStatus for non-2xx).
//   - Transport failures keep the libcurl code in Response::curl_code for logs and policy.
//
// Threads: Submit, SubmitFuture, Cancel, Resume and HostStats are safe from any thread. Request
// callbacks (prepare, body read, sink write/rewind, completion) run on the transport's own thread
// for CurlTransport: they must be quick and must never block on another request's completion
// (that would deadlock the loop). A fake transport may run them inside Submit on the caller's
// thread, so never hold a lock in Submit that a callback also takes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/status.h"
#include "engine/net/retry.h"

namespace grin::net {

// Header names are case-insensitive; order is kept as given / as received.
using Headers = std::vector<std::pair<std::string, std::string>>;

// Returns the value of the first header named `name` (case-insensitive), if any.
std::optional<std::string> FindHeader(const Headers& headers, std::string_view name);

enum class Method { kGet, kHead, kPut, kPost, kDelete };
std::string_view MethodName(Method m);

// Return values of BodyReadFn beyond "bytes produced".
inline constexpr size_t kBodyPause = std::numeric_limits<size_t>::max();      // try again later
inline constexpr size_t kBodyAbort = std::numeric_limits<size_t>::max() - 1;  // fail the request

// Produces up to `len` bytes of request body into `buf`. Returns the count (0 = end of body), or
// kBodyPause (nothing produced; call Transport::Resume(id) when more is ready), or kBodyAbort.
using BodyReadFn = std::function<size_t(char* buf, size_t len)>;

// Consumes response body bytes. Returns `len` when all were taken, kBodyPause to refuse them for
// now (the same bytes are offered again after Transport::Resume(id)), or kBodyAbort (request fails
// with Cancelled). Any other value fails the request.
using BodyWriteFn = std::function<size_t(const char* data, size_t len)>;

// Where a request body comes from.
struct BodySource {
  enum class Kind { kNone, kMemory, kFile, kCallback };
  Kind kind = Kind::kNone;
  std::shared_ptr<const std::string> data;  // kMemory (shared so retries and callers can keep it)
  std::string path;                         // kFile
  int64_t offset = 0;                       // kFile: first byte sent
  int64_t length = -1;  // kFile: bytes to send (-1: to end of file); kCallback: size if known
  BodyReadFn read;      // kCallback
  // kCallback: optional; restart the body from its beginning, true on success. With it the body
  // counts as replayable (retries, and libcurl's resend on a dead reused connection).
  std::function<bool()> rewind;

  static BodySource None() { return {}; }
  static BodySource Memory(std::string bytes);
  static BodySource File(std::string path, int64_t offset = 0, int64_t length = -1);
  // `length` -1 means unknown (chunked transfer encoding is used for HTTP/1.1 uploads).
  static BodySource Callback(BodyReadFn read, int64_t length = -1,
                             std::function<bool()> rewind = nullptr);

  // True if the body can be sent again for a retry.
  bool Replayable() const { return kind != Kind::kCallback || static_cast<bool>(rewind); }
};

// Where a response body goes. Only 2xx bodies go to a file or callback sink; the body of any
// other status (an S3 <Error> document, a 503 page) is kept in Response::body instead, up to
// 64 KiB, so error text never lands in a download and never blocks a retry.
struct ResponseSink {
  enum class Kind { kMemory, kFile, kCallback, kDiscard };
  Kind kind = Kind::kMemory;
  std::string path;    // kFile: created if missing, written from `offset`, truncated there first
  int64_t offset = 0;  // kFile
  BodyWriteFn write;   // kCallback
  // kCallback: optional; forget what was written so far (a retry starts the body again). Without
  // it a request whose body already reached the callback is never retried.
  std::function<bool()> rewind;
  // kCallback: optional; called once per attempt, on the transport thread, before the first body
  // byte of a 2xx response reaches `write`, with the status and the response headers (so a
  // consumer can size itself from Content-Length). Not called for an empty body.
  std::function<void(int http_status, const Headers& headers)> on_start;
  // kMemory: fail with ResourceExhausted beyond this many bytes (0 = unlimited).
  int64_t max_bytes = 0;

  static ResponseSink Memory(int64_t max_bytes = 0);
  static ResponseSink File(std::string path, int64_t offset = 0);
  static ResponseSink Callback(BodyWriteFn write, std::function<bool()> rewind = nullptr);
  static ResponseSink Discard();
};

struct Request;
// Called before each attempt (attempt 1 is the first), on the transport thread, just before the
// request is handed to libcurl (after rate limiting). It may rewrite url and headers, e.g. to
// re-sign with a fresh x-amz-date. A non-OK return fails the request with that Status.
using PrepareFn = std::function<Status(Request& request, int attempt)>;

struct Request {
  Method method = Method::kGet;
  std::string url;  // http:// or https://; the path is sent as is (CURLOPT_PATH_AS_IS)
  Headers headers;  // "Expect:" is suppressed for uploads unless set here
  BodySource body;
  ResponseSink sink;
  PrepareFn prepare;
  // Overrides TransportOptions::retry for this request. Retries only happen when the body is
  // Replayable() and the sink has not received bytes it cannot rewind.
  std::optional<RetryOptions> retry;
  // Overrides the transport's low-speed window for this request, in seconds (a transfer moving
  // fewer than the low-speed bytes/s this long fails with a timeout; the wait for the first byte
  // counts). -1 = the transport's setting, 0 = no low-speed limit. For slow-to-start replies
  // (GRIN's text lists can take minutes before their first byte).
  int64_t low_speed_time_seconds = -1;
  // Use a fresh connection and close it afterwards (benchmarks, tests).
  bool forbid_reuse = false;
  // A 429/503 to this request is the endpoint's answer (GRIN's _process: its conversion queue
  // is full), not the host asking for less: the host's adaptive limits (AIMD) are left alone,
  // so archive downloads on the same host are not slowed by it.
  bool throttle_is_answer = false;
  // Free-form label copied into logs (never the URL's query, which may carry credentials).
  std::string label;
};

// Phase times of the last attempt, in microseconds since the attempt started (libcurl's
// CURLINFO_*_TIME_T), plus the time spent waiting in the transport's own queue.
struct Timing {
  int64_t queued_us = 0;  // from Submit to handing the first attempt to libcurl
  int64_t name_lookup_us = 0;
  int64_t connect_us = 0;
  int64_t tls_us = 0;         // app connect; 0 on a reused connection
  int64_t first_byte_us = 0;  // start transfer
  int64_t total_us = 0;       // last attempt
  int64_t elapsed_us = 0;     // from Submit to completion, all attempts and backoff included
};

struct Response {
  Status transport_status;  // see the outcome contract at the top of this file
  int curl_code = 0;        // CURLcode of the last attempt (0 = CURLE_OK)
  int http_status = 0;      // 0 if no response line was received
  std::string http_version;  // of the final response: "HTTP/1.1", "HTTP/2", ...; "" if none
  Headers headers;          // of the final response (interim 1xx and earlier attempts dropped)
  std::string body;         // ResponseSink::kMemory, or a non-2xx reply's body (see ResponseSink)
  int64_t bytes_down = 0;   // body bytes received in the last attempt
  int64_t bytes_up = 0;     // body bytes sent in the last attempt
  int attempts = 0;         // attempts made (1 = no retry)
  int new_connections = 0;  // CURLINFO_NUM_CONNECTS summed over attempts (0 = all reused)
  std::string effective_url;
  Timing timing;

  // OK iff transport_status is OK and http_status is 2xx; otherwise the transport error or
  // HttpStatusToStatus(http_status).
  Status ToStatus() const;
};

// 2xx OK; 404/410 NotFound; 401/403 PermissionDenied; 409/412 Conflict; 408/429/5xx Unavailable;
// other statuses InvalidArgument. The message names the status.
Status HttpStatusToStatus(int http_status);

// A TLS peer that could not be verified (untrusted or unverifiable certificate, unusable CA file)
// is reported as kFailedPrecondition with this text in the message. Callers that wrap the status
// (with context, or under another code) keep the text, so IsTlsTrustFailure() still tells it: a
// failure no retry can fix, and never the fault of the book or object being transferred.
inline constexpr const char* kTlsUntrustedText = "TLS certificate not trusted";
bool IsTlsTrustFailure(const Status& s);

using RequestId = uint64_t;  // 0 is never a valid id
using CompletionFn = std::function<void(Response)>;

// Counters per "host:port", cumulative since the transport started.
struct HostCounters {
  std::string host;                               // "host:port"
  uint64_t requests = 0;                          // completed requests (after retries)
  uint64_t attempts = 0;                          // attempts handed to libcurl
  uint64_t status_class[6] = {0, 0, 0, 0, 0, 0};  // [0] no HTTP response, [1..5] 1xx..5xx
  uint64_t transport_errors = 0;                  // attempts that ended without a complete response
  uint64_t retries = 0;
  uint64_t throttled = 0;  // 429 and 503 responses (they slow the host down)
  uint64_t bytes_down = 0;
  uint64_t bytes_up = 0;
  uint64_t new_connections = 0;  // sum of CURLINFO_NUM_CONNECTS
  uint64_t tls_handshakes = 0;   // new connections that did a TLS handshake (https)
  uint64_t reused = 0;           // attempts that opened no connection
  std::string tls_cipher;        // the suite of the latest new TLS connection ("" before one)
  // Sums over attempts, microseconds.
  uint64_t queued_us = 0, name_lookup_us = 0, connect_us = 0, tls_us = 0, first_byte_us = 0,
           total_us = 0;
  double current_request_rate = 0;  // requests/s currently allowed (0 = unlimited)
  int current_concurrency = 0;      // in-flight limit currently allowed (AIMD)
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Queues `request`; `done` runs exactly once with the outcome (also after Cancel or Shutdown,
  // with a Cancelled transport_status). Never blocks on the network. After Shutdown, `done` runs
  // immediately with Cancelled. Returns an id for Cancel/Resume.
  virtual RequestId Submit(Request request, CompletionFn done) = 0;

  // Submit with a future; the future is ready when the completion would have run.
  std::future<Response> SubmitFuture(Request request);

  // Asks to stop request `id`: pending or in flight, it completes with Cancelled (soon, on the
  // transport thread). Unknown or finished ids are ignored.
  virtual void Cancel(RequestId id) = 0;

  // Cancel() for every request queued or in flight at the time of the call (each completes with
  // Cancelled, soon, on the transport thread); later Submits run as usual. For a caller that
  // knows nothing in flight can be used any more (e.g. the run's state store failed), so that
  // transfers stalled on a dead link do not hold it until their timeouts and retries give up.
  virtual void CancelAll() = 0;

  // Unpauses request `id` after its body callback returned kBodyPause. Unknown ids are ignored;
  // resuming a request that is not paused is harmless.
  virtual void Resume(RequestId id) = 0;

  // A snapshot of the per-host counters, sorted by host.
  virtual std::vector<HostCounters> HostStats() const = 0;

  // Cancels everything queued or in flight (their completions run with Cancelled), stops the
  // transport thread and returns once no callback of this transport can run any more. Idempotent;
  // the destructor calls it. Must not be called from a transport callback.
  virtual void Shutdown() = 0;
};

}  // namespace grin::net
