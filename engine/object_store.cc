#include "engine/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

namespace grin {

// ---------------------------------------------------------------------------------------------
// Sources.

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    std::string m = "open " + path + ": " + std::strerror(e);
    if (e == ENOENT) return Status::NotFound(m);
    if (e == EACCES) return Status::PermissionDenied(m);
    return Status::Internal(m);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("not a regular file: " + path);
  }
  return std::unique_ptr<FileSource>(new FileSource(fd, static_cast<uint64_t>(st.st_size)));
}

FileSource::~FileSource() { ::close(fd_); }

Result<size_t> FileSource::ReadAt(uint64_t offset, char* buf, size_t n) const {
  if (offset >= size_) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Internal(std::string("pread: ") + std::strerror(errno));
    }
    if (r == 0) return Status::DataLoss("file shrank while being uploaded");
    done += static_cast<size_t>(r);
  }
  return done;
}

Result<bool> MemorySource::VisitInPlace(uint64_t offset, uint64_t length,
                                        const std::function<Status(std::string_view)>& fn) const {
  if (offset > data_.size() || length > data_.size() - offset) {
    return Status::DataLoss("read beyond the end of the data");
  }
  if (length == 0) return true;
  GRIN_RETURN_IF_ERROR(fn(data_.substr(static_cast<size_t>(offset), static_cast<size_t>(length))));
  return true;
}

Result<size_t> MemorySource::ReadAt(uint64_t offset, char* buf, size_t n) const {
  if (offset >= data_.size()) return size_t{0};
  size_t k = std::min<size_t>(n, data_.size() - static_cast<size_t>(offset));
  std::memcpy(buf, data_.data() + offset, k);
  return k;
}

// ---------------------------------------------------------------------------------------------
// Multipart driver.

uint64_t ChoosePartSize(uint64_t size) {
  uint64_t part = 8 * kMiB;
  while (part < kMaxPartSize && (size + part - 1) / part > static_cast<uint64_t>(kMaxParts)) {
    part *= 2;
  }
  return std::min(part, kMaxPartSize);
}

namespace {

uint64_t PartLength(uint64_t total, uint64_t part_size, int number) {
  uint64_t start = static_cast<uint64_t>(number - 1) * part_size;
  return std::min(part_size, total - start);
}

}  // namespace

