// `grin-jobs status` reads kept counts (job_counts, book_count) and partial indexes instead of
// counting the books: its figures must stay exactly what counting the tables says, whatever path
// wrote them (collect, a completion that creates the book, failures, waits, requeue, reset,
// GRIN's _failed list replaced, a row deleted by hand), and the pages it reads must not grow
// with the number of books.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "storage/sqlite_book_catalog.h"
#include "storage/sqlite_state_store.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

using grin::testing::TempDir;
using nlohmann::json;

json StatusJson(const std::string& run) {
  std::ostringstream out, err;
  int code = RunCli({"status", "--run-dir", run, "--json"}, out, err);
  REQUIRE_MESSAGE(code == kExitOk, err.str());
  return json::parse(out.str());
}

std::string StatusText(const std::string& run) {
  std::ostringstream out, err;
  int code = RunCli({"status", "--run-dir", run}, out, err);
  REQUIRE_MESSAGE(code == kExitOk, err.str());
  return out.str();
}

int64_t Count(SQLite::Database& db, const std::string& sql) {
  return db.execAndGet(sql).getInt64();
}

// Every figure of `status --json` against counting the tables directly (NOT INDEXED: the truth,
// not the kept counts or the indexes status reads).
void CheckStatusMatchesTables(const std::string& run) {
  json j = StatusJson(run);
  SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY);
  CHECK(j["books"] == Count(db, "SELECT count(*) FROM books NOT INDEXED"));
  CHECK(j["jobs"] == Count(db, "SELECT count(*) FROM jobs NOT INDEXED"));
  for (const char* stage : {"pending", "checked", "downloaded", "uploaded"}) {
    CAPTURE(stage);
    CHECK(j["stages"][stage] ==
          Count(db, std::string("SELECT count(*) FROM jobs NOT INDEXED WHERE stage = '") + stage +
                        "'"));
  }
  CHECK(j["leased"] == Count(db, "SELECT count(*) FROM jobs NOT INDEXED WHERE status = 'leased'"));
  CHECK(j["retrying"] == Count(db, "SELECT count(*) FROM jobs NOT INDEXED WHERE status = 'retry'"));
  CHECK(j["dead"] == Count(db, "SELECT count(*) FROM jobs NOT INDEXED WHERE status = 'dead'"));
  CHECK(j["awaiting_conversion"] ==
        Count(db, "SELECT count(*) FROM jobs NOT INDEXED WHERE status = 'awaiting'"));
  json failures = json::array();
  {
    SQLite::Statement q(db, R"(
        SELECT stage, coalesce(error_reason, ''), coalesce(error_class, ''), status = 'dead',
               count(*)
        FROM jobs NOT INDEXED WHERE status = 'retry' OR status = 'dead'
        GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC, 1, 2)");
    while (q.executeStep()) {
      failures.push_back({{"stage", q.getColumn(0).getString()},
                          {"reason", q.getColumn(1).getString()},
                          {"class", q.getColumn(2).getString()},
                          {"dead", q.getColumn(3).getInt() != 0},
                          {"count", q.getColumn(4).getInt64()}});
    }
  }
  CHECK(j["failures"] == failures);
  json by_info = json::array();
  int64_t failed_books = 0;
  {
    SQLite::Statement q(db, R"(
        SELECT coalesce(grin_convert_failed_info, ''), count(*) FROM books NOT INDEXED
        WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC, 1)");
    while (q.executeStep()) {
      failed_books += q.getColumn(1).getInt64();
      if (by_info.size() < 10) {
        by_info.push_back({{"info", q.getColumn(0).getString()},
                           {"count", q.getColumn(1).getInt64()}});
      }
    }
  }
  CHECK(j["grin_convert_failed_books"] == failed_books);
  CHECK(j["grin_convert_failed_by_info"] == by_info);
}

std::vector<CollectedBook> Books(int from, int to) {
  std::vector<CollectedBook> out;
  for (int i = from; i < to; ++i) {
    CollectedBook b;
    char bc[16];
    std::snprintf(bc, sizeof bc, "CNT%05d", i);
    b.barcode = bc;
    b.title = "Title " + b.barcode;
    b.grin_state = "CONVERTED";
    out.push_back(b);
  }
  return out;
}

