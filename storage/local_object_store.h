#pragma once
// LocalObjectStore: the ObjectStore port on a local folder.
//
// Layout: <base>/<bucket>/<key> holds the bytes; <base>/<bucket>/<key>.grin-meta.json beside it
// holds {"size", "etag" (MD5 hex), "sha256", "content_type", "metadata"}. Keys map to paths
// segment by segment; a key is refused (kInvalidArgument) if it could escape its bucket: empty,
// "." or ".." segments, a leading '/', "//", a backslash, a control character, a reserved name
// (*.grin-meta.json, .grin-*) or a path that resolves through a symlink outside the base.
//
// Writes are atomic per file: data goes to a temp file in the target directory, is fsync'ed and
// renamed over the key, and the directory is fsync'ed; the metadata file is written the same way
// first. A crash leaves the old object or the new one, never a torn file; at worst a stray
// .grin-tmp-<pid>@<host>-<random> file, which List() ignores and RemoveAbandonedTemporaries()
// removes once its writer is gone (the sync does so at its start).
// A concurrent reader may see new metadata with the old bytes for an instant; Head() reports the
// data file's real size.
//
// Multipart uploads stage parts under <base>/.grin-multipart/<upload id>/ and Complete()
// concatenates them into one atomic write. Upload() skips multipart entirely: a local copy gains
// nothing from parts.
//
// Thread safety: all methods may be called concurrently; two writers of one key race, and the
// last rename wins (as with S3).

#include <string>

#include "engine/object_store.h"

namespace grin::storage {

class LocalObjectStore final : public ObjectStore {
 public:
  // base_path must exist or be creatable. Buckets are its subdirectories.
  static Result<std::unique_ptr<LocalObjectStore>> Open(const std::string& base_path);

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
  // One walk of the folders under prefix (List() walks the whole bucket for every page).
  Status ForEachObject(const std::string& bucket, const std::string& prefix,
                       const std::function<Status(const ObjectInfo&)>& fn) override;
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
  Result<PutResult> Upload(const std::string& bucket, const std::string& key,
                           const ByteSource& body, const UploadOptions& options) override;

  // Removes `.grin-tmp-*` files under prefix whose writer is clearly gone: written by a process
  // of this host (pid and host name in the file name) that no longer exists, or, whoever wrote
  // it (another host sharing the folder, an older name without a pid), untouched for
  // kAbandonedAfterSeconds. A live writer's temp file is never removed.
  Result<int64_t> RemoveAbandonedTemporaries(const std::string& bucket,
                                             const std::string& prefix) override;
  static constexpr int64_t kAbandonedAfterSeconds = 24 * 3600;

  // The file a key is stored in, after validation (tests and the CLI).
  Result<std::string> PathFor(const std::string& bucket, const std::string& key) const;

 private:
  explicit LocalObjectStore(std::string base) : base_(std::move(base)) {}
  Result<std::string> BucketPath(const std::string& bucket) const;
  Result<std::string> UploadDir(const std::string& upload_id) const;

  std::string base_;  // canonical, no trailing slash
};

}  // namespace grin::storage
