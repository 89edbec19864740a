#include "storage/s3/s3_object_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "storage/s3/s3_xml.h"

namespace grin::s3 {

namespace {

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  return s;
}

bool IsHex32(const std::string& s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") or ISO 8601 ("2026-11-28T21:02:20Z",
// fractional seconds ignored) into Unix seconds; -1 if neither.
int64_t ParseServerTime(const std::string& s) {
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) {
    tm = {};
    end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  }
  if (end == nullptr) return -1;
  return static_cast<int64_t>(timegm(&tm));
}

ObjectMetadata MetadataFromHeaders(const net::Headers& headers) {
  ObjectMetadata m;
  constexpr std::string_view kPrefix = "x-amz-meta-";
  for (const auto& [k, v] : headers) {
    if (k.size() <= kPrefix.size()) continue;
    std::string lower = k;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.compare(0, kPrefix.size(), kPrefix) == 0) m[lower.substr(kPrefix.size())] = v;
  }
  return m;
}

std::string HeaderOr(const net::Headers& h, std::string_view name) {
  return net::FindHeader(h, name).value_or("");
}

}  // namespace

// One S3 operation, before signing.
struct S3ObjectStore::Call {
  net::Method method = net::Method::kGet;
  std::string bucket;
  std::string key;          // "" for bucket-level calls
  HeaderList query;         // decoded
  HeaderList headers;       // extra headers to sign (content-md5, x-amz-meta-*, range, ...)
  std::string payload_hash = std::string(kEmptySha256);
  net::BodySource body;
  // Where a 2xx body goes: null = memory (XML replies); else streamed to this sink.
  ObjectSink* sink = nullptr;
  std::string what;         // "PUT bucket/key", for messages
};

Result<Endpoint> ParseEndpoint(const std::string& url) {
  Endpoint e;
  size_t p = url.find("://");
  if (p == std::string::npos) return Status::InvalidArgument("endpoint URL needs http(s)://");
  e.scheme = url.substr(0, p);
  if (e.scheme != "http" && e.scheme != "https") {
    return Status::InvalidArgument("endpoint URL scheme must be http or https");
  }
  std::string rest = url.substr(p + 3);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) {
    return Status::InvalidArgument("endpoint URL must be scheme://host[:port] (no path)");
  }
  size_t colon = rest.rfind(':');
  size_t bracket = rest.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    long v = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || v <= 0 || v > 65535) {
      return Status::InvalidArgument("endpoint URL has a bad port");
    }
    e.port = static_cast<int>(v);
    rest = rest.substr(0, colon);
  }
  e.host = rest;
  if ((e.scheme == "https" && e.port == 443) || (e.scheme == "http" && e.port == 80)) e.port = 0;
  return e;
}

Status S3ErrorToStatus(const std::string& what, int http_status, const std::string& body,
                       net::Method method) {
  auto e = ParseErrorXml(body);
  std::string code = e ? e->code : "";
  std::string text = what + ": HTTP " + std::to_string(http_status);
  if (!code.empty()) text += " " + code;
  if (e && !e->message.empty()) text += ": " + e->message;
  if (!e && method == net::Method::kHead && http_status == 403) {
    text += " (HEAD replies carry no error body: access denied, or a bad key or secret)";
  }
  text = OneLine(text);
  if (code == "BadDigest" || code == "XAmzContentSHA256Mismatch" || code == "InvalidDigest") {
    return Status::DataLoss(text);
  }
  if (code == "RequestTimeout" || code == "SlowDown" || code == "ServiceUnavailable" ||
      code == "InternalError" || code == "RequestTimeTooSkewed") {
    return Status::Unavailable(text);
  }
  if (http_status == 404) return Status::NotFound(text);
  if (http_status == 401 || http_status == 403) return Status::PermissionDenied(text);
  if (http_status == 412) return Status::FailedPrecondition(text);
  if (http_status == 409) return Status::Conflict(text);
  if (http_status == 429 || http_status == 408 || http_status >= 500) {
    return Status::Unavailable(text);
  }
  return Status::InvalidArgument(text);
}

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Create(S3Config config,
                                                             Credentials credentials,
                                                             net::Transport* transport,
                                                             Clock* clock, Logger* logger) {
  if (transport == nullptr) return Status::InvalidArgument("S3 store needs a transport");
  GRIN_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(config.endpoint_url));
  if (config.region.empty()) config.region = "us-east-1";
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Status::InvalidArgument("S3 credentials are incomplete");
  }
  InitXml();
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(
      std::move(config), std::move(ep), std::move(credentials), transport,
      clock != nullptr ? clock : SystemClock::Default(),
      logger != nullptr ? logger : NullLogger::Default()));
}

