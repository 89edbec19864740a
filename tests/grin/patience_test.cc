// Issue 16 items 6, 7 and 14: _process replies (unknown refusals, padded barcodes, extra
// columns, the order of the request queue), _failed read as HTML with GRIN's failure details,
// and patience with a throttling or slow GRIN (429/503 with Retry-After, slow first bytes).
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "engine/grin/workflows.h"
#include "storage/books_export.h"
#include "storage/sqlite_book_catalog.h"
#include "tests/support/temp_dir.h"
#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
namespace {

using testing::FakeOptions;
using testing::GrinEnv;

TEST_SUITE("unit") {

TEST_CASE("_process reply: padded barcodes trimmed, extra columns kept, header found by name") {
  auto r = ParseProcessReply(
      "Barcode\tStatus\tRequest Id\n TEST001  \tSuccess\tR1\nTEST002\tBook not available for "
      "conversion \tR2\n\t\tR3\n",
      "_process (3 barcodes)");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].barcode == "TEST001");
  CHECK((*r)[0].outcome == ProcessOutcome::kRequested);
  CHECK((*r)[0].extra == std::vector<std::pair<std::string, std::string>>{{"Request Id", "R1"}});
  CHECK((*r)[1].barcode == "TEST002");
  CHECK((*r)[1].status == "Book not available for conversion");
  CHECK((*r)[1].outcome == ProcessOutcome::kOther);
  // Columns in another order and case.
  auto swapped = ParseProcessReply("status\tbarcode\nSuccess\tTEST003 \n", "_process");
  REQUIRE(swapped.ok());
  REQUIRE(swapped->size() == 1);
  CHECK((*swapped)[0].barcode == "TEST003");
  CHECK((*swapped)[0].outcome == ProcessOutcome::kRequested);
  // Still an error: a header without Status.
  CHECK(ParseProcessReply("Barcode\tWhat\nX1\ty\n", "_process").status().code() ==
        StatusCode::kDataLoss);
}

}  // TEST_SUITE

TEST_SUITE("integration") {

std::vector<std::string> Barcodes(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(fake::Corpus::BarcodeAt(i));
  return out;
}

fake::FakeGrinOptions AllAvailable(int64_t books) {
  auto o = FakeOptions(books);
  o.corpus.frac_converted = 0;
  o.corpus.frac_in_process = 0;
  o.corpus.frac_failed = 0;
  o.corpus.frac_not_allowed = 0;
  return o;
}

struct Catalog {
  explicit Catalog(GrinEnv& env) : path(env.tmp.file("books.db")) {
    auto c = storage::SqliteBookCatalog::Open(path);
    REQUIRE(c.ok());
    cat = std::move(c).value();
    CollectOptions co;
    co.page_size = 100;
    REQUIRE(CollectAllBooks(*env.client, *cat, co).ok());
  }
  std::string Text(const std::string& sql) {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    return q.executeStep() ? q.getColumn(0).getString() : "";
  }
  std::string path;
  std::unique_ptr<storage::SqliteBookCatalog> cat;
};

// The request queue's order before any request: the catalog's candidates.
std::vector<std::string> QueueOrder(GrinEnv& env, int n) {
  grin::testing::TempDir tmp;
  auto cat = storage::SqliteBookCatalog::Open(tmp.file("books.db"));
  REQUIRE(cat.ok());
  CollectOptions co;
  co.page_size = 100;
  REQUIRE(CollectAllBooks(*env.client, **cat, co).ok());
  auto order = (*cat)->ConversionCandidates(n, false);
  REQUIRE(order.ok());
  REQUIRE(static_cast<int>(order->size()) == n);
  return *order;
}

TEST_CASE("request: unknown refusals are kept, not re-sent, and never block the rest") {
  std::vector<std::string> bc;
  {
    GrinEnv probe(AllAvailable(30), false);
    bc = QueueOrder(probe, 15);
  }
  auto o = AllAvailable(30);
  for (int i = 0; i < 5; ++i) o.process_refusals[bc[i]] = "Book not available for conversion";
  GrinEnv env(o, false);
  Catalog c(env);
  RequestOptions ro;
  ro.limit = 5;
  auto first = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(first->outcomes["other"] == 5);
  CHECK(c.Text("SELECT grin_status FROM conversion_request WHERE barcode = '" + bc[0] + "'") ==
        "Book not available for conversion");
  // The next run asks for the next five books, not the refused ones again.
  auto second = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE(second.ok());
  CHECK(second->outcomes["requested"] == 5);
  for (int i = 0; i < 5; ++i) CHECK(env.server->BarcodeCounters("TEST", bc[i]).process == 1);
  for (int i = 5; i < 10; ++i) CHECK(env.server->BarcodeCounters("TEST", bc[i]).process == 1);
  // --retry-refused asks them again.
  ro.retry_refused = true;
  ro.limit = 50;
  auto third = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE(third.ok());
  for (int i = 0; i < 5; ++i) CHECK(env.server->BarcodeCounters("TEST", bc[i]).process == 2);
}

TEST_CASE("request: unanswered books go to the back of the queue") {
  GrinEnv env(AllAvailable(20), false);
  const auto bc = QueueOrder(env, 12);
  Catalog c(env);
  fake::FaultRule shortr;
  shortr.endpoint = "process";
  shortr.action = "process_short";
  shortr.times = 1;
  env.server->AddFault(shortr);
  RequestOptions ro;
  ro.limit = 5;
  auto first = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE(first.ok());
  CHECK(first->outcomes["unanswered"] == 1);  // bc[4], the last of the batch
  auto second = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE(second.ok());
  CHECK(env.server->BarcodeCounters("TEST", bc[4]).process == 1);
  for (int i = 5; i < 10; ++i) CHECK(env.server->BarcodeCounters("TEST", bc[i]).process == 1);
  // It waits at the back: after every book never asked.
  auto order = c.cat->ConversionCandidates(50, false);
  REQUIRE(order.ok());
  REQUIRE_FALSE(order->empty());
  CHECK(order->back() == bc[4]);
  CHECK(std::count(order->begin(), order->end(), bc[4]) == 1);
}

TEST_CASE("request: padded barcodes and extra columns in _process replies") {
  auto o = AllAvailable(12);
  o.process_padded_barcodes = true;
  o.process_extra_columns = true;
  GrinEnv env(o, false);
  Catalog c(env);
  RequestOptions ro;
  ro.limit = 10;
  auto r = RequestConversions(*env.client, *c.cat, ro);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->outcomes["requested"] == 10);
  CHECK(r->outcomes.count("unanswered") == 0);
  CHECK(c.Text("SELECT count(*) FROM conversion_request WHERE outcome = 'requested'") == "10");
  CHECK(c.Text("SELECT count(*) FROM events WHERE stage = 'conversion' AND barcode NOT IN "
               "(SELECT barcode FROM books)") == "0");
  CHECK(c.Text("SELECT json_extract(detail, '$.grin_columns.\"Request Id\"') FROM events "
               "WHERE stage = 'conversion' ORDER BY barcode LIMIT 1") == "R1000");
}

