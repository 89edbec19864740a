// The SQLite state store: transitions, fencing, backoff with a fake clock, reclaim at open,
// the per-run lock, concurrent claimers.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "storage/sqlite_state_store.h"
#include "storage/state_reader.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

using grin::testing::TempDir;

struct Fixture {
  TempDir dir;
  FakeClock clock;
  CaptureLogger logger;
  std::string path = dir.file("books.db");
  StateStoreOptions Options() {
    StateStoreOptions o;
    o.clock = &clock;
    o.logger = &logger;
    o.seed = 42;
    o.max_attempts = 3;
    o.backoff_base_micros = 10'000'000;
    o.backoff_max_micros = 60'000'000;
    return o;
  }
  std::unique_ptr<SqliteStateStore> Open() {
    auto s = SqliteStateStore::Open(path, Options());
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    return std::move(s).value();
  }
  int64_t Query(const std::string& sql) {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    return db.execAndGet(sql).getInt64();
  }
  // job_counts (kept by the writer) must equal counting the jobs table, milestone by milestone.
  void CheckCountsMatchJobs() {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, R"(
        SELECT c.stage, c.n, (SELECT count(*) FROM jobs j WHERE j.stage = c.stage)
        FROM job_counts c)");
    int rows = 0;
    while (q.executeStep()) {
      ++rows;
      CAPTURE(q.getColumn(0).getString());
      CHECK(q.getColumn(1).getInt64() == q.getColumn(2).getInt64());
    }
    CHECK(rows == kStageCount);
  }
};

TEST_CASE("a book moves pending -> checked -> downloaded -> uploaded") {
  Fixture f;
  auto store = f.Open();
  CHECK(store->Enqueue({"AAA001", "AAA002", "AAA003"}).value() == 3);
  CHECK(store->Enqueue({"AAA001", "AAA004"}).value() == 1);  // known barcodes untouched
  auto c = store->Counts().value();
  CHECK(c.total == 4);
  CHECK(c.at[0] == 4);

  auto items = store->Claim(Stage::kPending, 2).value();
  REQUIRE(items.size() == 2);
  CHECK(items[0].barcode == "AAA001");
  CHECK(items[1].barcode == "AAA002");
  CHECK(items[0].run_id == store->run_id());
  CHECK(store->Counts().value().leased == 2);
  // Leased items are not claimed again.
  auto more = store->Claim(Stage::kPending, 10).value();
  CHECK(more.size() == 2);

  CHECK(store->Complete(items[0], Stage::kChecked, "completed", "{\"etag\":\"e1\"}").ok());
  auto checked = store->Claim(Stage::kChecked, 10).value();
  REQUIRE(checked.size() == 1);
  CHECK(store->Complete(checked[0], Stage::kDownloaded).ok());
  auto dl = store->Claim(Stage::kDownloaded, 10).value();
  REQUIRE(dl.size() == 1);
  CHECK(store->Complete(dl[0], Stage::kUploaded).ok());
  REQUIRE(store->Flush().ok());

  CHECK(f.Query("SELECT count(*) FROM uploaded") == 1);
  CHECK(f.Query("SELECT count(*) FROM pending") == 3);
  CHECK(f.Query("SELECT count(*) FROM events WHERE barcode='AAA001' AND outcome='completed'") == 3);
  CHECK(f.Query("SELECT json_extract(detail, '$.etag') = 'e1' FROM events "
                "WHERE barcode='AAA001' AND stage='checked'") == 1);
  // Skipping straight to uploaded (ETag match) is a legal completion.
  CHECK(store->Complete(items[1], Stage::kUploaded, "skipped_etag_match").ok());
  CHECK(store->Counts().value().at[3] == 2);
  // Moving backwards is refused.
  CHECK(store->Complete(more[0], Stage::kPending).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a completion sets books columns atomically, only writable columns are accepted") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"BKS001"}).ok());
  auto items = store->Claim(Stage::kPending, 1).value();
  Completion bad{items[0], Stage::kUploaded, "completed", "", {{"title", "x"}}};
  auto r = store->CompleteMany({bad});
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  Completion good{items[0], Stage::kUploaded, "completed", "",
                  {{"encrypted_etag", "abc"}, {"is_decrypted", "1"}, {"marc_title", "T"},
                   {"marc_lccn", ""}}};
  auto ok = store->CompleteMany({good});
  REQUIRE(ok.ok());
  CHECK(ok->front().ok());
  SQLite::Database db(f.path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT encrypted_etag || is_decrypted || marc_title || "
                      "coalesce(marc_lccn, 'NULL') FROM books WHERE barcode='BKS001'")
            .getString() == "abc1TNULL");
  // A stale completion changes neither the job nor the book.
  Completion stale{items[0], Stage::kUploaded, "completed", "", {{"encrypted_etag", "zzz"}}};
  CHECK(store->CompleteMany({stale})->front().code() == StatusCode::kConflict);
  REQUIRE(store->Flush().ok());
  CHECK(f.Query("SELECT count(*) FROM books WHERE encrypted_etag = 'abc'") == 1);
}

