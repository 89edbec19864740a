#pragma once
// PgBookCatalog: the BookCatalog port (engine/book_catalog.h) on PostgreSQL, statement for
// statement SqliteBookCatalog's (storage/sqlite_book_catalog.cc), with $n parameters only and
// every time from the database's clock (grin_now_iso()). Each public write is one transaction.
//
// Thread safety: a mutex serialises every call (one connection; reconnected after it broke).

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engine/book_catalog.h"
#include "storage/postgres/pg_connection.h"

namespace grin::storage {

class PgBookCatalog final : public BookCatalog {
 public:
  // Connects and migrates (as PgStateStore::Open).
  static Result<std::unique_ptr<PgBookCatalog>> Open(const std::string& conninfo);

  Result<UpsertCounts> ApplyCollectedPage(const std::vector<CollectedBook>& books, bool refresh,
                                          const CollectCursor& cursor) override;
  Result<std::optional<CollectCursor>> LoadCollectCursor(
      const std::string& library_directory) override;
  Status ClearCollectCursor(const std::string& library_directory) override;
  Result<std::vector<EnrichCandidate>> EnrichmentCandidates(
      const std::string& after, int limit, const EnrichSelection& selection) override;
  Result<MissingSummary> MissingEnrichment() override;
  Status ApplyEnrichment(const std::vector<EnrichedBook>& found,
                         const std::vector<std::string>& missing) override;
  Status RecordEnrichmentFailure(const std::vector<std::string>& barcodes,
                                 const std::string& error) override;
  Result<std::vector<std::string>> ConversionCandidates(int limit, bool retry_refused) override;
  Status RecordConversionRequests(const std::vector<ConversionRecord>& records) override;
  Result<int64_t> ReplaceConvertFailures(const std::vector<ConvertFailure>& failures) override;
  Result<int64_t> CountBooks() override;

 private:
  PgBookCatalog(std::string conninfo, std::string what) :
      conninfo_(std::move(conninfo)), what_(std::move(what)) {}
  // The connection (reconnected if it broke); call with mu_ held.
  Result<pg::PgConnection*> Conn();
  // Runs fn in one transaction on the connection; call with mu_ held.
  Status InTx(const std::function<Status(pg::PgConnection&)>& fn);

  std::string conninfo_;
  std::string what_;
  std::mutex mu_;
  std::unique_ptr<pg::PgConnection> conn_;  // guarded by mu_
};

}  // namespace grin::storage
