#pragma once
// The read-only queries `sync` and `verify` ask a run's database: the books of the catalog's
// queues, the books already stored, the dead and waiting jobs among those a sync covered, and
// (from the pipeline's worker threads, JobReader) one book's job, MARC columns and upload
// record. The SQL lives here, next to the code that binds it, not in the commands.
//
// Thread safety: the free functions open their own read connection; a JobReader is safe to
// share between threads (one mutex around its connection).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::storage {

class StateReader;

// Barcodes of the run's catalog for a queue, sorted: "previous" (GRIN says previously
// downloaded and no conversion was requested) or "unconverted" (never requested, converted or
// checked in, and not refused by GRIN). kInvalidArgument for another queue.
Result<std::vector<std::string>> CatalogQueueBarcodes(const std::string& db_path,
                                                      const std::string& queue);

// Barcodes of the run's stored books (the `uploaded` view); empty if db_path does not exist.
Result<std::set<std::string>> StoredBarcodes(const std::string& db_path);

// Dead and waiting jobs among the books a sync covered (every job when `whole_run`).
struct DeadJobs {
  int64_t failed = 0;    // dead, not by rule
  int64_t by_rule = 0;   // known_conversion_failure, conversion_not_allowed
  int64_t awaiting = 0;  // waiting for GRIN's conversion (not dead)
  std::string first_failed;  // "BARCODE (reason)" of the first failed book by barcode
};
Result<DeadJobs> CountDeadJobs(const std::string& db_path, bool whole_run,
                               const std::vector<std::string>& covered);

// One book's job as the pipeline's litter sweep needs it.
struct JobRow {
  std::string stage;       // pending, checked, downloaded, uploaded
  bool dead = false;
  std::string checkpoint;  // the job's checkpoint JSON, "" if none
};

// A job as the run database holds it (sync --dry-run's plan).
struct JobState {
  std::string stage;    // pending, checked, downloaded, uploaded
  std::string status;   // ready, leased, retry, dead, awaiting
  std::string reason;   // error_reason ("" if none)
  int64_t since_micros = 0;  // failed_at: when it failed / started waiting (0 if none)
};

// The jobs of `barcodes` known to the run (absent: no job yet). Empty `barcodes` with
// `all_unfinished`: every job not at `uploaded`.
Result<std::map<std::string, JobState>> ReadJobStates(const std::string& db_path,
                                                      const std::vector<std::string>& barcodes,
                                                      bool all_unfinished);

// The run's jobs awaiting conversion: barcode -> why they wait (error_reason).
Result<std::map<std::string, std::string>> AwaitingBooks(const std::string& db_path);

// When the GRIN ETags of the run's stored books (jobs at `uploaded`) were checked, from
// books.last_etag_check (set by every check: the run that stored a book, or a --recheck).
struct EtagChecks {
  int64_t stored = 0;   // books stored
  int64_t checked = 0;  // of them, with a check recorded
  std::string newest;   // ISO 8601 UTC; "" if none
  std::string oldest;
};
Result<EtagChecks> ReadEtagChecks(const std::string& db_path);

// A job as `verify` walks them.
struct VerifyRow {
  std::string barcode;
  bool done = false;           // at `uploaded`
  bool marc_recorded = false;  // books.marc_extraction_timestamp set
  int64_t raw_size = -1;       // the raw archive's size its last upload recorded; -1 if none
};

// What a book's last upload recorded about its raw archive ("" when unknown).
struct UploadRecord {
  std::string encrypted_etag;
  std::string sha256_hex;
};

class JobReader {
 public:
  // kNotFound / kDataLoss as StateReader::Open.
  static Result<std::unique_ptr<JobReader>> Open(const std::string& db_path);
  ~JobReader();

  // Whether the book's MARC columns are recorded (books.marc_extraction_timestamp).
  // kUnavailable naming the book if the read fails.
  Result<bool> MarcRecorded(const std::string& barcode);
  // The book's job; nullopt if the run has none. kUnavailable naming the book on a failed read.
  Result<std::optional<JobRow>> Job(const std::string& barcode);
  // Calls fn for every job of the run. kDataLoss naming the database on a failed read.
  Status ForEachJob(const std::function<void(VerifyRow)>& fn);
  // The book's upload record. kDataLoss naming the book on a failed read.
  Result<UploadRecord> Upload(const std::string& barcode);

 private:
  explicit JobReader(std::unique_ptr<StateReader> reader);
  std::mutex mu_;
  std::unique_ptr<StateReader> reader_;
};

}  // namespace grin::storage
