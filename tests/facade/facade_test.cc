// The library facade (include/grin_jobs/): a host embeds a sync against the fake GRIN over HTTPS
// and a local-folder store, with an observer, and cancels one run mid-way (drain).
#include <doctest/doctest.h>

#include <filesystem>
#include <mutex>
#include <set>

#include "cli/commands/grin_stack.h"
#include "engine/net/curl_transport.h"
#include "grin_jobs/grin_jobs.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/temp_dir.h"

namespace grin::jobs {
namespace {

namespace fs = std::filesystem;

// A fake GRIN and a run made through Run::Create (not the CLI's init).
struct Env {
  explicit Env(int64_t books) {
    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.corpus.seed = 11;
    o.corpus.frac_converted = 1.0;
    o.corpus.frac_in_process = 0;
    o.corpus.frac_failed = 0;
    o.corpus.frac_not_allowed = 0;
    o.range_support = true;
    o.threads = 8;
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

TEST_CASE("facade: a sync cancelled before any book started returns kCancelled") {
  Env env(3);
  Cancellation cancel;
  cancel.Drain();
  auto r = env.run->Sync(Small(3), nullptr, &cancel);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCancelled);
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
