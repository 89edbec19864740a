// Benchmark of `grin-jobs verify` (not a test; scripts/bench-verify drives it).
//   bench_verify make   RUN STORAGE N            a synthesised run of N done books: books.db
//                                                 (jobs at uploaded, upload events with bytes
//                                                 and SHA-256, MARC columns) and local-folder
//                                                 objects (raw + OCR, 64 bytes each, written as
//                                                 the local store lays them out, no fsync)
//   bench_verify make-s3 RUN N                   the same on the S3 store RUN is set up for (Put, 16 in
//                                                 flight)
//   bench_verify compare RUN M                    one invocation: `verify` (listing, every book)
//                                                 then a HEAD per object (raw + OCR) for the
//                                                 first M books; prints both and the ratio of
//                                                 time per book
// The run directory holds run_config.json as `init` writes it.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/object_store_factory.h"
#include "cli/run_config.h"
#include "engine/archive/digest.h"
#include "engine/net/curl_transport.h"
#include "storage/sqlite_state_store.h"

namespace fs = std::filesystem;
using namespace grin;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Barcode(int64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "BV%08lld", static_cast<long long>(i));
  return b;
}

std::string Body(int64_t i) {
  std::string s(64, '\0');
  std::mt19937_64 r(static_cast<uint64_t>(i));
  for (auto& c : s) c = static_cast<char>(r());
  return s;
}

