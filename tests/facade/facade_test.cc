// The library facade (include/grin_jobs/): a host embeds a sync against the fake GRIN over HTTPS
// and a local-folder store, with an observer, and cancels one run mid-way (drain, abort); it
// collects, enriches and requests conversions through the same Run.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cli/commands/grin_stack.h"
#include "cli/facade/run_impl.h"
#include "storage/run_lock.h"
#include "engine/net/curl_transport.h"
#include "grin_jobs/grin_jobs.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/temp_dir.h"

namespace grin::jobs {
namespace {

namespace fs = std::filesystem;

// A fake GRIN and a run made through Run::Create (not the CLI's init).
struct Env {
  // Every book converted unless `tweak` says otherwise.
  explicit Env(int64_t books, const std::function<void(fake::FakeGrinOptions&)>& tweak = {}) {
    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.corpus.seed = 11;
    o.corpus.frac_converted = 1.0;
    o.corpus.frac_in_process = 0;
    o.corpus.frac_failed = 0;
    o.corpus.frac_not_allowed = 0;
    o.range_support = true;
    o.threads = 8;
    if (tweak) tweak(o);
    o.state_dir = (tmp.path() / "fake").string();
    fs::create_directories(o.state_dir);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    const std::string pass = server->state_dir() + "/gpg_passphrase.asc";
    grin::testing::WriteFile(pass, server->passphrase("TEST") + "\n");
    fs::permissions(pass, fs::perms::owner_read | fs::perms::owner_write);
    storage = (tmp.path() / "storage").string();
    CreateOptions c;
    c.run_dir = (tmp.path() / "run").string();
    c.library_directory = "TEST";
    c.grin_base_url = server->base_url();
    c.grin_token_url = server->token_url();
    c.credentials_dir = server->state_dir();
    c.ca_file = server->ca_file();
    c.storage = {{"type", "local"}, {"base_path", storage}};
    auto r = Run::Create(c);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    run = std::move(r).value();
  }

  bool Stored(const std::string& b) const {
    return fs::exists(storage + "/raw/" + b + "/" + b + ".tar.gz") &&
           fs::exists(storage + "/full/" + b + "_ocr.jsonl.gz");
  }

  // One number from the run's database.
  int64_t Scalar(const std::string& sql) const {
    SQLite::Database db(run->db_path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    REQUIRE(q.executeStep());
    return q.getColumn(0).getInt64();
  }

  grin::testing::TempDir tmp;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::string storage;
  std::unique_ptr<Run> run;
};

// Records what the facade tells it; optionally drains after `drain_after` finished books.
class Recorder : public Observer {
 public:
  Cancellation* cancel = nullptr;
  int64_t drain_after = -1;
  int64_t abort_after = -1;

