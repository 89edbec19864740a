// SqliteBookCatalog on a temp-file database.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "storage/sqlite_book_catalog.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {
CollectedBook Book(std::string barcode, std::string title = "", std::string scanned = "") {
  CollectedBook b;
  b.barcode = std::move(barcode);
  b.title = std::move(title);
  b.scanned_date = std::move(scanned);
  return b;
}
}  // namespace

TEST_SUITE("unit") {

TEST_CASE("catalog: insert, refresh with COALESCE, cursor in the same transaction") {
  grin::testing::TempDir tmp;
  FakeClock clock;
  auto c = SqliteBookCatalog::Open(tmp.file("books.db"), &clock);
  REQUIRE(c.ok());
  auto& cat = **c;
  CollectCursor cur{"TEST", "https://h/next", 1, 2, false};
  auto r = cat.ApplyCollectedPage({Book("B1", "T1", "2001-01-01T00:00:00"), Book("B2", "T2")}, false, cur);
  REQUIRE(r.ok());
  CHECK(r->inserted == 2);
  auto loaded = cat.LoadCollectCursor("TEST");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->next_url == "https://h/next");
  CHECK((*loaded)->rows_seen == 2);

  clock.AdvanceSeconds(10);
  cur.next_url = "";
  // Refresh: B1's title changes; an empty scanned date keeps the old one; B2 unchanged.
  r = cat.ApplyCollectedPage({Book("B1", "T1b", ""), Book("B2", "T2"), Book("B3", "T3")}, true, cur);
  REQUIRE(r.ok());
  CHECK(r->inserted == 1);
  CHECK(r->updated == 1);
  CHECK(r->unchanged == 1);
  CHECK_FALSE(cat.LoadCollectCursor("TEST")->has_value());
  SQLite::Database db(tmp.file("books.db"), SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT title, scanned_date, created_at < updated_at FROM books WHERE barcode='B1'");
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "T1b");
  CHECK(q.getColumn(1).getString() == "2001-01-01T00:00:00");
  CHECK(q.getColumn(2).getInt() == 1);
  CHECK(cat.ApplyCollectedPage({Book("")}, false, cur).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("catalog: enrichment pending list, found, missing, failed, conversion candidates") {
  grin::testing::TempDir tmp;
  auto c = SqliteBookCatalog::Open(tmp.file("books.db"));
  REQUIRE(c.ok());
  auto& cat = **c;
  CollectCursor none{"TEST", "", 0, 0, false};
  REQUIRE(cat.ApplyCollectedPage({Book("A1"), Book("A2"), Book("A3"), Book("A4")}, false, none).ok());
  auto p = cat.PendingEnrichment("", 10);
  REQUIRE(p.ok());
  CHECK(*p == std::vector<std::string>{"A1", "A2", "A3", "A4"});
  CHECK(*cat.PendingEnrichment("A2", 10) == std::vector<std::string>{"A3", "A4"});
  REQUIRE(cat.ApplyEnrichment({{"A1", {{"grin_state", "CHECKED_IN"}, {"scanned_date", "x"}}}},
                              {"A2"}).ok());
  REQUIRE(cat.RecordEnrichmentFailure({"A3"}, "HTTP 500").ok());
  CHECK(*cat.PendingEnrichment("", 10) == std::vector<std::string>{"A3", "A4"});
  CHECK(cat.ApplyEnrichment({{"A4", {{"storage_path", "/etc"}}}}, {}).code() ==
        StatusCode::kInvalidArgument);

  // A1 is CHECKED_IN: not a candidate. Record outcomes for A2 and A3.
  CHECK(*cat.ConversionCandidates(10, false) == std::vector<std::string>{"A2", "A3", "A4"});
  REQUIRE(cat.RecordConversionRequests({{"A2", "requested", "Success"},
                                        {"A3", "not_allowed", "Not allowed to be downloaded"},
                                        {"A4", "other", "Other error"}}).ok());
  // An unknown refusal ("other") is not asked again unless retry_refused.
  CHECK(cat.ConversionCandidates(10, false)->empty());
  CHECK(*cat.ConversionCandidates(10, true) == std::vector<std::string>{"A4"});
  CHECK(cat.RecordConversionRequests({{"A4", "bogus", ""}}).code() ==
        StatusCode::kInvalidArgument);
}

}  // TEST_SUITE

}  // namespace grin::storage
