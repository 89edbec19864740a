#pragma once
// SyncReader: the read-only questions `sync` and `verify` ask a run's job state (the queries of
// storage/sync_queries.h), as a port with one implementation per dialect: SQLite here
// (OpenSqliteSyncReader: the free functions and JobReader of sync_queries.h, unchanged) and
// PostgreSQL in storage/postgres/pg_sync_reader.h. Both answer alike on the same content
// (tests/storage/sync_reader_test.cc): lists in byte order of barcodes, the same counts, the same
// "first failed" book.
//
// Thread safety: an implementation is safe to share between threads (the pipeline's workers call
// MarcRecorded and Job concurrently).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "storage/sync_queries.h"  // DeadJobs, JobRow, JobState, EtagChecks, VerifyRow, ...

namespace grin::storage {

class SyncReader {
 public:
  virtual ~SyncReader() = default;

  // As CatalogQueueBarcodes (sorted; kInvalidArgument for a queue other than previous,
  // unconverted).
  virtual Result<std::vector<std::string>> CatalogQueueBarcodes(const std::string& queue) = 0;
  // As StoredBarcodes: the books at `uploaded`.
  virtual Result<std::set<std::string>> StoredBarcodes() = 0;
  // As CountDeadJobs.
  virtual Result<DeadJobs> CountDeadJobs(bool whole_run,
                                         const std::vector<std::string>& covered) = 0;
  // As ReadJobStates.
  virtual Result<std::map<std::string, JobState>> ReadJobStates(
      const std::vector<std::string>& barcodes, bool all_unfinished) = 0;
  // As AwaitingBooks (empty for a SQLite run without a database yet).
  virtual Result<std::map<std::string, std::string>> AwaitingBooks() = 0;
  // As ReadEtagChecks.
  virtual Result<EtagChecks> ReadEtagChecks() = 0;

  // As JobReader's.
  virtual Result<bool> MarcRecorded(const std::string& barcode) = 0;
  virtual Result<std::optional<JobRow>> Job(const std::string& barcode) = 0;
  virtual Status ForEachJob(const std::function<void(VerifyRow)>& fn) = 0;
  virtual Result<UploadRecord> Upload(const std::string& barcode) = 0;
};

// The SQLite run at db_path: the JobReader part's connection is opened here (errors as
// JobReader::Open: kNotFound without a database); the other queries open their own read
// connection each, as the free functions do.
Result<std::unique_ptr<SyncReader>> OpenSqliteSyncReader(const std::string& db_path);

}  // namespace grin::storage