  void OnMessage(MessageKind kind, std::string_view text) override {
    std::lock_guard<std::mutex> l(mu_);
    (kind == MessageKind::kInfo ? info : problems).emplace_back(text);
  }
  void OnEvent(EventKind kind) override {
    std::lock_guard<std::mutex> l(mu_);
    events.push_back(kind);
  }
  LogLevel log_level() const override { return LogLevel::kInfo; }
  void OnLog(LogLevel, std::string_view event, const LogFields&) override {
    std::lock_guard<std::mutex> l(mu_);
    logged.emplace(event);
  }
  void OnProgress(const Progress& p) override {
    std::lock_guard<std::mutex> l(mu_);
    ++progress_calls;
    max_done = std::max(max_done, p.done);
    total = p.total;
    if (cancel != nullptr && drain_after >= 0 && p.done >= drain_after) cancel->Drain();
    if (cancel != nullptr && abort_after >= 0 && p.done >= abort_after) cancel->Abort();
  }
  bool Saw(EventKind kind) const {
    return std::find(events.begin(), events.end(), kind) != events.end();
  }
  bool Said(const std::string& prefix) const {
    for (const auto& l : info) {
      if (l.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }

  std::vector<std::string> info, problems;
  std::vector<EventKind> events;
  std::set<std::string> logged;  // events of OnLog
  int64_t progress_calls = 0, max_done = 0, total = 0;

 private:
  std::mutex mu_;
};

SyncOptions Small(int64_t limit) {
  SyncOptions o;
  o.queues = {"converted"};
  o.limit = limit;
  o.workers = 1;
  o.check_concurrency = 1;
  o.download_concurrency = 1;
  o.grin_requests_per_second = 0;
  return o;
}

TEST_SUITE("integration") {

TEST_CASE("facade: a host syncs a few books through Run::Sync with a progress observer") {
  Env env(6);
  Recorder rec;
  auto r = env.run->Sync(Small(4), &rec);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->done());
  CHECK(r->new_jobs == 4);
  CHECK(r->to_do == 4);
  CHECK(r->uploaded == 4);
  CHECK(r->synced == 4);
  CHECK(r->failed_for_good == 0);
  CHECK(r->teardown_errors.empty());
  // Progress: one call per finished book, counting up to the four.
  CHECK(rec.progress_calls == 4);
  CHECK(rec.max_done == 4);
  CHECK(rec.total == 4);
  CHECK(rec.Saw(EventKind::kConnected));
  CHECK(rec.Saw(EventKind::kPipelineStarting));
  CHECK(rec.Saw(EventKind::kPipelineFinished));
  CHECK_FALSE(rec.Saw(EventKind::kAborted));
  CHECK(rec.Said("Sync of "));
  CHECK(rec.Said("Sync finished"));
  CHECK_MESSAGE(rec.problems.empty(), (rec.problems.empty() ? "" : rec.problems.front()));
  // The outputs and the teardown's files are in place.
  int stored = 0;
  for (const auto& e : fs::directory_iterator(env.storage + "/raw")) {
    stored += env.Stored(e.path().filename().string());
  }
  CHECK(stored == 4);
  CHECK(fs::exists(env.run->run_dir() + "/process_summary.json"));
  CHECK(fs::exists(env.run->run_dir() + "/books_export.csv.gz"));

  // Run::Verify agrees, and names a book whose OCR object went missing.
  auto v = env.run->Verify({});
  REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  CHECK(v->ok());
  CHECK(v->done == 4);
  std::string gone;
  for (const auto& e : fs::directory_iterator(env.storage + "/raw")) {
    gone = e.path().filename().string();
    break;
  }
  REQUIRE(fs::remove(env.storage + "/full/" + gone + "_ocr.jsonl.gz"));
  auto v2 = env.run->Verify({});
  REQUIRE(v2.ok());
  CHECK_FALSE(v2->ok());
  REQUIRE(v2->mismatches.size() == 1);
  CHECK(v2->mismatches[0].barcode == gone);
  CHECK(v2->mismatches[0].problem == "ocr_missing");
  auto fixed = env.run->Verify({.requeue = true});
  REQUIRE(fixed.ok());
  CHECK(fixed->requeued == 1);

  // A sync of the run's open jobs redoes the requeued book; nothing else.
  Recorder again;
  SyncOptions open_jobs = Small(-1);
  open_jobs.queues.clear();  // the run's open jobs: only the requeued book
  auto r2 = env.run->Sync(open_jobs, &again);
  REQUIRE(r2.ok());
  CHECK(r2->done());
  CHECK(r2->new_jobs == 0);
  CHECK(r2->uploaded == 1);
  CHECK(env.Stored(gone));
  CHECK(env.run->Verify({})->ok());
}

TEST_CASE("facade: Drain mid-way stops claiming, and the next sync finishes the rest") {
  Env env(10);
  Cancellation cancel;
  Recorder rec;
  rec.cancel = &cancel;
  rec.drain_after = 2;
  auto r = env.run->Sync(Small(10), &rec, &cancel);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->interrupted);
  CHECK(r->uploaded >= 2);
  CHECK(r->uploaded < 10);
  CHECK(r->open_after == 10 - r->uploaded);
  CHECK_FALSE(r->done());
  CHECK(rec.Said("Sync interrupted"));
  CHECK_FALSE(rec.Saw(EventKind::kAborted));

  // A later sync continues the run's open jobs (no selection) and ends done.
  cancel.Reset();
  Recorder rest;
  SyncOptions o = Small(-1);
  o.queues.clear();
  auto r2 = env.run->Sync(o, &rest, &cancel);
  REQUIRE_MESSAGE(r2.ok(), r2.status().ToString());
  CHECK(r2->done());
  CHECK(r2->uploaded == 10 - r->uploaded);
  int stored = 0;
  for (const auto& e : fs::directory_iterator(env.storage + "/raw")) {
    stored += env.Stored(e.path().filename().string());
  }
  CHECK(stored == 10);
}

TEST_CASE("facade: Abort gives the books in flight back, and the next sync finishes them") {
  Env env(8);
  Cancellation cancel;
  Recorder rec;
  rec.cancel = &cancel;
  rec.abort_after = 1;
  SyncOptions o = Small(8);
  o.workers = 2;
  o.download_concurrency = 2;
  auto r = env.run->Sync(o, &rec, &cancel);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->interrupted);
  CHECK_FALSE(r->done());
  CHECK(r->uploaded < 8);
  CHECK(r->failed_for_good == 0);
  CHECK(rec.Saw(EventKind::kAborted));

