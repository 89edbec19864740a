// PgStateStore's shared counters (job_counts, uploaded_per_second; postgres 0002/0003) and
// the catalog's book_count (postgres 0005): exact
// under four workers completing concurrently through every milestone, with stale and duplicate
// completions mixed in, and written once per statement (not once per job: every worker's
// completions update the same rows, so a per-job write made them queue on those rows).
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/postgres/pg_book_catalog.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/storage/pg_test_sql.h"

namespace grin::storage {
namespace {

using grin::testing::FreshDatabase;
using grin::testing::PgConnect;
using grin::testing::PgQueryInt;
using pg::PgConnection;

std::unique_ptr<PgStateStore> Open(const std::string& uri) {
  PgStateStoreOptions o;
  o.pool_size = 2;
  auto s = PgStateStore::Open(uri, o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(*s);
}

std::vector<std::string> Barcodes(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("CNT" + std::to_string(100000 + i));
  return v;
}

TEST_CASE("postgres store: job_counts and uploaded_per_second stay exact under 4 concurrent workers") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  constexpr int kJobs = 4000;
  std::vector<std::unique_ptr<PgStateStore>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(Open(uri));
  REQUIRE(stores[0]->Enqueue(Barcodes(kJobs)).value() == kJobs);

  std::mutex mu;
  std::vector<std::string> errors;
  int64_t refused = 0;  // stale and duplicate namings, refused as they must be
  auto note = [&](const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    errors.push_back(e);
  };
  // Each worker walks the milestones: pending -> checked or downloaded or uploaded (by job id),
  // checked -> downloaded, downloaded -> uploaded; every batch also names one job twice and one
  // with a stale token, and every fifth batch gives one job back.
  auto worker = [&](PgStateStore* s, int seed) {
    int batch_no = seed;
    for (int idle = 0; idle < 3;) {
      bool any = false;
      for (Stage from : {Stage::kPending, Stage::kChecked, Stage::kDownloaded}) {
        auto items = s->Claim(from, 37);
        if (!items.ok()) return note(items.status().ToString());
        if (items->empty()) continue;
        any = true;
        ++batch_no;
        std::vector<WorkItem> keep = *items;
        if (batch_no % 5 == 0) {
          if (Status st = s->Release(keep.back()); !st.ok()) return note(st.ToString());
          keep.pop_back();
          if (keep.empty()) continue;
        }
        std::vector<Completion> done;
        for (const auto& w : keep) {
          Completion c;
          c.item = w;
          c.to = from == Stage::kPending  ? static_cast<Stage>(1 + w.job_id % 3)
                 : from == Stage::kChecked ? Stage::kDownloaded
                                           : Stage::kUploaded;
          done.push_back(c);
        }
        done.push_back(done.front());  // named twice: completes once
        Completion stale = done.front();
        stale.item.lease_token -= 1;  // an older lease's token: refused
        done.push_back(stale);
        auto res = s->CompleteMany(done);
        if (!res.ok()) return note(res.status().ToString());
        int64_t bad = 0;
        for (size_t k = 0; k < res->size(); ++k) {
          bool must_hold = k + 2 < res->size();
          if ((*res)[k].ok() != must_hold) return note("completion " + std::to_string(k) + ": " +
                                                       (*res)[k].ToString());
          bad += (*res)[k].ok() ? 0 : 1;
        }
        std::lock_guard<std::mutex> l(mu);
        refused += bad;
      }
      idle = any ? 0 : idle + 1;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, stores[static_cast<size_t>(i)].get(), i);
  for (auto& t : threads) t.join();
  REQUIRE_MESSAGE(errors.empty(), (errors.empty() ? "" : errors.front()));
  CHECK(refused > 0);

  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM jobs WHERE stage = 'uploaded'") == kJobs);
  // job_counts equals the jobs per milestone, and the port's Counts() reads it.
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM job_counts jc WHERE jc.n <> "
                     "(SELECT count(*) FROM jobs j WHERE j.stage = jc.stage)") == 0);
  auto counts = stores[1]->Counts();
  REQUIRE(counts.ok());
  CHECK(counts->total == kJobs);
  CHECK(counts->at[static_cast<int>(Stage::kUploaded)] == kJobs);
  CHECK(counts->leased == 0);
  // uploaded_per_second sums to the events at uploaded, second by second.
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM events WHERE stage = 'uploaded'") == kJobs);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM (SELECT grin_iso_unix_seconds(at) AS s, count(*) AS n "
                     "FROM events WHERE stage = 'uploaded' GROUP BY 1) e FULL JOIN "
                     "uploaded_per_second u ON u.sec = e.s WHERE u.n IS DISTINCT FROM e.n") == 0);
  // Every job completed once per milestone it passed: one event per (barcode, stage).
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM (SELECT barcode, stage FROM events WHERE outcome = "
                     "'completed' GROUP BY 1, 2 HAVING count(*) > 1) x") == 0);
}