Result<PutResult> ObjectStore::Upload(const std::string& bucket, const std::string& key,
                                      const ByteSource& body, const UploadOptions& options) {
  const uint64_t size = body.size();
  if (size < options.multipart_threshold && options.resume == nullptr) {
    return Put(bucket, key, body, options.put);
  }
  MultipartState state;
  std::vector<UploadedPart> kept;
  bool resumed = false;
  if (options.resume != nullptr && !options.resume->upload_id.empty()) {
    const MultipartState& r = *options.resume;
    auto listed = ListParts(bucket, key, r.upload_id);
    if (listed.ok() && r.part_size >= kMinPartSize) {
      resumed = true;
      state.upload_id = r.upload_id;
      state.part_size = r.part_size;
      const int n = static_cast<int>((size + r.part_size - 1) / r.part_size);
      // Keep a server part only if its size is what this body needs and, when we recorded an
      // ETag for it, the ETags agree: anything else is re-sent.
      for (const UploadedPart& p : *listed) {
        if (p.number < 1 || p.number > n) continue;
        if (p.size != PartLength(size, r.part_size, p.number)) continue;
        auto rec = std::find_if(r.parts.begin(), r.parts.end(),
                                [&](const UploadedPart& q) { return q.number == p.number; });
        if (rec != r.parts.end() && !rec->etag.empty() && rec->etag != p.etag) continue;
        kept.push_back(p);
      }
    } else if (!listed.ok() && listed.status().code() != StatusCode::kNotFound) {
      return listed.status().WithContext("resume " + key);
    } else if (options.journal != nullptr) {
      // The server forgot the upload (completed, aborted or expired): start again.
      GRIN_RETURN_IF_ERROR(options.journal->OnFinish(bucket, key, r.upload_id));
    }
  }
  if (!resumed) {
    state.part_size = options.part_size != 0 ? options.part_size : ChoosePartSize(size);
    if (state.part_size < kMinPartSize && size > state.part_size) {
      return Status::InvalidArgument("part size below the 5 MiB S3 minimum");
    }
    GRIN_ASSIGN_OR_RETURN(state.upload_id, BeginMultipart(bucket, key, options.put));
    if (options.journal != nullptr) {
      GRIN_RETURN_IF_ERROR(options.journal->OnBegin(bucket, key, state));
    }
  }
  const int n_parts =
      size == 0 ? 1 : static_cast<int>((size + state.part_size - 1) / state.part_size);
  if (n_parts > kMaxParts) return Status::InvalidArgument("too many parts");

  std::vector<int> todo;
  for (int i = 1; i <= n_parts; ++i) {
    bool have = std::any_of(kept.begin(), kept.end(),
                            [&](const UploadedPart& p) { return p.number == i; });
    if (!have) todo.push_back(i);
  }

  std::mutex mu;
  std::vector<UploadedPart> done = kept;
  Status first_error;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= todo.size() || failed.load()) return;
      const int number = todo[i];
      const uint64_t offset = static_cast<uint64_t>(number - 1) * state.part_size;
      const uint64_t length = size == 0 ? 0 : PartLength(size, state.part_size, number);
      auto part = UploadPart(bucket, key, state.upload_id, number, body, offset, length);
      Status st = part.status();
      if (part.ok() && options.journal != nullptr) {
        st = options.journal->OnPart(bucket, key, state.upload_id, *part);
      }
      std::lock_guard<std::mutex> l(mu);
      if (!st.ok()) {
        if (first_error.ok()) first_error = st;
        failed = true;
        return;
      }
      done.push_back(*part);
    }
  };
  const int threads = std::clamp(options.parallel_parts, 1, 64);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads && t < static_cast<int>(todo.size()); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  if (first_error.ok()) {
    std::sort(done.begin(), done.end(),
              [](const UploadedPart& a, const UploadedPart& b) { return a.number < b.number; });
    auto result = CompleteMultipart(bucket, key, state.upload_id, done, options.put);
    if (result.ok()) {
      if (options.journal != nullptr) {
        GRIN_RETURN_IF_ERROR(options.journal->OnFinish(bucket, key, state.upload_id));
      }
      result->size = size;
      if (result->md5_hex.empty()) result->md5_hex = options.put.md5_hex;
      if (result->sha256_hex.empty()) result->sha256_hex = options.put.sha256_hex;
      return result;
    }
    first_error = result.status();
  }
  if (options.abort_on_failure) {
    (void)AbortMultipart(bucket, key, state.upload_id);
    if (options.journal != nullptr) {
      (void)options.journal->OnFinish(bucket, key, state.upload_id);
    }
  }
  return first_error.WithContext("multipart upload of " + key);
}

Status ObjectStore::ForEachObject(const std::string& bucket, const std::string& prefix,
                                  const std::function<Status(const ObjectInfo&)>& fn) {
  std::string token;
  for (;;) {
    GRIN_ASSIGN_OR_RETURN(ListPage page, List(bucket, prefix, token, 1000));
    for (const auto& o : page.objects) GRIN_RETURN_IF_ERROR(fn(o));
    if (page.next_token.empty()) break;
    if (page.next_token == token) return Status::Internal("list: continuation token repeated");
    token = page.next_token;
  }
  return Status::Ok();
}

Result<std::vector<ObjectInfo>> ObjectStore::ListAll(const std::string& bucket,
                                                     const std::string& prefix) {
  std::vector<ObjectInfo> all;
  GRIN_RETURN_IF_ERROR(ForEachObject(bucket, prefix, [&all](const ObjectInfo& o) {
    all.push_back(o);
    return Status::Ok();
  }));
  return all;
}

