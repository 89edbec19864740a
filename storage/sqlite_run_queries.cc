#include "storage/sqlite_run_queries.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>

#include "storage/sqlite_status.h"
#include "storage/state_reader.h"

namespace grin::storage {
namespace {

// Unix seconds (with milliseconds) of an events.at value (YYYY-MM-DDTHH:MM:SS[.mmm]Z), exact.
constexpr const char* kT =
    "(CAST(strftime('%s', at) AS REAL) + CAST(substr(at, 21, 3) AS INTEGER) / 1000.0)";
// Events that mean "this book reached uploaded".
constexpr const char* kDone =
    "stage = 'uploaded' AND outcome NOT IN ('failed', 'dead', 'released', 'requeued', 'reset', "
    "'reclaimed', 'dead_crash_loop')";
constexpr const char* kFailed = "outcome IN ('failed', 'dead')";
constexpr const char* kReason = "coalesce(json_extract(detail, '$.reason'), '(none)')";

// An event's bucket on the grid bound as ?1 (t0_s) and ?2 (bucket_s).
std::string BucketExpr() { return "CAST((" + std::string(kT) + " - ?1) / ?2 AS INTEGER)"; }

void BindGrid(SQLite::Statement& q, const EventGrid& grid) {
  q.bind(1, grid.t0_s);
  q.bind(2, grid.bucket_s);
}

}  // namespace

Result<std::unique_ptr<SqliteRunQueries>> SqliteRunQueries::Open(const std::string& db_path) {
  GRIN_ASSIGN_OR_RETURN(auto reader, StateReader::Open(db_path));
  return std::unique_ptr<SqliteRunQueries>(new SqliteRunQueries(std::move(reader)));
}

SqliteRunQueries::SqliteRunQueries(std::unique_ptr<StateReader> reader)
    : reader_(std::move(reader)) {}
SqliteRunQueries::~SqliteRunQueries() = default;

const std::string& SqliteRunQueries::what() const { return reader_->path(); }
Result<StageCounts> SqliteRunQueries::Counts() { return reader_->Counts(); }
Result<std::vector<FailureSummary>> SqliteRunQueries::Failures() { return reader_->Failures(); }
Result<RecentCount> SqliteRunQueries::CompletedSince(int64_t since_micros) {
  return reader_->CompletedSince(since_micros);
}
// book_count, kept by triggers: always equal to SELECT count(*) FROM books.
Result<int64_t> SqliteRunQueries::BookCount() { return reader_->Books(); }
Result<ConvertFailedSummary> SqliteRunQueries::ConvertFailed(size_t top) {
  return reader_->ConvertFailed(top);
}

Result<std::optional<EventSpan>> SqliteRunQueries::CompletionOrFailureSpan() {
  try {
    SQLite::Statement q(reader_->db(), std::string("SELECT min(") + kT + "), max(" + kT +
                                           ") FROM events WHERE (" + kDone + ") OR " + kFailed);
    if (!q.executeStep() || q.getColumn(0).isNull()) return std::optional<EventSpan>();
    return std::optional<EventSpan>(EventSpan{q.getColumn(0).getDouble(),
                                              q.getColumn(1).getDouble()});
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

Result<std::vector<BucketCount>> SqliteRunQueries::CompletionsPerBucket(const EventGrid& grid) {
  try {
    std::vector<BucketCount> out;
    SQLite::Statement q(reader_->db(),
                        "SELECT " + BucketExpr() +
                            ", count(*), sum(coalesce(json_extract(detail, '$.bytes'), 0)) "
                            "FROM events WHERE " + kDone + " GROUP BY 1 ORDER BY 1");
    BindGrid(q, grid);
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                     q.getColumn(2).getInt64()});
    }
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

Result<std::vector<FailureReasonEvents>> SqliteRunQueries::TopFailureReasons(
    const EventGrid& grid, int max_reasons, int max_examples) {
  try {
    SQLite::Database& db = reader_->db();
    std::vector<FailureReasonEvents> out;
    SQLite::Statement q(db, std::string("SELECT ") + kReason + ", count(*) FROM events WHERE " +
                                kFailed + " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?1");
    q.bind(1, max_reasons);
    while (q.executeStep()) {
      FailureReasonEvents x;
      x.reason = q.getColumn(0).getString();
      x.events = q.getColumn(1).getInt64();
      out.push_back(std::move(x));
    }
    SQLite::Statement b(db, "SELECT " + BucketExpr() + ", count(*) FROM events WHERE " + kFailed +
                                " AND " + kReason + " = ?3 GROUP BY 1 ORDER BY 1");
    SQLite::Statement ex(db, std::string("SELECT barcode FROM events WHERE ") + kFailed + " AND " +
                                 kReason + " = ?1 AND barcode IS NOT NULL "
                                 "GROUP BY barcode ORDER BY min(event_id) LIMIT ?2");
    for (auto& x : out) {
      b.reset();
      BindGrid(b, grid);
      b.bind(3, x.reason);
      while (b.executeStep()) x.per_bucket.push_back({b.getColumn(0).getInt64(),
                                                      b.getColumn(1).getInt64(), 0});
      ex.reset();
      ex.bind(1, x.reason);
      ex.bind(2, max_examples);
      while (ex.executeStep()) x.examples.push_back(ex.getColumn(0).getString());
    }
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

Result<RecentCompletions> SqliteRunQueries::RecentCompletionsIn(double window_s) {
  try {
    SQLite::Database& db = reader_->db();
    RecentCompletions out;
    SQLite::Statement q(db, std::string("SELECT max(") + kT + "), min(" + kT +
                                ") FROM events WHERE " + kDone);
    if (!q.executeStep() || q.getColumn(0).isNull()) return out;
    const double last = q.getColumn(0).getDouble(), first = q.getColumn(1).getDouble();
    const double from = std::max(first, last - window_s);
    SQLite::Statement c(db, std::string("SELECT count(*) FROM events WHERE ") + kDone + " AND " +
                                kT + " >= ?1");
    c.bind(1, from);
    c.executeStep();
    out.books = c.getColumn(0).getInt64();
    out.span_s = last - from;
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

Result<std::vector<AwaitingBook>> SqliteRunQueries::LongestAwaiting(int limit) {
  try {
    std::vector<AwaitingBook> out;
    SQLite::Statement q(reader_->db(),
                        "SELECT barcode, coalesce(failed_at, 0) FROM jobs "
                        "WHERE status = 'awaiting' ORDER BY failed_at, barcode LIMIT ?1");
    q.bind(1, limit);
    while (q.executeStep()) out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64()});
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

Result<std::vector<SlowBook>> SqliteRunQueries::SlowestBooks(int limit) {
  try {
    std::vector<SlowBook> out;
    // The slowest first (the sort reads jobs only), then their bytes.
    SQLite::Statement q(
        reader_->db(),
        "SELECT s.barcode, s.title, s.secs, "
        "coalesce((SELECT json_extract(e.detail, '$.bytes') FROM events e "
        "WHERE e.barcode = s.barcode AND e.stage = 'uploaded' "
        "ORDER BY e.event_id DESC LIMIT 1), 0) "
        "FROM (SELECT j.barcode, coalesce(b.title, '') AS title, "
        "(j.updated_at - j.leased_at) / 1e6 AS secs "
        "FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode "
        "WHERE j.stage = 'uploaded' AND j.leased_at IS NOT NULL "
        "ORDER BY j.updated_at - j.leased_at DESC, j.barcode LIMIT ?1) s "
        "ORDER BY s.secs DESC, s.barcode");
    q.bind(1, limit);
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                     q.getColumn(2).getDouble(), q.getColumn(3).getInt64()});
    }
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, reader_->path());
  }
}

}  // namespace grin::storage
