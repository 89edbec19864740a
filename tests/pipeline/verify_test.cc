// grin-jobs verify against real parts: a sync from the fake GRIN over HTTPS into a local folder
// (and into the Swift S3 server with GRIN_S3_ENV), then storage damaged by hand — an OCR object
// deleted, a raw archive truncated, another's bytes changed at the same size, another deleted,
// MARC columns cleared, unknown objects, a temporary object and (S3) an abandoned multipart
// upload — each must be reported with exit 6; --deep finds the changed bytes by SHA-256;
// --requeue then sync repairs exactly what is missing and verify passes again.
#include <chrono>
#include <fstream>

#include "cli/object_store_factory.h"
#include "engine/net/curl_transport.h"
#include "storage/local_object_store.h"
#include "storage/run_lock.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

using storage::LocalObjectStore;

std::vector<std::string> VerifyArgs(const SyncEnv& env, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"verify", "--run-dir", env.run};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// barcode -> problems, from verify --json.
std::map<std::string, std::set<std::string>> Problems(const nlohmann::json& doc) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& m : doc["mismatches"]) {
    out[m["barcode"].get<std::string>()].insert(m["problem"].get<std::string>());
  }
  return out;
}

nlohmann::json VerifyJson(const SyncEnv& env, std::vector<std::string> extra, int want_code) {
  extra.push_back("--json");
  auto r = Cli(VerifyArgs(env, extra));
  INFO(r.out << r.err);
  CHECK(r.code == want_code);
  return nlohmann::json::parse(r.out);
}

void FlipLastByte(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekg(-1, std::ios::end);
  char c = 0;
  f.get(c);
  f.seekp(-1, std::ios::end);
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST_CASE("LocalObjectStore::ForEachObject: one walk lists what List pages list, in key order") {
  grin::testing::TempDir tmp;
  auto store = storage::LocalObjectStore::Open(tmp.file("s"));
  REQUIRE(store.ok());
  LocalObjectStore& s = **store;
  REQUIRE(s.EnsureBucket("b").ok());
  std::vector<std::string> keys = {"p/A-1/A-1.tar.gz", "p/A/A.tar.gz", "p/B_ocr.jsonl.gz",
                                   "p/sub/deep/x", "q/other", "pz", "top"};
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string body(i + 1, 'x');
    MemorySource src(body);
    REQUIRE(s.Put("b", keys[i], src, {}).ok());
  }
  // A temporary object is never listed.
  grin::testing::WriteFile(tmp.file("s/b/p/A/.grin-tmp-1@h-ab"), "tmp");
  for (const char* prefix_text : {"", "p/", "p", "p/A", "p/sub/", "q/", "none/"}) {
    const std::string prefix = prefix_text;
    std::vector<std::pair<std::string, uint64_t>> paged, walked;
    std::string token;
    do {
      auto page = s.List("b", prefix, token, 2);
      REQUIRE(page.ok());
      for (const auto& o : page->objects) paged.emplace_back(o.key, o.size);
      token = page->next_token;
    } while (!token.empty());
    REQUIRE(s.ForEachObject("b", prefix, [&](const ObjectInfo& o) {
                walked.emplace_back(o.key, o.size);
                CHECK(!o.etag.empty());
                return Status::Ok();
              }).ok());
    CHECK_MESSAGE(walked == paged, prefix);
  }
  CHECK(s.ForEachObject("nobucket", "", [](const ObjectInfo&) { return Status::Ok(); }).code() ==
        StatusCode::kNotFound);
  // fn's error ends the walk.
  int seen = 0;
  Status st = s.ForEachObject("b", "", [&](const ObjectInfo&) {
    return ++seen == 2 ? Status::Cancelled("enough") : Status::Ok();
  });
  CHECK(st.code() == StatusCode::kCancelled);
  CHECK(seen == 2);
}

TEST_CASE("verify: listed in the help, bad usage is exit 2, a missing run is exit 4") {
  auto h = Cli({"--help"});
  CHECK(h.out.find("verify") != std::string::npos);
  auto v = Cli({"verify", "--help"});
  CHECK(v.code == 0);
  CHECK(v.out.find("--requeue") != std::string::npos);
  CHECK(Cli({"verify"}).code == 2);
  CHECK(Cli({"verify", "--run-dir", "/nonexistent", "--deep-concurrency", "0"}).code == 2);
  grin::testing::TempDir tmp;
  auto init = Cli({"init", "--run-dir", tmp.file("run"), "--library-directory", "TEST",
                   "--storage", "local", "--storage-path", tmp.file("storage")});
  REQUIRE(init.code == 0);
  std::filesystem::remove(tmp.file("run") + "/books.db");
  auto r = Cli({"verify", "--run-dir", tmp.file("run")});
  CHECK(r.code == 4);
  CHECK(r.err.find("grin-jobs verify: ") == 0);
}

