#pragma once
// ObjectStore: the engine's port for durable object storage (S3, R2, MinIO, AWS, a local folder).
//
// Objects live in named buckets under keys; each carries user metadata (ASCII name/value pairs,
// at most ~2 KB in total, as S3 allows). Bodies are never held whole in memory: uploads read from a
// ByteSource by position, downloads stream into an ObjectSink (a restartable download body; the
// push interface between archive stages is engine/archive/sink.h's ByteSink).
//
// How the sync pipeline uploads one book (docs/architecture.md has the whole path; see
// docs/storage-layout.md for the keys):
//   1. it decrypts the archive and computes the plaintext's SHA-256 (and MD5 when asked) while the
//      bytes pass by (decrypt-then-commit); the plaintext is then either in memory (a streamed
//      book: a ByteSource over its chunk buffer) or in a staging file (a staged book: FileSource);
//   2. it calls Upload() with those digests; below UploadOptions::multipart_threshold (64 MiB by
//      default) that is one Put() that sends them (a signed payload SHA-256 and, if given,
//      Content-MD5 for S3, so the server verifies them; the S3 store then hashes nothing itself);
//      above it, a multipart upload (parts of ChoosePartSize(), 8 MiB and up) whose parts are
//      hashed one by one as they are read, once;
//   3. for multipart it passes a MultipartJournal: OnBegin() gets the upload id and part size,
//      OnPart() every part the server has acknowledged. The caller persists these (the sync
//      pipeline: in the job's checkpoint, engine/pipeline/checkpoint_journal.h). A resumed run
//      passes the recorded MultipartState back in UploadOptions::resume; the store reconciles it
//      with the server (ListParts) and uploads only the missing parts. If the server no longer
//      knows the upload, it starts a new one.
//   If no hashes are supplied, the store computes what it needs while the bytes pass by (never
//   by a second read; the S3 store: SHA-256 for buffered bodies, MD5 for streamed ones) and
//   checks what the server returns (ETag = MD5 for single PUTs, when the MD5 is known): kDataLoss.
//   PutResult's digests are those given or computed, "" otherwise.
//
// Errors: kNotFound (no such key, bucket or upload), kPermissionDenied (403: credentials,
// signature), kFailedPrecondition (412: If-None-Match and the key exists), kUnavailable
// (retryable: 5xx, SlowDown, timeouts, resets — after the store's own retries are used up),
// kDataLoss (digest mismatch, truncated body), kInvalidArgument (bad key, bad range).
// Error messages are one line and never contain secrets.
//
// Thread safety: every method may be called concurrently from any thread (the S3 store sends
// concurrent calls over one shared connection pool). A ByteSource must allow concurrent ReadAt().

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin {

// User metadata: names without the "x-amz-meta-" prefix, lower-case ASCII.
using ObjectMetadata = std::map<std::string, std::string>;

// A body read by position. ReadAt may be called concurrently for different ranges (multipart
// parts in parallel) and again for the same range (retries), so it must not consume anything.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Copies up to n bytes starting at offset into buf. Returns the number copied: 0 only when
  // offset >= size(). An error (e.g. kDataLoss if the file shrank) ends the upload.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const = 0;
  // For readers that only look at the bytes (a hash): hands [offset, offset + length) to fn in
  // order, in one or more pieces, without the copy ReadAt() makes, and returns true; fn's first
  // error ends it and is returned. Returns false, before calling fn, if the source cannot (the
  // default); the caller then uses ReadAt(). Like ReadAt(), may be called concurrently.
  virtual Result<bool> VisitInPlace(uint64_t offset, uint64_t length,
                                    const std::function<Status(std::string_view)>& fn) const {
    (void)offset, (void)length, (void)fn;
    return false;
  }
};

// Receives a downloaded body in order. Returning an error aborts the download with that error.
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  virtual Status Write(std::string_view data) = 0;
  // Discards everything written so far so a failed download can be retried from the start.
  // Returns false if the sink cannot (the default): a cut-off body is then reported as an error.
  virtual bool Restart() { return false; }
};

