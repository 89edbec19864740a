#include "storage/postgres/pg_sync_reader.h"

#include <nlohmann/json.hpp>

namespace grin::storage {
namespace {

using pg::PgConnection;
using pg::PgResult;

// As storage/sync_queries.cc's, in PostgreSQL. ORDER BY and min/max on barcodes and ISO times
// use COLLATE "C" (bytes, as SQLite's BINARY), whatever the database's default collation.
constexpr const char* kPreviousQueueSql =
    "SELECT barcode FROM books WHERE grin_state = 'PREVIOUSLY_DOWNLOADED' AND "
    "coalesce(processing_request_timestamp, '') = '' ORDER BY barcode COLLATE \"C\"";
constexpr const char* kUnconvertedQueueSql =
    "SELECT barcode FROM books WHERE coalesce(processing_request_timestamp, '') = '' AND "
    "coalesce(converted_date, '') = '' AND coalesce(grin_check_in_date, '') = '' AND "
    "(grin_state IS NULL OR grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD')) "
    "ORDER BY barcode COLLATE \"C\"";
constexpr const char* kStoredSql = "SELECT barcode FROM uploaded";
constexpr const char* kDeadOrAwaitingSql =
    "SELECT barcode, coalesce(error_reason, ''), status FROM jobs "
    "WHERE status IN ('dead', 'awaiting') ORDER BY barcode COLLATE \"C\"";
constexpr const char* kMarcRecordedSql =
    "SELECT marc_extraction_timestamp IS NOT NULL FROM books WHERE barcode = $1";
constexpr const char* kJobSql =
    "SELECT j.stage, j.status = 'dead', c.data IS NOT NULL, coalesce(c.data, '') FROM jobs j "
    "LEFT JOIN job_checkpoints c ON c.barcode = j.barcode WHERE j.barcode = $1";
constexpr const char* kJobColumns =
    "SELECT barcode, stage, status, coalesce(error_reason, ''), coalesce(failed_at, 0) FROM jobs ";
constexpr const char* kAwaitingSql =
    "SELECT barcode, coalesce(error_reason, '') FROM jobs WHERE status = 'awaiting'";
constexpr const char* kEtagChecksSql =
    "SELECT count(*), count(b.last_etag_check), "
    "coalesce(max(b.last_etag_check COLLATE \"C\"), ''), "
    "coalesce(min(b.last_etag_check COLLATE \"C\"), '') "
    "FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode WHERE j.stage = 'uploaded'";

// As sync_queries.cc's UploadFact: a field of the detail of the book's newest event that
// recorded a sha256 (its upload).
std::string UploadFact(const char* field, const char* cast, const char* barcode_expr) {
  return std::string("(SELECT (e.detail::jsonb ->> '") + field + "')" + cast +
         " FROM events e WHERE e.barcode = " + barcode_expr +
         " AND (e.detail::jsonb ->> 'sha256') IS NOT NULL ORDER BY e.event_id DESC LIMIT 1)";
}

JobState RowState(const PgResult& r, int i) {
  JobState j;
  j.stage = r.Text(i, 1);
  j.status = r.Text(i, 2);
  j.reason = r.Text(i, 3);
  j.since_micros = r.Int(i, 4);
  return j;
}

constexpr int kPage = 5000;  // ForEachJob's rows per statement

}  // namespace

Result<std::unique_ptr<PgSyncReader>> PgSyncReader::Open(const std::string& conninfo) {
  std::unique_ptr<PgSyncReader> r(new PgSyncReader(conninfo, pg::RedactConninfo(conninfo)));
  std::lock_guard<std::mutex> l(r->mu_);
  GRIN_ASSIGN_OR_RETURN(r->conn_, PgConnection::Connect(r->conninfo_, r->what_));
  return r;
}

Result<PgResult> PgSyncReader::Query(const std::string& sql, const pg::Params& params) {
  if (!conn_ || !conn_->ok()) {
    conn_.reset();
    GRIN_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(conninfo_, what_));
  }
  return conn_->Exec(sql, params);
}

Result<std::vector<std::string>> PgSyncReader::CatalogQueueBarcodes(const std::string& queue) {
  const char* sql = queue == "previous"      ? kPreviousQueueSql
                    : queue == "unconverted" ? kUnconvertedQueueSql
                                             : nullptr;
  if (sql == nullptr) {
    return Status::InvalidArgument("queue '" + queue + "': not a catalog queue (previous, "
                                   "unconverted)");
  }
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgResult r, Query(sql));
  std::vector<std::string> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.Text(i, 0));
  return out;
}

Result<std::set<std::string>> PgSyncReader::StoredBarcodes() {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgResult r, Query(kStoredSql));
  std::set<std::string> done;
  for (int i = 0; i < r.rows(); ++i) done.insert(r.Text(i, 0));
  return done;
}

