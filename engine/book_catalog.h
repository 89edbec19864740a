#pragma once
// BookCatalog: the engine's port for the books table as collect, enrich and request fill it
// (docs/books-table.md; its columns are the reference tool's, docs/compatibility.md). Rows come from GRIN listings; every write of a listing page, an
// enrichment batch or a _process batch is one transaction, so a failure leaves nothing
// half-written.
//
// Thread safety: implementations serialise their own writes; a catalog may be used from several
// threads, though the commands use it from one.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"

namespace grin {

// One _all_books row (dates already ISO 8601; "" = none).
struct CollectedBook {
  std::string barcode;
  std::string title;
  std::string scanned_date;
  std::string converted_date;
  std::string downloaded_date;
  std::string processed_date;
  std::string analyzed_date;
  std::string ocr_date;
  std::string google_books_link;
  std::string grin_state;
};

// Where a collect stands: the next page to fetch (written with the page before it).
struct CollectCursor {
  std::string library_directory;
  std::string next_url;
  int64_t pages_done = 0;
  int64_t rows_seen = 0;
  bool refresh = false;
};

struct UpsertCounts {
  int64_t inserted = 0;
  int64_t updated = 0;    // --refresh: rows whose fields changed
  int64_t unchanged = 0;  // already known (and, with --refresh, identical)
};

// One enriched book: books column -> value (from grin_client::MapEnrichmentRow). Only the
// columns of the enrichment mapping are accepted.
struct EnrichedBook {
  std::string barcode;
  std::vector<std::pair<std::string, std::string>> columns;
};

// One _process outcome. outcome is one of requested, in_process, already_available,
// not_allowed, other, unanswered.
struct ConversionRecord {
  std::string barcode;
  std::string outcome;
  std::string grin_status;  // GRIN's text, as given
  // Reply columns beyond Barcode and Status, {header, value} (kept in the event's detail).
  std::vector<std::pair<std::string, std::string>> extra_columns = {};
};

// One book of GRIN's _failed list: why its conversion failed, in GRIN's words.
struct ConvertFailure {
  std::string barcode;
  std::string date;    // ISO 8601
  std::string info;
  std::string detail;
};

class BookCatalog {
 public:
  virtual ~BookCatalog() = default;

  // Upserts one listing page and stores `cursor` (the page after it), in one transaction.
  // Without refresh, known barcodes are left alone; with refresh, non-empty new values replace
  // old ones (COALESCE) and updated_at moves only when something changed.
  // If cursor.next_url is empty the cursor is removed instead (collect finished).
  virtual Result<UpsertCounts> ApplyCollectedPage(const std::vector<CollectedBook>& books,
                                                  bool refresh, const CollectCursor& cursor) = 0;
  // The cursor of an unfinished collect for `library_directory`, or nullopt.
  virtual Result<std::optional<CollectCursor>> LoadCollectCursor(
      const std::string& library_directory) = 0;
  virtual Status ClearCollectCursor(const std::string& library_directory) = 0;

  // Which books an enrichment round asks GRIN about (EnrichmentCandidates):
  //   - books never enriched (or whose last attempt failed), unless known missing;
  //   - books GRIN did not know ('missing') whose next ask is due: asked again after 1 day,
  //     then 2, 4, 8, 16 and 30 days (ApplyEnrichment keeps the count and the time);
  //   - with refresh: also books enriched at or before refresh_before (ISO 8601 UTC; "" = now,
  //     i.e. every enriched book), and missing books last asked at or before it.
  struct EnrichSelection {
    bool refresh = false;
    std::string refresh_before;
  };
  enum class EnrichKind { kNew, kRefresh, kMissingAgain };
  struct EnrichCandidate {
    std::string barcode;
    EnrichKind kind = EnrichKind::kNew;
  };
  // Up to `limit` candidates in barcode order, strictly after `after` ("" = from the start).
  virtual Result<std::vector<EnrichCandidate>> EnrichmentCandidates(
      const std::string& after, int limit, const EnrichSelection& selection) = 0;
  // The barcodes of EnrichmentCandidates without refresh (a plain `enrich`).
  Result<std::vector<std::string>> PendingEnrichment(const std::string& after, int limit) {
    GRIN_ASSIGN_OR_RETURN(auto c, EnrichmentCandidates(after, limit, EnrichSelection{}));
    std::vector<std::string> out;
    out.reserve(c.size());
    for (auto& e : c) out.push_back(std::move(e.barcode));
    return out;
  }
  // Books GRIN did not know at their last ask: how many, and the earliest next ask ("" if none).
  struct MissingSummary {
    int64_t books = 0;
    std::string next_ask_at;
  };
  virtual Result<MissingSummary> MissingEnrichment() = 0;
  // Stores found rows (non-empty values replace old ones; enrichment_timestamp = now) and marks
  // missing barcodes (one more 'missing' answer in a row; next ask 1 day later, doubling up to
  // 30 days), in one transaction.
  virtual Status ApplyEnrichment(const std::vector<EnrichedBook>& found,
                                 const std::vector<std::string>& missing) = 0;
  // Records a failed attempt for each barcode; they stay pending.
  virtual Status RecordEnrichmentFailure(const std::vector<std::string>& barcodes,
                                         const std::string& error) = 0;

  // Up to `limit` books worth a conversion request: not converted, grin_state not CHECKED_IN /
  // NOT_AVAILABLE_FOR_DOWNLOAD / CONVERTED, and never requested, accepted or refused before.
  // Books never sent come first (barcode order); then books sent but left unanswered, oldest
  // attempt first (the back of the queue). A refusal GRIN words in a way we do not know
  // (outcome "other") is not asked again unless retry_refused (then it queues with the
  // unanswered ones).
  virtual Result<std::vector<std::string>> ConversionCandidates(int limit, bool retry_refused) = 0;
  // Stores _process outcomes (requested ones get processing_request_timestamp) and appends one
  // event per book, in one transaction.
  virtual Status RecordConversionRequests(const std::vector<ConversionRecord>& records) = 0;

  // Replaces the books' GRIN conversion-failure fields with the current _failed list, in one
  // transaction: books listed get their date, info and detail; books no longer listed are
  // cleared. Books not in the catalog are ignored. Returns how many known books are listed.
  virtual Result<int64_t> ReplaceConvertFailures(const std::vector<ConvertFailure>& failures) = 0;

  virtual Result<int64_t> CountBooks() = 0;
};

// The check every BookCatalog adapter makes before ApplyEnrichment writes: each found column
// is a books column GRIN's _barcode_search fills (kInvalidArgument naming the first that is not).
Status CheckEnrichment(const std::vector<EnrichedBook>& found);

// The check every BookCatalog adapter makes before ApplyCollectedPage writes: every row has a
// barcode (kInvalidArgument otherwise).
Status CheckCollectedPage(const std::vector<CollectedBook>& books);

}  // namespace grin