TEST_CASE("status figures equal counting the tables as books move through every state") {
  TempDir dir;
  const std::string run = dir.file("run");
  std::ostringstream o, e;
  REQUIRE(RunCli({"init", "--run-dir", run, "--library-directory", "Harvard"}, o, e) == kExitOk);
  const std::string db_path = run + "/books.db";
  CheckStatusMatchesTables(run);  // empty run

  auto catalog = storage::SqliteBookCatalog::Open(db_path).value();
  // Collect: 30 books, then a page that repeats 10 of them (not counted twice) with 5 new ones.
  CollectCursor cursor{"Harvard", "", 1, 30, false};
  REQUIRE(catalog->ApplyCollectedPage(Books(0, 30), false, cursor).ok());
  REQUIRE(catalog->ApplyCollectedPage(Books(20, 35), false, cursor).ok());
  REQUIRE(catalog->ApplyCollectedPage(Books(20, 35), true, cursor).ok());  // --refresh
  CheckStatusMatchesTables(run);
  CHECK(StatusJson(run)["books"] == 35);

  // GRIN's _failed list names 6 books with three infos (one with none), then a later enrich
  // replaces it with a list that drops some, changes one and adds a book the run does not know.
  std::vector<ConvertFailure> failed = {{"CNT00000", "2024-01-01", "Bad scan", "d"},
                                        {"CNT00001", "2024-01-01", "Bad scan", ""},
                                        {"CNT00002", "2024-01-02", "Missing pages", ""},
                                        {"CNT00003", "2024-01-02", "", "only a date"},
                                        {"CNT00004", "", "Bad scan", ""},
                                        {"CNT00005", "2024-01-03", "Missing pages", ""}};
  REQUIRE(catalog->ReplaceConvertFailures(failed).ok());
  CheckStatusMatchesTables(run);
  CHECK(StatusJson(run)["grin_convert_failed_books"] == 6);
  REQUIRE(catalog->ReplaceConvertFailures({{"CNT00001", "2024-02-01", "Timeout", ""},
                                           {"CNT00005", "2024-01-03", "Missing pages", ""},
                                           {"NOTKNOWN1", "2024-01-03", "Bad scan", ""}})
              .ok());
  CheckStatusMatchesTables(run);
  CHECK(StatusJson(run)["grin_convert_failed_books"] == 2);

  {
    storage::StateStoreOptions opt;
    opt.max_attempts = 2;
    opt.backoff_base_micros = 1;
    opt.backoff_max_micros = 1;
    auto store = storage::SqliteStateStore::Open(db_path, opt).value();
    std::vector<std::string> barcodes;
    for (int i = 0; i < 35; ++i) barcodes.push_back(Books(i, i + 1)[0].barcode);
    REQUIRE(store->Enqueue(barcodes).ok());
    CheckStatusMatchesTables(run);

    // 20 claimed: 8 finish, 4 stop at checked, 2 at downloaded, 2 fail retryably, 2 fail for
    // good, 1 waits for GRIN's conversion, 1 stays leased.
    auto items = store->Claim(Stage::kPending, 20).value();
    REQUIRE(items.size() == 20);
    for (int i = 0; i < 8; ++i) REQUIRE(store->Complete(items[i], Stage::kUploaded).ok());
    for (int i = 8; i < 12; ++i) REQUIRE(store->Complete(items[i], Stage::kChecked).ok());
    for (int i = 12; i < 14; ++i) REQUIRE(store->Complete(items[i], Stage::kDownloaded).ok());
    REQUIRE(store->Fail(items[14], ErrorClass::kRetryable, "timeout", "").ok());
    REQUIRE(store->Fail(items[15], ErrorClass::kRetryable, "http_503", "").ok());
    REQUIRE(store->Fail(items[16], ErrorClass::kPermanent, "http_404", "").ok());
    REQUIRE(store->Fail(items[17], ErrorClass::kPermanent, "bad_archive", "").ok());
    REQUIRE(store->Await(items[18], "conversion_requested", "").ok());
    REQUIRE(store->Flush().ok());
    CheckStatusMatchesTables(run);  // items[19] still leased

    // A retryable failure that runs out of attempts becomes dead; one that succeeds next time.
    auto again = store->Claim(Stage::kPending, 100).value();
    for (const auto& it : again) {
      if (it.barcode == items[14].barcode) {
        REQUIRE(store->Fail(it, ErrorClass::kRetryable, "timeout", "").ok());
      } else if (it.barcode == items[15].barcode) {
        REQUIRE(store->Complete(it, Stage::kUploaded).ok());
      } else {
        REQUIRE(store->Release(it).ok());
      }
    }
    REQUIRE(store->Flush().ok());
    CheckStatusMatchesTables(run);
    CHECK(StatusJson(run)["dead"] == 3);

    // A completion for a book the catalog never listed creates its books row.
    REQUIRE(store->Enqueue({"EXTRA0001"}).ok());
    auto extra = store->Claim(Stage::kPending, 100).value();
    for (const auto& it : extra) {
      if (it.barcode == "EXTRA0001") {
        Completion c;
        c.item = it;
        c.to = Stage::kUploaded;
        c.book_fields = {{"storage_path", "Harvard/EXTRA0001"}};
        REQUIRE(store->CompleteMany({c}).ok());
      } else {
        REQUIRE(store->Release(it).ok());
      }
    }
    REQUIRE(store->Flush().ok());
    CheckStatusMatchesTables(run);
    CHECK(StatusJson(run)["books"] == 36);

    // Wake the waiting book, requeue the dead ones (`retry`), reset finished ones (`--force`).
    REQUIRE(store->Wake({items[18].barcode}).ok());
    RequeueFilter dead;
    dead.dead_only = true;
    CHECK(store->Requeue(dead).value() == 3);
    ResetRequest reset;
    reset.barcodes = {items[0].barcode, items[1].barcode, items[8].barcode};
    CHECK(store->Reset(reset).value() == 3);
    REQUIRE(store->Flush().ok());
    CheckStatusMatchesTables(run);
    REQUIRE(store->Release(items[19]).ok());
    REQUIRE(store->Flush().ok());
  }
  CheckStatusMatchesTables(run);

  // Hand edits in sqlite3: books deleted (their jobs too) and inserted.
  {
    SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM jobs WHERE barcode IN ('CNT00030', 'CNT00031')");
    db.exec("UPDATE job_counts SET n = (SELECT count(*) FROM jobs "
            "WHERE jobs.stage = job_counts.stage)");
    db.exec("DELETE FROM books WHERE barcode IN ('CNT00030', 'CNT00031', 'CNT00005')");
    db.exec("INSERT INTO books(barcode, created_at, updated_at, grin_convert_failed_info) "
            "VALUES ('HAND00001', 't', 't', 'Bad scan'), ('HAND00002', 't', 't', NULL)");
  }
  CheckStatusMatchesTables(run);
  json j = StatusJson(run);
  CHECK(j["books"] == 35);
  CHECK(j["grin_convert_failed_books"] == 2);  // CNT00001 (Timeout) and HAND00001 (Bad scan)
  // The text report says the same.
  std::string text = StatusText(run);
  CHECK(text.find(", 35 books known") != std::string::npos);
  CHECK(text.find("GRIN conversion failed for 2 books") != std::string::npos);
}

