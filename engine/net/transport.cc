#include "engine/net/transport.h"

#include <strings.h>

#include <utility>

namespace grin::net {

std::optional<std::string> FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return std::nullopt;
}

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kHead:
      return "HEAD";
    case Method::kPut:
      return "PUT";
    case Method::kPost:
      return "POST";
    case Method::kDelete:
      return "DELETE";
  }
  return "GET";
}

BodySource BodySource::Memory(std::string bytes) {
  BodySource b;
  b.kind = Kind::kMemory;
  b.data = std::make_shared<const std::string>(std::move(bytes));
  return b;
}

BodySource BodySource::File(std::string path, int64_t offset, int64_t length) {
  BodySource b;
  b.kind = Kind::kFile;
  b.path = std::move(path);
  b.offset = offset;
  b.length = length;
  return b;
}

BodySource BodySource::Callback(BodyReadFn read, int64_t length, std::function<bool()> rewind) {
  BodySource b;
  b.kind = Kind::kCallback;
  b.read = std::move(read);
  b.length = length;
  b.rewind = std::move(rewind);
  return b;
}

ResponseSink ResponseSink::Memory(int64_t max_bytes) {
  ResponseSink s;
  s.kind = Kind::kMemory;
  s.max_bytes = max_bytes;
  return s;
}

ResponseSink ResponseSink::File(std::string path, int64_t offset) {
  ResponseSink s;
  s.kind = Kind::kFile;
  s.path = std::move(path);
  s.offset = offset;
  return s;
}

ResponseSink ResponseSink::Callback(BodyWriteFn write, std::function<bool()> rewind) {
  ResponseSink s;
  s.kind = Kind::kCallback;
  s.write = std::move(write);
  s.rewind = std::move(rewind);
  return s;
}

ResponseSink ResponseSink::Discard() {
  ResponseSink s;
  s.kind = Kind::kDiscard;
  return s;
}

Status HttpStatusToStatus(int http_status) {
  if (http_status >= 200 && http_status < 300) return Status::Ok();
  std::string m = "http status " + std::to_string(http_status);
  switch (http_status) {
    case 404:
    case 410:
      return Status::NotFound(m);
    case 401:
    case 403:
      return Status::PermissionDenied(m);
    case 409:
    case 412:
      return Status::Conflict(m);
    case 408:
    case 429:
      return Status::Unavailable(m);
    default:
      break;
  }
  if (http_status >= 500) return Status::Unavailable(m);
  return Status::InvalidArgument(m);
}

bool IsTlsTrustFailure(const Status& s) {
  return !s.ok() && s.message().find(kTlsUntrustedText) != std::string::npos;
}

Status Response::ToStatus() const {
  if (!transport_status.ok()) return transport_status;
  return HttpStatusToStatus(http_status);
}

std::future<Response> Transport::SubmitFuture(Request request) {
  auto promise = std::make_shared<std::promise<Response>>();
  std::future<Response> f = promise->get_future();
  Submit(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
  return f;
}

}  // namespace grin::net
