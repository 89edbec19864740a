// End to end against a real, strict S3: OpenStack Swift + s3api behind nginx TLS with a test CA
// (scripts/s3-server). The server is found through GRIN_S3_ENV=<statedir>/env; without it each
// test case starts a private instance and stops it afterwards. Objects are checked byte for byte
// and for metadata with an independent client (boto3).

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/net/curl_transport.h"
#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "storage/s3/s3_object_store.h"
#include "tests/s3/subprocess.h"
#include "tests/support/swift_server.h"
#include "tests/support/temp_dir.h"

namespace grin::s3 {
namespace {
TEST_SUITE_BEGIN("integration");

using grin::testing::RunProcess;
using grin::testing::SourceDir;
using grin::testing::TempDir;

using grin::testing::SwiftServer;

struct Client {
  Client(const SwiftServer& server, const std::string& secret_override = "") {
    net::TransportOptions o;
    o.ca_file = server.get("GRIN_S3_CA_FILE");
    o.max_connections_per_host = 8;
    auto t = net::CurlTransport::Create(o);
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    transport = std::move(*t);
    S3Config c;
    c.endpoint_url = server.get("GRIN_S3_ENDPOINT");
    c.region = server.get("GRIN_S3_REGION");
    Credentials creds{server.get("GRIN_S3_ACCESS_KEY"),
                      secret_override.empty() ? server.get("GRIN_S3_SECRET_KEY") : secret_override,
                      ""};
    auto s = S3ObjectStore::Create(c, creds, transport.get());
    REQUIRE(s.ok());
    store = std::move(*s);
  }
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<S3ObjectStore> store;
};

std::string RandomName(const std::string& prefix) {
  std::random_device rd;
  return prefix + "-" + std::to_string(rd() % 1000000000);
}

// Writes n pseudo-random bytes to path; returns their SHA-256 hex.
std::string WriteRandomFile(const std::string& path, uint64_t n, uint32_t seed) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(seed);
  Hasher h(Hasher::Kind::kSha256);
  std::string buf;
  for (uint64_t done = 0; done < n;) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(1 << 20, n - done));
    buf.resize(k);
    for (size_t i = 0; i < k; i += 8) {
      uint64_t v = rng();
      std::memcpy(buf.data() + i, &v, std::min<size_t>(8, k - i));
    }
    out.write(buf.data(), static_cast<std::streamsize>(k));
    h.Update(buf);
    done += k;
  }
  return HexEncode(h.Final());
}

class HashSink final : public ObjectSink {
 public:
  Status Write(std::string_view d) override {
    h_->Update(d);
    n_ += d.size();
    return Status::Ok();
  }
  bool Restart() override {
    h_ = std::make_unique<Hasher>(Hasher::Kind::kSha256);
    n_ = 0;
    return true;
  }
  std::string Hex() { return HexEncode(h_->Final()); }
  uint64_t n_ = 0;

 private:
  std::unique_ptr<Hasher> h_ = std::make_unique<Hasher>(Hasher::Kind::kSha256);
};

