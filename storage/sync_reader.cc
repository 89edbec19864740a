#include "storage/sync_reader.h"

#include <filesystem>

namespace grin::storage {
namespace {

class SqliteSyncReader final : public SyncReader {
 public:
  SqliteSyncReader(std::string db_path, std::unique_ptr<JobReader> jobs)
      : db_path_(std::move(db_path)), jobs_(std::move(jobs)) {}

  Result<std::vector<std::string>> CatalogQueueBarcodes(const std::string& queue) override {
    return storage::CatalogQueueBarcodes(db_path_, queue);
  }
  Result<std::set<std::string>> StoredBarcodes() override {
    return storage::StoredBarcodes(db_path_);
  }
  Result<DeadJobs> CountDeadJobs(bool whole_run,
                                 const std::vector<std::string>& covered) override {
    return storage::CountDeadJobs(db_path_, whole_run, covered);
  }
  Result<std::map<std::string, JobState>> ReadJobStates(const std::vector<std::string>& barcodes,
                                                        bool all_unfinished) override {
    if (!std::filesystem::exists(db_path_)) return std::map<std::string, JobState>{};
    return storage::ReadJobStates(db_path_, barcodes, all_unfinished);
  }
  Result<std::map<std::string, std::string>> AwaitingBooks() override {
    if (!std::filesystem::exists(db_path_)) return std::map<std::string, std::string>{};
    return storage::AwaitingBooks(db_path_);
  }
  Result<EtagChecks> ReadEtagChecks() override { return storage::ReadEtagChecks(db_path_); }

  Result<bool> MarcRecorded(const std::string& barcode) override {
    return jobs_->MarcRecorded(barcode);
  }
  Result<std::optional<JobRow>> Job(const std::string& barcode) override {
    return jobs_->Job(barcode);
  }
  Status ForEachJob(const std::function<void(VerifyRow)>& fn) override {
    return jobs_->ForEachJob(fn);
  }
  Result<UploadRecord> Upload(const std::string& barcode) override {
    return jobs_->Upload(barcode);
  }

 private:
  const std::string db_path_;
  const std::unique_ptr<JobReader> jobs_;  // thread-safe itself
};

}  // namespace

Result<std::unique_ptr<SyncReader>> OpenSqliteSyncReader(const std::string& db_path) {
  GRIN_ASSIGN_OR_RETURN(auto jobs, JobReader::Open(db_path));
  return std::unique_ptr<SyncReader>(new SqliteSyncReader(db_path, std::move(jobs)));
}

}  // namespace grin::storage