TEST_CASE("verify: local storage, each damage reported, --deep hashes, --requeue and sync repair") {
  SyncEnv env(24, 0.7, 11);
  auto sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.out << sync.err);
  const std::set<std::string> uploaded = env.Uploaded();
  std::vector<std::string> done(uploaded.begin(), uploaded.end());
  REQUIRE(done.size() >= 8);

  // A clean run matches, table and JSON.
  auto clean = Cli(VerifyArgs(env));
  INFO(clean.out << clean.err);
  CHECK(clean.code == 0);
  CHECK(clean.out.find("all match") != std::string::npos);
  auto doc = VerifyJson(env, {"--deep"}, 0);
  CHECK(doc["ok"] == true);
  CHECK(doc["done"].get<size_t>() == done.size());
  CHECK(doc["deep_checked"].get<size_t>() == done.size());
  CHECK(doc["deep_unrecorded"] == 0);
  CHECK(doc["unknown_objects"] == 0);

  // Damage.
  const std::string ocr_gone = done[0], truncated = done[1], flipped = done[2], raw_gone = done[3],
                    marc_gone = done[4], tmp_beside = done[5];
  std::filesystem::remove(env.OcrPath(ocr_gone));
  std::filesystem::remove(env.OcrPath(ocr_gone) + ".grin-meta.json");
  std::filesystem::resize_file(env.RawPath(truncated),
                               std::filesystem::file_size(env.RawPath(truncated)) / 2);
  FlipLastByte(env.RawPath(flipped));
  std::filesystem::remove(env.RawPath(raw_gone));
  {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE, 10000);
    SQLite::Statement u(db, "UPDATE books SET marc_extraction_timestamp = NULL WHERE barcode = ?");
    u.bind(1, marc_gone);
    REQUIRE(u.exec() == 1);
  }
  std::filesystem::create_directories(env.storage + "/raw/ZZUNKNOWN1");
  grin::testing::WriteFile(env.storage + "/raw/ZZUNKNOWN1/ZZUNKNOWN1.tar.gz", "not ours");
  grin::testing::WriteFile(env.storage + "/raw/stray.txt", "stray");
  const std::string tmp_obj =
      std::filesystem::path(env.RawPath(tmp_beside)).parent_path().string() +
      "/.grin-tmp-old-writer";
  grin::testing::WriteFile(tmp_obj, "half a write");
  std::filesystem::last_write_time(
      tmp_obj, std::filesystem::file_time_type::clock::now() - std::chrono::hours(48));

  // Shallow: everything but the same-size change.
  doc = VerifyJson(env, {}, 6);
  auto problems = Problems(doc);
  CHECK(problems[ocr_gone] == std::set<std::string>{"ocr_missing"});
  CHECK(problems[truncated] == std::set<std::string>{"raw_size"});
  CHECK(problems[raw_gone] == std::set<std::string>{"raw_missing"});
  CHECK(problems[marc_gone] == std::set<std::string>{"marc_missing"});
  CHECK(problems.count(flipped) == 0);
  CHECK(problems.size() == 4);
  CHECK(doc["books_mismatched"] == 4);
  CHECK(doc["unknown_objects"] == 2);
  std::set<std::string> unknown;
  for (const auto& k : doc["unknown_sample"]) unknown.insert(k.get<std::string>());
  CHECK(unknown == std::set<std::string>{"raw/ZZUNKNOWN1/ZZUNKNOWN1.tar.gz", "raw/stray.txt"});
  CHECK(doc["litter"]["temporary_objects_removed"] == 1);
  CHECK(!std::filesystem::exists(tmp_obj));
  // The table names each book and the way out.
  auto table = Cli(VerifyArgs(env));
  CHECK(table.code == 6);
  CHECK(table.out.find(truncated) != std::string::npos);
  CHECK(table.out.find("raw_size") != std::string::npos);
  CHECK(table.out.find("4 books mismatch") != std::string::npos);
  CHECK(table.out.find("--requeue") != std::string::npos);

  // Deep: the changed bytes too.
  doc = VerifyJson(env, {"--deep"}, 6);
  problems = Problems(doc);
  CHECK(problems[flipped] == std::set<std::string>{"raw_sha256"});
  CHECK(problems.size() == 5);

  // Requeue, then sync: only the bad archives come from GRIN again.
  std::map<std::string, int64_t> gets;
  for (const auto& b : done) gets[b] = env.Gets(b);
  doc = VerifyJson(env, {"--deep", "--requeue"}, 6);
  CHECK(doc["requeued"] == 5);
  CHECK(doc["raw_deleted"] == 2);  // truncated and flipped
  CHECK(!std::filesystem::exists(env.RawPath(truncated)));
  CHECK(!std::filesystem::exists(env.RawPath(flipped)));
  CHECK(env.Sql("SELECT COUNT(*) FROM jobs WHERE stage = 'pending' AND barcode IN ('" + ocr_gone +
                "','" + truncated + "','" + flipped + "','" + raw_gone + "','" + marc_gone +
                "')") == 5);
  sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.out << sync.err);
  for (const auto& b : {truncated, flipped, raw_gone}) CHECK_MESSAGE(env.Gets(b) > gets[b], b);
  for (const auto& b : {ocr_gone, marc_gone}) CHECK_MESSAGE(env.Gets(b) == gets[b], b);
  doc = VerifyJson(env, {"--deep"}, 0);
  CHECK(doc["ok"] == true);
  CHECK(doc["deep_checked"].get<size_t>() == done.size());
  CHECK(doc["unknown_objects"] == 2);  // reported, never deleted
  CHECK(std::filesystem::exists(env.storage + "/raw/stray.txt"));
}

