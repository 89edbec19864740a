#include "storage/postgres/pg_book_catalog.h"

#include <algorithm>
#include <set>
#include <nlohmann/json.hpp>

#include "engine/books_columns.h"
#include "storage/postgres/pg_migrate.h"

namespace grin::storage {
namespace {

using pg::Params;
using pg::PgConnection;
using pg::PgResult;

// Collect: insert a page's new books in one statement (book_count moves once per statement,
// postgres 0005); existing ones untouched. $1: a JSON array of objects with BookParams' fields
// (b, title, scanned, converted, downloaded, processed, analyzed, ocr, link, state), $2: now.
// Returns the barcodes inserted. A barcode named twice in a page is inserted once (DO NOTHING).
constexpr const char* kInsertPageSql = R"sql(
INSERT INTO books (barcode, title, scanned_date, converted_date, downloaded_date, processed_date,
                   analyzed_date, ocr_date, google_books_link, grin_state, created_at, updated_at)
SELECT r.b, NULLIF(r.title, ''), NULLIF(r.scanned, ''), NULLIF(r.converted, ''),
       NULLIF(r.downloaded, ''), NULLIF(r.processed, ''), NULLIF(r.analyzed, ''),
       NULLIF(r.ocr, ''), NULLIF(r.link, ''), NULLIF(r.state, ''), $2, $2
FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (b text, title text, scanned text,
     converted text, downloaded text, processed text, analyzed text, ocr text, link text,
     state text)) WITH ORDINALITY AS r(b, title, scanned, converted, downloaded, processed,
     analyzed, ocr, link, state, n)
ORDER BY r.n
ON CONFLICT (barcode) DO NOTHING
RETURNING barcode)sql";

// Collect --refresh: non-empty new values replace old ones; updated_at moves only on a change.
constexpr const char* kRefreshSql = R"sql(
UPDATE books SET
  title = COALESCE(NULLIF($2, ''), title),
  scanned_date = COALESCE(NULLIF($3, ''), scanned_date),
  converted_date = COALESCE(NULLIF($4, ''), converted_date),
  downloaded_date = COALESCE(NULLIF($5, ''), downloaded_date),
  processed_date = COALESCE(NULLIF($6, ''), processed_date),
  analyzed_date = COALESCE(NULLIF($7, ''), analyzed_date),
  ocr_date = COALESCE(NULLIF($8, ''), ocr_date),
  google_books_link = COALESCE(NULLIF($9, ''), google_books_link),
  grin_state = COALESCE(NULLIF($10, ''), grin_state),
  updated_at = $11
WHERE barcode = $1 AND (
  title IS DISTINCT FROM COALESCE(NULLIF($2, ''), title) OR
  scanned_date IS DISTINCT FROM COALESCE(NULLIF($3, ''), scanned_date) OR
  converted_date IS DISTINCT FROM COALESCE(NULLIF($4, ''), converted_date) OR
  downloaded_date IS DISTINCT FROM COALESCE(NULLIF($5, ''), downloaded_date) OR
  processed_date IS DISTINCT FROM COALESCE(NULLIF($6, ''), processed_date) OR
  analyzed_date IS DISTINCT FROM COALESCE(NULLIF($7, ''), analyzed_date) OR
  ocr_date IS DISTINCT FROM COALESCE(NULLIF($8, ''), ocr_date) OR
  google_books_link IS DISTINCT FROM COALESCE(NULLIF($9, ''), google_books_link) OR
  grin_state IS DISTINCT FROM COALESCE(NULLIF($10, ''), grin_state)))sql";

constexpr const char* kNowSql = "SELECT grin_now_iso()";

constexpr const char* kPutCursorSql = R"sql(
INSERT INTO collect_cursor (library_directory, next_url, pages_done, rows_seen, refresh,
                            started_at, updated_at)
VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6, $6)
ON CONFLICT (library_directory) DO UPDATE SET
  next_url = excluded.next_url, pages_done = excluded.pages_done,
  rows_seen = excluded.rows_seen, refresh = excluded.refresh, updated_at = excluded.updated_at)sql";
constexpr const char* kGetCursorSql =
    "SELECT next_url, pages_done, rows_seen, refresh FROM collect_cursor "
    "WHERE library_directory = $1";
constexpr const char* kDeleteCursorSql = "DELETE FROM collect_cursor WHERE library_directory = $1";

