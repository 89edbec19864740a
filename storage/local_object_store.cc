#include "storage/local_object_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/base/digest.h"
#include "engine/base/errno_status.h"

namespace grin::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMetaSuffix = ".grin-meta.json";
constexpr std::string_view kReservedPrefix = ".grin-";
constexpr size_t kChunk = 1 << 20;

Status Errno(const std::string& what) { return ErrnoStatus(errno, what); }

// A failed mkdir (std::filesystem reports errno values in the system category).
Status DirError(const std::string& what, const std::error_code& ec) {
  return ErrnoStatus(ec.value(), what);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status ValidateBucket(const std::string& bucket) {
  if (bucket.empty() || bucket.size() > 63 || bucket == "." || bucket == "..") {
    return Status::InvalidArgument("invalid bucket name");
  }
  for (char c : bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_';
    if (!ok) return Status::InvalidArgument("invalid bucket name: " + bucket);
  }
  if (bucket.rfind(kReservedPrefix, 0) == 0) return Status::InvalidArgument("reserved bucket");
  return Status::Ok();
}

Status ValidateLocalKey(const std::string& key) {
  GRIN_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (key.find('\\') != std::string::npos) {
    return Status::InvalidArgument("object key contains a backslash");
  }
  size_t i = 0;
  while (i <= key.size()) {
    size_t j = key.find('/', i);
    if (j == std::string::npos) j = key.size();
    std::string_view seg(key.data() + i, j - i);
    if (seg.empty() || seg == "." || seg == "..") {
      return Status::InvalidArgument("object key has an empty, '.' or '..' segment");
    }
    if (seg.substr(0, kReservedPrefix.size()) == kReservedPrefix || EndsWith(seg, kMetaSuffix)) {
      return Status::InvalidArgument("object key uses a reserved name");
    }
    if (seg.size() > 255) return Status::InvalidArgument("object key segment too long");
    i = j + 1;
  }
  return Status::Ok();
}

std::string RandomHex(int bytes) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (int i = 0; i < bytes * 2; ++i) hex.push_back(kHex[rng() & 15]);
  return hex;
}

// This host's name as it appears in temp file names.
const std::string& HostTag() {
  static const std::string tag = [] {
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::string h(host);
    for (char& c : h) {
      if (c == '/' || c == '-' || c == '@' || static_cast<unsigned char>(c) < 0x20) c = '_';
    }
    return h;
  }();
  return tag;
}

// "<pid>@<host>": who writes a temp file, so a later run can tell whether its writer is gone
// (the pid is read each time: a forked child is another writer).
std::string WriterIdentity() { return std::to_string(::getpid()) + "@" + HostTag(); }

constexpr std::string_view kTmpPrefix = ".grin-tmp-";

std::string TempPath(const std::string& dir) {
  return dir + "/" + std::string(kTmpPrefix) + WriterIdentity() + "-" + RandomHex(8);
}

// When process `pid` of this host started (seconds since the epoch), from /proc; nullopt if
// unknown. Pids are reused (pid_max is often 32768): a live process that started after a temp
// file was last written cannot be its writer.
std::optional<double> ProcessStartedAt(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(paren + 1));
  std::string field;
  // After "pid (comm)": state is field 3; starttime (clock ticks since boot) is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return std::nullopt;
  }
  static const double boot = [] {
    std::ifstream s("/proc/stat");
    std::string key;
    double value = -1;
    while (s >> key) {
      if (key == "btime") {
        s >> value;
        break;
      }
    }
    return value;
  }();
  long ticks = ::sysconf(_SC_CLK_TCK);
  if (boot < 0 || ticks <= 0) return std::nullopt;
  return boot + std::strtod(field.c_str(), nullptr) / static_cast<double>(ticks);
}

