#include "tests/storage/state_store_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace grin::testing::conformance {
namespace {

using StorePtr = std::unique_ptr<StateStore>;

// The factory, or nullptr when the adapter is unavailable here (the check then passes with a
// message saying why).
std::unique_ptr<StateStoreFactory> MakeFactory(StateStoreFactoryMaker make) {
  auto f = make();
  if (!f.ok() && f.status().code() == StatusCode::kUnavailable) {
    MESSAGE("skipped: " << f.status().message());
    return nullptr;
  }
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return std::move(f).value();
}

StorePtr OpenStore(StateStoreFactory& f, const ConformanceOptions& o = {}) {
  auto s = f.Open(o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  REQUIRE(*s != nullptr);
  return std::move(s).value();
}

std::vector<std::string> Barcodes(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d", i);
    out.push_back(prefix + buf);
  }
  return out;
}

std::vector<WorkItem> ClaimOk(StateStore& s, Stage from, int max_items) {
  auto r = s.Claim(from, max_items);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

StageCounts CountsOk(StateStore& s) {
  auto c = s.Counts();
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return *c;
}

void Enqueue(StateStore& s, const std::vector<std::string>& barcodes) {
  auto n = s.Enqueue(barcodes);
  REQUIRE_MESSAGE(n.ok(), n.status().ToString());
  REQUIRE(*n == static_cast<int64_t>(barcodes.size()));
}

std::set<std::string> BarcodesOf(const std::vector<WorkItem>& items) {
  std::set<std::string> out;
  for (const auto& w : items) out.insert(w.barcode);
  return out;
}

const WorkItem& Find(const std::vector<WorkItem>& items, const std::string& barcode) {
  auto it = std::find_if(items.begin(), items.end(),
                         [&](const WorkItem& w) { return w.barcode == barcode; });
  REQUIRE_MESSAGE(it != items.end(), "no claimed item " << barcode);
  return *it;
}

// Checkpoints are JSON: an adapter may store them normalised (jsonb), so compare values.
bool SameJson(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return a == b;
  return nlohmann::json::parse(a, nullptr, false) == nlohmann::json::parse(b, nullptr, false);
}

// Claims at `from` until something comes back (retries with a short backoff) or 5 s pass.
std::vector<WorkItem> ClaimWithin5s(StateStore& s, Stage from, int max_items) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto items = ClaimOk(s, from, max_items);
    if (!items.empty() || std::chrono::steady_clock::now() > deadline) return items;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

void RoundTrip(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  auto added = s->Enqueue({"RT0001", "RT0002"});
  REQUIRE(added.ok());
  CHECK(*added == 2);
  added = s->Enqueue({"RT0001", "RT0003"});  // known barcodes are untouched
  REQUIRE(added.ok());
  CHECK(*added == 1);
  CHECK(s->Enqueue({"RT0004", "bad barcode!"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(CountsOk(*s).total == 3);

  const std::set<std::string> all = {"RT0001", "RT0002", "RT0003"};
  for (Stage at : {Stage::kPending, Stage::kChecked, Stage::kDownloaded}) {
    CAPTURE(StageName(at));
    Stage next = static_cast<Stage>(static_cast<int>(at) + 1);
    auto items = ClaimOk(*s, at, 10);
    REQUIRE(items.size() == 3);
    CHECK(BarcodesOf(items) == all);
    std::set<int64_t> ids;
    for (const auto& w : items) {
      ids.insert(w.job_id);
      CHECK(w.stage == at);
      CHECK(w.run_id == s->run_id());
      CHECK(w.attempts == 0);
      CHECK(w.checkpoint.empty());
    }
    CHECK(ids.size() == 3);
    CHECK(ClaimOk(*s, at, 10).empty());  // all leased
    if (next != Stage::kUploaded) CHECK(ClaimOk(*s, next, 10).empty());
    StageCounts c = CountsOk(*s);
    CHECK(c.at[static_cast<int>(at)] == 3);
    CHECK(c.leased == 3);
    for (const auto& w : items) CHECK(s->Complete(w, next).ok());
    c = CountsOk(*s);
    CHECK(c.at[static_cast<int>(at)] == 0);
    CHECK(c.at[static_cast<int>(next)] == 3);
    CHECK(c.leased == 0);
  }
  // uploaded is final: nothing is handed out there.
  auto final_claim = s->Claim(Stage::kUploaded, 10);
  CHECK((!final_claim.ok() || final_claim->empty()));
  StageCounts c = CountsOk(*s);
  CHECK(c.total == 3);
  CHECK(c.at[static_cast<int>(Stage::kUploaded)] == 3);
  CHECK(c.retrying == 0);
  CHECK(c.dead == 0);
  CHECK(c.awaiting == 0);
}

void BatchedClaims(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  Enqueue(*s, Barcodes("BC", 10));
  CHECK(ClaimOk(*s, Stage::kPending, 0).empty());
  auto first = ClaimOk(*s, Stage::kPending, 4);
  auto second = ClaimOk(*s, Stage::kPending, 4);
  auto rest = ClaimOk(*s, Stage::kPending, 100);
  CHECK(first.size() == 4);
  CHECK(second.size() == 4);
  CHECK(rest.size() == 2);
  CHECK(ClaimOk(*s, Stage::kPending, 100).empty());
  // (priority, next_attempt_at, job_id) order: equal priority and due time, so by job id.
  auto max_id = [](const std::vector<WorkItem>& v) {
    int64_t m = INT64_MIN;
    for (const auto& w : v) m = std::max(m, w.job_id);
    return m;
  };
  auto min_id = [](const std::vector<WorkItem>& v) {
    int64_t m = INT64_MAX;
    for (const auto& w : v) m = std::min(m, w.job_id);
    return m;
  };
  if (!first.empty() && !second.empty() && !rest.empty()) {
    CHECK(max_id(first) < min_id(second));
    CHECK(max_id(second) < min_id(rest));
  }
  std::vector<Completion> all;
  std::set<std::string> seen;
  for (auto* batch : {&first, &second, &rest}) {
    for (const auto& w : *batch) {
      seen.insert(w.barcode);
      Completion c;
      c.item = w;
      c.to = Stage::kChecked;
      c.book_fields = {{"storage_path", "books/" + w.barcode}};
      all.push_back(std::move(c));
    }
  }
  CHECK(seen.size() == 10);
  auto statuses = s->CompleteMany(all);
  REQUIRE_MESSAGE(statuses.ok(), statuses.status().ToString());
  REQUIRE(statuses->size() == 10);
  for (const auto& st : *statuses) CHECK_MESSAGE(st.ok(), st.ToString());
  StageCounts c = CountsOk(*s);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 0);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 10);
  CHECK(c.leased == 0);
  CHECK(ClaimOk(*s, Stage::kChecked, 100).size() == 10);
}

void Fencing(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  Enqueue(*s, {"FNA", "FNB", "FNC", "FND", "FNE"});
  auto items = ClaimOk(*s, Stage::kPending, 5);
  REQUIRE(items.size() == 5);
  const WorkItem a = Find(items, "FNA"), b = Find(items, "FNB"), c = Find(items, "FNC"),
                 d = Find(items, "FND"), e = Find(items, "FNE");

  // A completed lease is spent.
  CHECK(s->Complete(a, Stage::kChecked).ok());
  CHECK(s->Complete(a, Stage::kChecked).code() == StatusCode::kConflict);
  CHECK(s->Fail(a, ErrorClass::kRetryable, "late", "").code() == StatusCode::kConflict);

  // A released lease is spent too, for every fenced write.
  CHECK(s->Release(b).ok());
  CHECK(s->Complete(b, Stage::kChecked).code() == StatusCode::kConflict);
  CHECK(s->Fail(b, ErrorClass::kPermanent, "late", "").code() == StatusCode::kConflict);
  CHECK(s->SaveCheckpoint(b, R"({"late":true})").code() == StatusCode::kConflict);
  CHECK(s->Release(b).code() == StatusCode::kConflict);
  CHECK(s->Await(b, "conversion_requested", "").code() == StatusCode::kConflict);

  // Claimed again: a fresh token, and the old one stays refused.
  auto again = ClaimOk(*s, Stage::kPending, 5);
  REQUIRE(again.size() == 1);
  const WorkItem b2 = again[0];
  CHECK(b2.barcode == "FNB");
  CHECK(b2.lease_token != b.lease_token);
  CHECK(s->Complete(b, Stage::kChecked).code() == StatusCode::kConflict);

  // A forged token is refused.
  WorkItem forged = e;
  forged.lease_token += 1000;
  CHECK(s->Complete(forged, Stage::kChecked).code() == StatusCode::kConflict);

  // A batch answers per item: the stale one changes nothing, its neighbours complete.
  std::vector<Completion> batch(3);
  batch[0].item = c;
  batch[0].to = Stage::kChecked;
  batch[1].item = b;  // stale
  batch[1].to = Stage::kChecked;
  batch[2].item = d;
  batch[2].to = Stage::kChecked;
  auto st = s->CompleteMany(batch);
  REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  REQUIRE(st->size() == 3);
  CHECK((*st)[0].ok());
  CHECK((*st)[1].code() == StatusCode::kConflict);
  CHECK((*st)[2].ok());

  StageCounts counts = CountsOk(*s);
  CHECK(counts.at[static_cast<int>(Stage::kChecked)] == 3);  // A, C, D
  CHECK(counts.at[static_cast<int>(Stage::kPending)] == 2);  // B (again), E
  CHECK(counts.leased == 2);
  CHECK(counts.retrying == 0);
  CHECK(counts.dead == 0);
  // The holders of the current leases still can.
  CHECK(s->Complete(b2, Stage::kChecked).ok());
  CHECK(s->Complete(e, Stage::kChecked).ok());
  CHECK(CountsOk(*s).at[static_cast<int>(Stage::kChecked)] == 5);
}

namespace {

// n threads claim batches of `batch` at pending and complete them to checked until nothing is
// left; store_for(i) is the store thread i uses. Checks every job was claimed exactly once.
void RunClaimers(int n, int jobs, int batch, const std::function<StateStore&(int)>& store_for,
                 StateStore& observer) {
  std::vector<std::vector<int64_t>> claimed(static_cast<size_t>(n));
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      StateStore& s = store_for(t);
      auto& mine = claimed[static_cast<size_t>(t)];
      for (;;) {
        auto items = s.Claim(Stage::kPending, batch);
        if (!items.ok()) {
          errors[static_cast<size_t>(t)] = items.status().ToString();
          return;
        }
        if (items->empty()) return;
        std::vector<Completion> done;
        for (const auto& w : *items) {
          mine.push_back(w.job_id);
          Completion c;
          c.item = w;
          c.to = Stage::kChecked;
          done.push_back(std::move(c));
        }
        auto st = s.CompleteMany(std::move(done));
        if (!st.ok()) {
          errors[static_cast<size_t>(t)] = st.status().ToString();
          return;
        }
        for (const auto& one : *st) {
          if (!one.ok()) conflicts.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
  CHECK(conflicts.load() == 0);
  std::set<int64_t> unique;
  size_t total = 0;
  for (const auto& v : claimed) {
    total += v.size();
    unique.insert(v.begin(), v.end());
  }
  CHECK(total == static_cast<size_t>(jobs));   // nothing claimed twice...
  CHECK(unique.size() == static_cast<size_t>(jobs));  // ...and nothing lost
  StageCounts c = CountsOk(observer);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == jobs);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 0);
  CHECK(c.leased == 0);
}

}  // namespace

void ConcurrentClaimersOneStore(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  constexpr int kJobs = 600;
  Enqueue(*s, Barcodes("CC", kJobs));
  RunClaimers(6, kJobs, 7, [&](int) -> StateStore& { return *s; }, *s);
}

void ConcurrentWorkers(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  if (!f->shared()) {
    MESSAGE("skipped: this adapter allows one open store per state (one run per database)");
    return;
  }
  constexpr int kWorkers = 4, kJobs = 800;
  std::vector<StorePtr> stores;
  for (int i = 0; i < kWorkers; ++i) stores.push_back(OpenStore(*f));
  std::set<int64_t> runs;
  for (const auto& s : stores) runs.insert(s->run_id());
  CHECK(runs.size() == static_cast<size_t>(kWorkers));  // each worker stamps its own leases
  Enqueue(*stores[0], Barcodes("CW", kJobs));
  RunClaimers(kWorkers, kJobs, 5,
              [&](int i) -> StateStore& { return *stores[static_cast<size_t>(i)]; },
              *stores[0]);
}

void LeaseLossAndReclaim(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr holder = OpenStore(*f);
  Enqueue(*holder, {"LL01", "LL02", "LL03", "LL04"});
  auto held = ClaimOk(*holder, Stage::kPending, 3);
  REQUIRE(held.size() == 3);
  CHECK(holder->SaveCheckpoint(held[0], R"({"bytes":100})").ok());
  if (f->shared()) {
    // While the holder is alive its leases are not anyone else's.
    StorePtr other = OpenStore(*f);
    auto got = ClaimOk(*other, Stage::kPending, 10);
    REQUIRE(got.size() == 1);
    CHECK(BarcodesOf(held).count(got[0].barcode) == 0);
    CHECK(other->Release(got[0]).ok());
  }

  f->LoseLeases(holder);
  StorePtr taker = OpenStore(*f);
  if (holder) CHECK(taker->run_id() != holder->run_id());
  auto retaken = ClaimOk(*taker, Stage::kPending, 10);
  REQUIRE(retaken.size() == 4);  // the three lost leases and the one never held
  for (const auto& w : held) {
    const WorkItem& now = Find(retaken, w.barcode);
    CHECK(now.job_id == w.job_id);
    CHECK(now.lease_token != w.lease_token);
    CHECK(now.run_id == taker->run_id());
    CHECK(now.attempts == 0);  // losing a lease is not a failed attempt
  }
  CHECK(SameJson(Find(retaken, held[0].barcode).checkpoint, R"({"bytes":100})"));

  // The old holder's late writes (through it if it is still open, else through anyone) are
  // refused and change nothing.
  StateStore& late = holder ? *holder : *taker;
  CHECK(late.Complete(held[0], Stage::kChecked).code() == StatusCode::kConflict);
  CHECK(late.Fail(held[1], ErrorClass::kPermanent, "late", "").code() == StatusCode::kConflict);
  CHECK(late.SaveCheckpoint(held[2], R"({"late":1})").code() == StatusCode::kConflict);
  CHECK(late.Release(held[2]).code() == StatusCode::kConflict);
  StageCounts c = CountsOk(*taker);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 4);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 0);
  CHECK(c.leased == 4);
  CHECK(c.dead == 0);

  // The new holder completes them.
  for (const auto& w : retaken) CHECK(taker->Complete(w, Stage::kChecked).ok());
  c = CountsOk(*taker);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 4);
  CHECK(c.leased == 0);
}

