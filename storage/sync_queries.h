#pragma once
// The read-only queries `sync` asks a run's database before and after its pipeline: the books of
// the catalog's queues, the books already stored, the dead and waiting jobs among those a sync
// covered, and (from the pipeline's worker threads) one book's job and MARC columns. The SQL
// lives here, next to the code that binds it, not in the commands.
//
// Thread safety: the free functions open their own read connection; a SyncJobReader is safe to
// share between threads (one mutex around its connection).

#include <cstdint>
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

class SyncJobReader {
 public:
  // kNotFound / kDataLoss as StateReader::Open.
  static Result<std::unique_ptr<SyncJobReader>> Open(const std::string& db_path);
  ~SyncJobReader();

  // Whether the book's MARC columns are recorded (books.marc_extraction_timestamp).
  // kUnavailable naming the book if the read fails.
  Result<bool> MarcRecorded(const std::string& barcode);
  // The book's job; nullopt if the run has none. kUnavailable naming the book on a failed read.
  Result<std::optional<JobRow>> Job(const std::string& barcode);

 private:
  explicit SyncJobReader(std::unique_ptr<StateReader> reader);
  std::mutex mu_;
  std::unique_ptr<StateReader> reader_;
};

}  // namespace grin::storage