TEST_CASE("swift: buckets, 0 B to 200 MiB objects, metadata, checked with boto3" *
          doctest::timeout(240)) {
  SwiftServer server(SourceDir());
  Client c(server);
  TempDir dir;
  StorageLayout layout;
  layout.bucket_raw = RandomName("grin-raw");
  layout.bucket_meta = RandomName("grin-meta");
  layout.bucket_full = RandomName("grin-full");
  for (const auto& b : {layout.bucket_raw, layout.bucket_meta, layout.bucket_full}) {
    REQUIRE(c.store->EnsureBucket(b).ok());
    REQUIRE(c.store->EnsureBucket(b).ok());  // idempotent
    CHECK(c.store->HeadBucket(b).ok());
  }
  CHECK(c.store->HeadBucket(RandomName("grin-none")).code() == StatusCode::kNotFound);

  struct Item {
    std::string barcode;
    uint64_t size = 0;
    std::string file, sha;
    ObjectLocation loc;
  };
  const uint64_t five = 5 * kMiB;
  std::vector<Item> items;
  for (auto [name, size] : std::vector<std::pair<std::string, uint64_t>>{
           {"EMPTY0", 0}, {"ONEBYTE1", 1}, {"FIVEMINUS", five - 1}, {"FIVEEXACT", five},
           {"FIVEPLUS", five + 1}, {"BIG200", 200 * kMiB}}) {
    Item item;
    item.barcode = name;
    item.size = size;
    items.push_back(item);
  }
  uint32_t seed = 1;
  nlohmann::json check = nlohmann::json::array();
  for (auto& it : items) {
    it.file = dir.file(it.barcode);
    it.sha = WriteRandomFile(it.file, it.size, seed++);
    it.loc = RawArchiveLocation(layout, it.barcode);
    auto src = FileSource::Open(it.file);
    REQUIRE(src.ok());
    UploadOptions u;
    u.put.metadata = RawArchiveMetadata(it.barcode, "\"grin-" + it.barcode + "\"",
                                        "2026-11-28T21:00:00");
    u.parallel_parts = 4;
    auto put = c.store->Upload(it.loc.bucket, it.loc.key, **src, u);
    INFO("object " << it.barcode);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    CHECK(put->size == it.size);
    HashSink sink;
    auto got = c.store->Get(it.loc.bucket, it.loc.key, sink);
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(sink.n_ == it.size);
    CHECK(sink.Hex() == it.sha);
    auto head = c.store->Head(it.loc.bucket, it.loc.key);
    REQUIRE(head.ok());
    CHECK(head->size == it.size);
    const std::string* etag_meta = FindMetadata(head->metadata, "encrypted_etag");
    REQUIRE(etag_meta != nullptr);
    CHECK(*etag_meta == "grin-" + it.barcode);
    check.push_back({{"bucket", it.loc.bucket}, {"key", it.loc.key}, {"file", it.file}});
  }
  // A range of the big one.
  {
    StringObjectSink part;
    auto r = c.store->Get(items.back().loc.bucket, items.back().loc.key, part,
                          ByteRange{100 * kMiB - 3, 10});
    REQUIRE(r.ok());
    CHECK(r->size == 200 * kMiB);
    std::ifstream f(items.back().file, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(100 * kMiB - 3));
    std::string expect(10, '\0');
    f.read(expect.data(), 10);
    CHECK(part.str() == expect);
  }
  // Digests known in advance (the sync pipeline's case): streamed from the file with the signed
  // SHA-256 and Content-MD5, both verified by the real server; nothing hashed locally.
  {
    const Item& it = items[4];  // FIVEPLUS
    auto src = FileSource::Open(it.file);
    REQUIRE(src.ok());
    std::string whole;
    {
      std::ifstream f(it.file, std::ios::binary);
      whole.assign(std::istreambuf_iterator<char>(f), {});
    }
    PutOptions known;
    known.sha256_hex = it.sha;
    known.md5_hex = HexEncode(Md5(whole));
    const std::string key = it.loc.key + ".known";
    auto put = c.store->Put(layout.bucket_full, key, **src, known);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    CHECK(put->etag == known.md5_hex);
    CHECK(put->sha256_hex == it.sha);
    HashSink sink;
    REQUIRE(c.store->Get(layout.bucket_full, key, sink).ok());
    CHECK(sink.Hex() == it.sha);
    check.push_back({{"bucket", layout.bucket_full}, {"key", key}, {"file", it.file}});
  }
  // Hostile keys round-trip through the real server's signature check.
  std::string hostile_file = dir.file("hostile");
  WriteRandomFile(hostile_file, 1000, 99);
  for (std::string key : std::vector<std::string>{"dir/a b+c=d&e?f%g~h", "caf\xc3\xa9/\xe6\x97\xa5 x",
                                                  "odd;,:@$!*'()[]{}^|`", "a//b/./c"}) {
    auto src = FileSource::Open(hostile_file);
    REQUIRE(src.ok());
    auto put = c.store->Put(layout.bucket_full, key, **src, {});
    INFO("key " << key);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    check.push_back({{"bucket", layout.bucket_full}, {"key", key}, {"file", hostile_file}});
  }

  // Independent client: byte-identical, right size, metadata.
  auto r = RunProcess({"/usr/bin/python3", SourceDir() + "/tests/s3/verify_boto3.py"},
                      check.dump(), server.ChildEnv());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::istringstream lines(r.out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    INFO("boto3 " << line);
    CHECK(j["same"].get<bool>());
    if (n < items.size()) {
      CHECK(j["size"].get<uint64_t>() == items[n].size);
      // Swift turns '_' into '-' in metadata names of multipart uploads (FindMetadata).
      // No digests given: multipart above single_put_hash_limit.
      const bool multipart = items[n].size > S3Config{}.single_put_hash_limit;
      auto meta = [&](std::string name) {
        if (multipart) std::replace(name.begin(), name.end(), '_', '-');
        return j["metadata"][name];
      };
      CHECK(meta("encrypted_etag") == "grin-" + items[n].barcode);
      CHECK(meta("barcode") == items[n].barcode);
      CHECK(meta("original_filename") == items[n].barcode + ".tar.gz.gpg");
      CHECK(meta("acquisition_date") == "2026-11-28T21:00:00");
      CHECK((j["etag"].get<std::string>().find('-') != std::string::npos) == multipart);
    }
    ++n;
  }
  CHECK(n == check.size());

  // List and clean up.
  auto listed = c.store->ListAll(layout.bucket_raw, "");
  REQUIRE(listed.ok());
  CHECK(listed->size() == items.size());
  for (const auto& b : {layout.bucket_raw, layout.bucket_full}) {
    auto all = c.store->ListAll(b, "");
    REQUIRE(all.ok());
    std::vector<std::string> keys;
    for (const auto& o : *all) keys.push_back(o.key);
    auto del = c.store->DeleteMany(b, keys);
    REQUIRE_MESSAGE(del.ok(), del.status().ToString());
    CHECK(del->empty());
    auto after = c.store->ListAll(b, "");
    REQUIRE(after.ok());
    CHECK(after->empty());
  }
}

