// PgStateStore against a real PostgreSQL server (a throwaway cluster): the claim/complete round
// trip, concurrent claimers on several stores, lease expiry by the database's clock, fencing of
// a holder whose lease was taken back, heartbeats, crash streaks, and the libpq layer's handling
// of hostile values and unreachable servers.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

std::unique_ptr<PgStateStore> OpenStore(const std::string& uri, PgStateStoreOptions o = {}) {
  auto s = PgStateStore::Open(uri, o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(*s);
}

std::vector<std::string> Barcodes(int n, const char* prefix = "BC") {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(100000 + i));
  return v;
}

// job_counts must always equal the jobs per milestone.
void CheckJobCounts(PgConnection& c) {
  CHECK(PgQueryInt(c, "SELECT count(*) FROM job_counts jc WHERE jc.n <> "
                    "(SELECT count(*) FROM jobs j WHERE j.stage = jc.stage)") == 0);
}

TEST_CASE("postgres store: enqueue, claim, complete round trip with checkpoints and book fields") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  auto store = OpenStore(uri);
  CHECK(store->run_id() > 0);
  CHECK(store->Enqueue({"AAA111", "BBB222", "CCC333"}).value() == 3);
  CHECK(store->Enqueue({"AAA111", "DDD444"}).value() == 1);  // known barcodes untouched
  CHECK(store->Enqueue({"bad barcode!"}).status().code() == StatusCode::kInvalidArgument);

  auto items = store->Claim(Stage::kPending, 10);
  REQUIRE(items.ok());
  REQUIRE(items->size() == 4);
  for (const auto& w : *items) {
    CHECK(w.run_id == store->run_id());
    CHECK(w.lease_token > 0);
    CHECK(w.stage == Stage::kPending);
  }
  CHECK(store->Claim(Stage::kPending, 10)->empty());  // all leased
  auto counts = store->Counts().value();
  CHECK(counts.total == 4);
  CHECK(counts.leased == 4);

  REQUIRE(store->SaveCheckpoint((*items)[0], R"({"offset":5})").ok());
  std::vector<Completion> done;
  for (const auto& w : *items) {
    Completion c;
    c.item = w;
    c.to = Stage::kChecked;
    c.book_fields = {{"storage_path", "s3://b/" + w.barcode}, {"is_decrypted", "1"}};
    if (w.barcode == "BBB222") c.carry = R"({"etag":"x"})";
    done.push_back(c);
  }
  // The same job twice in one call: completes once, the second is a conflict.
  done.push_back(done[0]);
  auto res = store->CompleteMany(done);
  REQUIRE_MESSAGE(res.ok(), res.status().ToString());
  REQUIRE(res->size() == 5);
  for (int i = 0; i < 4; ++i) CHECK((*res)[static_cast<size_t>(i)].ok());
  CHECK((*res)[4].code() == StatusCode::kConflict);

  counts = store->Counts().value();
  CHECK(counts.at[static_cast<int>(Stage::kChecked)] == 4);
  CHECK(counts.at[static_cast<int>(Stage::kPending)] == 0);
  CHECK(counts.leased == 0);

  auto c = PgConnect(uri);
  CheckJobCounts(*c);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM books WHERE storage_path LIKE 's3://b/%' "
                     "AND is_decrypted = 1") == 4);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM events WHERE outcome = 'completed' "
                     "AND stage = 'checked'") == 4);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM checked") == 4);  // the progress view

  // The carry is handed to the next stage; the pending checkpoint was cleared.
  auto next = store->Claim(Stage::kChecked, 10).value();
  REQUIRE(next.size() == 4);
  for (const auto& w : next) {
    CHECK(w.checkpoint == (w.barcode == "BBB222" ? R"({"etag":"x"})" : ""));
  }
  REQUIRE(store->Complete(next[0], Stage::kUploaded).ok());
  CHECK(store->Counts()->at[static_cast<int>(Stage::kUploaded)] == 1);
  CHECK(store->Claim(Stage::kUploaded, 1).status().code() == StatusCode::kInvalidArgument);
  CheckJobCounts(*c);
}

