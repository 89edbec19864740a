#pragma once
// FakeS3: an in-process S3 server on 127.0.0.1 (cpp-httplib) for what a real server cannot be
// made to do on demand: SlowDown bursts, 500s, truncated bodies, a skewed server clock,
// 200-with-Error on Complete, failing parts. It is strict where it matters for these tests:
// it verifies SigV4 (header auth, recomputed with our signer from the bytes on the wire, and the
// wire path/query must be canonical), the payload SHA-256, Content-MD5, that PUTs carry a
// Content-Length, and R2's equal-part rule on CompleteMultipartUpload.
//
// Thread safety: the server runs on its own threads; all public methods are thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace grin::testing {

class FakeS3 {
 public:
  struct Object {
    std::string data;
    std::map<std::string, std::string> meta;  // without the x-amz-meta- prefix
    std::string etag;
  };
  // A scripted fault, applied to the next `count` requests whose operation matches `op`
  // ("PUT", "GET", "HEAD", "UploadPart", "Complete", "List", "*").
  struct Fault {
    std::string op = "*";
    int count = 1;
    int status = 503;
    std::string code = "SlowDown";
    bool truncate = false;      // GET: promise the whole body, send half, close
    bool error_in_200 = false;  // Complete: 200 with an <Error> body
    int part_number = 0;        // UploadPart: only this part number (0 = any)
  };

  FakeS3(std::string access_key, std::string secret, std::string region = "us-east-1");
  ~FakeS3();
  FakeS3(const FakeS3&) = delete;
  FakeS3& operator=(const FakeS3&) = delete;

  std::string endpoint() const;  // "http://127.0.0.1:<port>"
  // Virtual-host style requests are recognised by a Host of "<bucket>.localhost:<port>": use
  // "http://localhost:<port>" as the endpoint with path-style addressing off.

  void AddFault(const Fault& f);
  // The server's clock runs this many seconds ahead of the real one (negative = behind).
  void SetClockOffsetSeconds(int64_t s) { clock_offset_s_ = s; }

  void CreateBucket(const std::string& b);
  bool GetObject(const std::string& bucket, const std::string& key, Object* out) const;

  // Counters by operation name (same names as Fault::op), and signature failures.
  int Count(const std::string& op) const;
  int signature_failures() const { return sig_failures_.load(); }
  std::vector<int> uploaded_part_numbers() const;  // every successful UploadPart, in order
  // The integrity headers of the last request of an operation ("" when absent or none yet).
  struct Integrity {
    std::string payload_hash;  // x-amz-content-sha256
    std::string content_md5;   // Content-MD5 (base64)
  };
  Integrity LastIntegrity(const std::string& op) const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> clock_offset_s_{0};
  std::atomic<int> sig_failures_{0};
  friend class Impl;
};

}  // namespace grin::testing