// Enrichment candidates: the three keyset-paged parts of SqliteBookCatalog.
constexpr const char* kPendingEnrichmentSql = R"sql(
SELECT b.barcode FROM books b
WHERE b.enrichment_timestamp IS NULL AND b.barcode > $1
  AND NOT EXISTS (SELECT 1 FROM book_enrichment e
                  WHERE e.barcode = b.barcode AND e.state = 'missing')
ORDER BY b.barcode LIMIT $2::bigint)sql";
constexpr const char* kMissingDueSql = R"sql(
SELECT e.barcode FROM book_enrichment e
WHERE e.state = 'missing' AND e.barcode > $1
  AND (e.next_ask_at IS NULL OR e.next_ask_at <= $3
       OR ($4::boolean AND e.last_attempt_at <= $5))
ORDER BY e.barcode LIMIT $2::bigint)sql";
constexpr const char* kRefreshDueSql = R"sql(
SELECT b.barcode FROM books b
WHERE b.enrichment_timestamp IS NOT NULL AND b.barcode > $1 AND b.enrichment_timestamp <= $3
  AND NOT EXISTS (SELECT 1 FROM book_enrichment e
                  WHERE e.barcode = b.barcode AND e.state = 'missing')
ORDER BY b.barcode LIMIT $2::bigint)sql";
constexpr const char* kMissingSummarySql =
    "SELECT count(*), COALESCE(min(next_ask_at), '') FROM book_enrichment "
    "WHERE state = 'missing'";

// 'found' or 'failed'. Found clears the missing streak; failed keeps it.
constexpr const char* kEnrichmentStateSql = R"sql(
INSERT INTO book_enrichment (barcode, state, attempts, last_attempt_at, last_error)
SELECT $1::text, $2::text, 1, $3::text, $4::text
WHERE EXISTS (SELECT 1 FROM books WHERE barcode = $1)
ON CONFLICT (barcode) DO UPDATE SET state = excluded.state,
  attempts = book_enrichment.attempts + 1,
  last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error,
  missing_count = CASE WHEN excluded.state = 'found' THEN 0
                       ELSE book_enrichment.missing_count END,
  next_ask_at = NULL)sql";
// 'missing': one more answer in a row; next ask 1 day after the first, then 2, 4, 8, 16, 30.
constexpr const char* kEnrichmentMissingSql = R"sql(
INSERT INTO book_enrichment (barcode, state, attempts, last_attempt_at, last_error, missing_count,
                             next_ask_at)
SELECT $1::text, 'missing', 1, $2::text, $3::text, 1,
       to_char(($2::text::timestamptz + interval '1 day') AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS"Z"')
WHERE EXISTS (SELECT 1 FROM books WHERE barcode = $1)
ON CONFLICT (barcode) DO UPDATE SET state = 'missing',
  attempts = book_enrichment.attempts + 1,
  last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error,
  missing_count = CASE WHEN book_enrichment.state = 'missing'
                       THEN book_enrichment.missing_count + 1 ELSE 1 END,
  next_ask_at = to_char(
      (excluded.last_attempt_at::timestamptz
       + make_interval(days => (CASE WHEN book_enrichment.state = 'missing'
                                     THEN least(30, 1 << least(book_enrichment.missing_count,
                                                               5)::int)
                                     ELSE 1 END)::int)) AT TIME ZONE 'UTC',
      'YYYY-MM-DD"T"HH24:MI:SS"Z"'))sql";

constexpr const char* kCandidatesSql = R"sql(
SELECT b.barcode FROM books b
WHERE (b.processing_request_timestamp IS NULL OR b.processing_request_timestamp = '')
  AND (b.converted_date IS NULL OR b.converted_date = '')
  AND (b.grin_state IS NULL OR b.grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD',
                                                    'CONVERTED'))
  AND NOT EXISTS (SELECT 1 FROM conversion_request c WHERE c.barcode = b.barcode)
ORDER BY b.barcode LIMIT $1::bigint)sql";
constexpr const char* kRetryCandidatesSql = R"sql(
SELECT b.barcode FROM conversion_request c JOIN books b ON b.barcode = c.barcode
WHERE (c.outcome = 'unanswered' OR ($2::boolean AND c.outcome = 'other'))
  AND (b.processing_request_timestamp IS NULL OR b.processing_request_timestamp = '')
  AND (b.converted_date IS NULL OR b.converted_date = '')
  AND (b.grin_state IS NULL OR b.grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD',
                                                    'CONVERTED'))
ORDER BY c.requested_at, c.barcode LIMIT $1::bigint)sql";