  cancel.Reset();
  SyncOptions rest = Small(-1);
  rest.queues.clear();
  auto r2 = env.run->Sync(rest, nullptr, &cancel);
  REQUIRE_MESSAGE(r2.ok(), r2.status().ToString());
  CHECK(r2->done());
  int stored = 0;
  for (const auto& e : fs::directory_iterator(env.storage + "/raw")) {
    stored += env.Stored(e.path().filename().string());
  }
  CHECK(stored == 8);
}

// Times an Abort(): called when the first book finishes, until the sync says the leases are back.
class AbortTimer : public Observer {
 public:
  explicit AbortTimer(Cancellation* cancel) : cancel_(cancel) {}
  std::function<void()> before_abort;  // called once, on the first finished book

  void OnProgress(const Progress&) override {
    if (asked_us_.load() != 0) return;
    if (before_abort) before_abort();
    asked_us_ = NowUs();
    cancel_->Abort();
  }
  void OnEvent(EventKind kind) override {
    if (kind == EventKind::kAborted) given_back_us_ = NowUs();
  }
  // Milliseconds from Abort() to kAborted; -1 if either did not happen.
  double WaitMs() const {
    if (asked_us_.load() == 0 || given_back_us_.load() == 0) return -1;
    return (given_back_us_.load() - asked_us_.load()) / 1000.0;
  }

