// The conversion workflow end to end over the fake GRIN (issue 16 items 11-13, 15): books a sync
// asks GRIN to convert wait (visible in status and SQL) and come back by themselves once
// _converted lists them; one 429 from _process stops conversion requests for the run without
// slowing archive downloads; an archive that expires before its GET waits again; --dry-run says
// per book what the run would do.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

using fake::ConvertStatus;

// Up to n barcodes of the fake's books with conversion status s, in index order.
std::vector<std::string> BooksWith(SyncEnv& env, ConvertStatus s, size_t n) {
  std::vector<std::string> out;
  auto* corpus = env.server->corpus("TEST");
  for (int64_t i = 0; i < corpus->size() && out.size() < n; ++i) {
    if (corpus->Get(i).status == s) out.push_back(corpus->Get(i).barcode);
  }
  REQUIRE(out.size() == n);
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& b : v) s += (s.empty() ? "" : ",") + b;
  return s;
}

int64_t ProcessRequests(SyncEnv& env) {
  auto st = env.server->Stats();
  auto it = st.endpoints.find("process");
  return it == st.endpoints.end() ? 0 : it->second.requests;
}

std::string LineOf(const std::string& text, const std::string& barcode) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("  " + barcode + "  ") == 0) return line;
  }
  return "";
}

TEST_CASE("sync: books asked to convert wait, visible in status and SQL, and come back by "
          "themselves once GRIN converted them") {
  SyncEnv env(40, 0.3);
  auto fresh = BooksWith(env, ConvertStatus::kAvailable, 3);

  auto first = Cli(env.SyncArgs({"--barcodes", Join(fresh)}));
  INFO(first.out, first.err);
  CHECK(first.code == 0);  // waiting is not failing
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 3);
  CHECK(env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason = 'conversion_requested' "
                "AND since IS NOT NULL") == 3);
  CHECK(env.Sql("SELECT count(*) FROM failed") == 0);
  CHECK(env.Sql("SELECT count(*) FROM pending") == 3);
  CHECK(env.Sql("SELECT count(*) FROM uploaded") == 0);
  CHECK(ProcessRequests(env) == 3);

  auto status = Cli({"status", "--run-dir", env.run});
  CHECK(status.out.find("awaiting GRIN's conversion: 3 (since ") != std::string::npos);
  auto js = nlohmann::json::parse(Cli({"status", "--run-dir", env.run, "--json"}).out);
  CHECK(js["awaiting_conversion"] == 3);
  CHECK(js["dead"] == 0);
  CHECK(js["remaining"] == 0);

  // Not converted yet: a later sync neither re-requests nor fails them.
  auto again = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(again.out, again.err);
  CHECK(again.code == 0);
  CHECK(ProcessRequests(env) == 3);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 3);

  // GRIN converts them; the next sync of the converted queue picks them up and stores them.
  env.server->AdvanceClock(2 * 3600);
  env.server->Tick();
  auto later = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(later.out, later.err);
  CHECK(later.code == 0);
  CHECK(later.out.find("3 books awaiting conversion are converted now") != std::string::npos);
  auto up = env.Uploaded();
  for (const auto& b : fresh) {
    CHECK(up.count(b) == 1);
    CHECK(std::filesystem::exists(env.RawPath(b)));
  }
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 0);
  CHECK(ProcessRequests(env) == 3);
}

TEST_CASE("migration 0008: books earlier syncs made dead for a conversion request wait instead") {
  SyncEnv env(30, 0.3);
  auto fresh = BooksWith(env, ConvertStatus::kAvailable, 2);
  REQUIRE(Cli(env.SyncArgs({"--barcodes", Join(fresh)})).code == 0);
  {
    // The database as a build before 0008 left it: the requested books dead.
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE);
    db.exec("UPDATE jobs SET status = 'dead', error_class = 'permanent', attempts = 1");
    db.exec("DROP VIEW awaiting_conversion");
    db.exec("DROP INDEX jobs_awaiting");
    // ... and without what 0009 added.
    db.exec("DROP INDEX book_enrichment_missing_due");
    db.exec("DROP INDEX books_enriched");
    db.exec("ALTER TABLE book_enrichment DROP COLUMN missing_count");
    db.exec("ALTER TABLE book_enrichment DROP COLUMN next_ask_at");
    // ... nor what 0011 added.
    db.exec("DROP TRIGGER books_count_insert");
    db.exec("DROP TRIGGER books_count_delete");
    db.exec("DROP TABLE book_count");
    db.exec("DROP INDEX books_convert_failed");
    db.exec("DROP TRIGGER events_uploaded_per_second");
    db.exec("DROP TABLE uploaded_per_second");
    db.exec("PRAGMA user_version = 7");
  }
  auto r = Cli(env.SyncArgs());
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  CHECK(env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason = "
                "'conversion_requested'") == 2);
  CHECK(env.Sql("SELECT count(*) FROM failed") == 0);
  CHECK(env.Sql("SELECT count(*) FROM pending") == 2);
}

TEST_CASE("sync: awaiting books are picked up by a plain rerun of the run once GRIN lists them") {
  SyncEnv env(30, 0.3);
  auto fresh = BooksWith(env, ConvertStatus::kAvailable, 2);
  REQUIRE(Cli(env.SyncArgs({"--barcodes", Join(fresh)})).code == 0);
  REQUIRE(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 2);
  env.server->AdvanceClock(2 * 3600);
  env.server->Tick();
  auto r = Cli(env.SyncArgs());  // no queue: the run's own jobs
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  auto up = env.Uploaded();
  for (const auto& b : fresh) CHECK(up.count(b) == 1);
}

