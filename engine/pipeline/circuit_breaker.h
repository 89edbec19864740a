#pragma once
// Systemic failures and the sync's circuit breaker.
//
// A systemic failure is not the book's fault: GRIN refuses our credentials, the passphrase is
// wrong, a TLS peer is not trusted, storage refuses access or lacks a bucket, a disk is full.
// Failing books for it would kill every book of the run for nothing, so the sync keeps such a
// book's job as it was (released at the end of the run, no attempt counted) and asks the breaker
// whether to stop:
//   - after `threshold` consecutive distinct books failed systemically (a book stored in between
//     resets the count), the breaker trips: the run stops claiming and drains;
//   - a wrong passphrase trips it on the first book (the passphrase check failing on a sound
//     archive is certain), and so does a state store that cannot write (nothing can be recorded).
// ClassifyFailure() tells systemic failures from book-level ones (which keep the usual retry /
// dead rules) and words the one line an operator sees: the cause and the fix.
//
// Thread safety: CircuitBreaker may be used from any thread; ClassifyFailure is pure.

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "engine/base/status.h"

namespace grin::pipeline {

// Where a failed operation went.
enum class FailureSource {
  kGrin,        // GRIN or its OAuth token endpoint
  kStorage,     // the object store
  kDecrypt,     // decrypting / extracting the archive
  kStaging,     // the staging directory
  kStateStore,  // the job state database
};

enum class SystemicKind {
  kNone,           // a book-level failure: retry or dead as usual
  kGrinAuth,       // GRIN (or OAuth) refused our credentials / access list
  kPassphrase,     // the archive does not decrypt with the passphrase
  kTlsTrust,       // a TLS peer's certificate is not trusted
  kStorageAccess,  // storage refused access (AccessDenied, bad key, permissions)
  kStorageBucket,  // the storage bucket does not exist
  kNoSpace,        // a disk or quota is full
  kStateStore,     // the state database cannot be written
};

struct SystemicFailure {
  SystemicKind kind = SystemicKind::kNone;
  std::string cause;  // one line: what is wrong and how to fix it ("" for kNone)
};

// What a failure means. `bucket` names the storage bucket of a storage operation ("" if none),
// `path` the file or folder of a local one (staging dir, database), `needed_bytes` the space the
// operation needed (-1 unknown).
SystemicFailure ClassifyFailure(const Status& s, FailureSource source, const std::string& bucket,
                                const std::string& path, int64_t needed_bytes);

class CircuitBreaker {
 public:
  explicit CircuitBreaker(int threshold) : threshold_(threshold < 1 ? 1 : threshold) {}

  // A book failed systemically. Returns true if the run must stop (now or already).
  bool RecordFailure(const std::string& barcode, const SystemicFailure& f);
  // A book was stored: the failures so far were not consecutive.
  void RecordSuccess();

  bool tripped() const;
  // The cause line of the failure that tripped the breaker, else of the latest one ("" if none).
  std::string cause() const;

 private:
  const int threshold_;
  mutable std::mutex mu_;
  std::set<std::string> consecutive_;  // distinct books since the last success
  bool tripped_ = false;
  std::string cause_;
};

}  // namespace grin::pipeline