S3ObjectStore::S3ObjectStore(S3Config config, Endpoint endpoint, Credentials credentials,
                             net::Transport* transport, Clock* clock, Logger* logger)
    : config_(std::move(config)),
      endpoint_(std::move(endpoint)),
      credentials_(std::move(credentials)),
      signer_(config_.region, "s3", SigningFlavor::kS3),
      transport_(transport),
      clock_(clock),
      logger_(logger),
      pool_(std::make_unique<BufferPool>(config_.buffer_pool_bytes)) {}

S3ObjectStore::~S3ObjectStore() = default;

std::string S3ObjectStore::Describe() const {
  return "s3 " + config_.endpoint_url + " region " + config_.region +
         (config_.path_style ? " (path-style)" : " (virtual-host)");
}

std::string S3ObjectStore::Url(const std::string& bucket, const std::string& key,
                               const HeaderList& query, std::string* host,
                               std::string* path) const {
  std::string h = endpoint_.host;
  std::string p;
  if (config_.path_style || bucket.empty()) {
    p = "/" + bucket;
    if (!key.empty()) p += "/" + key;
  } else {
    h = bucket + "." + h;
    p = "/" + key;
  }
  if (endpoint_.port != 0) h += ":" + std::to_string(endpoint_.port);
  *host = h;
  *path = p;
  std::string url = endpoint_.scheme + "://" + h + EncodePath(p);
  std::string q = CanonicalQuery(query);
  if (!q.empty()) url += "?" + q;
  return url;
}