#ifdef GRIN_JOBS_BIN
TEST_CASE("sync: one 429 from _process stops conversion requests for the run and does not slow "
          "archive downloads") {
  SyncEnv env(60, 0.4);
  auto fresh = BooksWith(env, ConvertStatus::kAvailable, 8);
  auto converted = BooksWith(env, ConvertStatus::kConverted, 6);
  fake::FaultRule full;
  full.endpoint = "process";
  full.action = "status";
  full.status = 429;
  env.server->AddFault(full);
  std::vector<std::string> all = fresh;
  all.insert(all.end(), converted.begin(), converted.end());
  std::string log = (env.tmp.path() / "sync.log").string();
  // One check at a time, converted books interleaved, so downloads follow the 429.
  std::sort(all.begin(), all.end());
  auto args = env.SyncArgs({"--barcodes", Join(all), "--check-concurrency", "1",
                            "--log-level", "warning"});
  int code = WaitChild(SpawnGrinJobs(args, log));
  std::string text = grin::testing::ReadFile(log);
  INFO(text);
  CHECK(code == 0);
  CHECK(ProcessRequests(env) == 1);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 8);
  CHECK(env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason = "
                "'conversion_queue_full'") == 1);
  CHECK(env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason = "
                "'conversion_not_requested'") == 7);
  CHECK(env.Sql("SELECT count(*) FROM failed") == 0);
  auto up = env.Uploaded();
  for (const auto& b : converted) CHECK(up.count(b) == 1);
  // The host's adaptive limit was never lowered for GRIN (it would log net.slow_down).
  CHECK(text.find("net.slow_down") == std::string::npos);
  CHECK(text.find("conversion requests stopped for this run") != std::string::npos);

  // The queue has room again: the next run asks GRIN for the books it could not ask for.
  env.server->ClearFaults();
  auto next = Cli(env.SyncArgs());
  INFO(next.out, next.err);
  CHECK(next.code == 0);
  CHECK(ProcessRequests(env) == 1 + 8);
  CHECK(env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason = "
                "'conversion_requested'") == 8);
}
#endif

TEST_CASE("sync: an archive listed as converted that is gone at its GET waits for conversion "
          "again, with the reason") {
  SyncEnv env(30, 0.5);
  auto b = BooksWith(env, ConvertStatus::kConverted, 1).front();
  fake::FaultRule gone;
  gone.endpoint = "archive_get";
  gone.barcode = b;
  gone.action = "expire";
  gone.times = 1;
  env.server->AddFault(gone);
  // Without the inventory the book is HEADed (converted) before its GET finds it gone. (With
  // it, a new book's GET comes first: a 404 there falls back to the HEAD, which then finds no
  // archive and requests conversion.)
  auto r = Cli(env.SyncArgs({"--barcodes", b, "--no-inventory"}));
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  CHECK(env.SqlText("SELECT status || ' ' || reason FROM jobs JOIN awaiting_conversion "
                    "USING (barcode)") == "awaiting archive_expired");
  CHECK(env.Sql("SELECT count(*) FROM failed") == 0);
}

TEST_CASE("sync --dry-run: per book, what the run would do") {
  SyncEnv env(40, 0.3);
  auto fresh = BooksWith(env, ConvertStatus::kAvailable, 3);
  auto converted = BooksWith(env, ConvertStatus::kConverted, 2);
  REQUIRE(Cli(env.SyncArgs({"--barcodes", Join({fresh[0], fresh[1], converted[0]})})).code == 0);
  REQUIRE(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 2);
  const int64_t events = env.Sql("SELECT count(*) FROM events");

  std::vector<std::string> ask = {fresh[0], fresh[1], fresh[2], converted[0], converted[1]};
  auto dry = Cli(env.SyncArgs({"--barcodes", Join(ask), "--dry-run"}));
  INFO(dry.out, dry.err);
  CHECK(dry.code == 0);
  CHECK(LineOf(dry.out, converted[0]).find("stored: skip") != std::string::npos);
  CHECK(LineOf(dry.out, converted[1]).find("check: check (GET or HEAD) -> download") !=
        std::string::npos);
  CHECK(LineOf(dry.out, fresh[2]).find("convert: not in _converted") != std::string::npos);
  // Named explicitly, awaiting books are checked again (GRIN answers: still in process).
  CHECK(LineOf(dry.out, fresh[0]).find("awaiting conversion, now in _converted") ==
        std::string::npos);

  auto plain = Cli(env.SyncArgs({"--dry-run"}));
  INFO(plain.out);
  CHECK(LineOf(plain.out, fresh[0]).find("awaiting: waiting for GRIN's conversion since ") !=
        std::string::npos);
  CHECK(plain.out.find("Plan: 2 awaiting.") != std::string::npos);

  env.server->AdvanceClock(2 * 3600);
  env.server->Tick();
  auto ready = Cli(env.SyncArgs({"--queue", "converted", "--limit", "1000", "--dry-run"}));
  CHECK(LineOf(ready.out, fresh[1]).find("awaiting conversion, now in _converted") !=
        std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM events") == events);  // nothing changed
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'") == 2);
}

}  // namespace
}  // namespace grin::pipeline::testing
