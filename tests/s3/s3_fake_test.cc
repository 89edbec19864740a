// S3ObjectStore over the real CurlTransport against the in-process FakeS3: protocol details and
// the faults a real server cannot produce on demand.

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>

#include "engine/net/curl_transport.h"
#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "storage/s3/s3_object_store.h"
#include "tests/s3/fake_s3.h"

namespace grin::s3 {
namespace {

using grin::testing::FakeS3;

constexpr const char* kKey = "AKIDFAKEEXAMPLE";
constexpr const char* kSecret = "fake/secret+key=";

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

struct Fixture {
  explicit Fixture(Clock* clock = nullptr, std::string secret = kSecret,
                   uint64_t single_put_hash_limit = 16 * kMiB)
      : server(kKey, kSecret) {
    net::TransportOptions o;
    o.retry.base_delay_ms = 1;
    o.retry.throttle_base_delay_ms = 2;
    o.retry.max_attempts = 4;
    o.max_connections_per_host = 8;
    auto t = net::CurlTransport::Create(o);
    REQUIRE(t.ok());
    transport = std::move(*t);
    S3Config c;
    c.endpoint_url = server.endpoint();
    c.single_put_hash_limit = single_put_hash_limit;
    auto s = S3ObjectStore::Create(c, {kKey, std::move(secret), ""}, transport.get(), clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    server.CreateBucket("b");
  }
  uint64_t NewConnections() const {
    uint64_t n = 0;
    for (const auto& h : transport->HostStats()) n += h.new_connections;
    return n;
  }
  FakeS3 server;
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<S3ObjectStore> store;
};

TEST_CASE("fake S3: round trip with metadata, ranges, hostile keys, list pages, batch delete") {
  Fixture f;
  std::string data = Pattern(300'000, 1);
  MemorySource src(data);
  PutOptions o;
  o.metadata = RawArchiveMetadata("B1", "\"grin-etag\"", "2026-11-28T21:00:00");
  const std::vector<std::string> keys = {
      "raw/B1/B1.tar.gz", "a b+c=d&e?f%g~h", "dir//x/./y/../z", "caf\xc3\xa9/\xe6\x97\xa5.bin",
      "semi;colon,comma:@$!*'()[]"};
  for (const auto& key : keys) {
    INFO("key " << key);
    auto put = f.store->Put("b", key, src, o);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    // Buffered, no digests given: SHA-256 only (signed), no MD5 computed, none reported.
    CHECK(put->sha256_hex == Sha256Hex(data));
    CHECK(put->md5_hex.empty());
    CHECK(put->etag == HexEncode(Md5(data)));
    CHECK(f.server.LastIntegrity("PUT").payload_hash == put->sha256_hex);
    CHECK(f.server.LastIntegrity("PUT").content_md5.empty());
    FakeS3::Object stored;
    REQUIRE(f.server.GetObject("b", key, &stored));
    CHECK(stored.data == data);
    auto head = f.store->Head("b", key);
    REQUIRE(head.ok());
    CHECK(head->size == data.size());
    CHECK(head->metadata.at("encrypted_etag") == "grin-etag");
    StringObjectSink sink;
    REQUIRE(f.store->Get("b", key, sink).ok());
    CHECK(sink.str() == data);
    sink.clear();
    auto part = f.store->Get("b", key, sink, ByteRange{1000, 10});
    REQUIRE_MESSAGE(part.ok(), part.status().ToString());
    CHECK(part->size == data.size());
    CHECK(sink.str() == data.substr(1000, 10));
  }
  CHECK(f.server.signature_failures() == 0);
  CHECK(f.store->Head("b", "missing").status().code() == StatusCode::kNotFound);
  StringObjectSink sink;
  auto missing = f.store->Get("b", "missing", sink);
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("NoSuchKey") != std::string::npos);
  CHECK(sink.str().empty());  // the error document never reaches the caller's sink

  // 2,500 small objects: list in pages of 1,000 (tokens carry / + =), delete in 3 batches.
  MemorySource tiny("x");
  std::vector<std::string> many;
  for (int i = 0; i < 2500; ++i) many.push_back("many/" + std::to_string(100000 + i));
  for (const auto& k : many) REQUIRE(f.store->Put("b", k, tiny, {}).ok());
  auto all = f.store->ListAll("b", "many/");
  REQUIRE(all.ok());
  CHECK(all->size() == 2500);
  CHECK(f.server.Count("List") == 3);
  auto del = f.store->DeleteMany("b", many);
  REQUIRE(del.ok());
  CHECK(del->empty());
  CHECK(f.server.Count("Delete") == 3);
  auto after = f.store->ListAll("b", "many/");
  REQUIRE(after.ok());
  CHECK(after->empty());
  CHECK(f.NewConnections() <= 8);  // keep-alive: not one connection per request
}

TEST_CASE("fake S3: SlowDown bursts and 500s are retried, re-signed each time") {
  Fixture f;
  std::string data = Pattern(1000, 2);
  MemorySource src(data);
  f.server.AddFault({"PUT", 2, 503, "SlowDown"});
  REQUIRE(f.store->Put("b", "k1", src, {}).ok());
  CHECK(f.server.Count("PUT") == 3);
  f.server.AddFault({"HEAD", 3, 500, "InternalError"});
  REQUIRE(f.store->Head("b", "k1").ok());
  CHECK(f.server.Count("HEAD") == 4);
  // More failures than attempts: a clear retryable error.
  f.server.AddFault({"GET", 10, 503, "SlowDown"});
  StringObjectSink sink;
  auto r = f.store->Get("b", "k1", sink);
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK_MESSAGE(r.status().message().find("SlowDown") != std::string::npos,
                r.status().ToString());
  CHECK(r.status().message().find('\n') == std::string::npos);
  CHECK(sink.str().empty());
}

TEST_CASE("fake S3: truncated bodies are retried while possible, never returned short") {
  Fixture f;
  std::string small = Pattern(200'000, 3), big = Pattern(3 * kMiB, 4);
  MemorySource s1(small), s2(big);
  REQUIRE(f.store->Put("b", "small", s1, {}).ok());
  REQUIRE(f.store->Put("b", "big", s2, {}).ok());
  f.server.AddFault({"GET", 1, 200, "", /*truncate=*/true});
  StringObjectSink sink;
  auto r = f.store->Get("b", "small", sink);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(sink.str() == small);
  CHECK(f.server.Count("GET") == 2);
  // A sink that cannot start over: the cut is reported, not hidden.
  class OneShotSink final : public ObjectSink {
   public:
    Status Write(std::string_view d) override {
      n += d.size();
      return Status::Ok();
    }
    size_t n = 0;
  };
  f.server.AddFault({"GET", 1, 200, "", /*truncate=*/true});
  OneShotSink one_shot;
  auto rb = f.store->Get("b", "big", one_shot);
  CHECK(!rb.ok());
  CHECK(one_shot.n < big.size());
  // A restartable sink gets the whole body after a retry.
  f.server.AddFault({"GET", 1, 200, "", /*truncate=*/true});
  StringObjectSink big_sink;
  REQUIRE(f.store->Get("b", "big", big_sink).ok());
  CHECK(big_sink.str() == big);
}

TEST_CASE("fake S3: clock skew is corrected from the server's reply") {
  const int64_t real = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  FakeClock clock(real - 3600LL * 1'000'000);  // our clock is an hour slow
  Fixture f(&clock);
  MemorySource src("hello");
  auto put = f.store->Put("b", "skewed", src, {});
  REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  CHECK(f.server.Count("PUT") == 2);
  CHECK(std::llabs(f.store->clock_skew_micros() - 3600LL * 1'000'000) < 5'000'000);
  REQUIRE(f.store->Head("b", "skewed").ok());  // later requests are signed right the first time
  CHECK(f.server.Count("HEAD") == 1);
}

TEST_CASE("fake S3: RequestTimeout and 200-with-Error on Complete are retried") {
  Fixture f;
  MemorySource src("abc");
  f.server.AddFault({"PUT", 1, 400, "RequestTimeout"});
  REQUIRE(f.store->Put("b", "rt", src, {}).ok());
  CHECK(f.server.Count("PUT") == 2);
  std::string data = Pattern(11 * kMiB, 5);
  MemorySource big(data);
  FakeS3::Fault err200;
  err200.op = "Complete";
  err200.error_in_200 = true;
  f.server.AddFault(err200);
  UploadOptions u;
  u.multipart_threshold = 1;
  u.part_size = 5 * kMiB;
  auto r = f.store->Upload("b", "mp", big, u);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(f.server.Count("Complete") == 2);
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "mp", &o));
  CHECK(o.data == data);
  CHECK(o.etag.size() > 3);
  CHECK(o.etag.substr(o.etag.size() - 2) == "-3");
}

TEST_CASE("fake S3: wrong secret, wrong payload hash and wrong MD5 fail with one clear line") {
  Fixture bad(nullptr, "not-the-secret");
  MemorySource src("payload");
  auto put = bad.store->Put("b", "k", src, {});
  CHECK(put.status().code() == StatusCode::kPermissionDenied);
  CHECK(put.status().message().find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(put.status().message().find("not-the-secret") == std::string::npos);
  auto head = bad.store->Head("b", "k");
  CHECK(head.status().code() == StatusCode::kPermissionDenied);

  Fixture f;
  PutOptions wrong_sha;
  wrong_sha.sha256_hex = std::string(64, 'a');
  auto r1 = f.store->Put("b", "k", src, wrong_sha);
  CHECK(r1.status().code() == StatusCode::kDataLoss);
  CHECK(r1.status().message().find("XAmzContentSHA256Mismatch") != std::string::npos);
  PutOptions wrong_md5;
  wrong_md5.md5_hex = std::string(32, '0');
  CHECK(f.store->Put("b", "k", src, wrong_md5).status().code() == StatusCode::kDataLoss);
  FakeS3::Object o;
  CHECK(!f.server.GetObject("b", "k", &o));
}

TEST_CASE("fake S3: streamed single PUT hashes only what it needs and checks the ETag") {
  Fixture f(nullptr, kSecret, /*single_put_hash_limit=*/64 * 1024);
  std::string data = Pattern(2 * kMiB + 3, 6);
  const std::string md5 = HexEncode(Md5(data)), sha = Sha256Hex(data);
  MemorySource src(data);
  // No digests, above single_put_hash_limit, direct Put(): UNSIGNED-PAYLOAD, MD5 on the way,
  // checked against the ETag.
  auto put = f.store->Put("b", "stream", src, {});
  REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  CHECK(put->md5_hex == md5);
  CHECK(put->etag == md5);
  CHECK(put->sha256_hex.empty());  // not computed, so not reported
  CHECK(f.server.LastIntegrity("PUT").payload_hash == "UNSIGNED-PAYLOAD");
  // Known SHA-256 (the pipeline's case): signed, streamed, no MD5 sent or computed.
  PutOptions known_sha;
  known_sha.sha256_hex = sha;
  auto p2 = f.store->Put("b", "stream2", src, known_sha);
  REQUIRE_MESSAGE(p2.ok(), p2.status().ToString());
  CHECK(p2->sha256_hex == sha);
  CHECK(p2->md5_hex.empty());
  CHECK(p2->etag == md5);
  CHECK(f.server.LastIntegrity("PUT").payload_hash == sha);
  CHECK(f.server.LastIntegrity("PUT").content_md5.empty());
  // Both known: both sent, the server verifies both; the ETag is checked against the MD5.
  PutOptions known;
  known.md5_hex = md5;
  known.sha256_hex = sha;
  auto p3 = f.store->Put("b", "stream3", src, known);
  REQUIRE_MESSAGE(p3.ok(), p3.status().ToString());
  CHECK(p3->md5_hex == md5);
  CHECK(f.server.LastIntegrity("PUT").content_md5 == Base64Encode(Md5(data)));
  // A known SHA-256 the body does not match: the server refuses it, nothing is stored.
  std::string other = data;
  other[12345] ^= 1;
  MemorySource changed(other);
  auto bad = f.store->Put("b", "stream4", changed, known_sha);
  CHECK(bad.status().code() == StatusCode::kDataLoss);
  FakeS3::Object none;
  CHECK(!f.server.GetObject("b", "stream4", &none));
  // Upload() of that body: without a known SHA-256 it goes multipart (SHA-256 parts) rather than
  // MD5-streaming; with one it is a single PUT that hashes nothing.
  const int creates = f.server.Count("Create");
  UploadOptions u;
  auto up = f.store->Upload("b", "upload-nodigest", src, u);
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(f.server.Count("Create") == creates + 1);
  u.put.sha256_hex = sha;
  const int puts = f.server.Count("PUT");
  auto up2 = f.store->Upload("b", "upload-sha", src, u);
  REQUIRE_MESSAGE(up2.ok(), up2.status().ToString());
  CHECK(f.server.Count("Create") == creates + 1);
  CHECK(f.server.Count("PUT") == puts + 1);
  CHECK(f.server.LastIntegrity("PUT").payload_hash == sha);
  // A malformed md5_hex is refused before anything is sent.
  PutOptions junk;
  junk.md5_hex = "xyz";
  CHECK(f.store->Put("b", "stream5", src, junk).status().code() == StatusCode::kInvalidArgument);
  // A 503 mid-way: the streamed body is rewound and re-hashed for the retry.
  f.server.AddFault({"PUT", 1, 503, "SlowDown"});
  auto again = f.store->Put("b", "stream6", src, {});
  REQUIRE(again.ok());
  CHECK(again->md5_hex == md5);
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "stream6", &o));
  CHECK(o.data == data);
  // An S3-level retry (400 RequestTimeout) of a streamed body sends it again from the start.
  f.server.AddFault({"PUT", 1, 400, "RequestTimeout"});
  auto rt = f.store->Put("b", "stream7", src, known_sha);
  REQUIRE_MESSAGE(rt.ok(), rt.status().ToString());
  REQUIRE(f.server.GetObject("b", "stream7", &o));
  CHECK(o.data == data);
}

TEST_CASE("fake S3: Upload() without digests is one signed PUT up to the multipart threshold") {
  // The default single_put_hash_limit equals the default multipart threshold (64 MiB): a 20 MiB
  // body with no known digest is hashed (SHA-256), then sent as one PUT signed with that hash
  // (the server verifies it); no multipart, no MD5.
  Fixture f(nullptr, kSecret, S3Config{}.single_put_hash_limit);
  REQUIRE(S3Config{}.single_put_hash_limit == UploadOptions{}.multipart_threshold);
  std::string data = Pattern(20 * kMiB + 5, 9);
  const std::string sha = Sha256Hex(data);
  MemorySource src(data);
  const int creates = f.server.Count("Create"), puts = f.server.Count("PUT");
  auto up = f.store->Upload("b", "single", src, UploadOptions{});
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(up->sha256_hex == sha);
  CHECK(up->md5_hex.empty());
  CHECK(f.server.Count("Create") == creates);
  CHECK(f.server.Count("PUT") == puts + 1);
  CHECK(f.server.LastIntegrity("PUT").payload_hash == sha);
  CHECK(f.server.LastIntegrity("PUT").content_md5.empty());
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "single", &o));
  CHECK(o.data == data);
  // A 503 on the first attempt: the buffered body is sent again in full, with the same hash.
  f.server.AddFault({"PUT", 1, 503, "SlowDown"});
  auto again = f.store->Upload("b", "single-retried", src, UploadOptions{});
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  REQUIRE(f.server.GetObject("b", "single-retried", &o));
  CHECK(o.data == data);
  // A caller-chosen lower threshold still goes multipart.
  UploadOptions low;
  low.multipart_threshold = 8 * kMiB;
  low.part_size = 5 * kMiB;
  auto mp = f.store->Upload("b", "multi", src, low);
  REQUIRE_MESSAGE(mp.ok(), mp.status().ToString());
  CHECK(f.server.Count("Create") == creates + 1);
  REQUIRE(f.server.GetObject("b", "multi", &o));
  CHECK(o.data == data);
}