Result<net::Response> S3ObjectStore::Execute(const Call& call) {
  std::string host, path;
  const std::string url = Url(call.bucket, call.key, call.query, &host, &path);
  for (int attempt = 1;; ++attempt) {
    net::Request req;
    req.method = call.method;
    req.url = url;
    // A callback body (streamed, or a pooled buffer) keeps its position between attempts: start
    // it over for an S3-level retry (the transport rewinds it for its own retries).
    if (attempt > 1 && call.body.rewind && !call.body.rewind()) {
      return Status::Internal(call.what + ": body cannot be rewound for a retry");
    }
    req.body = call.body;
    req.label = call.what;
    // A 2xx body streams to the caller's sink; the transport keeps an error reply's body out of
    // it (in Response::body), so error documents never reach the caller's data.
    auto sink_error = std::make_shared<Status>();
    auto written = std::make_shared<bool>(false);
    if (call.sink != nullptr) {
      ObjectSink* sink = call.sink;
      req.sink = net::ResponseSink::Callback(
          [sink_error, written, sink](const char* d, size_t n) {
            *written = true;
            Status st = sink->Write(std::string_view(d, n));
            if (!st.ok()) {
              *sink_error = st;
              return net::kBodyAbort;
            }
            return n;
          },
          // The transport may retry a cut-off body only if nothing reached the caller's sink
          // yet or the sink can start over; otherwise the failure is reported, never a
          // silently shortened body.
          [written, sink] { return !*written || sink->Restart(); });
    } else {
      req.sink = net::ResponseSink::Memory(64 * 1024 * 1024);
    }
    // Signed on every attempt, when the transport dispatches it.
    HeaderList base = call.headers;
    base.emplace_back("host", host);
    SigningInput in{std::string(net::MethodName(call.method)), path, call.query, base,
                    call.payload_hash};
    req.prepare = [this, in](net::Request& r, int) {
      const int64_t now = (clock_->NowMicros() + skew_micros_.load()) / 1'000'000;
      SignedRequest s = signer_.Sign(in, credentials_, now);
      r.headers.clear();
      for (const auto& kv : in.headers) {
        if (kv.first != "host") r.headers.push_back(kv);
      }
      for (const auto& kv : s.added_headers) r.headers.push_back(kv);
      r.headers.emplace_back("Authorization", s.authorization);
      return Status::Ok();
    };
    net::Response resp = transport_->SubmitFuture(std::move(req)).get();
    if (!sink_error->ok()) return *sink_error;
    if (!resp.transport_status.ok()) {
      Status st = resp.transport_status.WithContext(call.what);
      constexpr int kCouldntResolveHost = 6;  // CURLE_COULDNT_RESOLVE_HOST
      if (resp.curl_code == kCouldntResolveHost && !config_.path_style && !call.bucket.empty()) {
        // Virtual-host style needs a DNS name "<bucket>.<host>"; many private endpoints lack one.
        st = Status(st.code(), st.message() + "; " + host +
                                   " is the virtual-host style name of bucket " + call.bucket +
                                   ": if the endpoint has no such DNS names, use path style "
                                   "(storage.path_style true in run_config.json, or init "
                                   "--storage-config path_style=true)");
      }
      return st;
    }
    const std::string& body = resp.body;
    if (resp.http_status >= 200 && resp.http_status < 300) return resp;
    Status st = S3ErrorToStatus(call.what, resp.http_status, body, call.method);
    auto err = ParseErrorXml(body);
    const std::string code = err ? err->code : "";
    bool retry = false;
    if (code == "RequestTimeTooSkewed") {
      // Learn the offset from the server's clock, then sign again.
      int64_t server = err && !err->server_time.empty() ? ParseServerTime(err->server_time) : -1;
      if (server < 0) server = ParseServerTime(HeaderOr(resp.headers, "date"));
      if (server >= 0) {
        int64_t skew = server * 1'000'000 - clock_->NowMicros();
        skew_micros_.store(skew);
        if (logger_->Enabled(LogLevel::kWarning)) {
          logger_->Log(LogLevel::kWarning, "s3.clock_skew",
                       {{"skew_ms", std::to_string(skew / 1000)}});
        }
        retry = true;
      }
    } else if (code == "RequestTimeout") {
      // S3's own transient 400. 5xx, SlowDown and 429 were already retried by the transport.
      retry = true;
    }
    if (!retry || attempt >= config_.max_attempts || !call.body.Replayable()) return st;
    if (logger_->Enabled(LogLevel::kInfo)) {
      logger_->Log(LogLevel::kInfo, "s3.retry",
                   {{"what", call.what}, {"attempt", std::to_string(attempt)},
                    {"code", code.empty() ? std::to_string(resp.http_status) : code}});
    }
    if (code != "RequestTimeTooSkewed") {
      std::this_thread::sleep_for(std::chrono::milliseconds(100LL << std::min(attempt, 6)));
    }
  }
}

Status S3ObjectStore::HeadBucket(const std::string& bucket) {
  Call c;
  c.method = net::Method::kHead;
  c.bucket = bucket;
  c.what = "HEAD bucket " + bucket;
  auto r = Execute(c);
  return r.status();
}

Status S3ObjectStore::EnsureBucket(const std::string& bucket) {
  Status head = HeadBucket(bucket);
  if (head.ok() || head.code() != StatusCode::kNotFound) return head;
  Call c;
  c.method = net::Method::kPut;
  c.bucket = bucket;
  c.what = "CreateBucket " + bucket;
  const std::string& region = config_.region;
  if (region != "us-east-1" && region != "auto") {
    std::string xml =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" + XmlEscape(region) + "</LocationConstraint>"
        "</CreateBucketConfiguration>";
    c.payload_hash = Sha256Hex(xml);
    c.body = net::BodySource::Memory(xml);
  }
  auto r = Execute(c);
  if (!r.ok() && r.status().message().find("BucketAlreadyOwnedByYou") != std::string::npos) {
    return Status::Ok();
  }
  return r.status();
}