// True if a temp file named `name` (".grin-tmp-...") last written at `written` (seconds since
// the epoch) was written by a process of this host that no longer exists — or whose pid now
// belongs to a process started after that write. Names without a writer (older versions) or
// from other hosts: false.
bool WriterGone(std::string_view name, double written) {
  name.remove_prefix(kTmpPrefix.size());
  size_t at = name.find('@'), dash = name.rfind('-');
  if (at == std::string_view::npos || dash == std::string_view::npos || dash < at || at == 0) {
    return false;
  }
  std::string_view pid_text = name.substr(0, at);
  if (pid_text.find_first_not_of("0123456789") != std::string_view::npos || pid_text.size() > 10) {
    return false;
  }
  std::string_view host = name.substr(at + 1, dash - at - 1);
  if (host != HostTag()) return false;
  long long parsed = std::stoll(std::string(pid_text));
  if (parsed <= 0 || parsed > 0x7fffffff) return false;
  auto pid = static_cast<pid_t>(parsed);
  if (pid == ::getpid()) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  auto started = ProcessStartedAt(pid);
  return started && *started > written + 2;  // 2 s: the clocks' granularity and skew
}

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return Errno("fsync " + path);
  return Status::Ok();
}

// Writes bytes produced by `fill` into a temp file in `dir`, fsyncs it and renames it to
// `final_path` (no replace if no_replace). Removes the temp file on any failure.
template <typename Fill>
Status AtomicWrite(const std::string& dir, const std::string& final_path, bool no_replace,
                   Fill fill) {
  std::string tmp = TempPath(dir);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create " + tmp);
  auto write_all = [&](std::string_view data) -> Status {
    while (!data.empty()) {
      ssize_t w = ::write(fd, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write " + tmp);
      }
      data.remove_prefix(static_cast<size_t>(w));
    }
    return Status::Ok();
  };
  Status st = fill(write_all);
  if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync " + tmp);
  if (::close(fd) != 0 && st.ok()) st = Errno("close " + tmp);
  if (st.ok()) {
    int r = no_replace ? ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(),
                                     RENAME_NOREPLACE)
                       : ::rename(tmp.c_str(), final_path.c_str());
    if (r != 0) {
      st = errno == EEXIST ? Status::FailedPrecondition("object exists (If-None-Match)")
                           : Errno("rename to " + final_path);
    }
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncPath(dir, true);
}

Result<nlohmann::json> ReadMeta(const std::string& path) {
  std::ifstream in(path + std::string(kMetaSuffix));
  if (!in) return nlohmann::json::object();  // written by someone else: no metadata
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::DataLoss("corrupt metadata file " + path + std::string(kMetaSuffix));
  }
  return j;
}

ObjectInfo InfoFrom(const std::string& key, uint64_t size, const nlohmann::json& meta,
                    const struct stat& st) {
  ObjectInfo info;
  info.key = key;
  info.size = size;
  info.etag = meta.value("etag", std::string());
  char buf[64];
  struct tm tm {};
  time_t t = st.st_mtime;
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  info.last_modified = buf;
  if (auto it = meta.find("metadata"); it != meta.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) {
      if (v.is_string()) info.metadata[k] = v.get<std::string>();
    }
  }
  return info;
}

// Streams [0, size) of body into write_all while hashing; checks the expected digests.
template <typename WriteAll>
Status CopyHashed(const ByteSource& body, uint64_t offset, uint64_t length,
                  const PutOptions& options, PutResult* result, WriteAll& write_all) {
  Hasher md5(Hasher::Kind::kMd5), sha(Hasher::Kind::kSha256);
  std::string buf(kChunk, '\0');
  uint64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, length - done));
    auto n = body.ReadAt(offset + done, buf.data(), want);
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::DataLoss("source ended early");
    std::string_view chunk(buf.data(), *n);
    md5.Update(chunk);
    sha.Update(chunk);
    GRIN_RETURN_IF_ERROR(write_all(chunk));
    done += *n;
  }
  result->size = length;
  result->md5_hex = md5.FinalHex();
  result->sha256_hex = sha.FinalHex();
  result->etag = result->md5_hex;
  if (!options.md5_hex.empty() && options.md5_hex != result->md5_hex) {
    return Status::DataLoss("MD5 of the body does not match the expected digest");
  }
  if (!options.sha256_hex.empty() && options.sha256_hex != result->sha256_hex) {
    return Status::DataLoss("SHA-256 of the body does not match the expected digest");
  }
  return Status::Ok();
}