Result<DeadJobs> PgSyncReader::CountDeadJobs(bool whole_run,
                                             const std::vector<std::string>& covered_list) {
  static const std::set<std::string> kByRule = {"known_conversion_failure",
                                                "conversion_not_allowed"};
  std::set<std::string> covered(covered_list.begin(), covered_list.end());
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgResult r, Query(kDeadOrAwaitingSql));
  DeadJobs out;
  for (int i = 0; i < r.rows(); ++i) {
    std::string b = r.Text(i, 0), reason = r.Text(i, 1);
    if (!whole_run && covered.count(b) == 0) continue;
    if (r.Text(i, 2) == "awaiting") {
      ++out.awaiting;
    } else if (kByRule.count(reason)) {
      ++out.by_rule;
    } else if (out.failed++ == 0) {
      out.first_failed = b + " (" + reason + ")";
    }
  }
  return out;
}

Result<std::map<std::string, JobState>> PgSyncReader::ReadJobStates(
    const std::vector<std::string>& barcodes, bool all_unfinished) {
  std::map<std::string, JobState> out;
  std::lock_guard<std::mutex> l(mu_);
  if (barcodes.empty() && all_unfinished) {
    GRIN_ASSIGN_OR_RETURN(PgResult r, Query(std::string(kJobColumns) +
                                            "WHERE stage <> 'uploaded' ORDER BY job_id"));
    for (int i = 0; i < r.rows(); ++i) out[r.Text(i, 0)] = RowState(r, i);
    return out;
  }
  if (barcodes.empty()) return out;
  // One statement for the whole list (the barcodes as one JSON parameter, never in the SQL).
  GRIN_ASSIGN_OR_RETURN(
      PgResult r,
      Query(std::string(kJobColumns) +
                "WHERE barcode IN (SELECT jsonb_array_elements_text($1::jsonb))",
            {nlohmann::json(barcodes).dump()}));
  for (int i = 0; i < r.rows(); ++i) out[r.Text(i, 0)] = RowState(r, i);
  return out;
}

Result<std::map<std::string, std::string>> PgSyncReader::AwaitingBooks() {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgResult r, Query(kAwaitingSql));
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i) out[r.Text(i, 0)] = r.Text(i, 1);
  return out;
}

Result<EtagChecks> PgSyncReader::ReadEtagChecks() {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgResult r, Query(kEtagChecksSql));
  EtagChecks c;
  if (r.rows() > 0) {
    c.stored = r.Int(0, 0);
    c.checked = r.Int(0, 1);
    c.newest = r.Text(0, 2);
    c.oldest = r.Text(0, 3);
  }
  return c;
}

Result<bool> PgSyncReader::MarcRecorded(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  auto r = Query(kMarcRecordedSql, {barcode});
  if (!r.ok()) {
    return Status::Unavailable("reading the MARC columns of " + barcode + ": " +
                               r.status().message());
  }
  return r->rows() > 0 && r->Int(0, 0) != 0;
}

Result<std::optional<JobRow>> PgSyncReader::Job(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  auto r = Query(kJobSql, {barcode});
  if (!r.ok()) {
    return Status::Unavailable("reading the job of " + barcode + ": " + r.status().message());
  }
  if (r->rows() == 0) return std::optional<JobRow>();
  JobRow row;
  row.stage = r->Text(0, 0);
  row.dead = r->Int(0, 1) != 0;
  if (r->Int(0, 2) != 0) row.checkpoint = r->Text(0, 3);
  return std::optional<JobRow>(row);
}

Status PgSyncReader::ForEachJob(const std::function<void(VerifyRow)>& fn) {
  // Pages in job order (keyset on job_id), so a run of millions never sits in memory whole.
  const std::string sql =
      "SELECT j.barcode, j.stage = 'uploaded', b.marc_extraction_timestamp IS NOT NULL, "
      "CASE WHEN j.stage = 'uploaded' THEN " +
      UploadFact("bytes", "::numeric::bigint", "j.barcode") +
      " END, j.job_id FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode "
      "WHERE j.job_id > $1::bigint ORDER BY j.job_id LIMIT " + std::to_string(kPage);
  int64_t after = 0;
  for (;;) {
    std::vector<VerifyRow> rows;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto r = Query(sql, {std::to_string(after)});
      if (!r.ok()) {
        return Status::DataLoss(what_ + ": reading the run's jobs: " + r.status().message());
      }
      for (int i = 0; i < r->rows(); ++i) {
        VerifyRow v;
        v.barcode = r->Text(i, 0);
        v.done = r->Int(i, 1) != 0;
        v.marc_recorded = r->Int(i, 2) != 0;
        v.raw_size = r->IsNull(i, 3) ? -1 : r->Int(i, 3);
        after = r->Int(i, 4);
        rows.push_back(std::move(v));
      }
    }
    for (auto& v : rows) fn(std::move(v));  // outside the lock: fn may call Upload()
    if (rows.size() < static_cast<size_t>(kPage)) return Status::Ok();
  }
}

Result<UploadRecord> PgSyncReader::Upload(const std::string& barcode) {
  std::lock_guard<std::mutex> l(mu_);
  auto r = Query("SELECT b.encrypted_etag, " + UploadFact("sha256", "", "b.barcode") +
                     " FROM books b WHERE b.barcode = $1",
                 {barcode});
  if (!r.ok()) {
    return Status::DataLoss(what_ + ": reading the record of " + barcode + ": " +
                            r.status().message());
  }
  UploadRecord u;
  if (r->rows() > 0) {
    u.encrypted_etag = r->Text(0, 0);
    u.sha256_hex = r->Text(0, 1);
  }
  return u;
}

}  // namespace grin::storage