 private:
  static int64_t NowUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  Cancellation* cancel_;
  std::atomic<int64_t> asked_us_{0}, given_back_us_{0};
};

// The voluntary context switches of this process's thread named `name` (-1: no such thread).
int64_t ContextSwitchesOf(const std::string& name) {
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    if (grin::testing::ReadFile(task.path() / "comm") != name + "\n") continue;
    std::istringstream status(grin::testing::ReadFile(task.path() / "status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoll(line.substr(24));
    }
  }
  return -1;
}

// The sync's abort watcher sleeps until its Cancellation wakes it, and then acts at once. (It
// used to look every 20 ms: about 15 wake-ups while the sync stood still for 300 ms, and an
// abort waited 10 ms on average.)
TEST_CASE("facade: the abort watcher sleeps until an Abort wakes it") {
  Env env(24);
  std::vector<double> waits;
  for (int round = 0; round < 3; ++round) {
    Cancellation cancel;
    AbortTimer timer(&cancel);
    int64_t switches = -2;
    timer.before_abort = [&switches] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      switches = ContextSwitchesOf("grin-abort");
    };
    SyncOptions o = Small(round == 0 ? 24 : -1);
    if (round > 0) o.queues.clear();  // the run's open jobs
    o.skip_csv_export = true;
    auto r = env.run->Sync(o, &timer, &cancel);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(r->interrupted);
    CHECK(switches >= 0);  // the watcher was there
    CHECK_MESSAGE(switches <= 3, "the abort watcher woke " << switches << " times in 300 ms");
    REQUIRE(timer.WaitMs() >= 0);
    waits.push_back(timer.WaitMs());
  }
  // Acted on at once: a loose bound (a loaded machine delays any thread by a few ms).
  std::sort(waits.begin(), waits.end());
  CHECK_MESSAGE(waits[1] < 50, "ms from Abort() to the leases given back: " << waits[1]);
}

TEST_CASE("facade: a sync cancelled before any book started returns kCancelled") {
  Env env(3);
  Cancellation cancel;
  cancel.Drain();
  auto r = env.run->Sync(Small(3), nullptr, &cancel);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCancelled);
}


// GRIN's book list, its metadata and conversion requests, through the Run as a host calls them;
// the reports are checked against what the run's database holds.
TEST_CASE("facade: Collect (resumed), Enrich and Request through the Run with an observer") {
  Env env(250, [](fake::FakeGrinOptions& o) {
    o.corpus.frac_converted = 0.2;
    o.corpus.frac_in_process = 0.05;
    o.corpus.frac_failed = 0.1;
    o.corpus.frac_not_allowed = 0.05;
  });
  Recorder rec;
  CollectOptions c;
  c.requests_per_second = 50;
  c.page_size = 100;
  c.max_pages = 1;
  auto first = env.run->Collect(c, &rec);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK_FALSE(first->resumed);
  CHECK_FALSE(first->finished);
  CHECK(first->pages == 1);
  CHECK(first->rows == 100);
  CHECK(first->inserted == 100);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 100);
  CHECK(env.Scalar("SELECT count(*) FROM collect_cursor") == 1);
  c.max_pages = 0;
  auto rest = env.run->Collect(c, &rec);
  REQUIRE_MESSAGE(rest.ok(), rest.status().ToString());
  CHECK(rest->resumed);
  CHECK(rest->finished);
  CHECK(rest->inserted == 150);
  CHECK(rest->unchanged + rest->updated == 0);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 250);
  CHECK(env.Scalar("SELECT count(*) FROM collect_cursor") == 0);
  // The engine's log events reach the observer at its level.
  CHECK(rec.logged.count("credentials.token") == 1);
  CHECK_MESSAGE(rec.problems.empty(), (rec.problems.empty() ? "" : rec.problems.front()));

  EnrichOptions e;
  e.requests_per_second = 50;
  auto enriched = env.run->Enrich(e, &rec);
  REQUIRE_MESSAGE(enriched.ok(), enriched.status().ToString());
  CHECK(enriched->asked == 250);
  CHECK(enriched->found + enriched->missing == 250);
  CHECK(enriched->found > 0);
  CHECK(enriched->failed_barcodes == 0);
  CHECK(enriched->failed_groups == 0);
  CHECK(enriched->requests >= 1);
  CHECK(enriched->found == env.Scalar("SELECT count(*) FROM books WHERE enrichment_timestamp "
                                      "IS NOT NULL"));
  CHECK(enriched->missing == env.Scalar("SELECT count(*) FROM book_enrichment WHERE state = "
                                        "'missing'"));
  CHECK(enriched->missing_waiting == enriched->missing);
  CHECK(enriched->next_ask_at.empty() == (enriched->missing == 0));
  CHECK(enriched->convert_failures > 0);
  CHECK(enriched->convert_failures ==
        env.Scalar("SELECT count(*) FROM books WHERE grin_convert_failed_date IS NOT NULL"));
  // Nothing pending: a second enrich asks nothing.
  auto again = env.run->Enrich(e, &rec);
  REQUIRE(again.ok());
  CHECK(again->asked == 0);

  RequestOptions r;
  r.requests_per_second = 50;
  r.limit = 12;
  r.batch = 5;
  r.dry_run = true;
  auto plan = env.run->Request(r, &rec);
  REQUIRE_MESSAGE(plan.ok(), plan.status().ToString());
  CHECK(plan->candidates >= 12);
  CHECK(plan->outcomes.empty());
  CHECK(env.Scalar("SELECT count(*) FROM conversion_request") == 0);
  r.dry_run = false;
  auto asked = env.run->Request(r, &rec);
  REQUIRE_MESSAGE(asked.ok(), asked.status().ToString());
  CHECK(asked->queue_capacity == 50'000);
  CHECK(asked->in_process_before > 0);
  CHECK(asked->free_before == asked->queue_capacity - asked->in_process_before);
  CHECK_FALSE(asked->queue_full);
  int64_t answered = 0;
  for (const auto& [outcome, n] : asked->outcomes) answered += n;
  CHECK(answered == 12);
  CHECK(asked->outcomes["requested"] ==
        env.Scalar("SELECT count(*) FROM conversion_request WHERE outcome = 'requested'"));
  // Candidates GRIN lists in _in_process are recorded as such, not asked.
  CHECK(env.Scalar("SELECT count(*) FROM conversion_request WHERE grin_status IS NOT "
                   "'listed in _in_process'") == 12);
  CHECK(asked->free_after == asked->free_before - asked->outcomes["requested"]);
  CHECK(env.server->Stats().endpoints["process"].requests == 3);  // 12 in batches of 5
  CHECK_MESSAGE(rec.problems.empty(), (rec.problems.empty() ? "" : rec.problems.front()));
}