TEST_CASE("postgres store: concurrent claimers on several stores never get the same job") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  constexpr int kJobs = 3000;
  PgStateStoreOptions o;
  o.pool_size = 4;
  auto a = OpenStore(uri, o);
  auto b = OpenStore(uri, o);
  CHECK(a->run_id() != b->run_id());
  REQUIRE(a->Enqueue(Barcodes(kJobs)).value() == kJobs);

  std::mutex mu;
  std::multiset<int64_t> claimed;
  std::vector<std::string> errors;
  auto worker = [&](PgStateStore* s) {
    for (;;) {
      auto items = s->Claim(Stage::kPending, 16);
      if (!items.ok()) {
        std::lock_guard<std::mutex> l(mu);
        errors.push_back(items.status().ToString());
        return;
      }
      if (items->empty()) return;
      std::vector<Completion> done;
      for (const auto& w : *items) {
        Completion c;
        c.item = w;
        c.to = Stage::kUploaded;
        done.push_back(c);
      }
      auto res = s->CompleteMany(done);
      std::lock_guard<std::mutex> l(mu);
      for (const auto& w : *items) claimed.insert(w.job_id);
      if (!res.ok()) {
        errors.push_back(res.status().ToString());
        return;
      }
      for (const auto& st : *res) {
        if (!st.ok()) errors.push_back(st.ToString());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back(worker, a.get());
    threads.emplace_back(worker, b.get());
  }
  for (auto& t : threads) t.join();
  CHECK_MESSAGE(errors.empty(), (errors.empty() ? "" : errors.front()));
  CHECK(claimed.size() == kJobs);
  CHECK(std::set<int64_t>(claimed.begin(), claimed.end()).size() == kJobs);  // no double claim

  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM uploaded") == kJobs);
  // Every book done exactly once, by one of the two runs.
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM (SELECT barcode FROM events WHERE outcome = "
                     "'completed' GROUP BY barcode HAVING count(*) = 1) x") == kJobs);
  CHECK(PgQueryInt(*c, "SELECT count(DISTINCT run_id) FROM events WHERE outcome = "
                     "'completed'") == 2);
  CheckJobCounts(*c);
}

TEST_CASE("postgres store: an expired lease is taken back and the old holder is fenced out") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions short_lease;
  short_lease.lease_ttl_micros = 300'000;    // 0.3 s
  short_lease.heartbeat_interval_micros = 0;  // a holder that stopped heartbeating
  auto a = OpenStore(uri, short_lease);
  auto b = OpenStore(uri);
  REQUIRE(a->Enqueue({"LEASE1"}).value() == 1);
  auto held = a->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  REQUIRE(a->SaveCheckpoint(held[0], R"({"offset":1})").ok());
  // (That a lease not yet expired is not taken: the database's-clock test below, with 1 h.)

  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto taken = b->Claim(Stage::kPending, 1).value();
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].job_id == held[0].job_id);
  CHECK(taken[0].lease_token > held[0].lease_token);
  CHECK(taken[0].run_id == b->run_id());

  // Every write of the old holder is refused and changes nothing.
  CHECK(a->Complete(held[0], Stage::kUploaded).code() == StatusCode::kConflict);
  CHECK(a->Fail(held[0], ErrorClass::kRetryable, "timeout", "").code() ==
        StatusCode::kConflict);
  CHECK(a->SaveCheckpoint(held[0], R"({"offset":2})").code() == StatusCode::kConflict);
  CHECK(a->Release(held[0]).code() == StatusCode::kConflict);
  CHECK(a->Await(held[0], "conversion_requested", "").code() == StatusCode::kConflict);

  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM events WHERE outcome = 'reclaimed' "
                     "AND barcode = 'LEASE1' AND run_id = $1::bigint",
                 {std::to_string(b->run_id())}) == 1);
  CHECK(PgQueryInt(*c, "SELECT recoveries FROM jobs WHERE barcode = 'LEASE1'") == 1);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM jobs WHERE stage = 'pending' AND status = 'leased' "
                     "AND lease_run = $1::bigint",
                 {std::to_string(b->run_id())}) == 1);
  // The new holder completes; the completion resets the crash streak.
  REQUIRE(b->Complete(taken[0], Stage::kUploaded).ok());
  CHECK(PgQueryInt(*c, "SELECT recoveries FROM jobs WHERE barcode = 'LEASE1'") == 0);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM events WHERE outcome = 'completed'") == 1);
  CheckJobCounts(*c);
}