TEST_CASE("fake S3: virtual-host addressing signs and sends bucket.host and /key") {
  FakeS3 server(kKey, kSecret);
  server.CreateBucket("vbucket");
  auto t = net::CurlTransport::Create({});
  REQUIRE(t.ok());
  S3Config c;
  const std::string ep = server.endpoint();  // http://127.0.0.1:<port>
  c.endpoint_url = "http://localhost" + ep.substr(ep.rfind(':'));
  c.path_style = false;
  auto store = S3ObjectStore::Create(c, {kKey, kSecret, ""}, t->get());
  REQUIRE(store.ok());
  MemorySource src("virtual");
  const std::string key = "dir/a b+c=d&e?f%g~h";
  auto put = (*store)->Put("vbucket", key, src, {});
  REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  FakeS3::Object o;
  REQUIRE(server.GetObject("vbucket", key, &o));
  CHECK(o.data == "virtual");
  auto listed = (*store)->ListAll("vbucket", "dir/");
  REQUIRE_MESSAGE(listed.ok(), listed.status().ToString());
  CHECK(listed->size() == 1);
  CHECK(server.signature_failures() == 0);
}

TEST_CASE("fake S3: create-only PUT (If-None-Match) on an existing key is a clear 412") {
  Fixture f;
  MemorySource first("first"), second("second");
  PutOptions create_only;
  create_only.if_none_match = true;
  REQUIRE(f.store->Put("b", "once", first, create_only).ok());
  auto again = f.store->Put("b", "once", second, create_only);
  CHECK(again.status().code() == StatusCode::kFailedPrecondition);
  CHECK(again.status().message().find("PreconditionFailed") != std::string::npos);
  CHECK(again.status().message().find('\n') == std::string::npos);
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "once", &o));
  CHECK(o.data == "first");  // nothing lost
}