TEST_CASE("facade: a collect that stops part-way says so, and the same call resumes") {
  Env env(300);
  fake::FaultRule f;
  f.endpoint = "all_books";
  f.action = "malformed";
  f.after = 1;  // the second page
  f.times = 1;
  env.server->AddFault(f);
  Recorder rec;
  CollectOptions c;
  c.requests_per_second = 50;
  c.page_size = 100;
  auto stopped = env.run->Collect(c, &rec);
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.status().code() == StatusCode::kDataLoss);
  CHECK(env.run->error_origin() == ErrorOrigin::kTransfer);
  REQUIRE(rec.problems.size() == 1);
  CHECK(rec.problems[0] == "stopped; rerun the same command to resume");
  CHECK(env.Scalar("SELECT count(*) FROM books") == 100);
  auto resumed = env.run->Collect(c, &rec);
  REQUIRE_MESSAGE(resumed.ok(), resumed.status().ToString());
  CHECK(resumed->resumed);
  CHECK(resumed->finished);
  CHECK(resumed->inserted == 200);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 300);
}

TEST_CASE("facade: Request stops on a full queue, and GRIN-side calls refuse bad options and a busy run") {
  Env env(60, [](fake::FakeGrinOptions& o) {
    o.corpus.frac_converted = 0;
    o.corpus.frac_in_process = 0;
    o.corpus.queue_max = 5;
  });
  REQUIRE(env.run->Collect({.requests_per_second = 50}).ok());
  // A batch that does not fit is refused whole (429): the second of 5.
  auto full = env.run->Request({.requests_per_second = 50, .limit = 40, .batch = 5});
  REQUIRE_MESSAGE(full.ok(), full.status().ToString());
  CHECK(full->queue_full);
  CHECK(full->outcomes["requested"] == 5);
  CHECK(env.Scalar("SELECT count(*) FROM conversion_request WHERE outcome = 'requested'") == 5);

  auto bad = env.run->Enrich({.refresh = false, .refresh_before = "2020-01-01T00:00:00Z"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(env.run->Collect({.requests_per_second = 0}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(env.run->Request({.limit = 0}).status().code() == StatusCode::kInvalidArgument);

  // Another process holds the run: kBusy, about the run.
  auto lock = storage::RunLock::Acquire(env.run->db_path());
  REQUIRE(lock.ok());
  auto busy = env.run->Enrich({.requests_per_second = 50});
  REQUIRE_FALSE(busy.ok());
  CHECK(busy.status().code() == StatusCode::kBusy);
  CHECK(env.run->error_origin() == ErrorOrigin::kRun);
}

}  // TEST_SUITE

TEST_CASE("facade: errors are values naming what is wrong") {
  grin::testing::TempDir tmp;
  auto missing = Run::Open({(tmp.path() / "nope").string(), ""});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);

  CreateOptions c;
  c.run_dir = (tmp.path() / "run").string();
  auto no_dir = Run::Create(c);
  REQUIRE_FALSE(no_dir.ok());
  CHECK(no_dir.status().code() == StatusCode::kInvalidArgument);
  c.library_directory = "TEST";
  c.storage = {{"colour", "blue"}};
  auto bad_key = Run::Create(c);
  REQUIRE_FALSE(bad_key.ok());
  CHECK(bad_key.status().message().find("colour") != std::string::npos);
  CHECK_FALSE(fs::exists(c.run_dir + "/books.db"));

  c.storage.clear();
  auto run = Run::Create(c);
  REQUIRE_MESSAGE(run.ok(), run.status().ToString());
  auto twice = Run::Create(c);
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.status().code() == StatusCode::kAlreadyExists);

  SyncOptions o;
  o.queues = {"bogus"};
  auto r = (*run)->Sync(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message().find("bogus") != std::string::npos);
  CHECK((*run)->error_origin() == ErrorOrigin::kRun);
  o.queues = {"converted"};
  o.barcodes = {"B1234"};
  CHECK((*run)->Sync(o).status().code() == StatusCode::kInvalidArgument);
}

// `grin-jobs init`'s entry: creates a run once (no library directory needed yet), then only
// upgrades its database; Run::Create refuses the run it made.
TEST_CASE("facade: InitRun creates a run once and then leaves its settings alone") {
  grin::testing::TempDir tmp;
  const std::string dir = (tmp.path() / "r").string();
  cli::RunConfig config;
  config.grin_base_url = "https://grin.example/libraries/";
  auto made = InitRun(dir, config);
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  CHECK(*made);
  auto run = Run::Open({dir, ""});
  REQUIRE(run.ok());
  CHECK((*run)->impl()->config.run_name == "r");
  CHECK((*run)->impl()->config.grin_base_url == "https://grin.example/libraries/");
  CHECK((*run)->impl()->config.storage["type"] == "local");
  CHECK((*run)->impl()->config.storage["base_path"] == dir + "/storage");
  config.grin_base_url = "https://other.example/";
  auto again = InitRun(dir, config);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  CHECK(Run::Open({dir, ""}).value()->impl()->config.grin_base_url ==
        "https://grin.example/libraries/");
  CreateOptions c;
  c.run_dir = dir;
  c.library_directory = "TEST";
  CHECK(Run::Create(c).status().code() == StatusCode::kAlreadyExists);
  // Held by another process: kBusy, nothing written.
  const std::string other = (tmp.path() / "o").string();
  std::filesystem::create_directories(other);
  auto lock = storage::RunLock::Acquire(other + "/books.db");
  REQUIRE(lock.ok());
  CHECK(InitRun(other, config).status().code() == StatusCode::kBusy);
  CHECK_FALSE(fs::exists(other + "/run_config.json"));
}

// The GRIN host's limits are keyed as the transport keys its requests; the old hand parse kept
// user info, took an upper-case HTTPS scheme for port 80 and kept a query.
TEST_CASE("facade: the GRIN host key is the transport's own parse of the URL") {
  CHECK(*net::HostKeyOf("https://books.example:8443/libraries/") == "books.example:8443");
  CHECK(*net::HostKeyOf("https://books.example/libraries/") == "books.example:443");
  CHECK(*net::HostKeyOf("HTTPS://books.example/libraries/") == "books.example:443");
  CHECK(*net::HostKeyOf("https://user@books.example/x") == "books.example:443");
  CHECK(*net::HostKeyOf("https://books.example?x=1") == "books.example:443");
  CHECK(*net::HostKeyOf("http://[::1]/libraries/") == "[::1]:80");
  CHECK(net::HostKeyOf("not a url").status().code() == StatusCode::kInvalidArgument);
}

// The joined CA bundle used to be written unchecked: a missing input made an incomplete bundle
// and the transport then failed TLS with no word about why.
TEST_CASE("facade: the joined CA bundle is checked") {
  grin::testing::TempDir tmp;
  const std::string a = (tmp.path() / "a.pem").string(), b = (tmp.path() / "b.pem").string();
  grin::testing::WriteFile(a, "-----A-----");
  grin::testing::WriteFile(b, "-----B-----\n");
  const std::string out = (tmp.path() / "ca-bundle.pem").string();
  REQUIRE(cli::JoinCaBundles(out, a, b).ok());
  CHECK(grin::testing::ReadFile(out) == "-----A-----\n-----B-----\n");
  Status missing = cli::JoinCaBundles(out, a, (tmp.path() / "gone.pem").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.message().find("gone.pem") != std::string::npos);
  CHECK(grin::testing::ReadFile(out) == "-----A-----\n-----B-----\n");  // left as it was
  Status unwritable = cli::JoinCaBundles((tmp.path() / "no" / "dir.pem").string(), a, b);
  CHECK_FALSE(unwritable.ok());
}

}  // namespace
}  // namespace grin::jobs
