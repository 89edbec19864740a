#pragma once
// SqliteBookCatalog: the BookCatalog port (engine/book_catalog.h) on a run's books.db.
//
// One write connection of its own (opened and migrated by OpenDatabase). Every public write is
// one BEGIN IMMEDIATE transaction with prepared statements, so a 10,000-row listing page costs one
// commit; after each commit the WAL is checkpointed passively (OpenDatabase turns autocheckpoint
// off for the state store's benefit, so a long collect must bound the WAL itself).
//
// Thread safety: a mutex serialises every call (one connection, used by one thread at a time).

#include <memory>
#include <mutex>
#include <string>

#include "engine/base/clock.h"
#include "engine/book_catalog.h"

namespace SQLite {
class Database;
}

namespace grin::storage {

class SqliteBookCatalog final : public BookCatalog {
 public:
  // Opens (creating and migrating if needed) the database at path. Errors as OpenDatabase.
  // create_if_missing false: kNotFound when there is no database (commands on an existing run).
  static Result<std::unique_ptr<SqliteBookCatalog>> Open(const std::string& path,
                                                         Clock* clock = nullptr,
                                                         bool create_if_missing = true);
  ~SqliteBookCatalog() override;

  Result<UpsertCounts> ApplyCollectedPage(const std::vector<CollectedBook>& books, bool refresh,
                                          const CollectCursor& cursor) override;
  Result<std::optional<CollectCursor>> LoadCollectCursor(const std::string& dir) override;
  Status ClearCollectCursor(const std::string& dir) override;
  Result<std::vector<EnrichCandidate>> EnrichmentCandidates(
      const std::string& after, int limit, const EnrichSelection& selection) override;
  Result<MissingSummary> MissingEnrichment() override;
  Status ApplyEnrichment(const std::vector<EnrichedBook>& found,
                         const std::vector<std::string>& missing) override;
  Status RecordEnrichmentFailure(const std::vector<std::string>& barcodes,
                                 const std::string& error) override;
  Result<std::vector<std::string>> ConversionCandidates(int limit,
                                                        bool retry_refused) override;
  Status RecordConversionRequests(const std::vector<ConversionRecord>& records) override;
  Result<int64_t> ReplaceConvertFailures(const std::vector<ConvertFailure>& failures) override;
  Result<int64_t> CountBooks() override;

 private:
  SqliteBookCatalog(std::string path, std::unique_ptr<SQLite::Database> db, Clock* clock);
  std::string NowIso() const;
  void Checkpoint();

  const std::string path_;
  Clock* const clock_;
  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace grin::storage