TEST_CASE("reset moves done and failed jobs back to pending, never leased ones") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"RST001", "RST002", "RST003"}).ok());
  auto items = store->Claim(Stage::kPending, 3).value();
  REQUIRE(store->Complete(items[0], Stage::kUploaded).ok());
  REQUIRE(store->Fail(items[1], ErrorClass::kPermanent, "x", "").ok());
  ResetRequest not_done{{"RST001", "RST002", "RST003"}, false};
  CHECK(store->Reset(not_done).value() == 1);  // only the dead one; RST003 is leased
  ResetRequest all{{"RST001", "RST002", "RST003"}, true};
  CHECK(store->Reset(all).value() == 2);
  CHECK(store->Counts().value().at[0] == 3);
  CHECK(store->Counts().value().leased == 1);
}

TEST_CASE("a stale token cannot complete, fail, release or checkpoint") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"BBB001"}).ok());
  auto a = store->Claim(Stage::kPending, 1).value();
  REQUIRE(a.size() == 1);
  WorkItem stale = a[0];
  // The holder fails (retryable): its lease ends; a new claim gets a new token.
  CHECK(store->Fail(a[0], ErrorClass::kRetryable, "timeout", "").ok());
  f.clock.AdvanceSeconds(3600);
  auto b = store->Claim(Stage::kPending, 1).value();
  REQUIRE(b.size() == 1);
  CHECK(b[0].lease_token > stale.lease_token);

  CHECK(store->Complete(stale, Stage::kChecked).code() == StatusCode::kConflict);
  CHECK(store->Fail(stale, ErrorClass::kPermanent, "x", "").code() == StatusCode::kConflict);
  CHECK(store->Release(stale).code() == StatusCode::kConflict);
  CHECK(store->SaveCheckpoint(stale, "{}").code() == StatusCode::kConflict);
  CHECK(f.logger.Count("job.stale_write") >= 2);
  // The real holder is unaffected.
  CHECK(store->Complete(b[0], Stage::kChecked).ok());
  CHECK(store->Complete(b[0], Stage::kDownloaded).code() == StatusCode::kConflict);  // once only
  REQUIRE(store->Flush().ok());
  CHECK(f.Query("SELECT count(*) FROM checked") == 1);
  CHECK(f.Query("SELECT count(*) FROM events WHERE outcome='completed'") == 1);
}

TEST_CASE("retryable failures back off with full jitter, then the job is dead") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"CCC001"}).ok());
  int64_t prev_cap = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    CAPTURE(attempt);
    auto items = store->Claim(Stage::kPending, 1).value();
    REQUIRE(items.size() == 1);
    CHECK(items[0].attempts == attempt - 1);
    CHECK(store->Fail(items[0], ErrorClass::kRetryable, "http_503", "{\"status\":503}").ok());
    if (attempt == 3) break;
    int64_t next = f.Query("SELECT next_attempt_at FROM jobs WHERE barcode='CCC001'");
    int64_t delay = next - f.clock.NowMicros();
    int64_t cap = std::min<int64_t>(10'000'000LL << (attempt - 1), 60'000'000);
    CHECK(delay >= 0);
    CHECK(delay <= cap);
    CHECK(cap >= prev_cap);
    prev_cap = cap;
    // Not claimable before its time...
    if (delay > 0) CHECK(store->Claim(Stage::kPending, 1).value().empty());
    // ...and claimable after.
    f.clock.AdvanceMicros(delay);
  }
  auto c = store->Counts().value();
  CHECK(c.dead == 1);
  CHECK(store->Claim(Stage::kPending, 1).value().empty());
  auto failures = store->Failures().value();
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].reason == "http_503");
  CHECK(failures[0].dead);
  CHECK(f.Query("SELECT count(*) FROM failed WHERE dead AND attempts = 3") == 1);

  // Requeue on demand brings it back with attempts reset.
  RequeueFilter filter;
  filter.reason_like = "http_5%";
  CHECK(store->Requeue(filter).value() == 1);
  auto again = store->Claim(Stage::kPending, 1).value();
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempts == 0);
}