// n_tup_ins + n_tup_upd of a table, as the statistics system has it once every backend that
// wrote it has gone (a backend reports its counts when it exits; polled up to 10 s for `at_least`).
int64_t TableWrites(PgConnection& c, const char* table, int64_t at_least) {
  int64_t n = 0;
  for (int i = 0; i < 200; ++i) {
    REQUIRE(c.Exec("SELECT pg_stat_clear_snapshot()").ok());
    n = PgQueryInt(c, std::string("SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM "
                                "pg_stat_user_tables WHERE relname = '") + table + "'");
    if (n >= at_least) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return n;
}

TEST_CASE("postgres store: a batch of completions writes the shared counter rows once, not per job") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  constexpr int kJobs = 512;
  {
    auto store = Open(uri);
    REQUIRE(store->Enqueue(Barcodes(kJobs)).value() == kJobs);
    auto items = store->Claim(Stage::kPending, kJobs);
    REQUIRE(items.ok());
    REQUIRE(items->size() == kJobs);
    std::vector<Completion> done;
    for (const auto& w : *items) done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
    auto res = store->CompleteMany(done);
    REQUIRE(res.ok());
    for (const auto& st : *res) REQUIRE(st.ok());
  }  // the store's connections close: their backends report their statistics
  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT sum(n) FROM uploaded_per_second") == kJobs);
  // One statement's events share one second: one row inserted, never updated per job (a
  // per-row trigger made 1 insert + 511 updates of that row).
  CHECK(TableWrites(*c, "uploaded_per_second", 1) == 1);
  // job_counts: its 4 rows inserted (0001) and updated (0002) by the migrations, then the
  // enqueue's one update and the completion's two (pending, uploaded).
  CHECK(TableWrites(*c, "job_counts", 4 + 4 + 3) == 4 + 4 + 3);
}

TEST_CASE("postgres catalog: a collected page moves book_count once, not per book") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  constexpr int kBooks = 2000;
  auto page = [](int from, int to) {
    std::vector<CollectedBook> v;
    for (int i = from; i < to; ++i) {
      CollectedBook b;
      b.barcode = "PAGE" + std::to_string(100000 + i);
      b.title = "Title " + std::to_string(i);
      b.grin_state = "CONVERTED";
      v.push_back(b);
    }
    return v;
  };
  {
    auto cat = PgBookCatalog::Open(uri);
    REQUIRE_MESSAGE(cat.ok(), cat.status().ToString());
    CollectCursor cur{"Harvard", "https://grin/next", 1, kBooks, false};
    auto first = (*cat)->ApplyCollectedPage(page(0, kBooks), false, cur);
    REQUIRE_MESSAGE(first.ok(), first.status().ToString());
    CHECK(first->inserted == kBooks);
    // Half old, half new, one barcode named twice: the twice-named new one is inserted once and
    // refreshed by its second naming; the old ones are refreshed (titles changed).
    auto second_page = page(kBooks / 2, kBooks + kBooks / 2);
    for (auto& b : second_page) b.title += " (revised)";
    second_page.push_back(second_page.back());
    auto second = (*cat)->ApplyCollectedPage(second_page, true, CollectCursor{"Harvard", "", 2, 0, true});
    REQUIRE_MESSAGE(second.ok(), second.status().ToString());
    CHECK(second->inserted == kBooks / 2);
    CHECK(second->updated == kBooks / 2);
    CHECK(second->unchanged == 1);
  }
  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT n FROM book_count") == kBooks + kBooks / 2);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM books") == kBooks + kBooks / 2);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM books WHERE title LIKE '% (revised)'") == kBooks);
  // book_count's row: inserted by its migration, then one update per page that inserted books
  // (a per-row trigger made 3,000 updates).
  CHECK(TableWrites(*c, "book_count", 1 + 2) == 1 + 2);
}

}  // namespace
}  // namespace grin::storage
