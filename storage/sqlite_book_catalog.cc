#include "storage/sqlite_book_catalog.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "engine/books_columns.h"
#include "storage/database.h"
#include "storage/sqlite_status.h"

namespace grin::storage {
namespace {

// Collect: insert new books; existing ones untouched.
constexpr const char* kInsertSql = R"(
INSERT INTO books (barcode, title, scanned_date, converted_date, downloaded_date, processed_date,
                   analyzed_date, ocr_date, google_books_link, grin_state, created_at, updated_at)
VALUES (?1, NULLIF(?2, ''), NULLIF(?3, ''), NULLIF(?4, ''), NULLIF(?5, ''), NULLIF(?6, ''),
        NULLIF(?7, ''), NULLIF(?8, ''), NULLIF(?9, ''), NULLIF(?10, ''), ?11, ?11)
ON CONFLICT (barcode) DO NOTHING)";

// Collect --refresh: non-empty new values replace old ones; updated_at moves only on a change.
constexpr const char* kRefreshSql = R"(
UPDATE books SET
  title = COALESCE(NULLIF(?2, ''), title),
  scanned_date = COALESCE(NULLIF(?3, ''), scanned_date),
  converted_date = COALESCE(NULLIF(?4, ''), converted_date),
  downloaded_date = COALESCE(NULLIF(?5, ''), downloaded_date),
  processed_date = COALESCE(NULLIF(?6, ''), processed_date),
  analyzed_date = COALESCE(NULLIF(?7, ''), analyzed_date),
  ocr_date = COALESCE(NULLIF(?8, ''), ocr_date),
  google_books_link = COALESCE(NULLIF(?9, ''), google_books_link),
  grin_state = COALESCE(NULLIF(?10, ''), grin_state),
  updated_at = ?11
WHERE barcode = ?1 AND (
  title IS NOT COALESCE(NULLIF(?2, ''), title) OR
  scanned_date IS NOT COALESCE(NULLIF(?3, ''), scanned_date) OR
  converted_date IS NOT COALESCE(NULLIF(?4, ''), converted_date) OR
  downloaded_date IS NOT COALESCE(NULLIF(?5, ''), downloaded_date) OR
  processed_date IS NOT COALESCE(NULLIF(?6, ''), processed_date) OR
  analyzed_date IS NOT COALESCE(NULLIF(?7, ''), analyzed_date) OR
  ocr_date IS NOT COALESCE(NULLIF(?8, ''), ocr_date) OR
  google_books_link IS NOT COALESCE(NULLIF(?9, ''), google_books_link) OR
  grin_state IS NOT COALESCE(NULLIF(?10, ''), grin_state)))";

constexpr const char* kPutCursorSql = R"(
INSERT INTO collect_cursor (library_directory, next_url, pages_done, rows_seen, refresh,
                            started_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
ON CONFLICT (library_directory) DO UPDATE SET
  next_url = excluded.next_url, pages_done = excluded.pages_done,
  rows_seen = excluded.rows_seen, refresh = excluded.refresh, updated_at = excluded.updated_at)";

constexpr const char* kGetCursorSql =
    "SELECT next_url, pages_done, rows_seen, refresh FROM collect_cursor "
    "WHERE library_directory = ?1";
constexpr const char* kDeleteCursorSql = "DELETE FROM collect_cursor WHERE library_directory = ?1";

// Enrichment candidates, three keyset-paged parts merged by barcode. Part 1: never enriched (or
// last attempt failed), not known missing.
constexpr const char* kPendingEnrichmentSql = R"(
SELECT b.barcode FROM books b
WHERE b.enrichment_timestamp IS NULL AND b.barcode > ?1
  AND NOT EXISTS (SELECT 1 FROM book_enrichment e
                  WHERE e.barcode = b.barcode AND e.state = 'missing')
ORDER BY b.barcode LIMIT ?2)";
// Part 2: missing books due again (?3 = now), or with refresh (?4) last asked at or before ?5.
constexpr const char* kMissingDueSql = R"(
SELECT e.barcode FROM book_enrichment e
WHERE e.state = 'missing' AND e.barcode > ?1
  AND (e.next_ask_at IS NULL OR e.next_ask_at <= ?3 OR (?4 AND e.last_attempt_at <= ?5))
