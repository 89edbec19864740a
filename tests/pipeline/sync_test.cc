// grin-jobs sync end to end, in-process: the fake GRIN over HTTPS (real gpg archives) into a
// local-folder store; stored objects checked with independent tools (gpg, zlib, the metadata
// file); exact resume; ETag changes; the CSV.
#include <nlohmann/json.hpp>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

TEST_CASE("sync stores converted books verified, and a rerun downloads nothing") {
  SyncEnv env(40);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "12"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("/12 (100.0%)") != std::string::npos);  // the progress line
  auto up = env.Uploaded();
  REQUIRE(up.size() == 12);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 12);
  for (const auto& b : up) {
    CAPTURE(b);
    // The raw archive is byte-identical to the fixture's plaintext (decrypted by real gpg).
    CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
    auto meta = nlohmann::json::parse(grin::testing::ReadFile(env.RawPath(b) + ".grin-meta.json"));
    std::string etag = env.server->CurrentETag("TEST", b);
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    CHECK(meta["metadata"]["encrypted_etag"] == etag);
    CHECK(meta["metadata"]["barcode"] == b);
    // The OCR JSONL: one JSON string per page.
    std::string jsonl = Gunzip(env.OcrPath(b));
    REQUIRE_FALSE(jsonl.empty());
    std::istringstream lines(jsonl);
    std::string line;
    int pages = 0;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line);
      CHECK(j.is_string());
      ++pages;
    }
    CHECK(pages >= 2);
    CHECK(env.Gets(b) == 1);
  }
  CHECK(env.Sql("SELECT count(*) FROM books WHERE is_decrypted = 1 AND encrypted_etag IS NOT "
                "NULL AND marc_extraction_timestamp IS NOT NULL AND storage_path LIKE 'raw/%'") ==
        12);
  // Each book completed each stage exactly once.
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'completed' AND stage = 'uploaded'") ==
        12);
  // The CSV export: header + one row per book, the reference tool's first columns.
  std::string csv = grin::testing::ReadFile(env.run + "/books_export.csv");
  CHECK(csv.rfind("Barcode,Title,Scanned Date,Converted Date", 0) == 0);
  int64_t rows = std::count(csv.begin(), csv.end(), '\n');
  CHECK(rows == env.Sql("SELECT count(*) FROM books") + 1);
  CHECK(std::filesystem::exists(env.run + "/process_summary.json"));
  CHECK(std::filesystem::exists(env.storage + "/meta/run/books_latest.csv.gz"));
  CHECK(std::filesystem::exists(env.storage + "/meta/run/books_latest.db.gz"));

  // --limit picks the first books in barcode order, deterministically.
  int64_t total = 0;
  auto converted = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1000,
                                                    &total);
  std::vector<std::string> all;
  for (int64_t i : converted) all.push_back(fake::Corpus::BarcodeAt(i));
  std::sort(all.begin(), all.end());
  CHECK(std::set<std::string>(all.begin(), all.begin() + 12) == up);

  // Without the limit the rest follows; the first twelve are not fetched again.
  auto rest = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(rest.out << rest.err);
  REQUIRE(rest.code == 0);
  CHECK(static_cast<int64_t>(env.Uploaded().size()) == total);
  for (const auto& b : up) CHECK(env.Gets(b) == 1);
  // And a rerun has nothing to do: no GRIN download at all.
  auto again = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(again.out.find("nothing to do") != std::string::npos);
  for (const auto& b : env.Uploaded()) CHECK(env.Gets(b) == 1);
}

TEST_CASE("a book storage lacks is fetched with one GET and no HEAD") {
  SyncEnv env(30);
  // Every new book is fetched with its GET alone, the first one too: memory is taken when the
  // GET's head says how large the book is.
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8", "--workers", "1"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto up = env.Uploaded();
  REQUIRE(up.size() == 8);
  auto st = env.server->Stats();
  for (const auto& b : up) {
    CAPTURE(b);
    CHECK(st.barcodes["TEST/" + b].heads == 0);
    CHECK(st.barcodes["TEST/" + b].gets == 1);
    CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
  }
  CHECK(env.Sql("SELECT count(*) FROM books WHERE last_etag_check IS NOT NULL AND "
                "encrypted_etag IS NOT NULL") == 8);
}