TEST_CASE("_failed: read as HTML with GRIN's failure date, info and detail per book") {
  auto o = FakeOptions(400);
  o.corpus.frac_failed = 0.2;
  GrinEnv env(o, false);
  auto failures = env.client->LoadKnownFailures(25);  // several pages
  REQUIRE_MESSAGE(failures.ok(), failures.status().ToString());
  fake::Corpus* corpus = env.server->corpus("TEST");
  const int64_t n = corpus->Count(fake::ConvertStatus::kFailed);
  REQUIRE(n > 25);
  CHECK(static_cast<int64_t>(failures->size()) == n);
  int64_t total = 0;
  for (int64_t i : corpus->List(fake::ConvertStatus::kFailed, 0, -1, &total)) {
    fake::BookRecord b = corpus->Get(i);
    auto it = failures->find(b.barcode);
    REQUIRE(it != failures->end());
    CHECK(it->second.info == b.failed_info);
    CHECK(it->second.detail == b.failed_detail);
    CHECK(it->second.date == GrinDateToIso(fake::FormatGrinDate(b.status_at)));
    CHECK_FALSE(it->second.info.empty());
  }
}

TEST_CASE("enrich: GRIN's failure date, info and detail land in books and the CSV") {
  auto o = FakeOptions(200);
  o.corpus.frac_failed = 0.2;
  GrinEnv env(o, false);
  Catalog c(env);
  EnrichOptions eo;
  auto st = EnrichBooks(*env.client, *c.cat, eo);
  REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  fake::Corpus* corpus = env.server->corpus("TEST");
  int64_t total = 0;
  auto failed = corpus->List(fake::ConvertStatus::kFailed, 0, -1, &total);
  REQUIRE_FALSE(failed.empty());
  CHECK(st->convert_failures == static_cast<int64_t>(failed.size()));
  fake::BookRecord b = corpus->Get(failed.front());
  CHECK(c.Text("SELECT grin_convert_failed_info FROM books WHERE barcode = '" + b.barcode + "'") ==
        b.failed_info);
  CHECK(c.Text("SELECT grin_detailed_convert_failed_info FROM books WHERE barcode = '" +
               b.barcode + "'") == b.failed_detail);
  CHECK(c.Text("SELECT count(*) FROM books WHERE grin_convert_failed_date IS NOT NULL") ==
        std::to_string(failed.size()));
  const std::string csv_path = env.tmp.file("books.csv");
  REQUIRE(storage::ExportBooksCsv(c.path, csv_path, false).ok());
  std::ifstream in(csv_path);
  std::string header;
  std::getline(in, header);
  CHECK(header.find("GRIN Convert Failed Date,GRIN Convert Failed Info,"
                    "GRIN Detailed Convert Failed Info") != std::string::npos);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(all.find(b.failed_detail.substr(0, 20)) != std::string::npos);
  // A book no longer in _failed (converted again) loses its failure fields on the next enrich.
  corpus->SetStatus(failed.front(), fake::ConvertStatus::kConverted, env.server->NowSeconds());
  REQUIRE(EnrichBooks(*env.client, *c.cat, eo).ok());
  CHECK(c.Text("SELECT count(*) FROM books WHERE grin_convert_failed_info IS NOT NULL") ==
        std::to_string(failed.size() - 1));
}