ORDER BY e.barcode LIMIT ?2)";
// Part 3 (refresh): enriched books, enriched at or before ?3, not missing since.
constexpr const char* kRefreshDueSql = R"(
SELECT b.barcode FROM books b
WHERE b.enrichment_timestamp IS NOT NULL AND b.barcode > ?1 AND b.enrichment_timestamp <= ?3
  AND NOT EXISTS (SELECT 1 FROM book_enrichment e
                  WHERE e.barcode = b.barcode AND e.state = 'missing')
ORDER BY b.barcode LIMIT ?2)";

constexpr const char* kMissingSummarySql =
    "SELECT count(*), COALESCE(min(next_ask_at), '') FROM book_enrichment WHERE state = 'missing'";

// The enrichment columns (engine/books_columns.h), in bind order ?2..?N+1 of EnrichSql(); the
// enrichment time is ?N+2.
const std::vector<const BooksColumn*>& EnrichColumns() { return EnrichmentColumns(); }
int EnrichTimeParam() { return static_cast<int>(EnrichColumns().size()) + 2; }

std::string EnrichSql() {
  std::string sql = "UPDATE books SET ";
  for (size_t i = 0; i < EnrichColumns().size(); ++i) {
    const std::string col(EnrichColumns()[i]->name);
    sql += col + " = COALESCE(NULLIF(?" + std::to_string(i + 2) + ", ''), " + col + "), ";
  }
  const std::string t = "?" + std::to_string(EnrichTimeParam());
  sql += "enrichment_timestamp = " + t + ", updated_at = " + t + " WHERE barcode = ?1";
  return sql;
}

// 'found' or 'failed'. Found clears the missing streak; failed keeps it.
constexpr const char* kEnrichmentStateSql = R"(
INSERT INTO book_enrichment (barcode, state, attempts, last_attempt_at, last_error)
SELECT ?1, ?2, 1, ?3, ?4 WHERE EXISTS (SELECT 1 FROM books WHERE barcode = ?1)
ON CONFLICT (barcode) DO UPDATE SET state = excluded.state, attempts = attempts + 1,
  last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error,
  missing_count = CASE WHEN excluded.state = 'found' THEN 0 ELSE missing_count END,
  next_ask_at = NULL)";
// 'missing': one more answer in a row; the next ask 1 day after the first, then 2, 4, 8, 16 and
// 30 days (the SET expressions see the row as it was).
constexpr const char* kEnrichmentMissingSql = R"(
INSERT INTO book_enrichment (barcode, state, attempts, last_attempt_at, last_error, missing_count,
                             next_ask_at)
SELECT ?1, 'missing', 1, ?2, ?3, 1, strftime('%Y-%m-%dT%H:%M:%SZ', ?2, '+1 days')
WHERE EXISTS (SELECT 1 FROM books WHERE barcode = ?1)
ON CONFLICT (barcode) DO UPDATE SET state = 'missing', attempts = attempts + 1,
  last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error,
  missing_count = CASE WHEN state = 'missing' THEN missing_count + 1 ELSE 1 END,
  next_ask_at = strftime('%Y-%m-%dT%H:%M:%SZ', excluded.last_attempt_at,
                         '+' || (CASE WHEN state = 'missing'
                                      THEN min(30, 1 << min(missing_count, 5)) ELSE 1 END)
                             || ' days'))";

// Conversion candidates, part 1: books never sent to _process, in barcode order.
constexpr const char* kCandidatesSql = R"(
SELECT b.barcode FROM books b
WHERE (b.processing_request_timestamp IS NULL OR b.processing_request_timestamp = '')
  AND (b.converted_date IS NULL OR b.converted_date = '')
  AND (b.grin_state IS NULL OR b.grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD',
                                                    'CONVERTED'))
  AND NOT EXISTS (SELECT 1 FROM conversion_request c WHERE c.barcode = b.barcode)
ORDER BY b.barcode LIMIT ?1)";
// Part 2: books sent before and left unanswered (and, with ?2, refused for a reason we do not
// know), oldest attempt first: they wait at the back of the queue.
constexpr const char* kRetryCandidatesSql = R"(
SELECT b.barcode FROM conversion_request c JOIN books b ON b.barcode = c.barcode
WHERE (c.outcome = 'unanswered' OR (?2 AND c.outcome = 'other'))
  AND (b.processing_request_timestamp IS NULL OR b.processing_request_timestamp = '')
  AND (b.converted_date IS NULL OR b.converted_date = '')
  AND (b.grin_state IS NULL OR b.grin_state NOT IN ('CHECKED_IN', 'NOT_AVAILABLE_FOR_DOWNLOAD',
                                                    'CONVERTED'))
