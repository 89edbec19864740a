#pragma once
// S3ObjectStore: the ObjectStore port on S3-compatible servers (AWS S3, Cloudflare R2, MinIO,
// OpenStack Swift's s3api), speaking HTTP(S) through the shared net::Transport with our own SigV4.
//
// Requests: every attempt is signed when the transport dispatches it (PrepareFn), with the
// clock's time corrected by the skew learned from RequestTimeTooSkewed replies, so retries are
// re-signed. The transport retries connection errors, 5xx and 429/503 (SlowDown) with full jitter;
// this class adds the S3-only cases: 400 RequestTimeout, 403 RequestTimeTooSkewed (corrected from
// the server's Date header or <ServerTime>) and a 200 carrying an <Error> from
// CompleteMultipartUpload. Error replies are parsed (libxml2) into one-line messages:
// "PUT raw/X.tar.gz: HTTP 403 SignatureDoesNotMatch: ...". Secrets never appear in messages.
//
// Integrity ("Content-MD5 and/or signed SHA-256"; each digest computed at most once, and only
// the ones needed):
//   - sha256_hex given: sent as the signed payload hash (the server verifies it); the body
//     streams from the source into the transport's buffer and nothing is hashed here.
//   - no sha256_hex, body <= single_put_hash_limit (64 MiB): two passes over the source, one
//     copy each: SHA-256 first, through a 256 KiB cache-resident scratch buffer, then the body
//     streams from the source into the transport's buffer, signed with that hash. Memory stays
//     flat (a buffer of the whole body is fresh memory: page faults and zeroing cost more CPU
//     than the second read from the page cache). A source that changes between the passes is
//     refused by the server (payload hash mismatch, kDataLoss), never stored.
//   - no sha256_hex, larger body: UNSIGNED-PAYLOAD, MD5 computed while streaming (unless given)
//     and checked against the returned ETag.
//   - md5_hex given: always sent as Content-MD5 (the server verifies it), never computed here.
//   The ETag is compared with the MD5 only when the MD5 is known. PutResult carries exactly the
//   digests that were given or computed ("" otherwise). Multipart parts are hashed and
//   streamed the same way, each with its signed SHA-256 (no per-part MD5).
//
// Thread safety: all methods may be called concurrently; concurrent calls share the transport's
// connections (Upload() runs parallel_parts parts at once over them).

#include <atomic>
#include <memory>
#include <string>

#include "engine/base/clock.h"
#include "engine/base/logger.h"
#include "engine/net/transport.h"
#include "engine/object_store.h"
#include "storage/s3/buffer_pool.h"
#include "storage/s3/sigv4.h"

namespace grin::s3 {

struct S3Config {
  std::string endpoint_url;        // "https://127.0.0.1:8443", "https://<acct>.r2.cloudflarestorage.com"
  std::string region = "us-east-1";  // "auto" for R2
  bool path_style = true;          // false: virtual-host style (bucket.host)
  // Bodies up to this size without a known SHA-256 are sent as one signed PUT: the SHA-256 is
  // computed first (the source read through a 256 KiB scratch buffer), then the body streams
  // from the source like a known-SHA-256 one, so memory does not grow with the body. A larger
  // one without a known SHA-256 goes multipart from Upload() (parts hashed the same way,
  // verified by the server); a direct Put() of it streams UNSIGNED-PAYLOAD with an MD5 (0.77 GB/s
  // against SHA-256's ~1.8 GB/s with SHA-NI). The default equals UploadOptions'
  // multipart_threshold (64 MiB), so Upload() decides single PUT or multipart by size alone,
  // whether or not the SHA-256 is known: a single PUT costs Swift less CPU than multipart
  // (1.6-1.9x) and reaches its ceiling.
  uint64_t single_put_hash_limit = 64 * kMiB;
  // Idle scratch buffers kept for reuse (BufferPool).
  uint64_t buffer_pool_bytes = 128 * kMiB;
  int max_attempts = 4;            // S3-level retries (RequestTimeout, clock skew, 200-with-Error)
};

// Endpoint parts. kInvalidArgument for anything but http(s)://host[:port][/].
struct Endpoint {
  std::string scheme;  // "http" or "https"
  std::string host;    // "127.0.0.1", "[::1]"
  int port = 0;        // 0 = default for the scheme
};
Result<Endpoint> ParseEndpoint(const std::string& url);

class S3ObjectStore final : public ObjectStore {
 public:
  // `transport` (not owned) must outlive the store; clock and logger may be null.
  static Result<std::unique_ptr<S3ObjectStore>> Create(S3Config config, Credentials credentials,
                                                       net::Transport* transport,
                                                       Clock* clock = nullptr,
                                                       Logger* logger = nullptr);
  ~S3ObjectStore() override;