TEST_CASE("verify: a run held by another process is exit 3, nothing touched") {
  SyncEnv env(6, 1.0, 5);
  auto sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE(sync.code == 0);
  auto lock = storage::RunLock::Acquire(env.run + "/books.db");
  REQUIRE(lock.ok());
  auto r = Cli(VerifyArgs(env, {"--requeue"}));
  CHECK(r.code == 3);
  CHECK(r.err.find("in use by another grin-jobs process") != std::string::npos);
}

TEST_CASE("verify: Swift S3, damage reported by listing, an abandoned upload aborted, repaired") {
  if (std::getenv("GRIN_S3_ENV") == nullptr) {
    MESSAGE("skipping: set GRIN_S3_ENV for the Swift S3 server");
    return;
  }
  SyncEnv env(16, 0.8, 7);
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  const std::string suffix = "verify-" + std::to_string(::getpid());
  const nlohmann::json swift_storage = PointRunAtSwift(env, swift, suffix);
  auto sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.out << sync.err);
  const std::set<std::string> uploaded = env.Uploaded();
  std::vector<std::string> done(uploaded.begin(), uploaded.end());
  REQUIRE(done.size() >= 5);
  auto doc = VerifyJson(env, {"--deep"}, 0);
  CHECK(doc["deep_checked"].get<size_t>() == done.size());
  CHECK(doc["deep_unrecorded"] == 0);

  // Damage through the S3 API, as another client would.
  net::TransportOptions to;
  to.ca_file = swift.get("GRIN_S3_CA_FILE");
  auto transport = net::CurlTransport::Create(to);
  REQUIRE(transport.ok());
  auto opened = cli::OpenObjectStore(swift_storage, transport->get());
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  ObjectStore& s3 = *opened->store;
  const StorageLayout& layout = opened->layout;
  const std::string ocr_gone = done[0], shortened = done[1], replaced = done[2],
                    uploading = done[3];
  auto full = FullTextLocation(layout, ocr_gone);
  REQUIRE(s3.DeleteMany(full.bucket, {full.key}).ok());
  auto raw1 = RawArchiveLocation(layout, shortened);
  auto head1 = s3.Head(raw1.bucket, raw1.key);
  REQUIRE(head1.ok());
  PutOptions keep_meta;
  keep_meta.metadata = head1->metadata;
  MemorySource short_body("shorter than an archive");
  REQUIRE(s3.Put(raw1.bucket, raw1.key, short_body, keep_meta).ok());
  // Same size, other bytes, metadata kept: only --deep sees it.
  auto raw2 = RawArchiveLocation(layout, replaced);
  StringObjectSink original;
  auto got = s3.Get(raw2.bucket, raw2.key, original);
  REQUIRE(got.ok());
  std::string other = original.str();
  other.back() = static_cast<char>(other.back() ^ 0x5a);
  keep_meta.metadata = got->metadata;
  MemorySource other_body(other);
  REQUIRE(s3.Put(raw2.bucket, raw2.key, other_body, keep_meta).ok());
  MemorySource stray("stray");
  REQUIRE(s3.Put(raw1.bucket, "not-a-book.txt", stray, {}).ok());
  auto raw3 = RawArchiveLocation(layout, uploading);
  auto upload_id = s3.BeginMultipart(raw3.bucket, raw3.key, {});
  REQUIRE(upload_id.ok());

  doc = VerifyJson(env, {}, 6);
  auto problems = Problems(doc);
  CHECK(problems[ocr_gone] == std::set<std::string>{"ocr_missing"});
  CHECK(problems[shortened] == std::set<std::string>{"raw_size"});
  CHECK(problems.size() == 2);
  CHECK(doc["unknown_objects"] == 1);
  CHECK(doc["unknown_sample"][0] == raw1.bucket + "/not-a-book.txt");
  CHECK(doc["litter"]["multipart_uploads_aborted"].size() == 1);
  CHECK(doc["litter"]["multipart_uploads_aborted"][0] == raw3.bucket + "/" + raw3.key);
  auto pending = s3.ListPendingUploads(raw3.bucket, "");
  REQUIRE(pending.ok());
  CHECK(pending->empty());

  doc = VerifyJson(env, {"--deep", "--requeue"}, 6);
  problems = Problems(doc);
  CHECK(problems[replaced] == std::set<std::string>{"raw_sha256"});
  CHECK(problems.size() == 3);
  CHECK(doc["requeued"] == 3);
  CHECK(doc["raw_deleted"] == 2);
  sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.out << sync.err);
  doc = VerifyJson(env, {"--deep"}, 0);
  CHECK(doc["ok"] == true);
  CHECK(doc["deep_checked"].get<size_t>() == done.size());
}

}  // namespace
}  // namespace grin::pipeline::testing