TEST_CASE("postgres store: lease expiry is decided by the database's clock") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions hour;
  hour.lease_ttl_micros = 3'600'000'000;
  hour.heartbeat_interval_micros = 0;
  auto a = OpenStore(uri, hour);
  auto b = OpenStore(uri);
  REQUIRE(a->Enqueue({"CLOCK1"}).value() == 1);
  auto held = a->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);

  auto c = PgConnect(uri);
  // The lease runs out one hour after the database's now() at the claim: within a few seconds
  // of now() + 1 h read from the server.
  int64_t off = PgQueryInt(*c, "SELECT abs(extract(epoch FROM lease_expires_at - "
                             "(now() + interval '1 hour')))::bigint FROM jobs "
                             "WHERE barcode = 'CLOCK1'");
  CHECK(off <= 5);
  CHECK(b->Claim(Stage::kPending, 1)->empty());
  // The database's clock passing the expiry is all it takes: no host time passes here.
  REQUIRE(c->Exec("UPDATE jobs SET lease_expires_at = now() - interval '1 millisecond' "
                  "WHERE barcode = 'CLOCK1'").ok());
  auto taken = b->Claim(Stage::kPending, 1).value();
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].lease_token > held[0].lease_token);
  CHECK(a->Complete(held[0], Stage::kChecked).code() == StatusCode::kConflict);
  // Times the store writes are the server's (micros), not the host's: leased_at equals the
  // server's now() of the claim's transaction, to the microsecond, as recorded in updated_at.
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM jobs WHERE barcode = 'CLOCK1' AND leased_at = "
                     "updated_at AND (extract(epoch FROM lease_expires_at) * 1000000)::bigint "
                     "- leased_at = $1::bigint",
                 {std::to_string(PgStateStoreOptions{}.lease_ttl_micros)}) == 1);
}

TEST_CASE("postgres store: heartbeats keep a live holder's lease") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.lease_ttl_micros = 1'000'000;
  o.heartbeat_interval_micros = 100'000;
  auto a = OpenStore(uri, o);
  auto b = OpenStore(uri);
  REQUIRE(a->Enqueue({"BEAT01"}).value() == 1);
  auto held = a->Claim(Stage::kPending, 1).value();
  REQUIRE(held.size() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // 2.5 leases' worth
  CHECK(b->Claim(Stage::kPending, 1)->empty());
  CHECK(a->Complete(held[0], Stage::kChecked).ok());
}

TEST_CASE("postgres store: a job whose leases keep expiring goes dead as a crash loop") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.lease_ttl_micros = 1;  // expired as soon as taken
  o.heartbeat_interval_micros = 0;
  o.max_recoveries = 2;
  auto s = OpenStore(uri, o);
  REQUIRE(s->Enqueue({"LOOP01"}).value() == 1);
  for (int i = 0; i < 3; ++i) {
    auto items = s->Claim(Stage::kPending, 1).value();
    REQUIRE(items.size() == 1);  // taken back (streak i+1), leased again
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(s->Claim(Stage::kPending, 1)->empty());  // streak 3 > 2: dead
  auto counts = s->Counts().value();
  CHECK(counts.dead == 1);
  auto f = s->Failures().value();
  REQUIRE(f.size() == 1);
  CHECK(f[0].reason == "crash_loop");
  CHECK(f[0].dead);
  CHECK(s->Requeue({}).value() == 1);
  CHECK(s->Counts()->dead == 0);
}