TEST_CASE("backoff schedule is exponential with a cap and full jitter") {
  CHECK(BackoffMicros(1, 1000, 1'000'000, 0.999999) == 999);
  CHECK(BackoffMicros(2, 1000, 1'000'000, 0.5) == 1000);
  CHECK(BackoffMicros(11, 1000, 1'000'000, 0.5) == 500'000);  // capped at max
  CHECK(BackoffMicros(60, 1000, 1'000'000, 1.0) == 1'000'000);
  CHECK(BackoffMicros(3, 1000, 1'000'000, 0.0) == 0);
}

TEST_CASE("a permanent failure is dead at once, requeue filters by stage and dead-only") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"DDD001", "DDD002"}).ok());
  auto items = store->Claim(Stage::kPending, 2).value();
  CHECK(store->Fail(items[0], ErrorClass::kPermanent, "http_404", "").ok());
  CHECK(store->Fail(items[1], ErrorClass::kRetryable, "timeout", "").ok());
  CHECK(store->Counts().value().dead == 1);
  CHECK(store->Counts().value().retrying == 1);
  RequeueFilter dead_only;
  dead_only.dead_only = true;
  CHECK(store->Requeue(dead_only).value() == 1);
  RequeueFilter other_stage;
  other_stage.stage = Stage::kChecked;
  CHECK(store->Requeue(other_stage).value() == 0);
}

TEST_CASE("checkpoints are handed back on the next claim and cleared on completion") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"EEE001"}).ok());
  auto a = store->Claim(Stage::kPending, 1).value();
  CHECK(store->SaveCheckpoint(a[0], "{\"offset\":1048576,\"etag\":\"x\"}").ok());
  CHECK(store->SaveCheckpoint(a[0], "not json").code() == StatusCode::kInvalidArgument);
  CHECK(store->Release(a[0]).ok());
  auto b = store->Claim(Stage::kPending, 1).value();
  REQUIRE(b.size() == 1);
  CHECK(b[0].checkpoint == "{\"offset\":1048576,\"etag\":\"x\"}");
  CHECK(store->Complete(b[0], Stage::kChecked).ok());
  auto c = store->Claim(Stage::kChecked, 1).value();
  CHECK(c[0].checkpoint.empty());
  // A completion can hand a checkpoint to the next stage.
  Completion carry{c[0], Stage::kDownloaded, "completed", "", {}, "{\"etag\":\"E\"}"};
  REQUIRE(store->CompleteMany({carry})->front().ok());
  auto d = store->Claim(Stage::kDownloaded, 1).value();
  CHECK(d[0].checkpoint == "{\"etag\":\"E\"}");
}

TEST_CASE("leases of an earlier run are taken back at once when a new run opens") {
  Fixture f;
  WorkItem stale;
  int64_t first_run = 0;
  {
    auto store = f.Open();
    first_run = store->run_id();
    REQUIRE(store->Enqueue({"FFF001", "FFF002", "FFF003"}).ok());
    auto items = store->Claim(Stage::kPending, 2).value();
    REQUIRE(items.size() == 2);
    stale = items[0];
    // The process "dies" holding two leases (the store closes without releasing them).
  }
  auto store = f.Open();
  CHECK(store->run_id() != first_run);
  CHECK(store->reclaimed_at_open() == 2);
  CHECK(store->Counts().value().leased == 0);
  auto items = store->Claim(Stage::kPending, 10).value();
  CHECK(items.size() == 3);  // no waiting for a lease to expire
  CHECK(store->Complete(stale, Stage::kChecked).code() == StatusCode::kConflict);
  REQUIRE(store->Flush().ok());
  CHECK(f.Query("SELECT count(*) FROM events WHERE outcome='reclaimed'") == 2);
}

