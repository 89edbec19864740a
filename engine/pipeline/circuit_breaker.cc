#include "engine/pipeline/circuit_breaker.h"

#include "engine/net/transport.h"

namespace grin::pipeline {
namespace {

constexpr const char* kNoBookFailed = "; no book was failed";

std::string SpaceNeeded(int64_t needed_bytes) {
  if (needed_bytes <= 0) return "free space";
  // Round up to whole MB so "at least" holds.
  int64_t mb = (needed_bytes + 999'999) / 1'000'000;
  return "free at least " + std::to_string(mb) + " MB";
}

}  // namespace

SystemicFailure ClassifyFailure(const Status& s, FailureSource source, const std::string& bucket,
                                const std::string& path, int64_t needed_bytes) {
  SystemicFailure f;
  if (s.ok()) return f;
  const std::string& m = s.message();
  if (net::IsTlsTrustFailure(s)) {
    f.kind = SystemicKind::kTlsTrust;
    if (source == FailureSource::kStorage) {
      f.cause = "storage: " + m + " (for storage: ca_file in the run's storage config)";
    } else {
      f.cause = (source == FailureSource::kGrin ? "GRIN: " : "") + m;
    }
    f.cause += kNoBookFailed;
    return f;
  }
  if (source == FailureSource::kStateStore) {
    f.kind = SystemicKind::kStateStore;  // a full disk or not: nothing can be recorded
    const std::string db = "the run database " + (path.empty() ? std::string() : path + " ");
    if (s.code() == StatusCode::kNoSpace) {
      f.cause = "disk full: " + db + "cannot be written: " + SpaceNeeded(needed_bytes) +
                " on its volume and rerun the same command" + kNoBookFailed;
    } else {
      f.cause = db + "cannot be written (" + m +
                "): check its disk and permissions and rerun the same command" + kNoBookFailed;
    }
    return f;
  }
  if (s.code() == StatusCode::kNoSpace) {
    f.kind = SystemicKind::kNoSpace;
    std::string where = path.empty() ? std::string("staging") : path;
    if (source == FailureSource::kStorage) {
      where = "storage" + (bucket.empty() ? std::string() : " bucket '" + bucket + "'");
    }
    f.cause = "disk full: " + where + " (" + m + "): " + SpaceNeeded(needed_bytes) +
              " there and rerun the same command" + kNoBookFailed;
    return f;
  }
  switch (source) {
    case FailureSource::kGrin:
      if (s.code() == StatusCode::kPermissionDenied) {
        f.kind = SystemicKind::kGrinAuth;
        f.cause = (m.rfind("GRIN", 0) == 0 ? m : "GRIN refused access: " + m) +
                  " (check `grin-jobs auth setup` and the library's access list)" + kNoBookFailed;
      }
      break;
    case FailureSource::kDecrypt:
      if (s.code() == StatusCode::kPermissionDenied) {
        f.kind = SystemicKind::kPassphrase;
        f.cause = "the GPG passphrase does not decrypt GRIN's archives (" + m +
                  "): fix the passphrase file (--passphrase-file or gpg_passphrase.asc) and "
                  "rerun" + kNoBookFailed;
      }
      break;
    case FailureSource::kStorage:
      if (s.code() == StatusCode::kPermissionDenied) {
        f.kind = SystemicKind::kStorageAccess;
        f.cause = "storage refused access" +
                  (bucket.empty() ? std::string() : " to bucket '" + bucket + "'") + " (" + m +
                  "): check the storage credentials and their permissions on the bucket" +
                  kNoBookFailed;
      } else if (s.code() == StatusCode::kNotFound &&
                 (m.find("NoSuchBucket") != std::string::npos ||
                  m.find("no such bucket") != std::string::npos)) {
        f.kind = SystemicKind::kStorageBucket;
        f.cause = "storage bucket '" + bucket + "' does not exist (" + m +
                  "): create it or fix the run's storage config (bucket_raw / bucket_full)" +
                  kNoBookFailed;
      }
      break;
    case FailureSource::kStaging:
      if (s.code() == StatusCode::kPermissionDenied) {
        f.kind = SystemicKind::kStorageAccess;
        f.cause = "cannot write to " + (path.empty() ? std::string("staging") : path) + " (" + m +
                  "): check its permissions" + kNoBookFailed;
      }
      break;
    case FailureSource::kStateStore:
      break;
  }
  return f;
}

bool CircuitBreaker::RecordFailure(const std::string& barcode, const SystemicFailure& f) {
  std::lock_guard<std::mutex> l(mu_);
  if (tripped_) return true;
  cause_ = f.cause;
  consecutive_.insert(barcode);
  const bool at_once =
      f.kind == SystemicKind::kPassphrase || f.kind == SystemicKind::kStateStore;
  if (at_once || static_cast<int>(consecutive_.size()) >= threshold_) tripped_ = true;
  return tripped_;
}

void CircuitBreaker::RecordSuccess() {
  std::lock_guard<std::mutex> l(mu_);
  consecutive_.clear();
}

bool CircuitBreaker::tripped() const {
  std::lock_guard<std::mutex> l(mu_);
  return tripped_;
}

std::string CircuitBreaker::cause() const {
  std::lock_guard<std::mutex> l(mu_);
  return cause_;
}

}  // namespace grin::pipeline