namespace {

// Streams a ByteSource window to the transport, straight from ReadAt() into libcurl's upload
// buffer, computing the MD5 on the way only when asked (want_md5). Rewindable, so the transport
// may retry it.
struct StreamState {
  const ByteSource* body = nullptr;
  uint64_t begin = 0, end = 0, pos = 0;
  bool want_md5 = false;
  std::unique_ptr<Hasher> md5;
  Status error;
  void Reset() {
    pos = begin;
    md5 = want_md5 ? std::make_unique<Hasher>(Hasher::Kind::kMd5) : nullptr;
    error = Status::Ok();
  }
};

net::BodySource StreamingBody(std::shared_ptr<StreamState> st) {
  st->Reset();
  const int64_t length = static_cast<int64_t>(st->end - st->begin);
  return net::BodySource::Callback(
      [st](char* buf, size_t len) -> size_t {
        if (st->pos >= st->end) return 0;
        size_t want = static_cast<size_t>(std::min<uint64_t>(len, st->end - st->pos));
        auto n = st->body->ReadAt(st->pos, buf, want);
        if (!n.ok() || *n == 0) {
          st->error = n.ok() ? Status::DataLoss("source ended early") : n.status();
          return net::kBodyAbort;
        }
        if (st->md5) st->md5->Update(buf, *n);
        st->pos += *n;
        return *n;
      },
      length,
      [st] {
        st->Reset();
        return true;
      });
}

// SHA-256 of [offset, offset + length) of body: in place where the source allows
// (VisitInPlace: memory), else read through a small pooled scratch buffer
// (256 KiB: it stays in the L2 cache, so the copy into it costs little). Never a buffer of the
// whole body: that is fresh memory, and page faults and zeroing cost this machine 0.6-1.3
// CPU-s/GB. The request then streams the body from the source.
Result<std::string> HashWindow(BufferPool& pool, const ByteSource& body, uint64_t offset,
                               uint64_t length) {
  Hasher sha(Hasher::Kind::kSha256);
  GRIN_ASSIGN_OR_RETURN(bool visited,
                        body.VisitInPlace(offset, length, [&sha](std::string_view piece) {
                          sha.Update(piece);
                          return Status::Ok();
                        }));
  if (visited) return HexEncode(sha.Final());
  constexpr uint64_t kChunk = 256 * 1024;
  std::shared_ptr<PooledBuffer> buf =
      pool.Take(static_cast<size_t>(std::min<uint64_t>(kChunk, std::max<uint64_t>(length, 1))));
  uint64_t done = 0;
  while (done < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf->size(), length - done));
    GRIN_ASSIGN_OR_RETURN(size_t n, body.ReadAt(offset + done, buf->data(), want));
    if (n == 0) return Status::DataLoss("source ended early");
    sha.Update(buf->data(), n);
    done += n;
  }
  return HexEncode(sha.Final());
}

void AddPutHeaders(const PutOptions& o, HeaderList* h) {
  h->emplace_back("content-type",
                  o.content_type.empty() ? "application/octet-stream" : o.content_type);
  for (const auto& [k, v] : o.metadata) h->emplace_back("x-amz-meta-" + k, v);
  if (o.if_none_match) h->emplace_back("if-none-match", "*");
}

std::string Md5Base64FromHex(const std::string& hex) {
  std::string raw;
  if (!HexDecode(hex, &raw) || raw.size() != 16) return "";
  return Base64Encode(raw);
}

}  // namespace