TEST_CASE("a reclaimed event names the run that held the lease") {
  Fixture f;
  int64_t first_run = 0;
  {
    auto store = f.Open();
    first_run = store->run_id();
    REQUIRE(first_run > 0);
    REQUIRE(store->Enqueue({"HHH001"}).ok());
    REQUIRE(store->Claim(Stage::kPending, 1).value().size() == 1);
  }
  auto store = f.Open();
  REQUIRE(store->reclaimed_at_open() == 1);
  REQUIRE(store->Flush().ok());
  CHECK(f.Query("SELECT count(*) FROM events WHERE outcome='reclaimed' AND barcode='HHH001'") ==
        1);
  CHECK(f.Query("SELECT json_extract(detail, '$.from_run') FROM events "
                "WHERE outcome='reclaimed' AND barcode='HHH001'") == first_run);
}

TEST_CASE("an item reclaimed too often is dead (crash_loop), not retried forever") {
  Fixture f;
  for (int i = 0; i < 7; ++i) {
    auto store = f.Open();
    if (i == 0) REQUIRE(store->Enqueue({"GGG001"}).ok());
    (void)store->Claim(Stage::kPending, 1);
  }
  SQLite::Database db(f.path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT status || ':' || error_reason FROM jobs").getString() ==
        "dead:crash_loop");
}

TEST_CASE("a second writer on the same run gets one clear line, readers still work") {
  Fixture f;
  auto store = f.Open();
  REQUIRE(store->Enqueue({"HHH001"}).ok());
  auto second = SqliteStateStore::Open(f.path, f.Options());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kBusy);
  CHECK(second.status().message().find("in use by another grin-jobs process") !=
        std::string::npos);
  CHECK(second.status().message().find('\n') == std::string::npos);
  auto reader = StateReader::Open(f.path);
  REQUIRE(reader.ok());
  CHECK((*reader)->Counts().value().total == 1);
  // A reader cannot write, even through ad-hoc SQL.
  CHECK_THROWS((*reader)->db().exec("DELETE FROM jobs"));
  CHECK_THROWS((*reader)->db().exec("ATTACH DATABASE ':memory:' AS x"));
}

