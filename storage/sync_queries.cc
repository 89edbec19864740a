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
constexpr const char* kJobColumns =
    "SELECT barcode, stage, status, coalesce(error_reason, ''), coalesce(failed_at, 0) FROM jobs ";
constexpr const char* kAwaitingSql =
    "SELECT barcode, coalesce(error_reason, '') FROM jobs WHERE status = 'awaiting'";
constexpr const char* kEtagChecksSql =
    "SELECT count(*), count(b.last_etag_check), coalesce(max(b.last_etag_check), ''), "
    "coalesce(min(b.last_etag_check), '') "
    "FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode WHERE j.stage = 'uploaded'";

// The size and SHA-256 of a book's raw archive as its last upload recorded them (the upload
// event's detail: {"bytes", "sha256", ...}); books adopted from storage have none.
std::string UploadFact(const char* field, const char* barcode_expr) {
  return std::string("(SELECT json_extract(e.detail, '$.") + field +
         "') FROM events e WHERE e.barcode = " + barcode_expr +
         " AND json_extract(e.detail, '$.sha256') IS NOT NULL ORDER BY e.event_id DESC LIMIT 1)";
}

JobState RowState(SQLite::Statement& q) {
  JobState j;
  j.stage = q.getColumn(1).getString();
  j.status = q.getColumn(2).getString();
  j.reason = q.getColumn(3).getString();
  j.since_micros = q.getColumn(4).getInt64();
  return j;
}

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

Result<std::map<std::string, JobState>> ReadJobStates(const std::string& db_path,
                                                      const std::vector<std::string>& barcodes,
                                                      bool all_unfinished) {
  std::map<std::string, JobState> out;
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  try {
    if (barcodes.empty() && all_unfinished) {
      SQLite::Statement q(reader->db(),
                          std::string(kJobColumns) + "WHERE stage <> 'uploaded' ORDER BY job_id");
      while (q.executeStep()) out[q.getColumn(0).getString()] = RowState(q);
      return out;
    }
    SQLite::Statement q(reader->db(), std::string(kJobColumns) + "WHERE barcode = ?1");
    for (const auto& b : barcodes) {
      q.reset();
      q.bind(1, b);
      if (q.executeStep()) out[b] = RowState(q);
    }
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

Result<std::map<std::string, std::string>> AwaitingBooks(const std::string& db_path) {
  std::map<std::string, std::string> out;
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  try {
    SQLite::Statement q(reader->db(), kAwaitingSql);
    while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getString();
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return out;
}

Result<EtagChecks> ReadEtagChecks(const std::string& db_path) {
  EtagChecks c;
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  try {
    SQLite::Statement q(reader->db(), kEtagChecksSql);
    if (q.executeStep()) {
      c.stored = q.getColumn(0).getInt64();
      c.checked = q.getColumn(1).getInt64();
      c.newest = q.getColumn(2).getString();
      c.oldest = q.getColumn(3).getString();
    }
  } catch (const std::exception& e) {
    return Status::Internal(db_path + ": " + e.what());
  }
  return c;
}

Result<std::unique_ptr<JobReader>> JobReader::Open(const std::string& db_path) {
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  return std::unique_ptr<JobReader>(new JobReader(std::move(reader)));
}

JobReader::JobReader(std::unique_ptr<StateReader> reader) : reader_(std::move(reader)) {}
JobReader::~JobReader() = default;

Result<bool> JobReader::MarcRecorded(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(reader_->db(), kMarcRecordedSql);
    q.bind(1, barcode);
    return q.executeStep() && q.getColumn(0).getInt() != 0;
  } catch (const std::exception& e) {
    return Status::Unavailable("reading the MARC columns of " + barcode + ": " + e.what());
  }
}

Result<std::optional<JobRow>> JobReader::Job(const std::string& barcode) {
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

Status JobReader::ForEachJob(const std::function<void(VerifyRow)>& fn) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(reader_->db(),
                        "SELECT j.barcode, j.stage = 'uploaded', "
                        "b.marc_extraction_timestamp IS NOT NULL, "
                        "CASE WHEN j.stage = 'uploaded' THEN " +
                            UploadFact("bytes", "j.barcode") +
                            " END FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode");
    while (q.executeStep()) {
      VerifyRow r;
      r.barcode = q.getColumn(0).getString();
      r.done = q.getColumn(1).getInt() != 0;
      r.marc_recorded = q.getColumn(2).getInt() != 0;
      r.raw_size = q.getColumn(3).isNull() ? -1 : q.getColumn(3).getInt64();
      fn(std::move(r));
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::DataLoss(reader_->path() + ": reading the run's jobs: " + e.what());
  }
}

Result<UploadRecord> JobReader::Upload(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(reader_->db(), "SELECT b.encrypted_etag, " +
                                           UploadFact("sha256", "b.barcode") +
                                           " FROM books b WHERE b.barcode = ?");
    q.bind(1, barcode);
    UploadRecord r;
    if (q.executeStep()) {
      r.encrypted_etag = q.getColumn(0).isNull() ? "" : q.getColumn(0).getString();
      r.sha256_hex = q.getColumn(1).isNull() ? "" : q.getColumn(1).getString();
    }
    return r;
  } catch (const std::exception& e) {
    return Status::DataLoss(reader_->path() + ": reading the record of " + barcode + ": " +
                            e.what());
  }
}

}  // namespace grin::storage