Result<PutResult> S3ObjectStore::Put(const std::string& bucket, const std::string& key,
                                     const ByteSource& body, const PutOptions& options) {
  GRIN_RETURN_IF_ERROR(ValidateObjectKey(key));
  GRIN_RETURN_IF_ERROR(ValidateMetadata(options.metadata));
  const uint64_t size = body.size();
  if (size > kMaxPartSize) return Status::InvalidArgument("single PUT above 5 GiB; use Upload()");
  Call c;
  c.method = net::Method::kPut;
  c.bucket = bucket;
  c.key = key;
  c.what = "PUT " + bucket + "/" + key;
  AddPutHeaders(options, &c.headers);
  if (!options.md5_hex.empty()) {
    const std::string b64 = Md5Base64FromHex(options.md5_hex);
    if (b64.empty()) return Status::InvalidArgument(c.what + ": md5_hex is not 32 hex digits");
    c.headers.emplace_back("content-md5", b64);  // the server checks it
  }
  PutResult result;
  result.size = size;
  result.md5_hex = options.md5_hex;
  result.sha256_hex = options.sha256_hex;
  std::shared_ptr<StreamState> stream;
  if (!options.sha256_hex.empty()) {
    // Known SHA-256: signed, so the server verifies the body; nothing is hashed here and the
    // bytes go from the source straight into the transport's buffer.
    stream = std::make_shared<StreamState>();
  } else if (size <= config_.single_put_hash_limit) {
    // SHA-256 first (signed: the server verifies it), then the body streams from the source
    // like a known-SHA-256 body. No MD5.
    auto sha = HashWindow(*pool_, body, 0, size);
    if (!sha.ok()) return sha.status().WithContext(c.what);
    result.sha256_hex = std::move(*sha);
    stream = std::make_shared<StreamState>();
  } else {
    // Large and no digest: UNSIGNED-PAYLOAD; the MD5 computed on the way (unless given) is
    // checked against the returned ETag.
    stream = std::make_shared<StreamState>();
    stream->want_md5 = options.md5_hex.empty();
  }
  if (stream) {
    stream->body = &body;
    stream->end = size;
    c.body = StreamingBody(stream);
  }
  c.payload_hash = result.sha256_hex.empty() ? std::string(kUnsignedPayload) : result.sha256_hex;
  auto resp = Execute(c);
  if (stream && !stream->error.ok()) return stream->error.WithContext(c.what);
  if (!resp.ok()) return resp.status();
  result.etag = Unquote(HeaderOr(resp->headers, "etag"));
  if (stream && stream->md5) result.md5_hex = HexEncode(stream->md5->Final());
  // Single-part ETags are the body's MD5 (no SSE-KMS/SSE-C here): checked when the MD5 is known.
  if (!result.md5_hex.empty() && IsHex32(result.etag) && result.etag != result.md5_hex) {
    return Status::DataLoss(c.what + ": server ETag " + result.etag + " != MD5 " +
                            result.md5_hex);
  }
  return result;
}

Result<PutResult> S3ObjectStore::Upload(const std::string& bucket, const std::string& key,
                                        const ByteSource& body, const UploadOptions& options) {
  if (!options.put.sha256_hex.empty() || body.size() <= config_.single_put_hash_limit ||
      body.size() >= options.multipart_threshold) {
    return ObjectStore::Upload(bucket, key, body, options);
  }
  UploadOptions o = options;
  o.multipart_threshold = config_.single_put_hash_limit + 1;
  return ObjectStore::Upload(bucket, key, body, o);
}

Result<ObjectInfo> S3ObjectStore::Head(const std::string& bucket, const std::string& key) {
  GRIN_RETURN_IF_ERROR(ValidateObjectKey(key));
  Call c;
  c.method = net::Method::kHead;
  c.bucket = bucket;
  c.key = key;
  c.what = "HEAD " + bucket + "/" + key;
  GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
  ObjectInfo info;
  info.key = key;
  info.size = std::strtoull(HeaderOr(r.headers, "content-length").c_str(), nullptr, 10);
  info.etag = Unquote(HeaderOr(r.headers, "etag"));
  info.last_modified = HeaderOr(r.headers, "last-modified");
  info.metadata = MetadataFromHeaders(r.headers);
  return info;
}

Result<ObjectInfo> S3ObjectStore::Get(const std::string& bucket, const std::string& key,
                                      ObjectSink& sink, std::optional<ByteRange> range) {
  GRIN_RETURN_IF_ERROR(ValidateObjectKey(key));
  Call c;
  c.method = net::Method::kGet;
  c.bucket = bucket;
  c.key = key;
  c.sink = &sink;
  c.what = "GET " + bucket + "/" + key;
  if (range) {
    std::string r = "bytes=" + std::to_string(range->offset) + "-";
    if (range->length != 0) r += std::to_string(range->offset + range->length - 1);
    c.headers.emplace_back("range", r);
  }
  auto resp = Execute(c);
  if (!resp.ok()) {
    if (resp.status().message().find("HTTP 416") != std::string::npos) {
      return Status::InvalidArgument(resp.status().message());
    }
    return resp.status();
  }
  ObjectInfo info;
  info.key = key;
  info.etag = Unquote(HeaderOr(resp->headers, "etag"));
  info.last_modified = HeaderOr(resp->headers, "last-modified");
  info.metadata = MetadataFromHeaders(resp->headers);
  std::string cr = HeaderOr(resp->headers, "content-range");  // "bytes 0-9/1234"
  size_t slash = cr.rfind('/');
  info.size = slash != std::string::npos
                  ? std::strtoull(cr.c_str() + slash + 1, nullptr, 10)
                  : std::strtoull(HeaderOr(resp->headers, "content-length").c_str(), nullptr, 10);
  return info;
}

