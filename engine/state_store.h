#pragma once
// StateStore: the engine's port for durable per-book job state.
//
// A job is one book. It moves through milestones pending -> checked -> downloaded -> uploaded;
// a worker claims jobs sitting at a milestone, does the next stage's work, and completes them to
// the next milestone. Claims are transactional and fenced:
//   - Claim() leases items to the calling run: each WorkItem carries the run's id and a fresh
//     lease token;
//   - Complete(), Fail(), Release() and SaveCheckpoint() change nothing unless the token still
//     matches (a stale holder gets kConflict, and the store logs "job.stale_write");
//   - leases held by runs that are gone are taken back (token bumped): by the SQLite store,
//     which one run holds at a time, at once when a run opens it; by a store several processes
//     share (PostgreSQL), when the lease expires by the database's clock (the holder's
//     heartbeats push it forward).
// Failures: a retryable failure schedules the next attempt with exponential backoff and full
// jitter; a permanent failure, or the max_attempts-th failure, makes the job dead. Requeue()
// brings failed or dead jobs back.
//
// Thread safety: every method may be called from any thread concurrently. Implementations
// serialise writes (the SQLite store funnels them through one writer thread with group commit)
// and never surface "database is locked" to callers.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin {

enum class Stage { kPending = 0, kChecked = 1, kDownloaded = 2, kUploaded = 3 };
inline constexpr int kStageCount = 4;

std::string_view StageName(Stage s);                       // "pending", ...
bool ParseStage(std::string_view name, Stage* out);         // false if unknown

enum class ErrorClass { kRetryable, kPermanent };
std::string_view ErrorClassName(ErrorClass c);              // "retryable" / "permanent"

// A leased job, as handed to a worker.
struct WorkItem {
  int64_t job_id = 0;
  std::string barcode;
  Stage stage = Stage::kPending;  // the milestone it sat at when claimed
  int64_t run_id = 0;
  int64_t lease_token = 0;
  int attempts = 0;               // failed attempts so far at this stage
  std::string checkpoint;         // JSON saved by SaveCheckpoint at this stage, or ""
};

// Which jobs Reset() moves back to pending (for --force / --recheck): by barcode.
struct ResetRequest {
  std::vector<std::string> barcodes;
  bool include_done = true;   // also jobs at `uploaded`
}; 

// Columns of the books row to set with a completion, in the same transaction (e.g.
// encrypted_etag, storage_path, marc_*). Only books columns that a sync may write are accepted
// (see IsWritableBookColumn); an empty value stores NULL.
using BookFields = std::vector<std::pair<std::string, std::string>>;

// One fenced completion: moves item to milestone `to`, appends an event and updates the book's
// row (created if missing), all or nothing.
struct Completion {
  WorkItem item;
  Stage to = Stage::kUploaded;
  std::string outcome = "completed";  // event outcome, e.g. "completed", "skipped_etag_match"
  std::string detail_json;            // "" or a JSON object for the event
  BookFields book_fields;             // optional books columns to set
  std::string carry;                  // "" or JSON: the checkpoint handed to the next stage
};

// True for the books columns a sync may set through a Completion: storage facts
// (storage_path, last_etag_check, encrypted_etag, is_decrypted, sync_timestamp,
// processing_request_timestamp) and the marc_* columns.
bool IsWritableBookColumn(std::string_view column);

struct StageCounts {
  int64_t total = 0;
  int64_t at[kStageCount] = {0, 0, 0, 0};  // jobs per milestone (every job in exactly one)
  int64_t leased = 0;
  int64_t retrying = 0;
  int64_t dead = 0;
  // Jobs waiting for GRIN to convert their book (see Await), and since when the longest has
  // waited (unix micros; 0 if none). Neither failed nor dead, never claimed.
  int64_t awaiting = 0;
  int64_t awaiting_since_micros = 0;
};

struct FailureSummary {
  std::string stage;
  std::string reason;
  std::string error_class;
  bool dead = false;
  int64_t count = 0;
};

// Which failed jobs Requeue() brings back. Empty fields match everything.
struct RequeueFilter {
  std::optional<Stage> stage;
  std::string reason_like;   // SQL LIKE pattern on the failure reason, e.g. "%timeout%"
  bool dead_only = false;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // The id of this run (boot id) stamped on every lease it takes.
  virtual int64_t run_id() const = 0;

  // Adds jobs for barcodes not yet known, at milestone pending; known barcodes are untouched.
  // Returns how many were added. kInvalidArgument names the first malformed barcode.
  virtual Result<int64_t> Enqueue(const std::vector<std::string>& barcodes) = 0;

  // Leases up to max_items claimable jobs at milestone `from` (ready, or retry whose
  // next_attempt_at has passed), in (priority, next_attempt_at, job_id) order. Empty when none.
  virtual Result<std::vector<WorkItem>> Claim(Stage from, int max_items) = 0;

  // Fenced completions, all in one transaction. Returns one Status per completion: OK, or
  // kConflict when that item's lease is no longer held (nothing changed for it).
  virtual Result<std::vector<Status>> CompleteMany(std::vector<Completion> completions) = 0;
  Status Complete(const WorkItem& item, Stage to, std::string outcome = "completed",
                  std::string detail_json = "");