// A ByteSource over a file, read with pread(); the file must not change while in use (a file
// that shrinks reads short: kDataLoss). No VisitInPlace(): mapping the file would turn a file
// shrinking meanwhile into SIGBUS, and catching that needs a process-wide signal handler, which
// an embeddable library must not install; a read through a small cache-resident buffer costs
// ~0.05 CPU-s/GB more than hashing a mapping (measured on the benchmark machine).
class FileSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileSource>> Open(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  uint64_t size() const override { return size_; }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override;

 private:
  FileSource(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

// A ByteSource over bytes in memory (not copied: `data` must outlive the source).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override;
  Result<bool> VisitInPlace(uint64_t offset, uint64_t length,
                            const std::function<Status(std::string_view)>& fn) const override;

 private:
  std::string_view data_;
};

// An ObjectSink appending to a string (tests, small objects).
class StringObjectSink final : public ObjectSink {
 public:
  Status Write(std::string_view data) override {
    out_.append(data);
    return Status::Ok();
  }
  bool Restart() override {
    out_.clear();
    return true;
  }
  const std::string& str() const { return out_; }
  void clear() { out_.clear(); }

 private:
  std::string out_;
};

struct PutOptions {
  ObjectMetadata metadata;
  std::string content_type;  // "" = application/octet-stream
  // Digests of the whole body known in advance, lower-case hex, "" if unknown. For Put() the
  // store sends them so the server verifies them; for multipart they are checked only locally.
  std::string md5_hex;
  std::string sha256_hex;
  bool if_none_match = false;  // create-only: kFailedPrecondition if the key exists
};

struct PutResult {
  std::string etag;        // unquoted
  uint64_t size = 0;
  std::string md5_hex;     // of the whole body when known or computed, else ""
  std::string sha256_hex;  // of the whole body when known or computed, else ""
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;           // unquoted
  std::string last_modified;  // as the server sent it (HTTP date or ISO 8601), "" if unknown
  ObjectMetadata metadata;    // filled by Head() and Get(); List() leaves it empty
};

// A byte range [offset, offset + length); length 0 means "to the end".
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // in key order
  std::string next_token;           // "" when this is the last page
};

struct DeleteFailure {
  std::string key;
  Status status;
};

// Multipart upload state, as the caller records it between runs.
struct UploadedPart {
  int number = 0;   // 1-based
  uint64_t size = 0;
  std::string etag;  // unquoted
};

struct MultipartState {
  std::string upload_id;
  uint64_t part_size = 0;             // every part but the last has exactly this size (R2 rule)
  std::vector<UploadedPart> parts;   // acknowledged parts, any order
};

// Where Upload() reports multipart progress so the caller can persist it. Called from the
// uploading threads, possibly concurrently: implementations lock. An error from OnBegin/OnPart
// aborts the upload (the server-side upload is kept so a later run may resume it).
class MultipartJournal {
 public:
  virtual ~MultipartJournal() = default;
  virtual Status OnBegin(const std::string& bucket, const std::string& key,
                         const MultipartState& state) = 0;
  virtual Status OnPart(const std::string& bucket, const std::string& key,
                        const std::string& upload_id, const UploadedPart& part) = 0;
  // The upload completed or was aborted: forget its parts.
  virtual Status OnFinish(const std::string& bucket, const std::string& key,
                          const std::string& upload_id) = 0;
};

inline constexpr uint64_t kMiB = 1024 * 1024;
inline constexpr uint64_t kMinPartSize = 5 * kMiB;          // S3 minimum for non-last parts
inline constexpr uint64_t kMaxPartSize = 5 * 1024 * kMiB;   // S3 maximum part size
inline constexpr int kMaxParts = 10'000;
inline constexpr size_t kMaxDeleteBatch = 1000;             // DeleteObjects limit