Result<ListPage> S3ObjectStore::List(const std::string& bucket, const std::string& prefix,
                                     const std::string& token, int max_keys) {
  Call c;
  c.bucket = bucket;
  c.what = "LIST " + bucket + "/" + prefix;
  c.query = {{"list-type", "2"}, {"max-keys", std::to_string(std::clamp(max_keys, 1, 1000))}};
  if (!prefix.empty()) c.query.emplace_back("prefix", prefix);
  if (!token.empty()) c.query.emplace_back("continuation-token", token);
  GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
  GRIN_ASSIGN_OR_RETURN(ListV2Result parsed, ParseListObjectsV2(r.body));
  ListPage page;
  page.objects = std::move(parsed.objects);
  if (parsed.truncated) page.next_token = parsed.next_token;
  return page;
}

Result<std::vector<DeleteFailure>> S3ObjectStore::DeleteMany(
    const std::string& bucket, const std::vector<std::string>& keys) {
  std::vector<DeleteFailure> failures;
  for (size_t i = 0; i < keys.size(); i += kMaxDeleteBatch) {
    std::vector<std::string> batch(keys.begin() + static_cast<std::ptrdiff_t>(i),
                                   keys.begin() + static_cast<std::ptrdiff_t>(
                                                      std::min(keys.size(), i + kMaxDeleteBatch)));
    std::string xml = BuildDeleteXml(batch, /*quiet=*/true);
    Call c;
    c.method = net::Method::kPost;
    c.bucket = bucket;
    c.query = {{"delete", ""}};
    c.what = "DeleteObjects " + bucket + " (" + std::to_string(batch.size()) + " keys)";
    c.headers.emplace_back("content-md5", Base64Encode(Md5(xml)));  // required by S3 here
    c.headers.emplace_back("content-type", "application/xml");
    c.payload_hash = Sha256Hex(xml);
    c.body = net::BodySource::Memory(std::move(xml));
    GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
    GRIN_ASSIGN_OR_RETURN(auto errors, ParseDeleteResult(r.body));
    for (auto& e : errors) {
      if (e.code == "NoSuchKey") continue;
      failures.push_back({e.key, S3ErrorToStatus("DELETE " + bucket + "/" + e.key, 400,
                                                 "<Error><Code>" + XmlEscape(e.code) +
                                                     "</Code><Message>" + XmlEscape(e.message) +
                                                     "</Message></Error>",
                                                 net::Method::kPost)});
    }
  }
  return failures;
}

Result<std::string> S3ObjectStore::BeginMultipart(const std::string& bucket,
                                                  const std::string& key,
                                                  const PutOptions& options) {
  GRIN_RETURN_IF_ERROR(ValidateObjectKey(key));
  GRIN_RETURN_IF_ERROR(ValidateMetadata(options.metadata));
  Call c;
  c.method = net::Method::kPost;
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploads", ""}};
  c.what = "CreateMultipartUpload " + bucket + "/" + key;
  AddPutHeaders(options, &c.headers);
  // If-None-Match belongs on Complete, not on Create.
  c.headers.erase(std::remove_if(c.headers.begin(), c.headers.end(),
                                 [](const auto& kv) { return kv.first == "if-none-match"; }),
                  c.headers.end());
  GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
  return ParseInitiateMultipart(r.body);
}

Result<UploadedPart> S3ObjectStore::UploadPart(const std::string& bucket, const std::string& key,
                                               const std::string& upload_id, int number,
                                               const ByteSource& body, uint64_t offset,
                                               uint64_t length) {
  if (number < 1 || number > kMaxParts) return Status::InvalidArgument("bad part number");
  // The part's SHA-256 (HashWindow), signed so the server verifies the part, then the part
  // streams from the source. No MD5: the signed hash already protects the part, and MD5 would
  // cost more CPU than SHA-256 (SHA-NI).
  Call c;
  c.method = net::Method::kPut;
  c.bucket = bucket;
  c.key = key;
  c.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
  c.what = "UploadPart " + std::to_string(number) + " " + bucket + "/" + key;
  auto sha = HashWindow(*pool_, body, offset, length);
  if (!sha.ok()) return sha.status().WithContext(c.what);
  c.payload_hash = std::move(*sha);
  auto stream = std::make_shared<StreamState>();
  stream->body = &body;
  stream->begin = offset;
  stream->end = offset + length;
  c.body = StreamingBody(stream);
  auto resp = Execute(c);
  if (!stream->error.ok()) return stream->error.WithContext(c.what);
  GRIN_ASSIGN_OR_RETURN(net::Response r, std::move(resp));
  UploadedPart part{number, length, Unquote(HeaderOr(r.headers, "etag"))};
  if (part.etag.empty()) return Status::DataLoss(c.what + ": no ETag in the reply");
  return part;
}

