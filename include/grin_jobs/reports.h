#pragma once
// What each operation of a Run (run.h) returns on success: counts, as values.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace grin::jobs {

struct CollectReport {
  bool resumed = false;   // continued from a saved page position
  bool finished = false;  // the last page was written
  int64_t pages = 0;
  int64_t rows = 0;
  int64_t inserted = 0, updated = 0, unchanged = 0;
  int64_t skipped_rows = 0;  // rows without a readable barcode
};

struct EnrichReport {
  int64_t asked = 0, found = 0, missing = 0, requests = 0;
  int64_t failed_barcodes = 0;  // retried by the next enrich
  int64_t failed_groups = 0;
  int64_t refresh_asked = 0, refreshed = 0;
  int64_t missing_asked = 0, missing_found = 0, still_missing = 0;
  int64_t convert_failures = -1;  // books in GRIN's _failed list (-1: not read)
  int64_t skipped_rows = 0;
  // After the run: books GRIN did not know that wait to be asked again, and when the next is due
  // (ISO 8601; "" when none wait or the count could not be read).
  int64_t missing_waiting = 0;
  std::string next_ask_at;
};

struct RequestReport {
  int64_t queue_capacity = 0;  // GRIN's conversion queue size (books)
  int64_t in_process_before = 0;
  int64_t free_before = 0;
  int64_t candidates = 0;
  std::map<std::string, int64_t> outcomes;  // GRIN's answer -> books
  bool queue_full = false;                  // GRIN answered 429: stopped
  int64_t free_after = 0;
};

struct StageCounts {
  int64_t completed = 0, skipped = 0, failed = 0;
  std::map<std::string, int64_t> reasons;
};

// A sync that ran (Run::Sync returned ok): how it ended. Exit-status-like summary:
//   done()  every selected book is stored, skipped by rule or awaiting GRIN's conversion.
struct SyncReport {
  bool dry_run = false;    // only a plan was made (the counts below are 0)
  int64_t new_jobs = 0;    // books enqueued by this sync
  int64_t to_do = 0;       // open jobs when the pipeline started
  int64_t uploaded = 0;    // books stored or verified (synced + unchanged + rebuilt)
  int64_t synced = 0;      // downloaded and stored
  int64_t unchanged = 0;   // ETag matched the stored archive
  int64_t rebuilt = 0;
  int64_t conversions_requested = 0;
  int64_t retries_scheduled = 0;
  int64_t bytes_downloaded = 0, bytes_uploaded = 0;
  double elapsed_s = 0;
  StageCounts check, download, process;
  // The books this sync covered, at the end.
  int64_t failed_for_good = 0;   // dead, not by rule
  std::string first_failed;      // "BARCODE (reason)" of one of them
  int64_t skipped_by_rule = 0;   // GRIN conversion failure, conversion not allowed
  int64_t awaiting_conversion = 0;
  // How it ended.
  bool interrupted = false;      // drained on Cancellation::Drain()
  int64_t open_after = 0;        // jobs of the run still open at the end
  std::string fatal;             // a failure that is not a book's (GRIN access, disk, ...): "" if none
  std::vector<std::string> queues_not_listed;
  std::vector<std::string> teardown_errors;  // CSV export, backup, summary uploads

  bool done() const {
    return fatal.empty() && teardown_errors.empty() && (!interrupted || open_after == 0) &&
           failed_for_good == 0 && queues_not_listed.empty();
  }
};

// Run::Verify. ok(): every done book's storage matches its state.
struct VerifyReport {
  struct Mismatch {
    std::string barcode;
    std::string problem;  // raw_missing, raw_size, raw_metadata, raw_sha256, ocr_missing, ...
    std::string detail;   // what was expected and what storage holds
  };
  std::string storage;         // the object store checked ("local folder /x", "s3 ...")
  int64_t books = 0;           // jobs in the run
  int64_t done = 0;            // of them at `uploaded`: checked
  int64_t objects_listed = 0;
  int64_t deep_checked = 0, deep_bytes = 0, deep_unrecorded = 0;
  std::vector<Mismatch> mismatches;  // by barcode, then problem
  int64_t books_mismatched = 0;
  int64_t unknown_objects = 0;
  std::vector<std::string> unknown_sample;  // "bucket/key" of the first ones
  int64_t temporaries_removed = 0;
  std::vector<std::string> uploads_aborted;  // "bucket/key"
  std::vector<std::string> litter_errors;
  std::vector<std::string> requeue_errors;
  int64_t requeued = 0, raw_deleted = 0;
  double elapsed_s = 0;
  bool ok() const { return mismatches.empty(); }
};

}  // namespace grin::jobs