constexpr const char* kConversionSql = R"sql(
INSERT INTO conversion_request (barcode, outcome, grin_status, attempts, requested_at)
SELECT $1::text, $2::text, $3::text, 1, $4::text WHERE EXISTS (SELECT 1 FROM books WHERE barcode = $1)
ON CONFLICT (barcode) DO UPDATE SET outcome = excluded.outcome,
  grin_status = excluded.grin_status, attempts = conversion_request.attempts + 1,
  requested_at = excluded.requested_at)sql";
constexpr const char* kRequestedSql =
    "UPDATE books SET processing_request_timestamp = $2, updated_at = $2 WHERE barcode = $1";
constexpr const char* kEventSql =
    "INSERT INTO events (at, barcode, stage, outcome, detail) "
    "VALUES ($1, $2, 'conversion', $3, $4)";

constexpr const char* kClearFailuresSql = R"sql(
UPDATE books SET grin_convert_failed_date = NULL, grin_convert_failed_info = NULL,
                 grin_detailed_convert_failed_info = NULL, updated_at = $1
WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL
   OR grin_detailed_convert_failed_info IS NOT NULL)sql";
constexpr const char* kSetFailureSql = R"sql(
UPDATE books SET grin_convert_failed_date = NULLIF($2, ''),
                 grin_convert_failed_info = NULLIF($3, ''),
                 grin_detailed_convert_failed_info = NULLIF($4, ''), updated_at = $5
WHERE barcode = $1)sql";

bool KnownOutcome(const std::string& o) {
  static const char* kOutcomes[] = {"requested", "in_process", "already_available",
                                    "not_allowed", "other", "unanswered"};
  return std::find_if(std::begin(kOutcomes), std::end(kOutcomes),
                      [&](const char* k) { return o == k; }) != std::end(kOutcomes);
}

Params BookParams(const CollectedBook& b, const std::string& now) {
  return {b.barcode,      b.title,          b.scanned_date,     b.converted_date,
          b.downloaded_date, b.processed_date, b.analyzed_date, b.ocr_date,
          b.google_books_link, b.grin_state, now};
}

// UPDATE books SET <col> = COALESCE(NULLIF($i, ''), <col>), ... for the enrichment columns
// ($2..$N+1; their names come from engine/books_columns.h, never from input), time $N+2.
const std::string& EnrichSql() {
  static const std::string sql = [] {
    const auto& cols = EnrichmentColumns();
    std::string s = "UPDATE books SET ";
    for (size_t i = 0; i < cols.size(); ++i) {
      const std::string col(cols[i]->name);
      s += col + " = COALESCE(NULLIF($" + std::to_string(i + 2) + ", ''), " + col + "), ";
    }
    const std::string t = "$" + std::to_string(cols.size() + 2);
    return s + "enrichment_timestamp = " + t + ", updated_at = " + t + " WHERE barcode = $1";
  }();
  return sql;
}

Result<std::string> Now(PgConnection& c) {
  GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(kNowSql));
  return r.Text(0, 0);
}

}  // namespace

Result<std::unique_ptr<PgBookCatalog>> PgBookCatalog::Open(const std::string& conninfo) {
  std::unique_ptr<PgBookCatalog> cat(new PgBookCatalog(conninfo, pg::RedactConninfo(conninfo)));
  std::lock_guard<std::mutex> l(cat->mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, cat->Conn());
  GRIN_RETURN_IF_ERROR(pg::MigratePostgres(*c).status());
  return cat;
}

Result<PgConnection*> PgBookCatalog::Conn() {
  if (!conn_ || !conn_->ok()) {
    conn_.reset();
    GRIN_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(conninfo_, what_));
  }
  return conn_.get();
}

Status PgBookCatalog::InTx(const std::function<Status(PgConnection&)>& fn) {
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  pg::PgTransaction tx(*c);
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(fn(*c));
  return tx.Commit();
}

