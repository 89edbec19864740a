#pragma once
// PgSyncReader: the SyncReader port (storage/sync_reader.h) on a PostgreSQL run: the queries of
// storage/sync_queries.cc, statement for statement, in PostgreSQL's dialect (JSON through jsonb,
// barcodes compared and ordered by bytes: COLLATE "C", as SQLite's BINARY), so both dialects
// answer alike on the same content.
//
// Thread safety: one connection, a mutex around every call (reconnected after it broke).

#include <memory>
#include <mutex>
#include <string>

#include "storage/postgres/pg_connection.h"
#include "storage/sync_reader.h"

namespace grin::storage {

class PgSyncReader final : public SyncReader {
 public:
  // Connects (libpq connection string or URI). Does not migrate: the run's store or catalog
  // does. Errors as PgConnection::Connect.
  static Result<std::unique_ptr<PgSyncReader>> Open(const std::string& conninfo);

  Result<std::vector<std::string>> CatalogQueueBarcodes(const std::string& queue) override;
  Result<std::set<std::string>> StoredBarcodes() override;
  Result<DeadJobs> CountDeadJobs(bool whole_run,
                                 const std::vector<std::string>& covered) override;
  Result<std::map<std::string, JobState>> ReadJobStates(const std::vector<std::string>& barcodes,
                                                        bool all_unfinished) override;
  Result<std::map<std::string, std::string>> AwaitingBooks() override;
  Result<EtagChecks> ReadEtagChecks() override;
  Result<bool> MarcRecorded(const std::string& barcode) override;
  Result<std::optional<JobRow>> Job(const std::string& barcode) override;
  Status ForEachJob(const std::function<void(VerifyRow)>& fn) override;
  Result<UploadRecord> Upload(const std::string& barcode) override;

 private:
  PgSyncReader(std::string conninfo, std::string what)
      : conninfo_(std::move(conninfo)), what_(std::move(what)) {}
  // One statement on the connection (reconnected if it broke); call with mu_ held.
  Result<pg::PgResult> Query(const std::string& sql, const pg::Params& params = {});

  std::string conninfo_;
  std::string what_;
  std::mutex mu_;
  std::unique_ptr<pg::PgConnection> conn_;  // guarded by mu_
};

}  // namespace grin::storage
