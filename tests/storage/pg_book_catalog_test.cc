// PgBookCatalog against a real PostgreSQL server: one scenario (collect pages with a cursor, a
// refresh, enrichment found / missing / failed, conversion requests, GRIN's _failed list) run on
// the SQLite catalog and on the PostgreSQL one must answer the same, call for call.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "engine/books_columns.h"
#include "storage/postgres/pg_book_catalog.h"
#include "storage/postgres/pg_connection.h"
#include "storage/sqlite_book_catalog.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

CollectedBook Book(const std::string& barcode, const std::string& state,
                   const std::string& title = "") {
  CollectedBook b;
  b.barcode = barcode;
  b.title = title.empty() ? "Title of " + barcode : title;
  b.scanned_date = "2020-01-02T03:04:05Z";
  b.grin_state = state;
  return b;
}

std::string Candidates(BookCatalog& c, const BookCatalog::EnrichSelection& sel, int limit) {
  auto r = c.EnrichmentCandidates("", limit, sel);
  if (!r.ok()) return "<" + r.status().ToString() + ">";
  std::string s;
  for (const auto& e : *r) s += e.barcode + ":" + std::to_string(static_cast<int>(e.kind)) + " ";
  return s;
}

// Every answer of the scenario, one per line.
std::string Scenario(BookCatalog& c) {
  std::ostringstream t;
  CollectCursor cur{"Harvard", "https://grin/next?page=2", 1, 3, false};
  auto p1 = c.ApplyCollectedPage({Book("AAA001", "NEW"), Book("BBB002", "CONVERTED"),
                                  Book("CCC003", "")},
                                 false, cur);
  REQUIRE_MESSAGE(p1.ok(), p1.status().ToString());
  t << "page1 " << p1->inserted << "/" << p1->updated << "/" << p1->unchanged << "\n";
  auto loaded = c.LoadCollectCursor("Harvard").value();
  REQUIRE(loaded.has_value());
  t << "cursor " << loaded->next_url << " " << loaded->pages_done << " " << loaded->rows_seen
    << "\n";
  t << "no cursor " << c.LoadCollectCursor("Yale")->has_value() << "\n";
  // The last page: the cursor goes; a known book with a new title under --refresh.
  auto p2 = c.ApplyCollectedPage({Book("AAA001", "NEW", "New title"), Book("CCC003", ""),
                                  Book("DDD004", "IN_PROCESS")},
                                 true, CollectCursor{"Harvard", "", 2, 6, true});
  REQUIRE_MESSAGE(p2.ok(), p2.status().ToString());
  t << "page2 " << p2->inserted << "/" << p2->updated << "/" << p2->unchanged << "\n";
  t << "cursor gone " << !c.LoadCollectCursor("Harvard")->has_value() << "\n";
  t << "books " << c.CountBooks().value() << "\n";
  t << "bad row " << c.ApplyCollectedPage({Book("", "")}, false, cur).status().ToString()
    << "\n";

  t << "enrich " << Candidates(c, {}, 10) << "\n";
  t << "enrich limit " << Candidates(c, {}, 2) << "\n";
  const std::string col(EnrichmentColumns().front()->name);
  REQUIRE(c.ApplyEnrichment({{"AAA001", {{col, "v1"}}}}, {"BBB002"}).ok());
  REQUIRE(c.RecordEnrichmentFailure({"CCC003"}, "timeout").ok());
  t << "bad column "
    << c.ApplyEnrichment({{"AAA001", {{"storage_path", "x"}}}}, {}).ToString() << "\n";
  t << "enrich after " << Candidates(c, {}, 10) << "\n";
  t << "enrich refresh " << Candidates(c, {true, ""}, 10) << "\n";
  auto miss = c.MissingEnrichment().value();
  t << "missing " << miss.books << " " << !miss.next_ask_at.empty() << "\n";
  // A second 'missing' answer: the streak grows (the next ask moves 2 days out).
  REQUIRE(c.ApplyEnrichment({}, {"BBB002"}).ok());
  t << "missing again " << c.MissingEnrichment()->books << "\n";

  auto conv = c.ConversionCandidates(10, false).value();
  t << "convert";
  for (const auto& b : conv) t << " " << b;
  t << "\n";
  REQUIRE(c.RecordConversionRequests(
               {{"AAA001", "requested", "Success", {{"Extra", "x\"y"}}},
                {"CCC003", "unanswered", ""},
                {"DDD004", "other", "Weird"}})
              .ok());
  t << "bad outcome " << c.RecordConversionRequests({{"AAA001", "nope", ""}}).ToString() << "\n";
  for (bool retry : {false, true}) {
    t << "convert again " << retry;
    auto again = c.ConversionCandidates(10, retry).value();
    for (const auto& b : again) t << " " << b;
    t << "\n";
  }
  auto listed = c.ReplaceConvertFailures({{"DDD004", "2021-01-01", "bad scan", "page 3"},
                                          {"ZZZ999", "2021-01-01", "x", "y"}});
  t << "failures " << listed.value() << "\n";
  t << "failures replaced " << c.ReplaceConvertFailures({}).value() << "\n";
  REQUIRE(c.ClearCollectCursor("Harvard").ok());
  return t.str();
}

TEST_CASE("postgres book catalog answers as the SQLite catalog does, call for call") {
  PG_SKIP_WITHOUT_POSTGRES();
  grin::testing::TempDir dir;
  auto lite = SqliteBookCatalog::Open(dir.file("books.db"), nullptr, true);
  REQUIRE_MESSAGE(lite.ok(), lite.status().ToString());
  std::string uri = grin::testing::FreshDatabase();
  auto post = PgBookCatalog::Open(uri);
  REQUIRE_MESSAGE(post.ok(), post.status().ToString());
  std::string a = Scenario(**lite);
  std::string b = Scenario(**post);
  CHECK(a == b);

  // What the scenario left in PostgreSQL, read directly.
  auto c = pg::PgConnection::Connect(uri, "check");
  REQUIRE(c.ok());
  auto q = [&](const std::string& sql) {
    auto r = (*c)->Exec(sql);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->Text(0, 0);
  };
  CHECK(q("SELECT title FROM books WHERE barcode = 'AAA001'") == "New title");
  CHECK(q("SELECT processing_request_timestamp IS NOT NULL FROM books "
          "WHERE barcode = 'AAA001'") == "t");
  // Two 'missing' answers in a row: asked again 2 days after the last, by the server's clock.
  CHECK(q("SELECT missing_count FROM book_enrichment WHERE barcode = 'BBB002'") == "2");
  CHECK(q("SELECT abs(extract(epoch FROM next_ask_at::timestamptz - now()) - 2 * 86400) < 120 "
          "FROM book_enrichment WHERE barcode = 'BBB002'") == "t");
  CHECK(q("SELECT detail::jsonb ->> 'grin_columns' FROM events WHERE stage = 'conversion' "
          "AND barcode = 'AAA001'") == R"({"Extra": "x\"y"})");
  CHECK(q("SELECT count(*) FROM books WHERE grin_convert_failed_date IS NOT NULL") == "0");
}

}  // namespace
}  // namespace grin::storage
