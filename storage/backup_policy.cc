#include "storage/backup_policy.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/base/clock.h"
#include "storage/books_export.h"

namespace grin::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrefix = "books_backup_";
constexpr const char* kSuffix = ".db.gz";
constexpr const char* kLatest = "books_latest.db.gz";

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// books_backup_<YYYYmmdd_HHMMSS>[_<N>books].db.gz
bool ParseName(const std::string& name, LocalBackup* out) {
  std::string_view n = name;
  if (n.size() < 13 + 15 + 6 || n.substr(0, 13) != kPrefix ||
      n.substr(n.size() - 6) != kSuffix) {
    return false;
  }
  std::string_view mid = n.substr(13, n.size() - 13 - 6);
  std::string_view stamp = mid.substr(0, 15);
  if (!AllDigits(stamp.substr(0, 8)) || stamp[8] != '_' || !AllDigits(stamp.substr(9, 6))) {
    return false;
  }
  std::string_view rest = mid.substr(15);
  out->stamp = std::string(stamp);
  out->books = -1;
  if (rest.empty()) return true;
  if (rest.size() < 7 || rest[0] != '_' || rest.substr(rest.size() - 5) != "books") return false;
  std::string_view count = rest.substr(1, rest.size() - 6);
  if (!AllDigits(count) || count.size() > 15) return false;
  out->books = std::stoll(std::string(count));
  return true;
}

// Writes a downloaded body to a file.
class FileSink final : public ObjectSink {
 public:
  explicit FileSink(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {}
  bool ok() const { return static_cast<bool>(out_); }
  Status Write(std::string_view data) override {
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    return out_ ? Status::Ok() : Status::NoSpace(path_ + ": write failed (disk full?)");
  }
  bool Restart() override {
    out_.close();
    out_.open(path_, std::ios::binary | std::ios::trunc);
    return static_cast<bool>(out_);
  }
  Status Close() {
    out_.close();
    return out_ ? Status::Ok() : Status::NoSpace(path_ + ": write failed (disk full?)");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

Status PutFile(ObjectStore& store, const ObjectLocation& loc, const std::string& path,
               int64_t books) {
  GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(path));
  PutOptions po;
  po.content_type = "application/gzip";
  if (books >= 0) po.metadata["books"] = std::to_string(books);
  auto r = store.Put(loc.bucket, loc.key, *src, po);
  return r.ok() ? Status::Ok() : r.status().WithContext("uploading " + loc.bucket + "/" + loc.key);
}

}  // namespace

std::string BackupStamp(int64_t unix_micros) {
  std::string iso = FormatIsoUtc(unix_micros);  // 2026-11-28T21:02:20Z
  std::string out;
  for (char c : iso) {
    if (c == '-' || c == ':' || c == 'Z') continue;
    out += c == 'T' ? '_' : c;
  }
  return out;  // 20261128_210220
}

Result<LocalBackup> MakeLocalBackup(const std::string& db_path, const std::string& dir,
                                    int64_t now_micros) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::PermissionDenied(dir + ": cannot create the backups folder (" + ec.message() + ")");
  LocalBackup b;
  b.stamp = BackupStamp(now_micros);
  std::string tmp = (fs::path(dir) / (std::string(kPrefix) + b.stamp + ".partial")).string();
  GRIN_RETURN_IF_ERROR(BackupDatabaseGz(db_path, tmp, &b.books));
  b.path = (fs::path(dir) / (std::string(kPrefix) + b.stamp + "_" + std::to_string(b.books) +
                             "books" + kSuffix)).string();
  if (std::rename(tmp.c_str(), b.path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::PermissionDenied(b.path + ": cannot write the backup");
  }
  return b;
}

std::vector<LocalBackup> ListLocalBackups(const std::string& dir) {
  std::vector<LocalBackup> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    LocalBackup b;
    if (!e.is_regular_file(ec) || !ParseName(e.path().filename().string(), &b)) continue;
    b.path = e.path().string();
    out.push_back(std::move(b));
  }
  std::sort(out.begin(), out.end(), [](const LocalBackup& a, const LocalBackup& b) {
    return a.stamp != b.stamp ? a.stamp > b.stamp : a.path > b.path;
  });
  return out;
}

std::vector<std::string> PruneLocalBackups(const std::string& dir, size_t keep) {
  std::vector<LocalBackup> all = ListLocalBackups(dir);
  // The newest backup holding the most books (first in newest-first order with the max).
  const LocalBackup* most = nullptr;
  for (const auto& b : all) {
    if (b.books >= 0 && (!most || b.books > most->books)) most = &b;
  }
  std::vector<std::string> removed;
  for (size_t i = keep; i < all.size(); ++i) {
    if (most && all[i].path == most->path) continue;
    std::error_code ec;
    if (fs::remove(all[i].path, ec)) removed.push_back(all[i].path);
  }
  return removed;
}

Result<std::string> PublishLatestBackup(ObjectStore& store, const StorageLayout& layout,
                                        const LocalBackup& backup, int64_t now_micros,
                                        const std::string& scratch_dir) {
  ObjectLocation latest = MetaLocation(layout, kLatest);
  std::string warning;
  auto head = store.Head(latest.bucket, latest.key);
  if (!head.ok() && head.status().code() != StatusCode::kNotFound) {
    return head.status().WithContext("reading " + latest.bucket + "/" + latest.key);
  }
  if (head.ok()) {
    int64_t stored = -1;
    if (const std::string* v = FindMetadata(head->metadata, "books"); v && AllDigits(*v) &&
                                                                     v->size() <= 15) {
      stored = std::stoll(*v);
    }
    if (stored < 0 || stored > backup.books) {
      // Keep the stored backup before replacing it with one holding fewer books.
      ObjectLocation kept =
          MetaLocation(layout, "books_latest_kept_" + BackupStamp(now_micros) + ".db.gz");
      std::string tmp = (fs::path(scratch_dir) / ("books_latest_kept." + BackupStamp(now_micros) +
                                                 ".partial")).string();
      Status s;
      {
        FileSink sink(tmp);
        if (!sink.ok()) return Status::PermissionDenied(tmp + ": cannot write");
        auto got = store.Get(latest.bucket, latest.key, sink);
        s = got.ok() ? sink.Close() : got.status().WithContext("keeping " + latest.key);
      }
      if (s.ok()) s = PutFile(store, kept, tmp, stored);
      std::remove(tmp.c_str());
      if (!s.ok()) return s;
      warning = latest.bucket + "/" + latest.key + ": the new backup holds " +
                std::to_string(backup.books) + " books, the stored one " +
                (stored < 0 ? std::string("an unknown number") : std::to_string(stored)) +
                "; kept the stored one as " + kept.bucket + "/" + kept.key;
    }
  }
  GRIN_RETURN_IF_ERROR(PutFile(store, latest, backup.path, backup.books));
  GRIN_RETURN_IF_ERROR(PutFile(store, TimestampedMetaLocation(layout, now_micros, kLatest),
                               backup.path, backup.books));
  return warning;
}

}  // namespace grin::storage