TEST_CASE("postgres store: fail, retry, await, wake, reset and scope") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.max_attempts = 2;
  o.backoff_base_micros = 0;  // retry at once
  o.backoff_max_micros = 0;
  auto s = OpenStore(uri, o);
  REQUIRE(s->Enqueue({"FAIL01", "WAIT01", "DONE01"}).value() == 3);
  REQUIRE(s->SetScope({"FAIL01"}).ok());
  auto f = s->Claim(Stage::kPending, 10).value();
  REQUIRE(f.size() == 1);
  CHECK(f[0].barcode == "FAIL01");
  CHECK(s->Counts()->total == 1);
  REQUIRE(s->Fail(f[0], ErrorClass::kRetryable, "timeout", R"({"ms":5})").ok());
  CHECK(s->Counts()->retrying == 1);
  f = s->Claim(Stage::kPending, 10).value();
  REQUIRE(f.size() == 1);
  CHECK(f[0].attempts == 1);
  REQUIRE(s->Fail(f[0], ErrorClass::kRetryable, "timeout", "").ok());  // 2nd of 2: dead
  CHECK(s->Counts()->dead == 1);
  REQUIRE(s->SetScope({}).ok());

  auto w = s->Claim(Stage::kPending, 10).value();
  REQUIRE(w.size() == 2);
  REQUIRE(s->Await(w[1], "conversion_requested", R"({"grin":"queued"})").ok());
  REQUIRE(s->Complete(w[0], Stage::kUploaded).ok());
  auto counts = s->Counts().value();
  CHECK(counts.awaiting == 1);
  CHECK(counts.awaiting_since_micros > 0);
  CHECK(s->Claim(Stage::kPending, 10)->empty());  // awaiting is never claimed
  CHECK(s->Wake({w[1].barcode, "NOPE01"}).value() == 1);
  CHECK(s->Claim(Stage::kPending, 10)->size() == 1);

  // Reset moves a finished job back to pending (not leased ones).
  CHECK(s->Reset({{w[0].barcode, "FAIL01"}, true}).value() == 2);
  auto c = PgConnect(uri);
  CheckJobCounts(*c);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM pending") == 3);
  CHECK(s->Counts()->at[static_cast<int>(Stage::kUploaded)] == 0);
}

TEST_CASE("postgres store: an idle worker is woken by another store's enqueue (LISTEN/NOTIFY)") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  auto idle = OpenStore(uri);
  auto other = OpenStore(uri);
  REQUIRE(idle->Claim(Stage::kPending, 1)->empty());
  // Nothing happens: the wait runs out.
  auto quiet = idle->WaitForWork(200'000);
  REQUIRE_MESSAGE(quiet.ok(), quiet.status().ToString());
  CHECK_FALSE(*quiet);

  auto t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(other->Enqueue({"WAKE01"}).value() == 1);
  });
  auto woken = idle->WaitForWork(20'000'000);
  auto waited = std::chrono::steady_clock::now() - t0;
  producer.join();
  REQUIRE_MESSAGE(woken.ok(), woken.status().ToString());
  CHECK(*woken);
  CHECK(waited < std::chrono::seconds(10));  // woken, not timed out
  auto items = idle->Claim(Stage::kPending, 1).value();
  REQUIRE(items.size() == 1);

  // A completion to a middle milestone wakes the next stage's workers; to the last, nobody.
  std::thread done([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(idle->Complete(items[0], Stage::kChecked).ok());
  });
  CHECK(other->WaitForWork(20'000'000).value());
  done.join();
  // The idle store saw that notification too; it is consumed by its next wait.
  CHECK(idle->WaitForWork(5'000'000).value());
  auto next = other->Claim(Stage::kChecked, 1).value();
  REQUIRE(next.size() == 1);
  REQUIRE(other->Complete(next[0], Stage::kUploaded).ok());
  CHECK_FALSE(idle->WaitForWork(300'000).value());
}

TEST_CASE("postgres store: connections the server closed while idle are replaced, no call fails") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  PgStateStoreOptions o;
  o.pool_size = 3;
  o.heartbeat_interval_micros = 0;
  auto s = OpenStore(uri, o);
  REQUIRE(s->Enqueue(Barcodes(10)).value() == 10);
  // Fill the pool: three calls at once.
  std::vector<std::thread> t;
  for (int i = 0; i < 3; ++i) t.emplace_back([&] { CHECK(s->Counts().ok()); });
  for (auto& th : t) th.join();
  // The server ends every other session of this database (as a restart or failover would).
  auto c = PgConnect(uri);
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                     "pg_stat_activity WHERE datname = current_database() "
                     "AND pid <> pg_backend_pid()) x") >= 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto items = s->Claim(Stage::kPending, 4);
  REQUIRE_MESSAGE(items.ok(), items.status().ToString());
  CHECK(items->size() == 4);
  auto counts = s->Counts();
  REQUIRE_MESSAGE(counts.ok(), counts.status().ToString());
  CHECK(counts->leased == 4);
}