Result<UpsertCounts> PgBookCatalog::ApplyCollectedPage(const std::vector<CollectedBook>& books,
                                                       bool refresh,
                                                       const CollectCursor& cursor) {
  GRIN_RETURN_IF_ERROR(CheckCollectedPage(books));
  std::lock_guard<std::mutex> l(mu_);
  UpsertCounts counts;
  Status s = InTx([&](PgConnection& c) {
    counts = {};
    GRIN_ASSIGN_OR_RETURN(std::string now, Now(c));
    nlohmann::json page = nlohmann::json::array();
    for (const auto& b : books) {
      page.push_back({{"b", b.barcode}, {"title", b.title}, {"scanned", b.scanned_date},
                      {"converted", b.converted_date}, {"downloaded", b.downloaded_date},
                      {"processed", b.processed_date}, {"analyzed", b.analyzed_date},
                      {"ocr", b.ocr_date}, {"link", b.google_books_link},
                      {"state", b.grin_state}});
    }
    std::string page_json;
    try {
      page_json = page.dump();
    } catch (const nlohmann::json::exception&) {  // text that is not UTF-8 (as the server refuses it)
      for (const auto& row : page) {
        try {
          (void)row.dump();
        } catch (const nlohmann::json::exception&) {
          return Status::InvalidArgument("collected book " + row["b"].get<std::string>() +
                                         ": a field is not UTF-8 text; the page was not stored");
        }
      }
      return Status::InvalidArgument("a collected page is not UTF-8 text; it was not stored");
    }
    GRIN_ASSIGN_OR_RETURN(PgResult ins, c.Exec(kInsertPageSql, {page_json, now}));
    std::set<std::string> inserted;
    for (int i = 0; i < ins.rows(); ++i) inserted.insert(ins.Text(i, 0));
    for (const auto& b : books) {
      Params p = BookParams(b, now);
      if (inserted.erase(b.barcode) > 0) {  // the first naming of a barcode inserted it
        ++counts.inserted;
      } else if (refresh) {
        GRIN_ASSIGN_OR_RETURN(PgResult upd, c.Exec(kRefreshSql, p));
        if (upd.Affected() > 0) ++counts.updated; else ++counts.unchanged;
      } else {
        ++counts.unchanged;
      }
    }
    if (cursor.next_url.empty()) {
      return c.Exec(kDeleteCursorSql, {cursor.library_directory}).status();
    }
    return c
        .Exec(kPutCursorSql, {cursor.library_directory, cursor.next_url,
                              std::to_string(cursor.pages_done), std::to_string(cursor.rows_seen),
                              cursor.refresh ? "1" : "0", now})
        .status();
  });
  if (!s.ok()) return s;
  return counts;
}

Result<std::optional<CollectCursor>> PgBookCatalog::LoadCollectCursor(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kGetCursorSql, {dir}));
  if (r.rows() == 0) return std::optional<CollectCursor>();
  CollectCursor cur;
  cur.library_directory = dir;
  cur.next_url = r.Text(0, 0);
  cur.pages_done = r.Int(0, 1);
  cur.rows_seen = r.Int(0, 2);
  cur.refresh = r.Int(0, 3) != 0;
  return std::optional<CollectCursor>(std::move(cur));
}

Status PgBookCatalog::ClearCollectCursor(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  return c->Exec(kDeleteCursorSql, {dir}).status();
}

Result<std::vector<BookCatalog::EnrichCandidate>> PgBookCatalog::EnrichmentCandidates(
    const std::string& after, int limit, const EnrichSelection& selection) {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  GRIN_ASSIGN_OR_RETURN(std::string now, Now(*c));
  const std::string before = selection.refresh_before.empty() ? now : selection.refresh_before;
  const std::string lim = std::to_string(limit);
  std::vector<EnrichCandidate> out;
  auto part = [&](const char* sql, EnrichKind kind, Params p) -> Status {
    GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(sql, p));
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.Text(i, 0), kind});
    return Status::Ok();
  };
  GRIN_RETURN_IF_ERROR(part(kPendingEnrichmentSql, EnrichKind::kNew, {after, lim}));
  GRIN_RETURN_IF_ERROR(part(kMissingDueSql, EnrichKind::kMissingAgain,
                            {after, lim, now, selection.refresh ? "true" : "false", before}));
  if (selection.refresh) {
    GRIN_RETURN_IF_ERROR(part(kRefreshDueSql, EnrichKind::kRefresh, {after, lim, before}));
  }
  // The parts are disjoint and each in barcode order: merge, keep the first `limit`. (Byte
  // order, as SQLite's BINARY collation: the cluster may collate otherwise.)
  std::sort(out.begin(), out.end(),
            [](const EnrichCandidate& a, const EnrichCandidate& b) { return a.barcode < b.barcode; });
  if (static_cast<int>(out.size()) > limit) out.resize(static_cast<size_t>(std::max(0, limit)));
  return out;
}

Result<BookCatalog::MissingSummary> PgBookCatalog::MissingEnrichment() {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kMissingSummarySql));
  MissingSummary m;
  m.books = r.Int(0, 0);
  m.next_ask_at = r.Text(0, 1);
  return m;
}

