#include "storage/sync_queries.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <filesystem>

#include "storage/state_reader.h"

namespace grin::storage {
namespace {

constexpr const char* kPreviousQueueSql =
    "SELECT barcode FROM books WHERE grin_state = 'PREVIOUSLY_DOWNLOADED' AND "
    "coalesce(processing_request_timestamp, '') = '' ORDER BY barcode";
constexpr const char* kUnconvertedQueueSql =
    "SELECT barcode FROM books WHERE coalesce(processing_request_timestamp, '') = '' AND "
    "coalesce(converted_date, '') = '' AND coalesce(grin_check_in_date, '') = '' AND "
    "(grin_state IS NULL OR grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD')) "
    "ORDER BY barcode";
constexpr const char* kStoredSql = "SELECT barcode FROM uploaded";
constexpr const char* kDeadOrAwaitingSql =
    "SELECT barcode, coalesce(error_reason, ''), status FROM jobs "
    "WHERE status IN ('dead', 'awaiting') ORDER BY barcode";
constexpr const char* kMarcRecordedSql =
    "SELECT marc_extraction_timestamp IS NOT NULL FROM books WHERE barcode = ?";
constexpr const char* kJobSql = "SELECT stage, status = 'dead' FROM jobs WHERE barcode = ?";
constexpr const char* kCheckpointSql = "SELECT data FROM job_checkpoints WHERE barcode = ?";

}  // namespace

Result<std::vector<std::string>> CatalogQueueBarcodes(const std::string& db_path,
                                                      const std::string& queue) {
  const char* sql = queue == "previous"      ? kPreviousQueueSql
                    : queue == "unconverted" ? kUnconvertedQueueSql
                                             : nullptr;
  if (sql == nullptr) {
    return Status::InvalidArgument("queue '" + queue + "': not a catalog queue (previous, "
                                   "unconverted)");
  }
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  std::vector<std::string> out;
  try {
    SQLite::Statement s(reader->db(), sql);
    while (s.executeStep()) out.push_back(s.getColumn(0).getString());
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

Result<std::set<std::string>> StoredBarcodes(const std::string& db_path) {
  std::set<std::string> done;
  if (!std::filesystem::exists(db_path)) return done;
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  try {
    SQLite::Statement s(reader->db(), kStoredSql);
    while (s.executeStep()) done.insert(s.getColumn(0).getString());
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return done;
}

Result<DeadJobs> CountDeadJobs(const std::string& db_path, bool whole_run,
                               const std::vector<std::string>& covered_list) {
  static const std::set<std::string> kByRule = {"known_conversion_failure",
                                                "conversion_not_allowed"};
  std::set<std::string> covered(covered_list.begin(), covered_list.end());
  DeadJobs out;
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  try {
    SQLite::Statement q(reader->db(), kDeadOrAwaitingSql);
    while (q.executeStep()) {
      std::string b = q.getColumn(0).getString(), reason = q.getColumn(1).getString();
      if (!whole_run && covered.count(b) == 0) continue;
      if (q.getColumn(2).getString() == "awaiting") {
        ++out.awaiting;
      } else if (kByRule.count(reason)) {
        ++out.by_rule;
      } else if (out.failed++ == 0) {
        out.first_failed = b + " (" + reason + ")";
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

Result<std::unique_ptr<SyncJobReader>> SyncJobReader::Open(const std::string& db_path) {
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  return std::unique_ptr<SyncJobReader>(new SyncJobReader(std::move(reader)));
}

SyncJobReader::SyncJobReader(std::unique_ptr<StateReader> reader) : reader_(std::move(reader)) {}
SyncJobReader::~SyncJobReader() = default;

Result<bool> SyncJobReader::MarcRecorded(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(reader_->db(), kMarcRecordedSql);
    q.bind(1, barcode);
    return q.executeStep() && q.getColumn(0).getInt() != 0;
  } catch (const std::exception& e) {
    return Status::Unavailable("reading the MARC columns of " + barcode + ": " + e.what());
  }
}

Result<std::optional<JobRow>> SyncJobReader::Job(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(reader_->db(), kJobSql);
    q.bind(1, barcode);
    if (!q.executeStep()) return std::optional<JobRow>();
    JobRow row;
    row.stage = q.getColumn(0).getString();
    row.dead = q.getColumn(1).getInt() != 0;
    SQLite::Statement cp(reader_->db(), kCheckpointSql);
    cp.bind(1, barcode);
    if (cp.executeStep()) row.checkpoint = cp.getColumn(0).getString();
    return std::optional<JobRow>(row);
  } catch (const std::exception& e) {
    return Status::Unavailable("reading the job of " + barcode + ": " + e.what());
  }
}

}  // namespace grin::storage