nlohmann::json MetaJson(const PutResult& r, const PutOptions& options) {
  nlohmann::json meta = {{"size", r.size},
                         {"etag", r.etag},
                         {"sha256", r.sha256_hex},
                         {"content_type", options.content_type},
                         {"metadata", nlohmann::json::object()}};
  for (const auto& [k, v] : options.metadata) meta["metadata"][k] = v;
  return meta;
}

}  // namespace

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Open(const std::string& base_path) {
  if (base_path.empty()) return Status::InvalidArgument("local storage needs a base path");
  std::error_code ec;
  fs::create_directories(base_path, ec);
  auto canon = fs::canonical(base_path, ec);
  if (ec) return Status::InvalidArgument("storage path " + base_path + ": " + ec.message());
  if (!fs::is_directory(canon)) return Status::InvalidArgument("not a directory: " + base_path);
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(canon.string()));
}

std::string LocalObjectStore::Describe() const { return "local " + base_; }

Result<std::string> LocalObjectStore::BucketPath(const std::string& bucket) const {
  GRIN_RETURN_IF_ERROR(ValidateBucket(bucket));
  return base_ + "/" + bucket;
}

Result<std::string> LocalObjectStore::PathFor(const std::string& bucket,
                                              const std::string& key) const {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  GRIN_RETURN_IF_ERROR(ValidateLocalKey(key));
  std::string path = dir + "/" + key;
  // Lexically the path stays inside; a symlink on the way could still lead out.
  std::error_code ec;
  auto resolved = fs::weakly_canonical(path, ec);
  if (ec) return Status::InvalidArgument("cannot resolve object path");
  std::string r = resolved.string();
  if (r.compare(0, dir.size() + 1, dir + "/") != 0) {
    return Status::InvalidArgument("object key resolves outside its bucket");
  }
  return path;
}

Result<std::string> LocalObjectStore::UploadDir(const std::string& upload_id) const {
  if (upload_id.size() != 32 ||
      upload_id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::NotFound("unknown upload id");
  }
  return base_ + "/.grin-multipart/" + upload_id;
}

Status LocalObjectStore::EnsureBucket(const std::string& bucket) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return DirError("create bucket " + bucket, ec);
  return Status::Ok();
}

Status LocalObjectStore::HeadBucket(const std::string& bucket) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  if (!fs::is_directory(dir)) return Status::NotFound("no such bucket: " + bucket);
  return Status::Ok();
}

Result<PutResult> LocalObjectStore::Put(const std::string& bucket, const std::string& key,
                                        const ByteSource& body, const PutOptions& options) {
  GRIN_RETURN_IF_ERROR(ValidateMetadata(options.metadata));
  GRIN_ASSIGN_OR_RETURN(std::string path, PathFor(bucket, key));
  GRIN_RETURN_IF_ERROR(HeadBucket(bucket));
  std::string dir = fs::path(path).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return DirError("create " + dir, ec);
  if (options.if_none_match && fs::exists(path)) {
    return Status::FailedPrecondition("object exists (If-None-Match): " + key);
  }
  // The data goes to a temp file first; the metadata file is renamed into place only once the
  // data is known good, then the data is renamed.
  PutResult result;
  std::string data_tmp = TempPath(dir);
  Status st = AtomicWrite(dir, data_tmp, true, [&](auto& write_all) {
    return CopyHashed(body, 0, body.size(), options, &result, write_all);
  });
  if (!st.ok()) return st;
  std::string meta_text = MetaJson(result, options).dump();
  st = AtomicWrite(dir, path + std::string(kMetaSuffix), false,
                   [&](auto& write_all) { return write_all(meta_text); });
  if (st.ok()) {
    int r = options.if_none_match ? ::renameat2(AT_FDCWD, data_tmp.c_str(), AT_FDCWD,
                                                path.c_str(), RENAME_NOREPLACE)
                                  : ::rename(data_tmp.c_str(), path.c_str());
    if (r != 0) {
      st = errno == EEXIST ? Status::FailedPrecondition("object exists (If-None-Match): " + key)
                           : Errno("rename to " + path);
    }
  }
  if (!st.ok()) {
    ::unlink(data_tmp.c_str());
    return st;
  }
  GRIN_RETURN_IF_ERROR(FsyncPath(dir, true));
  return result;
}

