#include "storage/postgres/pg_run_queries.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "engine/base/clock.h"
#include "schema/migrations.h"
#include "storage/postgres/pg_migrate.h"
#include "storage/postgres/pg_state_sql.h"

namespace grin::storage {
namespace {

using pg::PgConnection;
using pg::PgResult;

// The milliseconds of an ISO time text `t` (YYYY-MM-DDTHH:MM:SS[.mmm]Z): the leading digits of
// its characters 21-23, 0 if none (SQLite's CAST(substr(t, 21, 3) AS INTEGER)).
std::string Millis(const std::string& t) {
  return "coalesce(nullif(substring(substr(" + t + ", 21, 3) from '^[0-9]*'), ''), '0')::int";
}
// Unix seconds (with milliseconds) of events.at, in float8 as SQLite computes its REAL:
// whole seconds + ms / 1000.0. NULL for a text that is not an ISO time.
const std::string kT =
    "(grin_iso_unix_seconds(at)::float8 + " + Millis("at") + "::float8 / 1000.0::float8)";
// Events that mean "this book reached uploaded".
constexpr const char* kDone =
    "stage = 'uploaded' AND outcome NOT IN ('failed', 'dead', 'released', 'requeued', 'reset', "
    "'reclaimed', 'dead_crash_loop')";
constexpr const char* kFailed = "outcome IN ('failed', 'dead')";
constexpr const char* kReason = "coalesce(detail::jsonb ->> 'reason', '(none)')";
// detail.bytes of an event, truncated to an integer; 0 if absent or not a number.
std::string Bytes(const std::string& detail) {
  return "CASE WHEN jsonb_typeof(" + detail + "::jsonb -> 'bytes') = 'number' THEN trunc((" +
         detail + "::jsonb ->> 'bytes')::numeric) ELSE 0 END";
}
// An event's bucket on the grid bound as $1 (t0_s) and $2 (bucket_s); SQLite's CAST truncates
// toward zero, so does trunc().
std::string BucketExpr() { return "trunc((" + kT + " - $1::float8) / $2::float8)::bigint"; }

// A double as text that PostgreSQL reads back as exactly the same float8.
std::string Float(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
double Double(const PgResult& r, int row, int col) {
  const std::string s = r.Text(row, col);
  double v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}
pg::Params Grid(const EventGrid& grid) { return {Float(grid.t0_s), Float(grid.bucket_s)}; }

// pg::state_sql::kFailuresSql, its text ordered by bytes as SQLite's.
constexpr const char* kFailuresSql = R"sql(
SELECT stage, reason, class, dead, n FROM (
  SELECT stage, coalesce(error_reason, '') AS reason, coalesce(error_class, '') AS class,
         (status = 'dead')::int AS dead, count(*) AS n
  FROM jobs WHERE status IN ('retry', 'dead') GROUP BY 1, 2, 3, 4) g
ORDER BY n DESC, stage COLLATE "C", reason COLLATE "C")sql";
constexpr const char* kBookCountSql = "SELECT n FROM book_count WHERE one = 1";
// The WHERE is books_convert_failed's, word for word (the partial index's rows only).
constexpr const char* kConvertFailedSql = R"sql(
SELECT info, n FROM (
  SELECT coalesce(grin_convert_failed_info, '') AS info, count(*) AS n FROM books
  WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL
  GROUP BY 1) g
ORDER BY n DESC, info COLLATE "C")sql";

}  // namespace

PgRunQueries::PgRunQueries(std::string conninfo, std::string what)
    : conninfo_(std::move(conninfo)), what_(std::move(what)) {}
PgRunQueries::~PgRunQueries() = default;

Result<std::unique_ptr<PgRunQueries>> PgRunQueries::Open(const std::string& conninfo) {
  std::unique_ptr<PgRunQueries> q(new PgRunQueries(conninfo, pg::RedactConninfo(conninfo)));
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, q->Conn());
  GRIN_ASSIGN_OR_RETURN(int version, pg::PostgresSchemaVersion(*c));
  if (version == 0) {
    return Status::NotFound(q->what_ + ": no grin-jobs run in this database (create one with "
                                       "grin-jobs init --state postgresql://...)");
  }
  if (version > schema::PgLatestVersion()) {
    return Status::FailedPrecondition(
        q->what_ + ": the database is at schema version " + std::to_string(version) +
        ", newer than this grin-jobs knows (" + std::to_string(schema::PgLatestVersion()) +
        "); upgrade grin-jobs");
  }
  if (version < schema::PgLatestVersion()) {
    return Status::FailedPrecondition(
        q->what_ + ": the database is at schema version " + std::to_string(version) +
        ", older than this grin-jobs reads (" + std::to_string(schema::PgLatestVersion()) +
        "); a writing command (sync, collect) migrates it");
  }
  return q;
}

