#pragma once
// The three GRIN metadata workflows behind `grin-jobs collect`, `enrich` and `request`, written
// against the GrinClient and the BookCatalog port so they run the same from the CLI and tests.
//
//   CollectAllBooks     pages _all_books (HTML, Next links) into books; one transaction per page
//                       together with the resume cursor, so an interrupted collect resumes at the
//                       first page not written and a malformed page writes nothing.
//   EnrichBooks         _barcode_search in URL-bounded groups, `concurrency` at a time; found rows
//                       update books, missing barcodes are marked missing (asked again later,
//                       with backoff), failed groups are recorded as failed attempts and stay
//                       pending (retried next run); with refresh, enriched books are asked again.
//   RequestConversions  _process in batches for candidates not already in _in_process, within
//                       the queue's free space (50,000 - in process); 429 = queue full: stop.
//                       Books never sent go first, unanswered ones after them; unknown refusals
//                       are not re-sent unless retry_refused.
//
// Thread safety: each call uses its client and catalog from the calling thread (EnrichBooks also
// from its own worker threads, which the client allows).

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/book_catalog.h"
#include "engine/grin/client.h"

namespace grin::grin_client {

struct CollectOptions {
  int page_size = 10'000;
  bool refresh = false;   // COALESCE-update known books
  bool restart = false;   // ignore a saved cursor and start from page 1
  int max_pages = 0;      // stop after this many pages this call (0 = all); the cursor stays
  std::function<void(int64_t pages, int64_t rows)> progress;
};
struct CollectStats {
  bool resumed = false;
  int64_t pages = 0;
  int64_t rows = 0;
  UpsertCounts counts;
  bool finished = false;  // the last page was written (cursor removed)
  // The saved cursor's ctoken was refused ("unavailable" after the retries: continuation tokens
  // expire), so this call started again from page 1 (rows already collected are upserted again).
  bool restarted = false;
  // Rows skipped for want of a (plausible) barcode: select-all and totals rows, odd values. Each
  // was warned about through the client's logger; a page with none readable is an error.
  int64_t skipped_rows = 0;
};
Result<CollectStats> CollectAllBooks(GrinClient& client, BookCatalog& catalog,
                                     const CollectOptions& options);

// Maps one _all_books row (by normalised column key) to a CollectedBook, dates in ISO 8601, the
// Google Books link from the cell's href. kDataLoss naming `page_url` if the barcode is not a
// plausible barcode.
Result<CollectedBook> BookFromRow(const ListRow& row, const std::string& page_url,
                                  const std::string& dir);

struct EnrichOptions {
  int db_batch = 6'000;   // barcodes read from the catalog per round
  int concurrency = 5;    // _barcode_search requests in flight
  int64_t limit = 0;      // stop after this many barcodes (0 = all pending)
  // Ask again about books already enriched (GRIN's state and viewability change): those
  // enriched at or before refresh_before (ISO 8601 UTC; "" = all of them). Missing books last
  // asked at or before it are asked too, whatever their backoff.
  bool refresh = false;
  std::string refresh_before;
  // Also read GRIN's _failed list (HTML) and keep each failed book's Convert Failed Date, Info
  // and Detailed Info in books (BookCatalog::ReplaceConvertFailures). A failure to read it is
  // warned about and counted, never fatal to the enrichment.
  bool convert_failures = true;
};
struct EnrichStats {
  int64_t asked = 0;
  int64_t found = 0;
  int64_t missing = 0;
  int64_t failed_groups = 0;
  int64_t failed_barcodes = 0;
  int64_t requests = 0;
  int64_t skipped_rows = 0;  // reply rows without a barcode (warned about by the client)
  int64_t convert_failures = -1;  // known books listed in _failed (-1: not read)
  // Of `asked`: books enriched before and asked again (--refresh), and how many GRIN answered.
  int64_t refresh_asked = 0;
  int64_t refreshed = 0;
  // Of `asked`: books GRIN did not know before, asked again (backoff due, or --refresh); how
  // many it knows now, and how many it still does not.
  int64_t missing_asked = 0;
  int64_t missing_found = 0;
  int64_t still_missing = 0;
};
Result<EnrichStats> EnrichBooks(GrinClient& client, BookCatalog& catalog,
                                const EnrichOptions& options, Logger* logger = nullptr);

struct RequestOptions {
  int64_t limit = 100;
  size_t batch = 100;     // barcodes per _process call
  bool dry_run = false;   // report what would be requested, send nothing
  // Ask again for books GRIN refused with a reason we do not recognise (outcome "other"); by
  // default they are not re-sent (GRIN's text is kept in conversion_request.grin_status).
  bool retry_refused = false;
};
struct RequestStats {
  int64_t in_process_before = 0;
  int64_t free_before = 0;
  int64_t candidates = 0;
  std::map<std::string, int64_t> outcomes;  // ProcessOutcomeName -> count (+ "unanswered")
  bool queue_full = false;                  // GRIN answered 429
  int64_t free_after = 0;                   // 50,000 - in process, as far as we know
};
Result<RequestStats> RequestConversions(GrinClient& client, BookCatalog& catalog,
                                        const RequestOptions& options);

}  // namespace grin::grin_client