ORDER BY c.requested_at, c.barcode LIMIT ?1)";

constexpr const char* kConversionSql = R"(
INSERT INTO conversion_request (barcode, outcome, grin_status, attempts, requested_at)
SELECT ?1, ?2, ?3, 1, ?4 WHERE EXISTS (SELECT 1 FROM books WHERE barcode = ?1)
ON CONFLICT (barcode) DO UPDATE SET outcome = excluded.outcome,
  grin_status = excluded.grin_status, attempts = attempts + 1,
  requested_at = excluded.requested_at)";
constexpr const char* kRequestedSql =
    "UPDATE books SET processing_request_timestamp = ?2, updated_at = ?2 WHERE barcode = ?1";
constexpr const char* kEventSql =
    "INSERT INTO events (at, barcode, stage, outcome, detail) "
    "VALUES (?1, ?2, 'conversion', ?3, CASE WHEN ?5 IS NULL "
    "THEN json_object('grin_status', ?4) "
    "ELSE json_object('grin_status', ?4, 'grin_columns', json(?5)) END)";

// {"Header": "value", ...} for the extra reply columns, or "" for none.
std::string ExtraColumnsJson(const std::vector<std::pair<std::string, std::string>>& cols) {
  if (cols.empty()) return "";
  auto quote = [](const std::string& v) {
    std::string q = "\"";
    for (unsigned char ch : v) {
      if (ch == '"' || ch == '\\') {
        q += '\\';
        q += static_cast<char>(ch);
      } else if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        q += buf;
      } else {
        q += static_cast<char>(ch);
      }
    }
    return q + "\"";
  };
  std::string out = "{";
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i) out += ",";
    out += quote(cols[i].first) + ":" + quote(cols[i].second);
  }
  return out + "}";
}

bool KnownOutcome(const std::string& o) {
  static const char* kOutcomes[] = {"requested", "in_process", "already_available",
                                    "not_allowed", "other", "unanswered"};
  return std::find_if(std::begin(kOutcomes), std::end(kOutcomes),
                      [&](const char* k) { return o == k; }) != std::end(kOutcomes);
}

void BindBook(SQLite::Statement& st, const CollectedBook& b, const std::string& now) {
  st.bind(1, b.barcode);
  st.bind(2, b.title);
  st.bind(3, b.scanned_date);
  st.bind(4, b.converted_date);
  st.bind(5, b.downloaded_date);
  st.bind(6, b.processed_date);
  st.bind(7, b.analyzed_date);
  st.bind(8, b.ocr_date);
  st.bind(9, b.google_books_link);
  st.bind(10, b.grin_state);
  st.bind(11, now);
}

}  // namespace

SqliteBookCatalog::SqliteBookCatalog(std::string path, std::unique_ptr<SQLite::Database> db,
                                     Clock* clock)
    : path_(std::move(path)), clock_(clock), db_(std::move(db)) {}

SqliteBookCatalog::~SqliteBookCatalog() {
  std::lock_guard<std::mutex> l(mu_);
  if (db_) db_->tryExec("PRAGMA wal_checkpoint(TRUNCATE)");
}

Result<std::unique_ptr<SqliteBookCatalog>> SqliteBookCatalog::Open(const std::string& path,
                                                                   Clock* clock,
                                                                   bool create_if_missing) {
  DatabaseOptions o;
  o.create = create_if_missing;
  GRIN_ASSIGN_OR_RETURN(auto db, OpenDatabase(path, o));
  return std::unique_ptr<SqliteBookCatalog>(
      new SqliteBookCatalog(path, std::move(db), clock ? clock : SystemClock::Default()));
}

std::string SqliteBookCatalog::NowIso() const { return FormatIsoUtc(clock_->NowMicros()); }

void SqliteBookCatalog::Checkpoint() { db_->tryExec("PRAGMA wal_checkpoint(PASSIVE)"); }