Result<PgConnection*> PgRunQueries::Conn() {
  if (conn_ && conn_->ok()) return conn_.get();
  conn_.reset();
  GRIN_ASSIGN_OR_RETURN(auto c, PgConnection::Connect(conninfo_, what_));
  GRIN_RETURN_IF_ERROR(c->Exec("SET default_transaction_read_only = on").status());
  conn_ = std::move(c);
  return conn_.get();
}

Result<PgResult> PgRunQueries::Exec(std::string_view sql, const pg::Params& params) {
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  return c->Exec(sql, params);
}

Result<StageCounts> PgRunQueries::Counts() {
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  namespace sql = pg::state_sql;
  // One snapshot for every answer, as the store's Counts().
  pg::PgTransaction tx(*c);
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(
      c->Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
  StageCounts n;
  GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(sql::kStageCountsSql));
  for (int i = 0; i < r.rows(); ++i) {
    Stage st;
    if (!ParseStage(r.Text(i, 0), &st)) continue;
    n.at[static_cast<int>(st)] += r.Int(i, 1);
    n.total += r.Int(i, 1);
  }
  GRIN_ASSIGN_OR_RETURN(PgResult l, c->Exec(sql::kLeasedCountSql));
  n.leased = l.Int(0, 0);
  GRIN_ASSIGN_OR_RETURN(PgResult f, c->Exec(sql::kFailedCountsSql));
  for (int i = 0; i < f.rows(); ++i) {
    if (f.Text(i, 0) == "retry") n.retrying += f.Int(i, 1);
    if (f.Text(i, 0) == "dead") n.dead += f.Int(i, 1);
  }
  GRIN_ASSIGN_OR_RETURN(PgResult a, c->Exec(sql::kAwaitingCountSql));
  n.awaiting = a.Int(0, 0);
  n.awaiting_since_micros = a.Int(0, 1);
  GRIN_RETURN_IF_ERROR(tx.Commit());
  return n;
}

Result<std::vector<FailureSummary>> PgRunQueries::Failures() {
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec(kFailuresSql));
  std::vector<FailureSummary> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(FailureSummary{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Int(i, 3) != 0,
                                 r.Int(i, 4)});
  }
  return out;
}

Result<RecentCount> PgRunQueries::CompletedSince(int64_t since_micros) {
  // The events of the partial second [$1, $2) plus uploaded_per_second from the next whole
  // second ($3) on, and the first of them: SQLite's kCompletedSinceSql.
  static const std::string sql =
      "SELECT (SELECT count(*) FROM events WHERE stage = 'uploaded' AND at >= $1 AND at < $2) "
      "+ (SELECT coalesce(sum(n), 0) FROM uploaded_per_second WHERE sec >= $3::bigint), "
      "coalesce(grin_iso_unix_seconds(f.at), 0), CASE WHEN f.at IS NULL THEN 0 ELSE " +
      Millis("f.at") + " END "
      "FROM (SELECT min(at) AS at FROM events WHERE stage = 'uploaded' AND at >= $1) f";
  const int64_t next_second = since_micros / 1'000'000 + 1;  // since_micros is never < 0
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec(sql, {FormatIsoUtcMillis(since_micros),
                                               FormatIsoUtcMillis(next_second * 1'000'000),
                                               std::to_string(next_second)}));
  RecentCount out;
  out.count = r.Int(0, 0);
  out.first_micros = r.Int(0, 1) * 1'000'000 + r.Int(0, 2) * 1000;
  return out;
}

Result<int64_t> PgRunQueries::BookCount() {
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec(kBookCountSql));
  return r.rows() > 0 ? r.Int(0, 0) : 0;
}

Result<ConvertFailedSummary> PgRunQueries::ConvertFailed(size_t top) {
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec(kConvertFailedSql));
  ConvertFailedSummary s;
  for (int i = 0; i < r.rows(); ++i) {
    s.books += r.Int(i, 1);
    if (s.by_info.size() < top) s.by_info.emplace_back(r.Text(i, 0), r.Int(i, 1));
  }
  return s;
}

Result<std::optional<EventSpan>> PgRunQueries::CompletionOrFailureSpan() {
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec("SELECT min(" + kT + "), max(" + kT +
                                         ") FROM events WHERE (" + kDone + ") OR " + kFailed));
  if (r.rows() == 0 || r.IsNull(0, 0)) return std::optional<EventSpan>();
  return std::optional<EventSpan>(EventSpan{Double(r, 0, 0), Double(r, 0, 1)});
}

Result<std::vector<BucketCount>> PgRunQueries::CompletionsPerBucket(const EventGrid& grid) {
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec("SELECT " + BucketExpr() + ", count(*), sum(" +
                                             Bytes("detail") + ") FROM events WHERE " + kDone +
                                             " GROUP BY 1 ORDER BY 1 NULLS FIRST",
                                         Grid(grid)));
  std::vector<BucketCount> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.Int(i, 0), r.Int(i, 1), r.Int(i, 2)});
  return out;
}