TEST_CASE("with more workers than download slots a new book still costs one GRIN request") {
  // Workers beyond the download slots used to HEAD the next new books (and file them as
  // checked for a later GET): two GRIN requests per book where one answers both questions, at a
  // time when GRIN's request rate bounds the run.
  SyncEnv env(60);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "40", "--workers", "8",
                             "--check-concurrency", "4", "--download-concurrency", "2"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto up = env.Uploaded();
  REQUIRE(up.size() == 40);
  auto st = env.server->Stats();
  int heads = 0;
  for (const auto& b : up) {
    CAPTURE(b);
    heads += st.barcodes["TEST/" + b].heads;
    CHECK(st.barcodes["TEST/" + b].gets == 1);
  }
  CHECK(heads == 0);
}

TEST_CASE("a new book too large to stream is staged from the GET that checked it, no HEAD, "
          "no second GET") {
  // Archives of 2-5 pages of 300 kB: some under --stream-max-mb 1, some over.
  SyncEnv env(24, 0.8, 11, /*image_bytes=*/300000);
  std::vector<std::string> converted;
  std::map<std::string, size_t> size;
  int64_t total = 0;
  for (int64_t i : env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 100,
                                                    &total)) {
    std::string b = fake::Corpus::BarcodeAt(i);
    auto enc = env.server->ArchiveBytes("TEST", b);
    REQUIRE(enc.ok());
    size[b] = (*enc)->size();
    converted.push_back(b);
  }
  const auto large = std::count_if(size.begin(), size.end(),
                                   [](const auto& e) { return e.second > (1u << 20); });
  REQUIRE(large >= 1);  // the corpus exercises both paths
  REQUIRE(large < static_cast<int64_t>(size.size()));
  // Before, a book fetched without a HEAD that turned out too large had its GET dropped and was
  // fetched again into staging, and a book after a large one was HEADed: two GRIN requests.
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--workers", "1", "--stream-max-mb", "1"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  REQUIRE(env.Uploaded() == std::set<std::string>(converted.begin(), converted.end()));
  auto st = env.server->Stats();
  for (const auto& b : converted) {
    CAPTURE(b);
    CAPTURE(size[b]);
    const auto& c = st.barcodes["TEST/" + b];
    CHECK(c.heads == 0);
    CHECK(c.gets == 1);
    CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
  }
  // The large ones went through staging (pending -> downloaded -> uploaded), the others not.
  CHECK(env.Sql("SELECT count(DISTINCT barcode) FROM events WHERE stage = 'downloaded'") == large);
  CHECK(std::filesystem::is_empty(env.run + "/staging"));
}