  // Fenced failure of the current attempt. kConflict if the lease is no longer held.
  virtual Status Fail(const WorkItem& item, ErrorClass error_class, std::string_view reason,
                      std::string_view detail_json) = 0;

  // Gives a lease back without counting an attempt (used when draining on shutdown).
  virtual Status Release(const WorkItem& item) = 0;

  // Stores stage progress for a leased item (fenced). Handed back in WorkItem::checkpoint on the
  // next claim at the same milestone; replaced by the Completion's `carry` (or cleared) when the
  // item completes the stage.
  virtual Status SaveCheckpoint(const WorkItem& item, std::string_view json) = 0;

  // Brings failed (retrying or dead) jobs matching the filter back to ready with attempts reset.
  // Returns how many were requeued.
  virtual Result<int64_t> Requeue(const RequeueFilter& filter) = 0;

  // Moves the named jobs that are not leased back to pending/ready with attempts reset
  // (e.g. `sync --force`, or re-checking ETags of finished books). Returns how many moved.
  virtual Result<int64_t> Reset(const ResetRequest& request) = 0;

  // Fenced: the leased job waits for GRIN to convert its book (status `awaiting`, back at
  // `pending`, attempts reset, its checkpoint dropped): it is not claimed, not failed and not
  // dead until Wake() names it. `reason` says why (e.g. conversion_requested, archive_expired),
  // detail_json ("" or a JSON object) what GRIN said; recorded with the time it started waiting
  // and an event (outcome "awaiting_conversion"). kConflict if the lease is no longer held.
  virtual Status Await(const WorkItem& item, std::string_view reason,
                       std::string_view detail_json) = 0;

  // The awaiting jobs among `barcodes` become ready (event "conversion_ready"); others are
  // untouched. Returns how many woke.
  virtual Result<int64_t> Wake(const std::vector<std::string>& barcodes) = 0;

  // Appends an event not tied to a lease (e.g. a run-level note). detail_json may be "".
  virtual Status AppendEvent(std::string_view barcode, std::string_view stage,
                             std::string_view outcome, std::string_view detail_json) = 0;

  // Counts per milestone and status, read on a separate read connection.
  virtual Result<StageCounts> Counts() = 0;
  virtual Result<std::vector<FailureSummary>> Failures() = 0;

  // Waits until every write accepted so far is committed.
  virtual Status Flush() = 0;

  // Restricts this run to the named barcodes: Claim() leases only their jobs and Counts()
  // counts only them, so a run asked for some books does not also run the run's other open jobs
  // (they keep their state for a later run). An empty list lifts the restriction. Barcodes
  // without a job are ignored. The default implementation supports only the empty list.
  virtual Status SetScope(const std::vector<std::string>& barcodes);

  // Idle waiting, for a worker whose claims at `stages` all came back empty while the run is not
  // finished (jobs leased by another process, retries waiting for next_attempt_at). Returns true
  // when a job at one of `stages` may have become claimable:
  //   - at once if one is claimable now (so work made claimable between the empty claim and the
  //     wait is never missed);
  //   - when new claimable work is announced: enqueued, completed into a milestone that is not
  //     the last, released, requeued, reset, woken, failed for a retry, or taken back from an
  //     expired lease, by this store or (a store several processes share) by another process;
  //   - at the earliest time a job becomes claimable by the clock, which nobody announces: a
  //     retry's next_attempt_at, or the expiry of a lease another run holds (a dead worker's),
  //     both by the clock the store's claims use (the database's, for a shared store).
  // Returns false when timeout_micros passed first, or as soon as `cancelled` (may be empty)
  // says true: it is asked at least every 50 ms, so a stop is seen promptly.
  // True is a hint, not a promise: claim again, and expect an empty answer sometimes.
  // Errors: the store's (e.g. kUnavailable); the caller may then claim anyway.
  // The default (stores that cannot tell) waits min(timeout_micros, 200 ms) and returns true:
  // polling.
  virtual Result<bool> WaitForWork(const std::vector<Stage>& stages, int64_t timeout_micros,
                                   const std::function<bool()>& cancelled);
};

// Backoff for the attempt-th failure (1-based) with full jitter: a uniformly random delay in
// [0, min(max_delay, base * 2^(attempt-1))]. `unit_random` is a number in [0, 1).
int64_t BackoffMicros(int attempt, int64_t base_micros, int64_t max_micros, double unit_random);

// Barcodes: 3-50 characters of [A-Za-z0-9_-] (the reference tool's rule).
bool IsValidBarcode(std::string_view barcode);

// The input checks every StateStore adapter makes before it writes, so all of them refuse the
// same things in the same words (kInvalidArgument, one line):
// CheckBarcodes: every barcode IsValidBarcode (names the first one that is not);
// CheckJsonField: `json` is empty or valid JSON (`what` names the field);
// CheckCompletion: its detail and carry are JSON, it sets only IsWritableBookColumn columns, and
// it moves the job forward.
Status CheckBarcodes(const std::vector<std::string>& barcodes);
Status CheckJsonField(std::string_view json, const char* what);
Status CheckCompletion(const Completion& c);

}  // namespace grin