// Every SQLite connection opened while installed adds, when it closes, the pages it asked its
// page cache for (hits + misses over its life) to g_pages: what a statement walks, including
// the b-tree pages a count(*) reads without a VM step per row.
std::atomic<int64_t> g_pages{0};

int CountPagesOnClose(unsigned type, void*, void* p, void*) {
  if (type != SQLITE_TRACE_CLOSE) return 0;
  auto* db = static_cast<sqlite3*>(p);
  int cur = 0, hi = 0;
  int64_t pages = 0;
  if (sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 0) == SQLITE_OK) pages += cur;
  if (sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0) == SQLITE_OK) pages += cur;
  g_pages += pages;
  return 0;
}

int InstallPageCounter(sqlite3* db, char**, const void*) {
  sqlite3_trace_v2(db, SQLITE_TRACE_CLOSE, CountPagesOnClose, nullptr);
  return SQLITE_OK;
}

using AutoExt = void (*)();

// Pages `status` (text, then --json) reads on a run of `books` books of which the same 20 have
// jobs in the same states and the same 2 failed GRIN's conversion.
int64_t StatusPages(TempDir& dir, const std::string& name, int books) {
  const std::string run = dir.file(name);
  std::ostringstream o, e;
  REQUIRE(RunCli({"init", "--run-dir", run, "--library-directory", "Harvard"}, o, e) == kExitOk);
  {
    auto catalog = storage::SqliteBookCatalog::Open(run + "/books.db").value();
    CollectCursor cursor{"Harvard", "", 1, books, false};
    REQUIRE(catalog->ApplyCollectedPage(Books(0, books), false, cursor).ok());
    REQUIRE(catalog->ReplaceConvertFailures({{"CNT00000", "2024-01-01", "Bad scan", ""},
                                             {"CNT00001", "2024-01-01", "Timeout", ""}})
                .ok());
    storage::StateStoreOptions opt;
    auto store = storage::SqliteStateStore::Open(run + "/books.db", opt).value();
    std::vector<std::string> barcodes;
    for (const auto& b : Books(0, 20)) barcodes.push_back(b.barcode);
    REQUIRE(store->Enqueue(barcodes).ok());
    auto items = store->Claim(Stage::kPending, 20).value();
    REQUIRE(items.size() == 20);
    for (int i = 0; i < 10; ++i) REQUIRE(store->Complete(items[i], Stage::kUploaded).ok());
    REQUIRE(store->Fail(items[10], ErrorClass::kPermanent, "http_404", "").ok());
    REQUIRE(store->Fail(items[11], ErrorClass::kRetryable, "timeout", "").ok());
    for (int i = 12; i < 20; ++i) REQUIRE(store->Release(items[i]).ok());
    REQUIRE(store->Flush().ok());
  }
  REQUIRE(sqlite3_auto_extension(reinterpret_cast<AutoExt>(InstallPageCounter)) == SQLITE_OK);
  g_pages = 0;
  std::string text = StatusText(run);
  json j = StatusJson(run);
  const int64_t pages = g_pages;
  sqlite3_cancel_auto_extension(reinterpret_cast<AutoExt>(InstallPageCounter));
  CHECK(j["books"] == books);
  CHECK(j["grin_convert_failed_books"] == 2);
  CHECK(text.find("GRIN conversion failed for 2 books") != std::string::npos);
  return pages;
}

TEST_CASE("status reads as many pages at 20,000 books as at 200") {
  TempDir dir;
  const int64_t small = StatusPages(dir, "small", 200);
  const int64_t large = StatusPages(dir, "large", 20'000);
  CAPTURE(small);
  CAPTURE(large);
  CHECK(small > 0);
  // A b-tree one level deeper costs a page per lookup; counting or scanning the books (~400
  // pages of them here) would cost hundreds.
  CHECK(large <= small + 16);
}

}  // namespace
}  // namespace grin::cli