TEST_CASE("libpq errors map to Status codes by SQLSTATE, one line each") {
  using pg::PgStatus;
  CHECK(PgStatus("08006", "gone\nreally", "db").code() == StatusCode::kUnavailable);
  CHECK(PgStatus("57P01", "admin shutdown", "db").code() == StatusCode::kUnavailable);
  CHECK(PgStatus("40001", "serialize", "db").code() == StatusCode::kBusy);
  CHECK(pg::IsRetryable(PgStatus("40P01", "deadlock", "db")));
  CHECK(PgStatus("53100", "disk full", "db").code() == StatusCode::kNoSpace);
  CHECK(PgStatus("28P01", "password", "db").code() == StatusCode::kPermissionDenied);
  CHECK(PgStatus("42501", "denied", "db").code() == StatusCode::kPermissionDenied);
  CHECK(PgStatus("23505", "unique", "db").code() == StatusCode::kConflict);
  CHECK(PgStatus("22P02", "bad json", "db").code() == StatusCode::kInvalidArgument);
  CHECK(PgStatus("XX000", "internal", "db").code() == StatusCode::kInternal);
  Status s = PgStatus("08006", "server closed\nthe connection\n", "postgresql://u@h/db");
  CHECK(s.message().find('\n') == std::string::npos);
  CHECK(s.message().rfind("postgresql://u@h/db: server closed the connection", 0) == 0);
}

TEST_CASE("postgres store: values never become SQL, and errors name the database, not the secret") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = FreshDatabase();
  auto s = OpenStore(uri);
  std::string hostile = "x'); DROP TABLE jobs; --";
  REQUIRE(s->AppendEvent("", hostile, "o\"ut\\come$1", R"({"k":"'\"$$"})").ok());
  auto c = PgConnect(uri);
  auto r = c->Exec("SELECT stage, outcome, detail FROM events WHERE stage = $1", {hostile});
  REQUIRE(r.ok());
  REQUIRE(r->rows() == 1);
  CHECK(r->Text(0, 1) == "o\"ut\\come$1");
  CHECK(r->Text(0, 2) == R"({"k":"'\"$$"})");
  CHECK(PgQueryInt(*c, "SELECT count(*) FROM jobs") == 0);  // still there
  CHECK(s->AppendEvent("", "s", "o", "{not json").code() == StatusCode::kInvalidArgument);

  // An unreachable server: kUnavailable, the password not in the message.
  auto bad = PgStateStore::Open("postgresql://grin:s3cretpw@127.0.0.1:1/postgres", {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kUnavailable);
  CHECK(bad.status().message().find("s3cretpw") == std::string::npos);
  CHECK(pg::RedactConninfo("postgresql://u:pw@h:5/db") == "postgresql://u@h:5/db");
  CHECK(pg::RedactConninfo("host=h password='a b' user=u") == "host=h password=*** user=u");
  CHECK(pg::RedactConninfo("postgresql://u@h/db?password=pw&x=1") ==
        "postgresql://u@h/db?password=***&x=1");
}

}  // namespace
}  // namespace grin::storage