Result<std::vector<UploadedPart>> S3ObjectStore::ListParts(const std::string& bucket,
                                                           const std::string& key,
                                                           const std::string& upload_id) {
  std::vector<UploadedPart> parts;
  std::string marker;
  for (int page = 0; page < 20; ++page) {
    Call c;
    c.bucket = bucket;
    c.key = key;
    c.query = {{"uploadId", upload_id}};
    if (!marker.empty()) c.query.emplace_back("part-number-marker", marker);
    c.what = "ListParts " + bucket + "/" + key;
    GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
    GRIN_ASSIGN_OR_RETURN(ListPartsResult parsed, ParseListParts(r.body));
    for (auto& p : parsed.parts) parts.push_back(std::move(p));
    if (!parsed.truncated || parsed.next_marker.empty() || parsed.next_marker == marker) break;
    marker = parsed.next_marker;
  }
  return parts;
}

Result<std::vector<ObjectStore::PendingUpload>> S3ObjectStore::ListPendingUploads(
    const std::string& bucket, const std::string& prefix) {
  std::vector<PendingUpload> out;
  std::string key_marker, id_marker;
  for (int page = 0; page < 10'000; ++page) {
    Call c;
    c.bucket = bucket;
    c.query = {{"uploads", ""}, {"prefix", prefix}};
    if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
    c.what = "ListMultipartUploads " + bucket;
    GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
    GRIN_ASSIGN_OR_RETURN(ListUploadsResult parsed, ParseListMultipartUploads(r.body));
    for (auto& u : parsed.uploads) out.push_back(std::move(u));
    if (!parsed.truncated || (parsed.next_key_marker == key_marker &&
                              parsed.next_upload_id_marker == id_marker)) {
      break;
    }
    key_marker = parsed.next_key_marker;
    id_marker = parsed.next_upload_id_marker;
  }
  return out;
}

Result<PutResult> S3ObjectStore::CompleteMultipart(const std::string& bucket,
                                                   const std::string& key,
                                                   const std::string& upload_id,
                                                   std::vector<UploadedPart> parts,
                                                   const PutOptions& options) {
  std::sort(parts.begin(), parts.end(),
            [](const UploadedPart& a, const UploadedPart& b) { return a.number < b.number; });
  std::string xml = BuildCompleteMultipartXml(parts);
  Call c;
  c.method = net::Method::kPost;
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploadId", upload_id}};
  c.what = "CompleteMultipartUpload " + bucket + "/" + key;
  c.headers.emplace_back("content-type", "application/xml");
  if (options.if_none_match) c.headers.emplace_back("if-none-match", "*");
  c.payload_hash = Sha256Hex(xml);
  c.body = net::BodySource::Memory(std::move(xml));
  // S3 may answer 200 and then report an error in the body: parse it, retry if transient.
  Status last;
  for (int attempt = 1; attempt <= config_.max_attempts; ++attempt) {
    GRIN_ASSIGN_OR_RETURN(net::Response r, Execute(c));
    auto etag = ParseCompleteMultipart(r.body);
    if (etag.ok()) {
      PutResult result;
      result.etag = *etag;
      for (const auto& p : parts) result.size += p.size;
      return result;
    }
    last = etag.status().WithContext(c.what);
    if (last.code() != StatusCode::kUnavailable) return last;
  }
  return last;
}

Status S3ObjectStore::AbortMultipart(const std::string& bucket, const std::string& key,
                                     const std::string& upload_id) {
  Call c;
  c.method = net::Method::kDelete;
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploadId", upload_id}};
  c.what = "AbortMultipartUpload " + bucket + "/" + key;
  auto r = Execute(c);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return Status::Ok();
  return r.status();
}

}  // namespace grin::s3