void FailuresAndRequeue(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);  // retries due in up to an hour: none is due during the check
  Enqueue(*s, {"FR01", "FR02", "FR03", "FR04"});
  auto items = ClaimOk(*s, Stage::kPending, 4);
  REQUIRE(items.size() == 4);
  CHECK(s->Fail(Find(items, "FR01"), ErrorClass::kRetryable, "timeout talking to GRIN", "").ok());
  CHECK(s->Fail(Find(items, "FR02"), ErrorClass::kPermanent, "corrupt archive",
                R"({"member":"x.jp2"})").ok());
  CHECK(s->Fail(Find(items, "FR03"), ErrorClass::kRetryable, "timeout on upload", "").ok());
  CHECK(s->Complete(Find(items, "FR04"), Stage::kChecked).ok());

  StageCounts c = CountsOk(*s);
  CHECK(c.retrying == 2);
  CHECK(c.dead == 1);
  CHECK(c.leased == 0);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 3);  // failures stay at their milestone
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 1);
  CHECK(ClaimOk(*s, Stage::kPending, 10).empty());  // backing off, or dead

  auto failures = s->Failures();
  REQUIRE_MESSAGE(failures.ok(), failures.status().ToString());
  std::map<std::string, FailureSummary> by_reason;
  for (const auto& fs : *failures) by_reason[fs.reason] = fs;
  CHECK(by_reason.size() == 3);
  REQUIRE(by_reason.count("corrupt archive") == 1);
  CHECK(by_reason["corrupt archive"].dead);
  CHECK(by_reason["corrupt archive"].error_class == "permanent");
  CHECK(by_reason["corrupt archive"].stage == "pending");
  CHECK(by_reason["corrupt archive"].count == 1);
  REQUIRE(by_reason.count("timeout talking to GRIN") == 1);
  CHECK_FALSE(by_reason["timeout talking to GRIN"].dead);
  CHECK(by_reason["timeout talking to GRIN"].error_class == "retryable");

  // By reason: both timeouts, attempts reset.
  RequeueFilter timeouts;
  timeouts.reason_like = "%timeout%";
  auto n = s->Requeue(timeouts);
  REQUIRE(n.ok());
  CHECK(*n == 2);
  auto back = ClaimOk(*s, Stage::kPending, 10);
  CHECK(BarcodesOf(back) == std::set<std::string>{"FR01", "FR03"});
  for (const auto& w : back) CHECK(w.attempts == 0);
  c = CountsOk(*s);
  CHECK(c.retrying == 0);
  CHECK(c.dead == 1);
  CHECK(c.leased == 2);

  // By stage: nothing failed at checked.
  CHECK(s->Fail(Find(back, "FR01"), ErrorClass::kRetryable, "timeout again", "").ok());
  RequeueFilter at_checked;
  at_checked.stage = Stage::kChecked;
  n = s->Requeue(at_checked);
  REQUIRE(n.ok());
  CHECK(*n == 0);
  // Dead only: FR02, not the retrying FR01.
  RequeueFilter dead_only;
  dead_only.dead_only = true;
  n = s->Requeue(dead_only);
  REQUIRE(n.ok());
  CHECK(*n == 1);
  c = CountsOk(*s);
  CHECK(c.dead == 0);
  CHECK(c.retrying == 1);
  auto revived = ClaimOk(*s, Stage::kPending, 10);
  CHECK(BarcodesOf(revived) == std::set<std::string>{"FR02"});
  // Everything else.
  n = s->Requeue(RequeueFilter{});
  REQUIRE(n.ok());
  CHECK(*n == 1);
  CHECK(BarcodesOf(ClaimOk(*s, Stage::kPending, 10)) == std::set<std::string>{"FR01"});
  CHECK(CountsOk(*s).retrying == 0);
}

