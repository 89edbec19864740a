// SyncReader (storage/sync_reader.h) on both dialects: the same run content written through the
// ports (BookCatalog, StateStore) into a SQLite books.db and a PostgreSQL database must give the
// same answer to every query sync and verify ask — lists in byte order of barcodes whatever the
// server's collation, the same counts, the same first failed book, the same upload records.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "storage/postgres/pg_book_catalog.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "storage/postgres/pg_sync_reader.h"
#include "storage/sqlite_book_catalog.h"
#include "storage/sqlite_state_store.h"
#include "storage/sync_reader.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

CollectedBook Book(const std::string& barcode, const std::string& state,
                   const std::string& converted = "") {
  CollectedBook b;
  b.barcode = barcode;
  b.title = "Title of " + barcode;
  b.scanned_date = "2020-01-02T03:04:05Z";
  b.converted_date = converted;
  b.grin_state = state;
  return b;
}

// Barcodes whose byte order differs from a linguistic collation's ('_' and '-' sort before
// letters in bytes; upper case before lower case).
const std::vector<std::string> kBarcodes = {"ab3",  "a_b4", "AB_1", "Ab-2", "ZZ9",
                                            "B-5",  "PREV1", "PREV2", "UNC1", "CHK1",
                                            "zz_7", "z-z8"};

// Writes the scenario through the ports.
void Fill(StateStore& store, BookCatalog& catalog) {
  std::vector<CollectedBook> books;
  for (const auto& b : kBarcodes) {
    std::string state = b.rfind("PREV", 0) == 0 ? "PREVIOUSLY_DOWNLOADED"
                        : b == "CHK1"           ? "CHECKED_IN"
                        : b == "ZZ9"            ? "CONVERTED"
                                                : "";
    books.push_back(Book(b, state, b == "ZZ9" ? "2021-01-01" : ""));
  }
  auto page = catalog.ApplyCollectedPage(books, false, CollectCursor{"TEST", "", 1, 12, false});
  REQUIRE_MESSAGE(page.ok(), page.status().ToString());
  REQUIRE(store.Enqueue(kBarcodes).ok());
  auto items = store.Claim(Stage::kPending, 12);
  REQUIRE(items.ok());
  REQUIRE(items->size() == 12);
  std::map<std::string, WorkItem> by;
  for (const auto& w : *items) by[w.barcode] = w;
  // Stored: three books, with an upload event (bytes, sha256), ETag checks, MARC for one.
  std::vector<Completion> done;
  int i = 0;
  for (const char* b : {"AB_1", "zz_7", "Ab-2"}) {
    Completion c;
    c.item = by[b];
    c.to = Stage::kUploaded;
    c.detail_json = "{\"bytes\": " + std::to_string(1000 + i) + ", \"sha256\": \"" +
                    std::string(64, static_cast<char>('a' + i)) + "\"}";
    c.book_fields = {{"last_etag_check", "2026-0" + std::to_string(i + 1) + "-01T00:00:00Z"},
                     {"encrypted_etag", "\"etag-" + std::string(b) + "\""}};
    if (i == 0) c.book_fields.push_back({"marc_extraction_timestamp", "2026-01-02T00:00:00Z"});
    if (i == 2) c.book_fields[0].second = "";  // never checked
    done.push_back(c);
    ++i;
  }
  // One further only to `checked`, with the carried checkpoint.
  Completion mid;
  mid.item = by["ZZ9"];
  mid.to = Stage::kChecked;
  mid.carry = "{\"etag\": \"x\"}";
  done.push_back(mid);
  auto st = store.CompleteMany(done);
  REQUIRE(st.ok());
  for (const auto& s : *st) REQUIRE_MESSAGE(s.ok(), s.ToString());
  // Dead: two failures that are not by rule (byte order: "a_b4" < "ab3"), one by rule.
  REQUIRE(store.Fail(by["ab3"], ErrorClass::kPermanent, "http_404", "{}").ok());
  REQUIRE(store.Fail(by["a_b4"], ErrorClass::kPermanent, "bad_archive", "{}").ok());
  REQUIRE(store.Fail(by["B-5"], ErrorClass::kPermanent, "known_conversion_failure", "{}").ok());
  // Awaiting GRIN's conversion.
  REQUIRE(store.Await(by["UNC1"], "conversion_requested", "{}").ok());
  REQUIRE(store.Await(by["z-z8"], "conversion_queue_full", "{}").ok());
  // A checkpoint kept on a released job; the rest released as they were.
  REQUIRE(store.SaveCheckpoint(by["PREV1"], "{\"part\": 3}").ok());
  for (const char* b : {"PREV1", "PREV2", "CHK1"}) REQUIRE(store.Release(by[b]).ok());
  REQUIRE(store.Flush().ok());
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + " ";
  return s;
}