struct UploadOptions {
  PutOptions put;
  // Bodies >= this go multipart. Measured (docs/benchmarks-history.md, Storage): with several
  // objects in flight, 50 MiB bodies as single PUTs reach the server's ceiling, while multipart
  // (8 MiB parts) costs a SHA-256 per part and the server's part bookkeeping, so it stays for
  // large bodies.
  uint64_t multipart_threshold = 64 * kMiB;
  uint64_t part_size = 0;                    // 0 = ChoosePartSize(size)
  int parallel_parts = 4;
  const MultipartState* resume = nullptr;    // a recorded upload to continue, or null
  MultipartJournal* journal = nullptr;       // may be null
  // If set, Upload() aborts a failed multipart upload instead of keeping it for resume.
  bool abort_on_failure = false;
};

// The smallest of 8, 16, 32, 64, ... MiB that keeps `size` within kMaxParts parts, so every
// non-final part has the same size (required by R2, fine everywhere).
uint64_t ChoosePartSize(uint64_t size);

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // A short description for logs and the CLI ("s3 https://host (path-style)", "local /dir").
  virtual std::string Describe() const = 0;

  // Creates the bucket if it does not exist (already owned by us = OK).
  virtual Status EnsureBucket(const std::string& bucket) = 0;
  // OK if the bucket exists and is accessible; kNotFound; kPermissionDenied.
  virtual Status HeadBucket(const std::string& bucket) = 0;

  // Stores the whole source as one object, replacing any existing one (unless if_none_match).
  virtual Result<PutResult> Put(const std::string& bucket, const std::string& key,
                                const ByteSource& body, const PutOptions& options) = 0;

  // Size, ETag and user metadata. kNotFound if the key does not exist.
  virtual Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) = 0;

  // Streams the object (or the range) into sink. Returns the object's info; size is the full
  // object size. kNotFound; kInvalidArgument for a range past the end.
  virtual Result<ObjectInfo> Get(const std::string& bucket, const std::string& key,
                                 ObjectSink& sink, std::optional<ByteRange> range = {}) = 0;

  // One page of keys starting with prefix, after continuation token `token` ("" = first page),
  // at most max_keys (<= 1000) keys.
  virtual Result<ListPage> List(const std::string& bucket, const std::string& prefix,
                                const std::string& token, int max_keys = 1000) = 0;

  // Deletes keys (batched by kMaxDeleteBatch). Missing keys are not failures. Returns the keys
  // the server refused, with why.
  virtual Result<std::vector<DeleteFailure>> DeleteMany(const std::string& bucket,
                                                        const std::vector<std::string>& keys) = 0;

  // --- Multipart primitives. Upload() drives them; callers rarely need them directly. ---
  virtual Result<std::string> BeginMultipart(const std::string& bucket, const std::string& key,
                                             const PutOptions& options) = 0;
  // Uploads bytes [offset, offset+length) of body as part `number`, hashing them as they are read.
  virtual Result<UploadedPart> UploadPart(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id, int number,
                                          const ByteSource& body, uint64_t offset,
                                          uint64_t length) = 0;
  // Parts the server holds for the upload. kNotFound if the upload is unknown (completed,
  // aborted or expired).
  virtual Result<std::vector<UploadedPart>> ListParts(const std::string& bucket,
                                                      const std::string& key,
                                                      const std::string& upload_id) = 0;
  virtual Result<PutResult> CompleteMultipart(const std::string& bucket, const std::string& key,
                                              const std::string& upload_id,
                                              std::vector<UploadedPart> parts,
                                              const PutOptions& options) = 0;
  virtual Status AbortMultipart(const std::string& bucket, const std::string& key,
                                const std::string& upload_id) = 0;

  // Stores body under key: one Put() below options.multipart_threshold, else a multipart upload
  // with options.parallel_parts parts in flight, resumable through options.resume/journal (see
  // the file comment). The default implementation uses the primitives above.
  virtual Result<PutResult> Upload(const std::string& bucket, const std::string& key,
                                   const ByteSource& body, const UploadOptions& options);

  // Removes what interrupted writes of earlier processes left in the bucket under prefix and
  // returns how many were removed: temporary objects a store writes before renaming them into
  // place (the local folder store's `.grin-tmp-*` files). Only temporaries whose writer is
  // clearly gone are removed (see the implementation); objects are never touched. Default: a
  // store without such temporaries removes nothing.
  virtual Result<int64_t> RemoveAbandonedTemporaries(const std::string& bucket,
                                                     const std::string& prefix) {
    (void)bucket, (void)prefix;
    return int64_t{0};
  }

  // Multipart uploads begun under prefix and neither completed nor aborted (all pages), so a
  // caller can abort the ones nothing will resume (AbortMultipart). Default: a store that
  // keeps no such uploads across processes lists none.
  struct PendingUpload {
    std::string key;
    std::string upload_id;
  };
  virtual Result<std::vector<PendingUpload>> ListPendingUploads(const std::string& bucket,
                                                                const std::string& prefix) {
    (void)bucket, (void)prefix;
    return std::vector<PendingUpload>{};
  }

  // Calls fn for every object under prefix, in key order, as List() describes them (key, size,
  // ETag; no user metadata), and stops at fn's first error, which it returns. The default follows
  // List()'s continuation tokens (one request per 1,000 keys on S3); a store that can list
  // everything in one pass (the local folder, whose List() walks the whole bucket per page)
  // overrides it. Verification and inventories of a million objects use this.
  virtual Status ForEachObject(const std::string& bucket, const std::string& prefix,
                               const std::function<Status(const ObjectInfo&)>& fn);

  // Lists every key under prefix (ForEachObject into a vector).
  Result<std::vector<ObjectInfo>> ListAll(const std::string& bucket, const std::string& prefix);
};

