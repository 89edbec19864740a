#pragma once
// Verify: a run's storage checked against its state, for `grin-jobs verify`.
//
// Every book whose job is at `uploaded` (done) must have, in storage:
//   - its raw archive (raw bucket), of the size recorded when it was uploaded (when one is:
//     books adopted from storage by an ETag match in an earlier run have none);
//   - its OCR object (full bucket), unless skip_ocr;
//   - its MARC columns in the state (books.marc_extraction_timestamp), unless skip_marc.
// How: one listing pass per bucket (ObjectStore::ForEachObject: 1,000 keys per request on S3,
// one folder walk locally), never a request per book, so a million books take minutes. A
// listing gives key, size and ETag but no user metadata (S3 ListObjectsV2 has none), and the
// ETag of a multipart object is not an MD5 of its bytes, so without `deep` the check is:
// presence and size. With `deep`, every done book's raw archive is also downloaded (GET, which
// returns the user metadata as a HEAD would): its `encrypted_etag` metadata must equal the
// state's (books.encrypted_etag), its `barcode` metadata the book's, and its SHA-256 the one
// recorded at upload (the upload event's detail; books without one are counted, not failed).
//
// Also reported: objects under the run's raw and full prefixes that are not a known book's
// output (another run's books in a shared bucket, stray files: reported, never deleted), and
// litter, which is removed as a sync removes it (storage_litter.h): temporary objects whose
// writer is gone and multipart uploads no job will resume (aborted).
//
// With `requeue`, each mismatching book goes back to work through StateStore::Reset (job back
// to `pending`), so the next sync redoes exactly what is missing: a raw archive that is
// missing, short or not the one recorded is re-downloaded (a bad one is deleted first, since a
// sync trusts a stored archive whose ETag metadata matches GRIN's), and an OCR object or MARC
// columns missing beside a good archive are rebuilt from it without GRIN.
//
// Errors: the listing or a deep download failing for a reason that is not the book's (storage
// unreachable, access denied) returns that error; nothing is requeued then.
// Thread safety: Verify() blocks; deep downloads run on deep_concurrency threads.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/logger.h"
#include "engine/object_store.h"
#include "engine/pipeline/sync.h"
#include "engine/state_store.h"

namespace grin::pipeline {

// One job of the run, as its state records it.
struct VerifyBook {
  std::string barcode;
  bool done = false;           // at `uploaded`: its outputs must be in storage
  bool marc_recorded = false;  // books.marc_extraction_timestamp is set
  int64_t raw_size = -1;       // raw archive bytes recorded at its upload, -1 if none recorded
};

// What the state recorded about a done book's raw archive, for `deep`.
struct VerifyRecord {
  std::string encrypted_etag;  // books.encrypted_etag ("" if none)
  std::string sha256_hex;      // recorded at upload, "" if none
};

struct VerifyOptions {
  StorageLayout layout;
  bool deep = false;
  bool requeue = false;
  bool skip_ocr = false;   // the run's syncs skip OCR: no OCR object expected
  bool skip_marc = false;  // ... skip MARC: no MARC columns expected
  int deep_concurrency = 4;
  // Required: calls fn for every job of the run (any order); its error ends Verify().
  std::function<Status(const std::function<void(VerifyBook)>& fn)> for_each_book;
  // Required with deep: the record of a done book. Called from the deep threads.
  std::function<Result<VerifyRecord>(const std::string& barcode)> record;
  // For the litter sweep, as SyncOptions::job_view (empty: multipart uploads are left alone).
  decltype(SyncOptions::job_view) job_view;
  StateStore* store = nullptr;  // required with requeue
  Logger* logger = nullptr;
  const std::atomic<int>* stop = nullptr;  // non-zero: stop the deep downloads, return kCancelled
};

// One way a done book's storage differs from its state.
struct VerifyMismatch {
  std::string barcode;
  // raw_missing, raw_size, raw_metadata, raw_sha256, ocr_missing, marc_missing.
  std::string problem;
  std::string detail;  // one line: what was expected and what storage holds
};

struct VerifyReport {
  int64_t books = 0;           // jobs in the run
  int64_t done = 0;            // of them at `uploaded`: checked
  int64_t objects_listed = 0;  // objects seen in the listings
  int64_t list_requests = 0;   // listing passes (buckets listed)
  int64_t deep_checked = 0;    // raw archives downloaded and hashed
  int64_t deep_bytes = 0;
  int64_t deep_unrecorded = 0;  // ... of which no SHA-256 was recorded at upload
  std::vector<VerifyMismatch> mismatches;  // by barcode, then problem
  int64_t books_mismatched = 0;            // distinct barcodes among mismatches
  int64_t unknown_objects = 0;
  std::vector<std::string> unknown_sample;  // "bucket/key" of the first kUnknownSample
  int64_t temporaries_removed = 0;
  std::vector<std::string> uploads_aborted;  // "bucket/key"
  std::vector<std::string> litter_errors;
  std::vector<std::string> requeue_errors;  // books not requeued: their bad archive stayed
  int64_t requeued = 0;     // jobs moved back to pending (requeue)
  int64_t raw_deleted = 0;  // bad raw archives deleted so the next sync re-downloads them
  double elapsed_s = 0;
  bool ok() const { return mismatches.empty(); }
};

inline constexpr size_t kUnknownSample = 100;

// The problems whose cure is a fresh download (the stored raw archive is deleted on requeue).
bool IsRawProblem(const std::string& problem);

Result<VerifyReport> Verify(ObjectStore& objects, const VerifyOptions& options);

}  // namespace grin::pipeline