Result<ObjectInfo> LocalObjectStore::Head(const std::string& bucket, const std::string& key) {
  GRIN_ASSIGN_OR_RETURN(std::string path, PathFor(bucket, key));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::NotFound("no such key: " + key);
  }
  GRIN_ASSIGN_OR_RETURN(nlohmann::json meta, ReadMeta(path));
  return InfoFrom(key, static_cast<uint64_t>(st.st_size), meta, st);
}

Result<ObjectInfo> LocalObjectStore::Get(const std::string& bucket, const std::string& key,
                                         ObjectSink& sink, std::optional<ByteRange> range) {
  GRIN_ASSIGN_OR_RETURN(ObjectInfo info, Head(bucket, key));
  GRIN_ASSIGN_OR_RETURN(std::string path, PathFor(bucket, key));
  GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(path));
  uint64_t offset = 0, length = src->size();
  if (range) {
    if (range->offset >= src->size() && !(range->offset == 0 && src->size() == 0)) {
      return Status::InvalidArgument("range starts past the end of " + key);
    }
    offset = range->offset;
    length = src->size() - offset;
    if (range->length != 0) length = std::min(length, range->length);
  }
  std::string buf(kChunk, '\0');
  uint64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, length - done));
    GRIN_ASSIGN_OR_RETURN(size_t n, src->ReadAt(offset + done, buf.data(), want));
    if (n == 0) return Status::DataLoss("file shrank while being read: " + key);
    GRIN_RETURN_IF_ERROR(sink.Write(std::string_view(buf.data(), n)));
    done += n;
  }
  info.size = src->size();
  return info;
}

Result<int64_t> LocalObjectStore::RemoveAbandonedTemporaries(const std::string& bucket,
                                                             const std::string& prefix) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  if (!fs::is_directory(dir)) return int64_t{0};
  // The directories keys under prefix live in: prefix up to its last '/'.
  size_t slash = prefix.rfind('/');
  std::string within = slash == std::string::npos ? "" : prefix.substr(0, slash + 1);
  const auto now = fs::file_time_type::clock::now();
  int64_t removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::string name = it->path().filename().string();
    if (name.rfind(kTmpPrefix, 0) != 0) continue;
    std::string rel = it->path().string().substr(dir.size() + 1);
    if (rel.compare(0, within.size(), within) != 0) continue;
    auto age = now - it->last_write_time(fec);
    bool old = !fec && age > std::chrono::seconds(kAbandonedAfterSeconds);
    struct stat st {};
    double written = ::stat(it->path().c_str(), &st) == 0
                         ? static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9
                         : 0;
    if (!WriterGone(name, written) && !old) continue;
    if (fs::remove(it->path(), fec)) ++removed;
  }
  if (ec) return Status::Internal("scan " + bucket + " for temporary files: " + ec.message());
  return removed;
}