TEST_CASE("a new run over the same storage downloads nothing already stored") {
  SyncEnv env(30);
  auto first = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  auto up = env.Uploaded();
  REQUIRE(up.size() == 8);
  // A second run directory (a different run name), the same storage: keys do not depend on the
  // run, so the storage listing + HEAD find every book with its ETag and nothing is fetched.
  std::string run2 = (env.tmp.path() / "run2").string();
  auto init = Cli({"init", "--run-dir", run2, "--library-directory", "TEST", "--grin-base-url",
                   env.server->base_url(), "--storage", "local", "--storage-path", env.storage});
  REQUIRE_MESSAGE(init.code == 0, init.err);
  std::filesystem::copy_file(env.run + "/run_config.json", run2 + "/run_config.json",
                             std::filesystem::copy_options::overwrite_existing);
  for (const char* mode : {"inventory", "head-every-book"}) {
    CAPTURE(mode);
    std::vector<std::string> args = {"sync", "--run-dir", run2, "--grin-rate", "0", "--queue",
                                     "converted", "--limit", "12", "--recheck"};
    if (std::string(mode) != "inventory") args.push_back("--no-inventory");
    auto second = Cli(args);
    INFO(second.out << second.err);
    REQUIRE(second.code == 0);
    for (const auto& b : up) CHECK(env.Gets(b) == 1);
  }
  SQLite::Database db(run2 + "/books.db", SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM uploaded").getInt64() == 12);
  CHECK(db.execAndGet("SELECT count(*) FROM events WHERE outcome = 'skipped_etag_match'")
            .getInt64() >= 8);
  // run2's books table had no MARC columns for the 8 books: rebuilt from storage, once.
  CHECK(db.execAndGet("SELECT count(*) FROM events WHERE outcome = 'rebuilt_outputs'")
            .getInt64() == 8);
  CHECK(db.execAndGet("SELECT count(*) FROM books WHERE marc_extraction_timestamp IS NOT NULL")
            .getInt64() == 12);
}

TEST_CASE("an ETag change between runs fetches the book again, unchanged books are not") {
  SyncEnv env(30);
  auto first = Cli(env.SyncArgs({"--queue", "converted", "--limit", "6"}));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  auto up = env.Uploaded();
  REQUIRE(up.size() == 6);
  std::string changed = *up.begin();
  auto* corpus = env.server->corpus("TEST");
  REQUIRE(corpus != nullptr);
  auto idx = corpus->IndexOf(changed);
  REQUIRE(idx.has_value());
  int64_t index = *idx;
  std::string old_etag = env.server->CurrentETag("TEST", changed);
  REQUIRE(corpus->Reconvert(index, env.server->NowSeconds()));
  REQUIRE(env.server->CurrentETag("TEST", changed) != old_etag);

  auto second = Cli(env.SyncArgs({"--queue", "converted", "--limit", "6", "--recheck"}));
  INFO(second.out << second.err);
  REQUIRE(second.code == 0);
  CHECK(env.Gets(changed) == 2);
  for (const auto& b : up) {
    if (b != changed) CHECK(env.Gets(b) == 1);
  }
  CHECK(grin::testing::ReadFile(env.RawPath(changed)) == env.FixturePlaintext(changed));
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'skipped_etag_match'") == 5);
}

// Books small enough are streamed (decrypted while they download, no staging); --stream-max-mb 0
// sends every book through the staging directory instead. Fault tests run both paths.
std::vector<std::string> PathUnderTest() {
  std::vector<std::string> extra;
  SUBCASE("streamed") {}
  SUBCASE("staged") { extra = {"--stream-max-mb", "0"}; }
  return extra;
}

std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_CASE("faults at GRIN (5xx, 429, truncation, corruption, stalls) still end byte-identical") {
  auto path = PathUnderTest();
  SyncEnv env(50, 0.6, 17);
  auto add = [&](const char* json) {
    auto rule = fake::ParseFaultRule(json);
    REQUIRE_MESSAGE(rule.ok(), rule.status().ToString());
    env.server->AddFault(*rule);
  };
  add(R"({"endpoint": "archive_get", "probability": 0.15, "action": "status", "status": 503})");
  add(R"({"endpoint": "archive_head", "probability": 0.1, "action": "status", "status": 429,
          "retry_after": "1"})");
  add(R"({"endpoint": "archive_get", "probability": 0.1, "action": "truncate", "at_byte": 3000})");
  add(R"({"endpoint": "archive_get", "probability": 0.08, "action": "corrupt", "at_byte": 900})");
  add(R"({"endpoint": "archive_get", "nth": 3, "action": "status", "status": 500})");
  add(R"({"endpoint": "converted", "nth": 1, "action": "status", "status": 502})");
  auto r = Cli(env.SyncArgs(Plus({"--queue", "converted", "--retry-base-ms", "50"}, path)));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  int64_t total = 0;
  env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 0, &total);
  auto up = env.Uploaded();
  CHECK(static_cast<int64_t>(up.size()) == total);
  for (const auto& b : up) {
    CAPTURE(b);
    CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
  }
  int64_t fired = 0;
  for (const auto& f : env.server->Faults()) {
    MESSAGE(f.endpoint << " " << f.action << " fired " << f.fires << " of " << f.matches);
    fired += f.fires;
  }
  CHECK(fired >= 5);
  // Streamed books go checked -> uploaded and never sit in `downloaded` (no staging file);
  // staged books pass through it.
  int64_t staged = env.Sql("SELECT count(DISTINCT barcode) FROM events WHERE stage = "
                           "'downloaded' AND outcome = 'completed'");
  CHECK(staged == (path.empty() ? 0 : total));
  CHECK(std::filesystem::is_empty(env.run + "/staging"));
  MESSAGE(fired << " faults fired; " << env.Sql("SELECT count(*) FROM events WHERE outcome = "
                                                "'failed'") << " book attempts failed and were retried");
}