class Journal final : public MultipartJournal {
 public:
  Status OnBegin(const std::string&, const std::string&, const MultipartState& s) override {
    std::lock_guard<std::mutex> l(mu);
    state = s;
    ++begins;
    return Status::Ok();
  }
  Status OnPart(const std::string&, const std::string&, const std::string&,
                const UploadedPart& p) override {
    std::lock_guard<std::mutex> l(mu);
    state.parts.push_back(p);
    return Status::Ok();
  }
  Status OnFinish(const std::string&, const std::string&, const std::string&) override {
    std::lock_guard<std::mutex> l(mu);
    ++finishes;
    return Status::Ok();
  }
  std::mutex mu;
  MultipartState state;
  int begins = 0, finishes = 0;
};

TEST_CASE("fake S3: an interrupted multipart upload resumes from the recorded parts") {
  Fixture f;
  std::string data = Pattern(26 * kMiB + 5, 7);  // 5 parts of 5 MiB + 1 of 1 MiB+5
  MemorySource src(data);
  Journal journal;
  UploadOptions u;
  u.multipart_threshold = 1;
  u.part_size = 5 * kMiB;
  u.parallel_parts = 1;  // deterministic: parts 1, 2 succeed, 3 fails for good
  u.journal = &journal;
  u.put.metadata = {{"barcode", "B7"}};
  f.server.AddFault({"UploadPart", 1, 400, "InvalidArgument", false, false, 3});
  auto first = f.store->Upload("b", "resume", src, u);
  CHECK(first.status().code() == StatusCode::kInvalidArgument);
  CHECK(journal.begins == 1);
  CHECK(journal.state.parts.size() == 2);
  FakeS3::Object none;
  CHECK(!f.server.GetObject("b", "resume", &none));

  MultipartState recorded = journal.state;
  u.resume = &recorded;
  u.parallel_parts = 4;
  auto second = f.store->Upload("b", "resume", src, u);
  REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  CHECK(journal.begins == 1);  // same upload id, not restarted
  CHECK(journal.finishes == 1);
  CHECK(f.server.Count("ListParts") == 1);
  auto numbers = f.server.uploaded_part_numbers();
  std::sort(numbers.begin(), numbers.end());
  CHECK(numbers == std::vector<int>{1, 2, 3, 4, 5, 6});  // each part sent once
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "resume", &o));
  CHECK(o.data == data);
  CHECK(o.meta.at("barcode") == "B7");
  CHECK(o.etag.substr(o.etag.size() - 2) == "-6");

  // A recorded upload the server no longer knows: a fresh upload is started.
  MultipartState stale{"up-999/x+y=", 5 * kMiB, {{1, 5 * kMiB, "deadbeef"}}};
  u.resume = &stale;
  auto third = f.store->Upload("b", "resume2", src, u);
  REQUIRE_MESSAGE(third.ok(), third.status().ToString());
  CHECK(journal.begins == 2);

  // abort_on_failure: the server-side upload is aborted.
  u.resume = nullptr;
  u.abort_on_failure = true;
  f.server.AddFault({"UploadPart", 1, 403, "AccessDenied", false, false, 2});
  auto fourth = f.store->Upload("b", "resume3", src, u);
  CHECK(fourth.status().code() == StatusCode::kPermissionDenied);
  CHECK(f.server.Count("Abort") == 1);
}

TEST_CASE("fake S3: parallel parts share a few connections, equal part sizes (R2 rule)") {
  Fixture f;
  std::string data = Pattern(41 * kMiB, 8);
  MemorySource src(data);
  UploadOptions u;
  u.multipart_threshold = 1;
  u.part_size = 5 * kMiB;
  u.parallel_parts = 4;
  auto r = f.store->Upload("b", "par", src, u);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->size == data.size());
  FakeS3::Object o;
  REQUIRE(f.server.GetObject("b", "par", &o));
  CHECK(o.data == data);
  CHECK(f.NewConnections() <= 5);
  // Parts carry their signed SHA-256 (the fake recomputes it), no Content-MD5.
  CHECK(f.server.LastIntegrity("UploadPart").payload_hash.size() == 64);
  CHECK(f.server.LastIntegrity("UploadPart").content_md5.empty());
  CHECK(f.store->EnsureBucket("b").ok());  // already ours
  CHECK(f.store->EnsureBucket("newbucket").ok());
  CHECK(f.store->HeadBucket("newbucket").ok());
  CHECK(f.store->HeadBucket("nobucket").code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace grin::s3