void MaxAttempts(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  ConformanceOptions o;
  o.max_attempts = 3;
  o.backoff_base_micros = 1000;  // retries due within a millisecond
  o.backoff_max_micros = 1000;
  StorePtr s = OpenStore(*f, o);
  Enqueue(*s, {"MA01"});

  // A released lease is no attempt.
  auto first = ClaimWithin5s(*s, Stage::kPending, 1);
  REQUIRE(first.size() == 1);
  CHECK(s->Release(first[0]).ok());

  for (int attempt = 0; attempt < 3; ++attempt) {
    CAPTURE(attempt);
    auto items = ClaimWithin5s(*s, Stage::kPending, 1);
    REQUIRE(items.size() == 1);
    CHECK(items[0].attempts == attempt);
    CHECK(s->Fail(items[0], ErrorClass::kRetryable, "flaky", "").ok());
    StageCounts c = CountsOk(*s);
    CHECK(c.dead == (attempt == 2 ? 1 : 0));
    CHECK(c.retrying == (attempt == 2 ? 0 : 1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long past any backoff
  CHECK(ClaimOk(*s, Stage::kPending, 1).empty());
}

void Checkpoints(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  Enqueue(*s, {"CK01", "CK02"});
  auto items = ClaimOk(*s, Stage::kPending, 2);
  REQUIRE(items.size() == 2);
  const WorkItem k1 = Find(items, "CK01"), k2 = Find(items, "CK02");
  CHECK(s->SaveCheckpoint(k1, R"({"part":1})").ok());
  CHECK(s->SaveCheckpoint(k1, R"({"part":3,"etag":"abc"})").ok());  // replaces
  CHECK_FALSE(s->SaveCheckpoint(k1, "not json").ok());
  CHECK(s->Release(k1).ok());
  CHECK(s->Release(k2).ok());

  items = ClaimOk(*s, Stage::kPending, 2);
  REQUIRE(items.size() == 2);
  CHECK(SameJson(Find(items, "CK01").checkpoint, R"({"part":3,"etag":"abc"})"));
  CHECK(Find(items, "CK02").checkpoint.empty());

  // A completion's carry is the next stage's checkpoint; without one it is cleared.
  std::vector<Completion> done(2);
  done[0].item = Find(items, "CK01");
  done[0].to = Stage::kChecked;
  done[0].carry = R"({"next":true})";
  done[1].item = Find(items, "CK02");
  done[1].to = Stage::kChecked;
  auto st = s->CompleteMany(done);
  REQUIRE(st.ok());
  for (const auto& one : *st) CHECK(one.ok());
  items = ClaimOk(*s, Stage::kChecked, 2);
  REQUIRE(items.size() == 2);
  CHECK(SameJson(Find(items, "CK01").checkpoint, R"({"next":true})"));
  CHECK(Find(items, "CK02").checkpoint.empty());
  for (const auto& w : items) CHECK(s->Complete(w, Stage::kDownloaded).ok());
  items = ClaimOk(*s, Stage::kDownloaded, 2);
  REQUIRE(items.size() == 2);
  for (const auto& w : items) CHECK(w.checkpoint.empty());
}

void CountsPerState(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  Enqueue(*s, Barcodes("CS", 7));  // CS0000 .. CS0006
  StageCounts c = CountsOk(*s);
  CHECK(c.total == 7);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 7);
  CHECK(c.leased == 0);

  auto items = ClaimOk(*s, Stage::kPending, 7);
  REQUIRE(items.size() == 7);
  CHECK(CountsOk(*s).leased == 7);
  WorkItem up = Find(items, "CS0001");
  for (Stage next : {Stage::kChecked, Stage::kDownloaded, Stage::kUploaded}) {
    REQUIRE(s->Complete(up, next).ok());
    if (next == Stage::kUploaded) break;
    auto again = ClaimOk(*s, next, 10);
    REQUIRE(again.size() == 1);
    up = again[0];
  }
  CHECK(s->Complete(Find(items, "CS0000"), Stage::kChecked).ok());
  CHECK(s->Fail(Find(items, "CS0002"), ErrorClass::kRetryable, "slow", "").ok());
  CHECK(s->Fail(Find(items, "CS0003"), ErrorClass::kPermanent, "bad", "").ok());
  CHECK(s->Await(Find(items, "CS0004"), "conversion_requested", R"({"grin":"queued"})").ok());
  CHECK(s->Release(Find(items, "CS0005")).ok());
  // CS0006 stays leased.

  c = CountsOk(*s);
  CHECK(c.total == 7);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 5);  // 2, 3, 4, 5, 6
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 1);
  CHECK(c.at[static_cast<int>(Stage::kDownloaded)] == 0);
  CHECK(c.at[static_cast<int>(Stage::kUploaded)] == 1);
  CHECK(c.leased == 1);
  CHECK(c.retrying == 1);
  CHECK(c.dead == 1);
  CHECK(c.awaiting == 1);
  CHECK(c.awaiting_since_micros > 0);

  // Awaiting is not claimed; released is.
  auto claimable = ClaimOk(*s, Stage::kPending, 10);
  CHECK(BarcodesOf(claimable) == std::set<std::string>{"CS0005"});
  auto woke = s->Wake({"CS0004", "CS0000", "CS9999"});
  REQUIRE(woke.ok());
  CHECK(*woke == 1);
  CHECK(CountsOk(*s).awaiting == 0);
  CHECK(BarcodesOf(ClaimOk(*s, Stage::kPending, 10)) == std::set<std::string>{"CS0004"});

  // Reset: not leased jobs go back to pending; finished ones only with include_done.
  ResetRequest r;
  r.barcodes = {"CS0000", "CS0001", "CS0006"};  // checked, uploaded, leased
  r.include_done = false;
  auto moved = s->Reset(r);
  REQUIRE(moved.ok());
  CHECK(*moved == 1);
  c = CountsOk(*s);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 0);
  CHECK(c.at[static_cast<int>(Stage::kUploaded)] == 1);
  r.barcodes = {"CS0001", "CS0006"};
  r.include_done = true;
  moved = s->Reset(r);
  REQUIRE(moved.ok());
  CHECK(*moved == 1);  // CS0001; CS0006 is still leased
  c = CountsOk(*s);
  CHECK(c.at[static_cast<int>(Stage::kUploaded)] == 0);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 7);
  CHECK(c.total == 7);
  // Reset jobs are claimable at pending.
  CHECK(BarcodesOf(ClaimOk(*s, Stage::kPending, 10)) ==
        std::set<std::string>{"CS0000", "CS0001"});
}