TEST_CASE("a corrupted download fails the integrity check, is fetched again, stored intact") {
  auto path = PathUnderTest();
  SyncEnv env(20, 0.6, 23);
  int64_t total = 0;
  auto converted = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1, &total);
  REQUIRE(!converted.empty());
  std::string victim = fake::Corpus::BarcodeAt(converted[0]);
  auto rule = fake::ParseFaultRule(R"({"endpoint": "archive_get", "barcode": ")" + victim +
                                   R"(", "times": 1, "action": "corrupt", "at_byte": 700})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  auto r = Cli(env.SyncArgs(Plus({"--barcodes", victim, "--retry-base-ms", "20"}, path)));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(env.server->Faults()[0].fires == 1);
  CHECK(env.Gets(victim) == 2);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'failed' AND "
                "json_extract(detail, '$.reason') = 'archive_invalid'") == 1);
  CHECK(grin::testing::ReadFile(env.RawPath(victim)) == env.FixturePlaintext(victim));
}

TEST_CASE("dry run changes nothing, bad input gives one line") {
  SyncEnv env(20);
  auto dry = Cli(env.SyncArgs({"--queue", "converted", "--dry-run"}));
  INFO(dry.out << dry.err);
  CHECK(dry.code == 0);
  CHECK(dry.out.find("Dry run") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 0);
  auto bad = Cli(env.SyncArgs({"--barcodes", "GOOD123,../../etc"}));
  CHECK(bad.code == cli::kExitUsage);
  CHECK(bad.err.find("../../etc") != std::string::npos);
  auto both = Cli(env.SyncArgs({"--queue", "converted", "--barcodes", "ABC123"}));
  CHECK(both.code == cli::kExitUsage);
  auto q = Cli(env.SyncArgs({"--queue", "everything"}));
  CHECK(q.code == cli::kExitUsage);
}

TEST_CASE("unconverted and failed books: conversion requested (the book waits) or known failure "
          "recorded") {
  SyncEnv env(40, /*frac_converted=*/0.3);
  auto collect = Cli({"collect", "--run-dir", env.run});
  REQUIRE_MESSAGE(collect.code == 0, collect.err);
  std::vector<std::string> all;
  {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READONLY);
    SQLite::Statement s(db, "SELECT barcode FROM books ORDER BY barcode");
    while (s.executeStep()) all.push_back(s.getColumn(0).getString());
  }
  REQUIRE(all.size() == 40);
  std::string list;
  for (const auto& b : all) list += (list.empty() ? "" : ",") + b;
  auto r = Cli(env.SyncArgs({"--barcodes", list}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  int64_t uploaded = env.Sql("SELECT count(*) FROM uploaded");
  // Books asked to convert (or already converting) wait: not failed, not dead.
  int64_t requested = env.Sql("SELECT count(*) FROM awaiting_conversion WHERE reason LIKE "
                              "'conversion_%'");
  CHECK(env.Sql("SELECT count(*) FROM failed WHERE reason LIKE 'conversion_%'") == 0);
  int64_t known = env.Sql("SELECT count(*) FROM failed WHERE reason = 'known_conversion_failure'");
  CHECK(uploaded >= 8);
  CHECK(requested >= 1);
  CHECK(known >= 1);
  CHECK(uploaded + requested + known == 40);
  // A failed or requested book never reads as uploaded.
  CHECK(env.Sql("SELECT count(*) FROM uploaded u JOIN failed f USING (barcode)") == 0);
  CHECK(env.Sql("SELECT count(*) FROM uploaded u JOIN awaiting_conversion a USING (barcode)") ==
        0);
}

}  // namespace
}  // namespace grin::pipeline::testing