Status PgBookCatalog::ApplyEnrichment(const std::vector<EnrichedBook>& found,
                                      const std::vector<std::string>& missing) {
  const auto& cols = EnrichmentColumns();
  GRIN_RETURN_IF_ERROR(CheckEnrichment(found));
  std::lock_guard<std::mutex> l(mu_);
  return InTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(std::string now, Now(c));
    for (const auto& b : found) {
      Params p(cols.size() + 2);
      p[0] = b.barcode;
      for (const auto& [col, value] : b.columns) {
        for (size_t i = 0; i < cols.size(); ++i) {
          if (col == cols[i]->name) p[i + 1] = value;
        }
      }
      p[cols.size() + 1] = now;
      GRIN_RETURN_IF_ERROR(c.Exec(EnrichSql(), p).status());
      GRIN_RETURN_IF_ERROR(
          c.Exec(kEnrichmentStateSql, {b.barcode, "found", now, std::nullopt}).status());
    }
    for (const auto& bc : missing) {
      GRIN_RETURN_IF_ERROR(
          c.Exec(kEnrichmentMissingSql, {bc, now, "not in the _barcode_search reply"}).status());
    }
    return Status::Ok();
  });
}

Status PgBookCatalog::RecordEnrichmentFailure(const std::vector<std::string>& barcodes,
                                              const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  return InTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(std::string now, Now(c));
    for (const auto& bc : barcodes) {
      GRIN_RETURN_IF_ERROR(c.Exec(kEnrichmentStateSql, {bc, "failed", now, error}).status());
    }
    return Status::Ok();
  });
}

Result<std::vector<std::string>> PgBookCatalog::ConversionCandidates(int limit,
                                                                     bool retry_refused) {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  std::vector<std::string> out;
  GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kCandidatesSql, {std::to_string(limit)}));
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.Text(i, 0));
  if (static_cast<int>(out.size()) < limit) {
    GRIN_ASSIGN_OR_RETURN(
        PgResult q, c->Exec(kRetryCandidatesSql,
                            {std::to_string(limit - static_cast<int>(out.size())),
                             retry_refused ? "true" : "false"}));
    for (int i = 0; i < q.rows(); ++i) out.push_back(q.Text(i, 0));
  }
  return out;
}

Status PgBookCatalog::RecordConversionRequests(const std::vector<ConversionRecord>& records) {
  for (const auto& r : records) {
    if (!KnownOutcome(r.outcome)) return Status::InvalidArgument("unknown outcome " + r.outcome);
  }
  std::lock_guard<std::mutex> l(mu_);
  return InTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(std::string now, Now(c));
    for (const auto& r : records) {
      GRIN_RETURN_IF_ERROR(
          c.Exec(kConversionSql, {r.barcode, r.outcome, r.grin_status, now}).status());
      if (r.outcome == "requested") {
        GRIN_RETURN_IF_ERROR(c.Exec(kRequestedSql, {r.barcode, now}).status());
      }
      nlohmann::json d = {{"grin_status", r.grin_status}};
      if (!r.extra_columns.empty()) {
        nlohmann::json extra = nlohmann::json::object();
        for (const auto& [k, v] : r.extra_columns) extra[k] = v;
        d["grin_columns"] = std::move(extra);
      }
      GRIN_RETURN_IF_ERROR(c.Exec(kEventSql, {now, r.barcode, r.outcome, d.dump()}).status());
    }
    return Status::Ok();
  });
}

Result<int64_t> PgBookCatalog::ReplaceConvertFailures(
    const std::vector<ConvertFailure>& failures) {
  std::lock_guard<std::mutex> l(mu_);
  int64_t listed = 0;
  Status s = InTx([&](PgConnection& c) {
    listed = 0;
    GRIN_ASSIGN_OR_RETURN(std::string now, Now(c));
    GRIN_RETURN_IF_ERROR(c.Exec(kClearFailuresSql, {now}).status());
    for (const auto& f : failures) {
      GRIN_ASSIGN_OR_RETURN(PgResult r,
                            c.Exec(kSetFailureSql, {f.barcode, f.date, f.info, f.detail, now}));
      listed += r.Affected();
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return listed;
}

Result<int64_t> PgBookCatalog::CountBooks() {
  std::lock_guard<std::mutex> l(mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec("SELECT count(*) FROM books"));
  return r.Int(0, 0);
}

}  // namespace grin::storage