// ---------------------------------------------------------------------------------------------
// Layout.

namespace {

std::string Prefixed(const StorageLayout& layout, std::string_view key) {
  if (layout.prefix.empty()) return std::string(key);
  std::string p = layout.prefix;
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return std::string(key);
  return p + "/" + std::string(key);
}

}  // namespace

ObjectLocation RawArchiveLocation(const StorageLayout& layout, std::string_view barcode) {
  std::string b(barcode);
  return {layout.bucket_raw, Prefixed(layout, b + "/" + b + ".tar.gz")};
}

ObjectLocation FullTextLocation(const StorageLayout& layout, std::string_view barcode) {
  return {layout.bucket_full, Prefixed(layout, std::string(barcode) + "_ocr.jsonl.gz")};
}

ObjectLocation LatestCsvLocation(const StorageLayout& layout) {
  return {layout.bucket_meta, Prefixed(layout, "books_latest.csv.gz")};
}

ObjectLocation TimestampedMetaLocation(const StorageLayout& layout, int64_t unix_micros,
                                       std::string_view name) {
  time_t t = static_cast<time_t>(unix_micros / 1'000'000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y%m%d_%H%M%S", &tm);
  return {layout.bucket_meta,
          Prefixed(layout, std::string("timestamped/") + ts + "_" + std::string(name))};
}

ObjectLocation MetaLocation(const StorageLayout& layout, std::string_view name) {
  return {layout.bucket_meta, Prefixed(layout, name)};
}

ObjectMetadata RawArchiveMetadata(std::string_view barcode, std::string_view encrypted_etag,
                                  std::string_view acquisition_date) {
  std::string etag(encrypted_etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);  // stored unquoted, as the reference tool does
  }
  return {{"barcode", std::string(barcode)},
          {"encrypted_etag", etag},
          {"acquisition_date", std::string(acquisition_date)},
          {"original_filename", std::string(barcode) + ".tar.gz.gpg"}};
}

ObjectMetadata FullTextMetadata(std::string_view barcode, std::string_view acquisition_date,
                                int64_t page_count) {
  return {{"barcode", std::string(barcode)},
          {"acquisition_date", std::string(acquisition_date)},
          {"page_count", std::to_string(page_count)}};
}

const std::string* FindMetadata(const ObjectMetadata& metadata, std::string_view name) {
  if (auto it = metadata.find(std::string(name)); it != metadata.end()) return &it->second;
  std::string alt(name);
  for (char& c : alt) {
    if (c == '_') c = '-';
    else if (c == '-') c = '_';
  }
  if (auto it = metadata.find(alt); it != metadata.end()) return &it->second;
  return nullptr;
}

Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("empty object key");
  if (key.size() > 1024) return Status::InvalidArgument("object key longer than 1024 bytes");
  size_t i = 0;
  while (i < key.size()) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("object key contains a control character");
    }
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0) return Status::InvalidArgument("object key is not valid UTF-8");
    for (int k = 1; k <= extra; ++k) {
      if (i + static_cast<size_t>(k) >= key.size() ||
          (static_cast<unsigned char>(key[i + static_cast<size_t>(k)]) >> 6) != 2) {
        return Status::InvalidArgument("object key is not valid UTF-8");
      }
    }
    i += 1 + static_cast<size_t>(extra);
  }
  return Status::Ok();
}

Status ValidateMetadata(const ObjectMetadata& metadata) {
  size_t total = 0;
  for (const auto& [name, value] : metadata) {
    if (name.empty()) return Status::InvalidArgument("empty metadata name");
    for (char c : name) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!ok) return Status::InvalidArgument("metadata name must match [a-z0-9_-]+: " + name);
    }
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return Status::InvalidArgument("metadata value for " + name +
                                       " must be printable ASCII");
      }
    }
    total += name.size() + value.size();
  }
  if (total > 2048) return Status::InvalidArgument("user metadata larger than 2048 bytes");
  return Status::Ok();
}

}  // namespace grin