// Every answer, one per line.
std::string Answers(SyncReader& r) {
  std::ostringstream t;
  for (const char* q : {"previous", "unconverted"}) {
    auto l = r.CatalogQueueBarcodes(q);
    REQUIRE(l.ok());
    t << q << ": " << Join(*l) << "\n";
  }
  t << "bad queue: " << static_cast<int>(r.CatalogQueueBarcodes("converted").status().code())
    << "\n";
  auto stored = r.StoredBarcodes();
  REQUIRE(stored.ok());
  t << "stored: " << Join({stored->begin(), stored->end()}) << "\n";
  for (bool whole : {true, false}) {
    auto d = r.CountDeadJobs(whole, {"ab3", "B-5", "UNC1"});
    REQUIRE(d.ok());
    t << "dead " << whole << ": " << d->failed << " " << d->by_rule << " " << d->awaiting << " ["
      << d->first_failed << "]\n";
  }
  for (bool all : {true, false}) {
    auto j = r.ReadJobStates(all ? std::vector<std::string>{}
                                 : std::vector<std::string>{"ZZ9", "ab3", "nope", "AB_1"},
                             all);
    REQUIRE(j.ok());
    t << "jobs " << all << ":";
    for (const auto& [b, s] : *j) {
      t << " " << b << "=" << s.stage << "/" << s.status << "/" << s.reason << "/"
        << (s.since_micros > 0);
    }
    t << "\n";
  }
  auto aw = r.AwaitingBooks();
  REQUIRE(aw.ok());
  t << "awaiting:";
  for (const auto& [b, why] : *aw) t << " " << b << "=" << why;
  t << "\n";
  auto e = r.ReadEtagChecks();
  REQUIRE(e.ok());
  t << "etags: " << e->stored << " " << e->checked << " " << e->newest << " " << e->oldest << "\n";
  for (const char* b : {"AB_1", "zz_7", "ab3", "nope"}) {
    auto m = r.MarcRecorded(b);
    REQUIRE(m.ok());
    auto j = r.Job(b);
    REQUIRE(j.ok());
    auto u = r.Upload(b);
    REQUIRE(u.ok());
    t << b << ": marc " << *m << " job "
      << (j->has_value() ? (*j)->stage + "/" + std::to_string((*j)->dead) + "/" + (*j)->checkpoint
                         : std::string("none"))
      << " upload " << u->encrypted_etag << " " << u->sha256_hex << "\n";
  }
  auto cp = r.Job("PREV1");
  REQUIRE(cp.ok());
  REQUIRE(cp->has_value());
  t << "checkpoint PREV1: " << ((*cp)->checkpoint.find("\"part\"") != std::string::npos) << "\n";
  auto carried = r.Job("ZZ9");
  REQUIRE(carried.ok());
  t << "carried ZZ9: " << ((*carried)->checkpoint.find("etag") != std::string::npos) << "\n";
  std::map<std::string, std::string> rows;
  REQUIRE(r.ForEachJob([&](VerifyRow v) {
               rows[v.barcode] = std::to_string(v.done) + "/" + std::to_string(v.marc_recorded) +
                                 "/" + std::to_string(v.raw_size);
             }).ok());
  t << "verify:";
  for (const auto& [b, v] : rows) t << " " << b << "=" << v;
  t << "\n";
  return t.str();
}

TEST_CASE("SyncReader: SQLite and PostgreSQL answer alike on the same content") {
  PG_SKIP_WITHOUT_POSTGRES();
  grin::testing::TempDir tmp;
  const std::string db = (tmp.path() / "books.db").string();
  std::string sqlite_answers;
  {
    StateStoreOptions so;
    auto store = SqliteStateStore::Open(db, so);
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    auto catalog = SqliteBookCatalog::Open(db, nullptr, false);
    REQUIRE_MESSAGE(catalog.ok(), catalog.status().ToString());
    Fill(**store, **catalog);
    auto reader = OpenSqliteSyncReader(db);
    REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
    sqlite_answers = Answers(**reader);
  }
  // A database whose default collation is linguistic (ICU en-US: '_' and '-' ignored, case
  // second), so an ORDER BY without COLLATE "C" would answer otherwise than SQLite.
  std::string uri = grin::testing::FreshDatabase();
  {
    auto admin = pg::PgConnection::Connect(grin::testing::SharedPgCluster()->conninfo(), "admin");
    REQUIRE(admin.ok());
    auto made = (*admin)->Exec("CREATE DATABASE sync_reader_icu TEMPLATE template0 "
                               "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
    if (made.ok()) {
      uri = grin::testing::SharedPgCluster()->ConnInfo("sync_reader_icu");
    } else {
      MESSAGE("no ICU collation (" << made.status().message() << "): the C-collated database");
    }
  }
  std::string pg_answers;
  {
    PgStateStoreOptions po;
    po.heartbeat_interval_micros = 0;
    auto store = PgStateStore::Open(uri, po);
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    auto catalog = PgBookCatalog::Open(uri);
    REQUIRE_MESSAGE(catalog.ok(), catalog.status().ToString());
    Fill(**store, **catalog);
    auto reader = PgSyncReader::Open(uri);
    REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
    pg_answers = Answers(**reader);
  }
  CHECK(pg_answers == sqlite_answers);
  // And the answers are the ones the scenario wrote (not two equally wrong ones).
  CAPTURE(sqlite_answers);
  CHECK(sqlite_answers.find("previous: PREV1 PREV2 \n") != std::string::npos);
  CHECK(sqlite_answers.find("stored: AB_1 Ab-2 zz_7 \n") != std::string::npos);
  CHECK(sqlite_answers.find("dead 1: 2 1 2 [a_b4 (bad_archive)]") != std::string::npos);
  CHECK(sqlite_answers.find("dead 0: 1 1 1 [ab3 (http_404)]") != std::string::npos);
  CHECK(sqlite_answers.find("etags: 3 2 2026-02-01T00:00:00Z 2026-01-01T00:00:00Z") !=
        std::string::npos);
  CHECK(sqlite_answers.find("AB_1: marc 1 job uploaded/0/ upload \"etag-AB_1\" " +
                            std::string(64, 'a')) != std::string::npos);
  CHECK(sqlite_answers.find("AB_1=1/1/1000") != std::string::npos);
  CHECK(sqlite_answers.find("checkpoint PREV1: 1") != std::string::npos);
}

}  // namespace
}  // namespace grin::storage