void Scope(StateStoreFactoryMaker make) {
  auto f = MakeFactory(make);
  if (!f) return;
  StorePtr s = OpenStore(*f);
  Enqueue(*s, Barcodes("SC", 6));  // SC0000 .. SC0005
  REQUIRE(s->SetScope({"SC0001", "SC0004", "SC9999"}).ok());  // unknown barcodes are ignored
  StageCounts c = CountsOk(*s);
  CHECK(c.total == 2);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 2);
  auto items = ClaimOk(*s, Stage::kPending, 10);
  CHECK(BarcodesOf(items) == std::set<std::string>{"SC0001", "SC0004"});
  for (const auto& w : items) CHECK(s->Complete(w, Stage::kChecked).ok());
  c = CountsOk(*s);
  CHECK(c.total == 2);
  CHECK(c.at[static_cast<int>(Stage::kChecked)] == 2);
  CHECK(ClaimOk(*s, Stage::kPending, 10).empty());  // the others wait for a later run
  REQUIRE(s->SetScope({}).ok());
  c = CountsOk(*s);
  CHECK(c.total == 6);
  CHECK(c.at[static_cast<int>(Stage::kPending)] == 4);
  CHECK(ClaimOk(*s, Stage::kPending, 10).size() == 4);
}

}  // namespace grin::testing::conformance