Result<std::vector<FailureReasonEvents>> PgRunQueries::TopFailureReasons(
    const EventGrid& grid, int max_reasons, int max_examples) {
  GRIN_ASSIGN_OR_RETURN(
      PgResult r, Exec(std::string("SELECT reason, n FROM (SELECT ") + kReason +
                           " AS reason, count(*) AS n FROM events WHERE " + kFailed +
                           " GROUP BY 1) g ORDER BY n DESC, reason COLLATE \"C\" LIMIT $1::bigint",
                       {std::to_string(max_reasons)}));
  std::vector<FailureReasonEvents> out;
  for (int i = 0; i < r.rows(); ++i) {
    FailureReasonEvents x;
    x.reason = r.Text(i, 0);
    x.events = r.Int(i, 1);
    out.push_back(std::move(x));
  }
  const std::string per_bucket = "SELECT " + BucketExpr() + ", count(*) FROM events WHERE " +
                                 kFailed + " AND " + kReason +
                                 " = $3 GROUP BY 1 ORDER BY 1 NULLS FIRST";
  const std::string examples = std::string("SELECT barcode FROM events WHERE ") + kFailed +
                               " AND " + kReason +
                               " = $1 AND barcode IS NOT NULL "
                               "GROUP BY barcode ORDER BY min(event_id) LIMIT $2::bigint";
  for (auto& x : out) {
    pg::Params p = Grid(grid);
    p.push_back(x.reason);
    GRIN_ASSIGN_OR_RETURN(PgResult b, Exec(per_bucket, p));
    for (int i = 0; i < b.rows(); ++i) x.per_bucket.push_back({b.Int(i, 0), b.Int(i, 1), 0});
    GRIN_ASSIGN_OR_RETURN(PgResult e, Exec(examples, {x.reason, std::to_string(max_examples)}));
    for (int i = 0; i < e.rows(); ++i) x.examples.push_back(e.Text(i, 0));
  }
  return out;
}

Result<RecentCompletions> PgRunQueries::RecentCompletionsIn(double window_s) {
  RecentCompletions out;
  GRIN_ASSIGN_OR_RETURN(PgResult q, Exec("SELECT max(" + kT + "), min(" + kT +
                                         ") FROM events WHERE " + kDone));
  if (q.rows() == 0 || q.IsNull(0, 0)) return out;
  const double last = Double(q, 0, 0), first = Double(q, 0, 1);
  const double from = std::max(first, last - window_s);
  GRIN_ASSIGN_OR_RETURN(PgResult c, Exec(std::string("SELECT count(*) FROM events WHERE ") +
                                             kDone + " AND " + kT + " >= $1::float8",
                                         {Float(from)}));
  out.books = c.Int(0, 0);
  out.span_s = last - from;
  return out;
}

Result<std::vector<AwaitingBook>> PgRunQueries::LongestAwaiting(int limit) {
  // SQLite sorts NULL first.
  GRIN_ASSIGN_OR_RETURN(
      PgResult r, Exec("SELECT barcode, coalesce(failed_at, 0) FROM jobs WHERE status = "
                       "'awaiting' ORDER BY failed_at NULLS FIRST, barcode COLLATE \"C\" "
                       "LIMIT $1::bigint",
                       {std::to_string(limit)}));
  std::vector<AwaitingBook> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.Text(i, 0), r.Int(i, 1)});
  return out;
}

Result<std::vector<SlowBook>> PgRunQueries::SlowestBooks(int limit) {
  // The slowest first (the sort reads jobs only), then their bytes.
  static const std::string sql =
      "SELECT s.barcode, s.title, s.secs, "
      "coalesce((SELECT " + Bytes("e.detail") + " FROM events e "
      "WHERE e.barcode = s.barcode AND e.stage = 'uploaded' "
      "ORDER BY e.event_id DESC LIMIT 1), 0) "
      "FROM (SELECT j.barcode, coalesce(b.title, '') AS title, "
      "(j.updated_at - j.leased_at)::float8 / 1000000.0::float8 AS secs "
      "FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode "
      "WHERE j.stage = 'uploaded' AND j.leased_at IS NOT NULL "
      "ORDER BY j.updated_at - j.leased_at DESC, j.barcode COLLATE \"C\" LIMIT $1::bigint) s "
      "ORDER BY s.secs DESC, s.barcode COLLATE \"C\"";
  GRIN_ASSIGN_OR_RETURN(PgResult r, Exec(sql, {std::to_string(limit)}));
  std::vector<SlowBook> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.Text(i, 0), r.Text(i, 1), Double(r, i, 2), r.Int(i, 3)});
  }
  return out;
}

}  // namespace grin::storage