std::string Sha(const std::string& s) {
  archive::StreamDigests d(true);
  d.Update(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  d.Final();
  return d.sha256_hex() + " " + d.md5_hex();
}

int Cli(std::vector<std::string> args, std::string* out = nullptr) {
  std::ostringstream o, e;
  int code = cli::RunCli(args, o, e);
  if (out) *out = o.str();
  if (code != 0 && code != 6) std::cerr << e.str();
  return code;
}

// books.db: n jobs at uploaded with their upload facts.
int MakeState(const std::string& run, int64_t n) {
  storage::StateStoreOptions so;
  so.create_if_missing = false;
  auto store = storage::SqliteStateStore::Open(cli::DbPath(run), so);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  const int64_t batch = 1000;
  for (int64_t at = 0; at < n; at += batch) {
    std::vector<std::string> bs;
    for (int64_t i = at; i < std::min(n, at + batch); ++i) bs.push_back(Barcode(i));
    (void)(*store)->Enqueue(bs);
    auto items = (*store)->Claim(Stage::kPending, static_cast<int>(bs.size()));
    if (!items.ok()) return 1;
    std::vector<Completion> cs;
    for (auto& w : *items) {
      int64_t i = std::stoll(w.barcode.substr(2));
      std::string digests = Sha(Body(i));
      Completion c;
      c.item = w;
      c.to = Stage::kUploaded;
      c.detail_json = nlohmann::json{{"etag", "e" + std::to_string(i)},
                                     {"bytes", 64},
                                     {"sha256", digests.substr(0, 64)}}
                          .dump();
      c.book_fields = {{"encrypted_etag", "e" + std::to_string(i)},
                       {"marc_extraction_timestamp", "2026-01-01T00:00:00Z"}};
      cs.push_back(std::move(c));
    }
    (void)(*store)->CompleteMany(std::move(cs));
  }
  return (*store)->Flush().ok() ? 0 : 1;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

int MakeLocal(const std::string& storage_dir, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    std::string b = Barcode(i), body = Body(i), d = Sha(body);
    fs::create_directories(storage_dir + "/raw/" + b);
    std::string raw = storage_dir + "/raw/" + b + "/" + b + ".tar.gz";
    WriteFile(raw, body);
    nlohmann::json meta = {{"size", 64},
                           {"etag", d.substr(65)},
                           {"sha256", d.substr(0, 64)},
                           {"content_type", "application/gzip"},
                           {"metadata", RawArchiveMetadata(b, "e" + std::to_string(i), "x")}};
    WriteFile(raw + ".grin-meta.json", meta.dump());
    std::string ocr = storage_dir + "/full/" + b + "_ocr.jsonl.gz";
    if (i == 0) fs::create_directories(storage_dir + "/full");
    WriteFile(ocr, body);
    meta["metadata"] = nlohmann::json::object();
    WriteFile(ocr + ".grin-meta.json", meta.dump());
  }
  return 0;
}

struct Opened {
  std::unique_ptr<net::CurlTransport> transport;
  cli::OpenedObjectStore store;
};

Result<Opened> OpenStore(const std::string& run) {
  GRIN_ASSIGN_OR_RETURN(cli::RunConfig cfg, cli::LoadRunConfig(run));
  Opened o;
  if (cfg.storage.value("type", "local") != "local") {
    net::TransportOptions to;
    to.ca_file = cfg.storage.value("ca_file", "");
    GRIN_ASSIGN_OR_RETURN(o.transport, net::CurlTransport::Create(to));
  }
  GRIN_ASSIGN_OR_RETURN(o.store, cli::OpenObjectStore(cfg.storage, o.transport.get()));
  return o;
}

int MakeS3(const std::string& run, int64_t n) {
  auto o = OpenStore(run);
  if (!o.ok()) {
    std::cerr << o.status().ToString() << "\n";
    return 1;
  }
  ObjectStore& s = *o->store.store;
  const StorageLayout& l = o->store.layout;
  for (const auto& b : {l.bucket_raw, l.bucket_full, l.bucket_meta}) {
    if (!s.EnsureBucket(b).ok()) return 1;
  }
  std::atomic<int64_t> next{0};
  std::atomic<int> errors{0};
  auto worker = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      std::string b = Barcode(i), body = Body(i);
      MemorySource src(body);
      PutOptions po;
      po.metadata = RawArchiveMetadata(b, "e" + std::to_string(i), "x");
      auto raw = RawArchiveLocation(l, b);
      auto full = FullTextLocation(l, b);
      if (!s.Put(raw.bucket, raw.key, src, po).ok()) ++errors;
      if (!s.Put(full.bucket, full.key, src, {}).ok()) ++errors;
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
  return errors == 0 ? 0 : 1;
}

int Compare(const std::string& run, int64_t m) {
  double t0 = Now();
  std::string out;
  int code = Cli({"verify", "--run-dir", run, "--json"}, &out);
  double verify_s = Now() - t0;
  if (code != 0) {
    std::cerr << "verify exit " << code << "\n" << out.substr(0, 2000) << "\n";
    return 1;
  }
  auto doc = nlohmann::json::parse(out);
  int64_t books = doc["done"].get<int64_t>();
  auto o = OpenStore(run);
  if (!o.ok()) return 1;
  ObjectStore& s = *o->store.store;
  const StorageLayout& l = o->store.layout;
  m = std::min(m, books);
  t0 = Now();
  int64_t found = 0;
  for (int64_t i = 0; i < m; ++i) {
    std::string b = Barcode(i);
    auto raw = RawArchiveLocation(l, b);
    auto full = FullTextLocation(l, b);
    found += s.Head(raw.bucket, raw.key).ok() && s.Head(full.bucket, full.key).ok();
  }
  double head_s = Now() - t0;
  double per_list = verify_s / static_cast<double>(books);
  double per_head = head_s / static_cast<double>(std::max<int64_t>(m, 1));
  std::printf("storage: %s\n", s.Describe().c_str());
  std::printf("verify (listing):     %lld books  %8.2f s  %8.1f us/book  (%lld objects listed)\n",
              static_cast<long long>(books), verify_s, per_list * 1e6,
              static_cast<long long>(doc["objects_listed"].get<int64_t>()));
  std::printf("HEAD per object:      %lld books  %8.2f s  %8.1f us/book  (%lld of them found)\n",
              static_cast<long long>(m), head_s, per_head * 1e6, static_cast<long long>(found));
  std::printf("ratio HEAD/listing per book: %.1fx; HEADs for all %lld books would take ~%.0f s\n",
              per_head / per_list, static_cast<long long>(books), per_head * books);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 4 && a[0] == "make") {
    double t0 = Now();
    if (MakeState(a[1], std::stoll(a[3])) != 0) return 1;
    double t1 = Now();
    if (MakeLocal(a[2], std::stoll(a[3])) != 0) return 1;
    std::printf("made %s books: state %.1f s, objects %.1f s\n", a[3].c_str(), t1 - t0, Now() - t1);
    return 0;
  }
  if (a.size() == 3 && a[0] == "make-s3") {
    double t0 = Now();
    if (MakeState(a[1], std::stoll(a[2])) != 0) return 1;
    double t1 = Now();
    if (MakeS3(a[1], std::stoll(a[2])) != 0) return 1;
    std::printf("made %s books: state %.1f s, objects %.1f s\n", a[2].c_str(), t1 - t0, Now() - t1);
    return 0;
  }
  if (a.size() == 3 && a[0] == "compare") return Compare(a[1], std::stoll(a[2]));
  std::cerr << "usage: bench_verify make RUN STORAGE N | make-s3 RUN N | compare RUN M\n";
  return 2;
}