Result<ListPage> LocalObjectStore::List(const std::string& bucket, const std::string& prefix,
                                        const std::string& token, int max_keys) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  if (!fs::is_directory(dir)) return Status::NotFound("no such bucket: " + bucket);
  max_keys = std::clamp(max_keys, 1, 1000);
  // A directory walk is O(objects) per page; fine for a local folder of books, and simple.
  std::vector<std::string> keys;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string name = it->path().filename().string();
    if (name.rfind(kReservedPrefix, 0) == 0 || EndsWith(name, kMetaSuffix)) continue;
    std::string key = it->path().string().substr(dir.size() + 1);
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    if (!token.empty() && key <= token) continue;
    keys.push_back(std::move(key));
  }
  if (ec) return Status::Internal("list " + bucket + ": " + ec.message());
  std::sort(keys.begin(), keys.end());
  ListPage page;
  for (const std::string& key : keys) {
    if (static_cast<int>(page.objects.size()) == max_keys) {
      page.next_token = page.objects.back().key;  // start-after semantics
      break;
    }
    std::string path = dir + "/" + key;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // deleted meanwhile
    auto meta = ReadMeta(path);
    ObjectInfo info = InfoFrom(key, static_cast<uint64_t>(st.st_size),
                               meta.ok() ? *meta : nlohmann::json::object(), st);
    info.metadata.clear();
    page.objects.push_back(std::move(info));
  }
  return page;
}

Status LocalObjectStore::ForEachObject(const std::string& bucket, const std::string& prefix,
                                       const std::function<Status(const ObjectInfo&)>& fn) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  if (!fs::is_directory(dir)) return Status::NotFound("no such bucket: " + bucket);
  // Only the folder the prefix reaches into is walked: prefix up to its last '/'.
  size_t slash = prefix.rfind('/');
  std::string within = slash == std::string::npos ? "" : prefix.substr(0, slash);
  std::string root = within.empty() ? dir : dir + "/" + within;
  if (!within.empty()) {
    GRIN_RETURN_IF_ERROR(ValidateObjectKey(within));
    if (!fs::is_directory(root)) return Status::Ok();
  }
  std::vector<std::string> keys;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::string name = it->path().filename().string();
    if (name.rfind(kReservedPrefix, 0) == 0 || EndsWith(name, kMetaSuffix)) continue;
    std::string key = it->path().string().substr(dir.size() + 1);
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    keys.push_back(std::move(key));
  }
  if (ec) return Status::Internal("list " + bucket + ": " + ec.message());
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    std::string path = dir + "/" + key;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // deleted meanwhile
    auto meta = ReadMeta(path);
    ObjectInfo info = InfoFrom(key, static_cast<uint64_t>(st.st_size),
                               meta.ok() ? *meta : nlohmann::json::object(), st);
    info.metadata.clear();
    GRIN_RETURN_IF_ERROR(fn(info));
  }
  return Status::Ok();
}

Result<std::vector<DeleteFailure>> LocalObjectStore::DeleteMany(
    const std::string& bucket, const std::vector<std::string>& keys) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, BucketPath(bucket));
  std::vector<DeleteFailure> failures;
  for (const std::string& key : keys) {
    auto path = PathFor(bucket, key);
    if (!path.ok()) {
      failures.push_back({key, path.status()});
      continue;
    }
    if (::unlink(path->c_str()) != 0 && errno != ENOENT) {
      failures.push_back({key, Errno("delete " + key)});
      continue;
    }
    ::unlink((*path + std::string(kMetaSuffix)).c_str());
    // Remove directories the key emptied, never the bucket itself.
    fs::path p = fs::path(*path).parent_path();
    while (p.string().size() > dir.size() && ::rmdir(p.c_str()) == 0) p = p.parent_path();
  }
  return failures;
}

Result<std::string> LocalObjectStore::BeginMultipart(const std::string& bucket,
                                                     const std::string& key,
                                                     const PutOptions& options) {
  GRIN_RETURN_IF_ERROR(ValidateMetadata(options.metadata));
  GRIN_ASSIGN_OR_RETURN(std::string path, PathFor(bucket, key));
  (void)path;
  std::string id = RandomHex(16);
  GRIN_ASSIGN_OR_RETURN(std::string dir, UploadDir(id));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return DirError("create " + dir, ec);
  nlohmann::json meta = {{"bucket", bucket}, {"key", key}};
  std::string text = meta.dump();
  GRIN_RETURN_IF_ERROR(AtomicWrite(dir, dir + "/upload.json", false,
                                   [&](auto& write_all) { return write_all(text); }));
  return id;
}