TEST_CASE("patience: 429 with Retry-After on a list page, many times over, resumes at that page") {
  GrinEnv env(FakeOptions(250), false);
  fake::FaultRule f;
  f.endpoint = "all_books";
  f.status = 429;
  f.retry_after = "0";
  f.after = 2;    // pages 1 and 2 answer
  f.times = 14;   // more than a few tries over seconds
  env.server->AddFault(f);
  ClientOptions co = env.client->options();
  co.patience.max_attempts = 20;
  GrinClient client(env.transport.get(), env.tokens.get(), co);
  int rows = 0;
  Status s = client.ForEachListPage(client.ListUrl("all_books", 100), [&](const ListPage& p) {
    rows += static_cast<int>(p.rows.size());
    return Status::Ok();
  });
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(rows == 250);
  // Three pages, page 3 asked 15 times: the listing never started again from page 1.
  CHECK(env.server->Stats().endpoints["all_books"].requests == 3 + 14);
}

TEST_CASE("patience: 429 on a plain GET of _in_process and 503 on the probe are waited out") {
  GrinEnv env(FakeOptions(100), false);
  fake::FaultRule f;
  f.endpoint = "in_process";
  f.status = 429;
  f.retry_after = "0";
  f.times = 6;
  env.server->AddFault(f);
  fake::FaultRule p;
  p.endpoint = "probe";
  p.status = 503;
  p.times = 6;
  env.server->AddFault(p);
  CHECK(env.client->Probe().ok());
  int n = 0;
  Status s = env.client->ForEachTextLine("in_process", "", [&](const std::string&) {
    ++n;
    return Status::Ok();
  });
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(n == env.server->corpus("TEST")->Count(fake::ConvertStatus::kInProcess));
}

TEST_CASE("patience: a text list slow to its first byte is waited for, archives keep the limit") {
  // Transport low-speed window 1 s: an archive whose first byte takes 2.5 s times out, a list
  // that takes as long is waited for.
  GrinEnv env(FakeOptions(40), false, 300, /*low_speed_time_s=*/1);
  fake::FaultRule slow;
  slow.endpoint = "converted";
  slow.action = "slow_first_byte";
  slow.delay_ms = 2'500;  // every time: retrying the timeout cannot help
  env.server->AddFault(slow);
  std::string bc;
  Status s = env.client->ForEachTextLine("converted", "", [&](const std::string& b) {
    if (bc.empty()) bc = b;
    return Status::Ok();
  });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  REQUIRE_FALSE(bc.empty());
  fake::FaultRule slow_get;
  slow_get.endpoint = "archive_get";
  slow_get.action = "slow_first_byte";
  slow_get.delay_ms = 2'500;
  env.server->AddFault(slow_get);
  REQUIRE(env.tokens->Token().ok());
  net::Request req = env.client->ArchiveRequest(bc, net::ResponseSink::Memory());
  net::RetryOptions once;
  once.max_attempts = 1;
  req.retry = once;
  net::Response r = env.transport->SubmitFuture(std::move(req)).get();
  CHECK_FALSE(r.transport_status.ok());
}

TEST_CASE("patience: _process waits out 503 and 429 with Retry-After, a bare 429 is a full queue") {
  const auto bc = Barcodes(10);
  GrinEnv env(AllAvailable(10), false);
  fake::FaultRule f;
  f.endpoint = "process";
  f.status = 503;
  f.retry_after = "0";
  f.times = 4;
  env.server->AddFault(f);
  auto r = env.client->Process({bc[0]});
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK_FALSE(r->queue_full);
  REQUIRE(r->rows.size() == 1);
  CHECK(r->rows[0].outcome == ProcessOutcome::kRequested);
  env.server->ClearFaults();
  f.status = 429;
  f.times = 2;
  env.server->AddFault(f);
  r = env.client->Process({bc[1]});
  REQUIRE(r.ok());
  CHECK_FALSE(r->queue_full);
  REQUIRE(r->rows.size() == 1);
  CHECK(r->rows[0].outcome == ProcessOutcome::kRequested);
  env.server->ClearFaults();
  env.server->ResetStats();
  f.retry_after = "";
  f.times = 1;
  env.server->AddFault(f);
  r = env.client->Process({bc[2]});
  REQUIRE(r.ok());
  CHECK(r->queue_full);
  CHECK(env.server->Stats().endpoints["process"].requests == 1);
}

}  // TEST_SUITE

}  // namespace
}  // namespace grin::grin_client