TEST_CASE("swift: a wrong secret and a wrong payload hash each fail with one clear line" *
          doctest::timeout(120)) {
  SwiftServer server(SourceDir());
  Client good(server);
  const std::string bucket = RandomName("grin-err");
  REQUIRE(good.store->EnsureBucket(bucket).ok());
  MemorySource src("some bytes");

  Client bad(server, "wrong-secret-value");
  auto put = bad.store->Put(bucket, "k", src, {});
  CHECK(put.status().code() == StatusCode::kPermissionDenied);
  const std::string m = put.status().message();
  CHECK(m.find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(m.find('\n') == std::string::npos);
  CHECK(m.find("wrong-secret-value") == std::string::npos);
  CHECK(m.find(server.get("GRIN_S3_SECRET_KEY")) == std::string::npos);
  auto head = bad.store->Head(bucket, "k");
  CHECK(head.status().code() == StatusCode::kPermissionDenied);
  MESSAGE("wrong secret: " << put.status().ToString());

  PutOptions wrong;
  wrong.sha256_hex = Sha256Hex("other bytes");
  auto r = good.store->Put(bucket, "k", src, wrong);
  CHECK(r.status().code() == StatusCode::kDataLoss);
  CHECK(r.status().message().find('\n') == std::string::npos);
  MESSAGE("wrong payload hash: " << r.status().ToString());
  PutOptions wrong_md5;
  wrong_md5.md5_hex = HexEncode(Md5("other bytes"));
  auto r2 = good.store->Put(bucket, "k", src, wrong_md5);
  CHECK(r2.status().code() == StatusCode::kDataLoss);
  CHECK(good.store->Head(bucket, "k").status().code() == StatusCode::kNotFound);
}

TEST_SUITE_END();
}  // namespace
}  // namespace grin::s3