// ---------------------------------------------------------------------------------------------
// Object layout (docs/storage-layout.md). Keys do not depend on the run name, so renaming a run
// does not re-upload anything.

struct StorageLayout {
  std::string bucket_raw = "raw";
  std::string bucket_meta = "meta";
  std::string bucket_full = "full";
  std::string prefix;  // optional, e.g. "library-a"; joined with "/" before every key
};

struct ObjectLocation {
  std::string bucket;
  std::string key;
};

// raw/<BARCODE>/<BARCODE>.tar.gz (decrypted archive).
ObjectLocation RawArchiveLocation(const StorageLayout& layout, std::string_view barcode);
// full/<BARCODE>_ocr.jsonl.gz (OCR text, one JSON line per page).
ObjectLocation FullTextLocation(const StorageLayout& layout, std::string_view barcode);
// meta/books_latest.csv.gz.
ObjectLocation LatestCsvLocation(const StorageLayout& layout);
// meta/timestamped/<YYYYmmdd_HHMMSS>_<name>, e.g. name "books.csv.gz".
ObjectLocation TimestampedMetaLocation(const StorageLayout& layout, int64_t unix_micros,
                                       std::string_view name);
// meta/<name> for other run-level files (books_latest.db.gz, process_summary.json.gz).
ObjectLocation MetaLocation(const StorageLayout& layout, std::string_view name);

// User metadata written with a raw archive, as the reference tool writes it.
ObjectMetadata RawArchiveMetadata(std::string_view barcode, std::string_view encrypted_etag,
                                  std::string_view acquisition_date);
// User metadata written with an OCR file.
ObjectMetadata FullTextMetadata(std::string_view barcode, std::string_view acquisition_date,
                                int64_t page_count);

// Looks up user metadata by name, also under the name with '_' and '-' swapped: OpenStack
// Swift's s3api returns "encrypted-etag" for metadata set on a multipart upload as
// "encrypted_etag" (single PUTs keep the underscore, as AWS S3 always does). Null if absent.
const std::string* FindMetadata(const ObjectMetadata& metadata, std::string_view name);

// Checks a key: 1..1024 bytes, valid UTF-8, no NUL or other control characters.
Status ValidateObjectKey(std::string_view key);
// Checks user metadata: names [a-z0-9_-]+, values printable ASCII, total <= 2048 bytes.
Status ValidateMetadata(const ObjectMetadata& metadata);

}  // namespace grin