Result<UploadedPart> LocalObjectStore::UploadPart(const std::string& bucket,
                                                  const std::string& key,
                                                  const std::string& upload_id, int number,
                                                  const ByteSource& body, uint64_t offset,
                                                  uint64_t length) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, UploadDir(upload_id));
  if (!fs::exists(dir + "/upload.json")) return Status::NotFound("unknown upload id");
  if (number < 1 || number > kMaxParts) return Status::InvalidArgument("bad part number");
  (void)bucket;
  (void)key;
  PutResult r;
  PutOptions none;
  GRIN_RETURN_IF_ERROR(AtomicWrite(dir, dir + "/part-" + std::to_string(number), false,
                                   [&](auto& write_all) {
                                     return CopyHashed(body, offset, length, none, &r, write_all);
                                   }));
  return UploadedPart{number, r.size, r.etag};
}

Result<std::vector<UploadedPart>> LocalObjectStore::ListParts(const std::string& bucket,
                                                              const std::string& key,
                                                              const std::string& upload_id) {
  (void)bucket;
  (void)key;
  GRIN_ASSIGN_OR_RETURN(std::string dir, UploadDir(upload_id));
  if (!fs::exists(dir + "/upload.json")) return Status::NotFound("unknown upload id");
  std::vector<UploadedPart> parts;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) != 0) continue;
    GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(e.path().string()));
    Hasher md5(Hasher::Kind::kMd5);
    std::string buf(kChunk, '\0');
    for (uint64_t off = 0; off < src->size();) {
      GRIN_ASSIGN_OR_RETURN(size_t n, src->ReadAt(off, buf.data(), buf.size()));
      md5.Update(buf.data(), n);
      off += n;
    }
    parts.push_back({std::stoi(name.substr(5)), src->size(), md5.FinalHex()});
  }
  std::sort(parts.begin(), parts.end(),
            [](const UploadedPart& a, const UploadedPart& b) { return a.number < b.number; });
  return parts;
}

namespace {

// A ByteSource that reads the concatenation of part files.
class ConcatSource final : public ByteSource {
 public:
  std::vector<std::unique_ptr<FileSource>> parts;
  uint64_t size() const override {
    uint64_t s = 0;
    for (const auto& p : parts) s += p->size();
    return s;
  }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    for (const auto& p : parts) {
      if (offset < p->size()) return p->ReadAt(offset, buf, n);
      offset -= p->size();
    }
    return size_t{0};
  }
};

}  // namespace

Result<PutResult> LocalObjectStore::CompleteMultipart(const std::string& bucket,
                                                      const std::string& key,
                                                      const std::string& upload_id,
                                                      std::vector<UploadedPart> parts,
                                                      const PutOptions& options) {
  GRIN_ASSIGN_OR_RETURN(std::string dir, UploadDir(upload_id));
  if (!fs::exists(dir + "/upload.json")) return Status::NotFound("unknown upload id");
  ConcatSource src;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].number != static_cast<int>(i) + 1) {
      return Status::InvalidArgument("parts must be numbered 1..N without gaps");
    }
    GRIN_ASSIGN_OR_RETURN(auto f, FileSource::Open(dir + "/part-" + std::to_string(i + 1)));
    if (f->size() != parts[i].size) return Status::InvalidArgument("part size mismatch");
    src.parts.push_back(std::move(f));
  }
  GRIN_ASSIGN_OR_RETURN(PutResult r, Put(bucket, key, src, options));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

Status LocalObjectStore::AbortMultipart(const std::string& bucket, const std::string& key,
                                        const std::string& upload_id) {
  (void)bucket;
  (void)key;
  GRIN_ASSIGN_OR_RETURN(std::string dir, UploadDir(upload_id));
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Status::Internal("abort upload: " + ec.message());
  return Status::Ok();
}

Result<PutResult> LocalObjectStore::Upload(const std::string& bucket, const std::string& key,
                                           const ByteSource& body, const UploadOptions& options) {
  return Put(bucket, key, body, options.put);
}

}  // namespace grin::storage