TEST_CASE("invalid barcodes and JSON are refused with a message naming them") {
  Fixture f;
  auto store = f.Open();
  auto r = store->Enqueue({"GOOD01", "../etc/passwd"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("../etc/passwd") != std::string::npos);
  CHECK(store->Counts().value().total == 0);  // all or nothing
  REQUIRE(store->Enqueue({"GOOD01"}).ok());
  auto items = store->Claim(Stage::kPending, 1).value();
  CHECK(store->Fail(items[0], ErrorClass::kRetryable, "x", "{oops").code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("8 threads claiming and completing never share an item, commits are grouped") {
  Fixture f;
  auto store = f.Open();
  std::vector<std::string> barcodes;
  for (int i = 0; i < 4000; ++i) barcodes.push_back("TT" + std::to_string(100000 + i));
  REQUIRE(store->Enqueue(barcodes).ok());
  std::mutex mu;
  std::multiset<std::string> seen;
  std::atomic<int> conflicts{0};
  int64_t commits_before = store->commits();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        auto items = store->Claim(Stage::kPending, 16);
        REQUIRE(items.ok());
        if (items->empty()) break;
        std::vector<Completion> done;
        for (auto& w : *items) {
          {
            std::lock_guard<std::mutex> l(mu);
            seen.insert(w.barcode);
          }
          done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
        }
        auto r = store->CompleteMany(std::move(done));
        REQUIRE(r.ok());
        for (auto& s : *r) conflicts += !s.ok();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(conflicts == 0);
  CHECK(seen.size() == 4000);
  std::set<std::string> unique(seen.begin(), seen.end());
  CHECK(unique.size() == 4000);
  CHECK(store->Counts().value().at[3] == 4000);
  // 250 claims + 250 completions; group commit folds concurrent ones.
  CHECK(store->commits() - commits_before <= 500);
}


TEST_CASE("job_counts follows every transition, Counts() agrees with the jobs table") {
  Fixture f;
  auto store = f.Open();
  std::vector<std::string> barcodes;
  for (int i = 0; i < 300; ++i) barcodes.push_back("CNT" + std::to_string(1000 + i));
  CHECK(store->Enqueue(barcodes).value() == 300);
  CHECK(store->Enqueue({"CNT1000", "CNT9999"}).value() == 1);  // one known, one new
  f.CheckCountsMatchJobs();

  // 200 claimed at once: completions run in multi-row chunks (128 + 64 + 8 singles); one stale
  // token in the middle of a chunk and one item named twice must not disturb the others.
  auto items = store->Claim(Stage::kPending, 200).value();
  REQUIRE(items.size() == 200);
  std::vector<Completion> done;
  for (size_t i = 0; i < items.size(); ++i) {
    Stage to = i % 3 == 0 ? Stage::kUploaded : Stage::kChecked;  // some skip milestones
    done.push_back(Completion{items[i], to, "completed", "", {}});
  }
  done[50].item.lease_token += 7;         // stale
  done.push_back(done[10]);               // named twice: the second is a conflict
  auto r = store->CompleteMany(done).value();
  REQUIRE(r.size() == 201);
  int ok = 0, conflicts = 0;
  for (const auto& st : r) (st.ok() ? ok : conflicts) += 1;
  CHECK(ok == 199);
  CHECK(conflicts == 2);
  CHECK(r[50].code() == StatusCode::kConflict);
  CHECK(r[200].code() == StatusCode::kConflict);
  CHECK(f.Query("SELECT count(*) FROM events WHERE outcome = 'completed'") == 199);
  f.CheckCountsMatchJobs();

  // Failures, dead jobs, release, requeue and reset move the counts too.
  auto more = store->Claim(Stage::kChecked, 5).value();
  REQUIRE(more.size() == 5);
  WorkItem wrong_stage = more[3];  // right token, wrong milestone: refused, counts untouched
  wrong_stage.stage = Stage::kPending;
  CHECK(store->Complete(wrong_stage, Stage::kUploaded).code() == StatusCode::kConflict);
  CHECK(store->Fail(more[0], ErrorClass::kRetryable, "timeout", "").ok());
  CHECK(store->Fail(more[1], ErrorClass::kPermanent, "gone", "").ok());
  CHECK(store->Release(more[2]).ok());
  CHECK(store->Complete(more[3], Stage::kDownloaded).ok());
  CHECK(store->Complete(more[4], Stage::kUploaded).ok());
  auto c = store->Counts().value();
  CHECK(c.total == 301);
  CHECK(c.retrying == 1);
  CHECK(c.dead == 1);
  CHECK(c.leased == 1);  // items[50], whose completion was refused
  CHECK(c.at[0] + c.at[1] + c.at[2] + c.at[3] == 301);
  CHECK(c.at[3] == f.Query("SELECT count(*) FROM uploaded"));
  CHECK(c.at[1] == f.Query("SELECT count(*) FROM checked"));
  f.CheckCountsMatchJobs();
  CHECK(store->Requeue(RequeueFilter{}).value() == 2);
  CHECK(store->Reset(ResetRequest{{items[0].barcode, items[1].barcode, "CNT9999"}, true})
            .value() == 3);
  CHECK(store->Reset(ResetRequest{{items[3].barcode}, false}).value() == 0);  // done, kept
  f.CheckCountsMatchJobs();
  c = store->Counts().value();
  CHECK(c.retrying == 0);
  CHECK(c.dead == 0);
  CHECK(c.at[0] == f.Query("SELECT count(*) FROM pending"));
  CHECK(store->Flush().ok());
  store.reset();
  // A new run reclaims the leftover lease; counts per milestone are unchanged and still exact.
  auto again = f.Open();
  CHECK(again->reclaimed_at_open() == 1);
  CHECK(again->Counts().value().leased == 0);
  f.CheckCountsMatchJobs();
}

TEST_CASE("a bulk enqueue of every chunk size inserts each new barcode once, in order") {
  Fixture f;
  auto store = f.Open();
  std::vector<std::string> barcodes;
  for (int i = 0; i < 128 + 16 + 3; ++i) barcodes.push_back("ORD" + std::to_string(5000 - i));
  barcodes.push_back("ORD5000");  // a duplicate inside the same call
  CHECK(store->Enqueue(barcodes).value() == 147);
  auto items = store->Claim(Stage::kPending, 1000).value();
  REQUIRE(items.size() == 147);
  for (size_t i = 0; i < items.size(); ++i) CHECK(items[i].barcode == barcodes[i]);
  f.CheckCountsMatchJobs();
}

}  // namespace
}  // namespace grin::storage