  std::string Describe() const override;
  Status EnsureBucket(const std::string& bucket) override;
  Status HeadBucket(const std::string& bucket) override;
  Result<PutResult> Put(const std::string& bucket, const std::string& key,
                        const ByteSource& body, const PutOptions& options) override;
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) override;
  Result<ObjectInfo> Get(const std::string& bucket, const std::string& key, ObjectSink& sink,
                         std::optional<ByteRange> range = {}) override;
  Result<ListPage> List(const std::string& bucket, const std::string& prefix,
                        const std::string& token, int max_keys = 1000) override;
  Result<std::vector<DeleteFailure>> DeleteMany(const std::string& bucket,
                                                const std::vector<std::string>& keys) override;
  Result<std::string> BeginMultipart(const std::string& bucket, const std::string& key,
                                     const PutOptions& options) override;
  Result<UploadedPart> UploadPart(const std::string& bucket, const std::string& key,
                                  const std::string& upload_id, int number,
                                  const ByteSource& body, uint64_t offset,
                                  uint64_t length) override;
  Result<std::vector<UploadedPart>> ListParts(const std::string& bucket, const std::string& key,
                                              const std::string& upload_id) override;
  Result<PutResult> CompleteMultipart(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id,
                                      std::vector<UploadedPart> parts,
                                      const PutOptions& options) override;
  Status AbortMultipart(const std::string& bucket, const std::string& key,
                        const std::string& upload_id) override;
  // ListMultipartUploads under prefix, every page.
  Result<std::vector<PendingUpload>> ListPendingUploads(const std::string& bucket,
                                                        const std::string& prefix) override;
  // ObjectStore::Upload, except that a body with no known SHA-256 goes multipart already above
  // single_put_hash_limit (never MD5-streamed); with a known SHA-256 the caller's threshold
  // holds, and the single PUT hashes nothing.
  Result<PutResult> Upload(const std::string& bucket, const std::string& key,
                           const ByteSource& body, const UploadOptions& options) override;

  // Offset added to the local clock when signing, learned from RequestTimeTooSkewed.
  int64_t clock_skew_micros() const { return skew_micros_.load(); }

  struct Call;  // s3_object_store.cc

 private:
  S3ObjectStore(S3Config config, Endpoint endpoint, Credentials credentials,
                net::Transport* transport, Clock* clock, Logger* logger);
  // Sends one S3 call with signing and the S3-level retries; returns the final response, which
  // is 2xx, or the mapped error.
  Result<net::Response> Execute(const Call& call);
  std::string Url(const std::string& bucket, const std::string& key,
                  const HeaderList& query, std::string* host, std::string* path) const;

  S3Config config_;
  Endpoint endpoint_;
  Credentials credentials_;
  Signer signer_;
  net::Transport* transport_;
  Clock* clock_;
  Logger* logger_;
  std::atomic<int64_t> skew_micros_{0};
  std::unique_ptr<BufferPool> pool_;
};

// Maps an S3 error reply to a Status with a one-line message "<what>: HTTP <n> <Code>: <msg>".
Status S3ErrorToStatus(const std::string& what, int http_status, const std::string& body,
                       net::Method method);

}  // namespace grin::s3