Result<UpsertCounts> SqliteBookCatalog::ApplyCollectedPage(const std::vector<CollectedBook>& books,
                                                           bool refresh,
                                                           const CollectCursor& cursor) {
  GRIN_RETURN_IF_ERROR(CheckCollectedPage(books));
  std::lock_guard<std::mutex> l(mu_);
  UpsertCounts counts;
  try {
    const std::string now = NowIso();
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement insert(*db_, kInsertSql);
    std::unique_ptr<SQLite::Statement> update;
    if (refresh) update = std::make_unique<SQLite::Statement>(*db_, kRefreshSql);
    for (const auto& b : books) {
      BindBook(insert, b, now);
      const int inserted = insert.exec();
      insert.reset();
      if (inserted > 0) {
        ++counts.inserted;
      } else if (update) {
        BindBook(*update, b, now);
        const int changed = update->exec();
        update->reset();
        if (changed > 0) {
          ++counts.updated;
        } else {
          ++counts.unchanged;
        }
      } else {
        ++counts.unchanged;
      }
    }
    if (cursor.next_url.empty()) {
      SQLite::Statement del(*db_, kDeleteCursorSql);
      del.bind(1, cursor.library_directory);
      del.exec();
    } else {
      SQLite::Statement put(*db_, kPutCursorSql);
      put.bind(1, cursor.library_directory);
      put.bind(2, cursor.next_url);
      put.bind(3, static_cast<int64_t>(cursor.pages_done));
      put.bind(4, static_cast<int64_t>(cursor.rows_seen));
      put.bind(5, cursor.refresh ? 1 : 0);
      put.bind(6, now);
      put.exec();
    }
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  Checkpoint();
  return counts;
}

Result<std::optional<CollectCursor>> SqliteBookCatalog::LoadCollectCursor(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(*db_, kGetCursorSql);
    q.bind(1, dir);
    if (!q.executeStep()) return std::optional<CollectCursor>();
    CollectCursor c;
    c.library_directory = dir;
    c.next_url = q.getColumn(0).getString();
    c.pages_done = q.getColumn(1).getInt64();
    c.rows_seen = q.getColumn(2).getInt64();
    c.refresh = q.getColumn(3).getInt() != 0;
    return std::optional<CollectCursor>(std::move(c));
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
}

Status SqliteBookCatalog::ClearCollectCursor(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement del(*db_, kDeleteCursorSql);
    del.bind(1, dir);
    del.exec();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return Status::Ok();
}

Result<std::vector<BookCatalog::EnrichCandidate>> SqliteBookCatalog::EnrichmentCandidates(
    const std::string& after, int limit, const EnrichSelection& selection) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<EnrichCandidate> out;
  const std::string now = NowIso();
  const std::string before = selection.refresh_before.empty() ? now : selection.refresh_before;
  try {
    auto part = [&](const char* sql, EnrichKind kind, bool with_now) {
      SQLite::Statement q(*db_, sql);
      q.bind(1, after);
      q.bind(2, limit);
      if (with_now) {
        q.bind(3, kind == EnrichKind::kRefresh ? before : now);
        if (kind == EnrichKind::kMissingAgain) {
          q.bind(4, selection.refresh ? 1 : 0);
          q.bind(5, before);
        }
      }
      while (q.executeStep()) out.push_back({q.getColumn(0).getString(), kind});
    };
    part(kPendingEnrichmentSql, EnrichKind::kNew, false);
    part(kMissingDueSql, EnrichKind::kMissingAgain, true);
    if (selection.refresh) part(kRefreshDueSql, EnrichKind::kRefresh, true);
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  // The parts are disjoint and each in barcode order: merge, keep the first `limit`.
  std::sort(out.begin(), out.end(),
            [](const EnrichCandidate& a, const EnrichCandidate& b) { return a.barcode < b.barcode; });
  if (static_cast<int>(out.size()) > limit) out.resize(static_cast<size_t>(std::max(0, limit)));
  return out;
}

Result<BookCatalog::MissingSummary> SqliteBookCatalog::MissingEnrichment() {
  std::lock_guard<std::mutex> l(mu_);
  MissingSummary m;
  try {
    SQLite::Statement q(*db_, kMissingSummarySql);
    if (q.executeStep()) {
      m.books = q.getColumn(0).getInt64();
      m.next_ask_at = q.getColumn(1).getString();
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return m;
}

Status SqliteBookCatalog::ApplyEnrichment(const std::vector<EnrichedBook>& found,
                                          const std::vector<std::string>& missing) {
  GRIN_RETURN_IF_ERROR(CheckEnrichment(found));
  std::lock_guard<std::mutex> l(mu_);
  try {
    const std::string now = NowIso();
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement upd(*db_, EnrichSql());
    SQLite::Statement state(*db_, kEnrichmentStateSql);
    for (const auto& b : found) {
      upd.clearBindings();
      upd.bind(1, b.barcode);
      for (const auto& [col, value] : b.columns) {
        for (size_t i = 0; i < EnrichColumns().size(); ++i) {
          if (col == EnrichColumns()[i]->name) upd.bind(static_cast<int>(i + 2), value);
        }
      }
      upd.bind(EnrichTimeParam(), now);
      upd.exec();
      upd.reset();
      state.bind(1, b.barcode);
      state.bind(2, "found");
      state.bind(3, now);
      state.bind(4);
      state.exec();
      state.reset();
    }
    SQLite::Statement miss(*db_, kEnrichmentMissingSql);
    for (const auto& bc : missing) {
      miss.bind(1, bc);
      miss.bind(2, now);
      miss.bind(3, "not in the _barcode_search reply");
      miss.exec();
      miss.reset();
    }
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  Checkpoint();
  return Status::Ok();
}

Status SqliteBookCatalog::RecordEnrichmentFailure(const std::vector<std::string>& barcodes,
                                                  const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  try {
    const std::string now = NowIso();
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement state(*db_, kEnrichmentStateSql);
    for (const auto& bc : barcodes) {
      state.bind(1, bc);
      state.bind(2, "failed");
      state.bind(3, now);
      state.bind(4, error);
      state.exec();
      state.reset();
    }
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> SqliteBookCatalog::ConversionCandidates(int limit,
                                                                         bool retry_refused) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  try {
    SQLite::Statement q(*db_, kCandidatesSql);
    q.bind(1, limit);
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    if (static_cast<int>(out.size()) < limit) {
      SQLite::Statement r(*db_, kRetryCandidatesSql);
      r.bind(1, limit - static_cast<int>(out.size()));
      r.bind(2, retry_refused ? 1 : 0);
      while (r.executeStep()) out.push_back(r.getColumn(0).getString());
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return out;
}

Status SqliteBookCatalog::RecordConversionRequests(const std::vector<ConversionRecord>& records) {
  for (const auto& r : records) {
    if (!KnownOutcome(r.outcome)) return Status::InvalidArgument("unknown outcome " + r.outcome);
  }
  std::lock_guard<std::mutex> l(mu_);
  try {
    const std::string now = NowIso();
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement rec(*db_, kConversionSql);
    SQLite::Statement requested(*db_, kRequestedSql);
    SQLite::Statement event(*db_, kEventSql);
    for (const auto& r : records) {
      rec.bind(1, r.barcode);
      rec.bind(2, r.outcome);
      rec.bind(3, r.grin_status);
      rec.bind(4, now);
      rec.exec();
      rec.reset();
      if (r.outcome == "requested") {
        requested.bind(1, r.barcode);
        requested.bind(2, now);
        requested.exec();
        requested.reset();
      }
      event.bind(1, now);
      event.bind(2, r.barcode);
      event.bind(3, r.outcome);
      event.bind(4, r.grin_status);
      const std::string extra = ExtraColumnsJson(r.extra_columns);
      if (extra.empty()) {
        event.bind(5);
      } else {
        event.bind(5, extra);
      }
      event.exec();
      event.reset();
    }
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return Status::Ok();
}

Result<int64_t> SqliteBookCatalog::ReplaceConvertFailures(
    const std::vector<ConvertFailure>& failures) {
  std::lock_guard<std::mutex> l(mu_);
  int64_t listed = 0;
  try {
    const std::string now = NowIso();
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    db_->exec(
        "UPDATE books SET grin_convert_failed_date = NULL, grin_convert_failed_info = NULL, "
        "grin_detailed_convert_failed_info = NULL, updated_at = '" + now + "' "
        "WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL "
        "OR grin_detailed_convert_failed_info IS NOT NULL");
    SQLite::Statement set(*db_,
                          "UPDATE books SET grin_convert_failed_date = NULLIF(?2, ''), "
                          "grin_convert_failed_info = NULLIF(?3, ''), "
                          "grin_detailed_convert_failed_info = NULLIF(?4, ''), updated_at = ?5 "
                          "WHERE barcode = ?1");
    for (const auto& f : failures) {
      set.bind(1, f.barcode);
      set.bind(2, f.date);
      set.bind(3, f.info);
      set.bind(4, f.detail);
      set.bind(5, now);
      listed += set.exec();
      set.reset();
    }
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  return listed;
}

Result<int64_t> SqliteBookCatalog::CountBooks() {
  std::lock_guard<std::mutex> l(mu_);
  try {
    SQLite::Statement q(*db_, "SELECT count(*) FROM books");
    q.executeStep();
    return q.getColumn(0).getInt64();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
}

}  // namespace grin::storage
