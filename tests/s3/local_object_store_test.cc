// The local folder store: round trips, metadata, ranges, listing, traversal refusal, atomicity.

#include "storage/local_object_store.h"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

namespace fs = std::filesystem;
using grin::testing::TempDir;

std::unique_ptr<LocalObjectStore> OpenStore(const TempDir& dir) {
  auto s = LocalObjectStore::Open(dir.file("store"));
  REQUIRE(s.ok());
  REQUIRE((*s)->EnsureBucket("raw").ok());
  return std::move(*s);
}

// Fails after `fail_after` bytes, like a decrypter that dies half-way.
class FailingSource final : public ByteSource {
 public:
  FailingSource(std::string data, uint64_t fail_after)
      : data_(std::move(data)), fail_after_(fail_after) {}
  uint64_t size() const override { return data_.size(); }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    if (offset >= fail_after_) return Status::DataLoss("injected read failure");
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, fail_after_ - offset));
    std::memcpy(buf, data_.data() + offset, k);
    return k;
  }

 private:
  std::string data_;
  uint64_t fail_after_;
};

TEST_CASE("local store: put, head, get, range, metadata") {
  TempDir dir;
  auto store = OpenStore(dir);
  std::string data(3 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 9));
  MemorySource src(data);
  PutOptions opts;
  opts.metadata = RawArchiveMetadata("BC123", "\"etag-1\"", "2026-11-28T21:00:00");
  auto put = store->Put("raw", "BC123/BC123.tar.gz", src, opts);
  REQUIRE(put.ok());
  CHECK(put->size == data.size());
  CHECK(put->etag == put->md5_hex);
  CHECK(put->sha256_hex.size() == 64);

  auto head = store->Head("raw", "BC123/BC123.tar.gz");
  REQUIRE(head.ok());
  CHECK(head->size == data.size());
  CHECK(head->etag == put->md5_hex);
  CHECK(head->metadata.at("encrypted_etag") == "etag-1");
  CHECK(head->metadata.at("original_filename") == "BC123.tar.gz.gpg");

  StringObjectSink sink;
  REQUIRE(store->Get("raw", "BC123/BC123.tar.gz", sink).ok());
  CHECK(sink.str() == data);
  sink.clear();
  auto ranged = store->Get("raw", "BC123/BC123.tar.gz", sink, ByteRange{1000, 5000});
  REQUIRE(ranged.ok());
  CHECK(ranged->size == data.size());
  CHECK(sink.str() == data.substr(1000, 5000));
  sink.clear();
  REQUIRE(store->Get("raw", "BC123/BC123.tar.gz", sink, ByteRange{data.size() - 3, 0}).ok());
  CHECK(sink.str() == data.substr(data.size() - 3));
  CHECK(store->Get("raw", "BC123/BC123.tar.gz", sink, ByteRange{data.size() + 1, 1})
            .status()
            .code() == StatusCode::kInvalidArgument);

  CHECK(store->Head("raw", "missing").status().code() == StatusCode::kNotFound);
  CHECK(store->HeadBucket("nope").code() == StatusCode::kNotFound);
}

TEST_CASE("local store: empty object and expected digests") {
  TempDir dir;
  auto store = OpenStore(dir);
  MemorySource empty("");
  auto put = store->Put("raw", "empty", empty, {});
  REQUIRE(put.ok());
  CHECK(put->etag == "d41d8cd98f00b204e9800998ecf8427e");
  PutOptions wrong;
  wrong.md5_hex = "00000000000000000000000000000000";
  MemorySource one("x");
  auto bad = store->Put("raw", "one", one, wrong);
  CHECK(bad.status().code() == StatusCode::kDataLoss);
  CHECK(store->Head("raw", "one").status().code() == StatusCode::kNotFound);
  PutOptions wrong_sha;
  wrong_sha.sha256_hex = std::string(64, '0');
  CHECK(store->Put("raw", "one", one, wrong_sha).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("local store: keys that could escape the base folder are refused") {
  TempDir dir;
  auto store = OpenStore(dir);
  MemorySource src("evil");
  const std::vector<std::string> bad_keys = {"../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "a/..",
                          "..", ".", "", "a\\..\\b", std::string("a\0b", 3), "a\nb",
                          "x.grin-meta.json", ".grin-tmp-1", std::string(1025, 'a'),
                          "bad\xff" "utf8"};
  for (const std::string& key : bad_keys) {
    INFO("key [" << key << "]");
    CHECK(store->Put("raw", key, src, {}).status().code() == StatusCode::kInvalidArgument);
    CHECK(store->Head("raw", key).status().code() == StatusCode::kInvalidArgument);
  }
  for (std::string bucket : std::vector<std::string>{"..", ".", "a/b", "", "UPPER",
                                                     ".grin-multipart"}) {
    INFO("bucket [" << bucket << "]");
    CHECK(store->Put(bucket, "k", src, {}).status().code() == StatusCode::kInvalidArgument);
  }
  // A symlink inside the bucket that points outside is not followed for writes.
  fs::create_directories(dir.path() / "outside");
  fs::create_symlink(dir.path() / "outside", dir.path() / "store/raw/link");
  CHECK(store->Put("raw", "link/x", src, {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(fs::is_empty(dir.path() / "outside"));
  // Nothing was written anywhere outside the store.
  CHECK(!fs::exists(dir.path() / "x"));
  // Allowed: odd but harmless characters.
  CHECK(store->Put("raw", "dir/a b+c=d&e%f~g?h", src, {}).ok());
}

TEST_CASE("local store: a failed write leaves the old object intact (atomicity)") {
  TempDir dir;
  auto store = OpenStore(dir);
  MemorySource v1("version one");
  PutOptions o1;
  o1.metadata = {{"v", "1"}};
  REQUIRE(store->Put("raw", "k/obj", v1, o1).ok());
  std::string big(2 * 1024 * 1024, 'z');
  FailingSource failing(big, 1024 * 1024 + 5);
  PutOptions o2;
  o2.metadata = {{"v", "2"}};
  CHECK(store->Put("raw", "k/obj", failing, o2).status().code() == StatusCode::kDataLoss);
  StringObjectSink sink;
  auto got = store->Get("raw", "k/obj", sink);
  REQUIRE(got.ok());
  CHECK(sink.str() == "version one");
  CHECK(got->metadata.at("v") == "1");
  // No temp file left behind.
  for (auto& e : fs::directory_iterator(dir.path() / "store/raw/k")) {
    CHECK(e.path().filename().string().rfind(".grin-tmp-", 0) != 0);
  }
  // Create-only.
  PutOptions create_only;
  create_only.if_none_match = true;
  CHECK(store->Put("raw", "k/obj", v1, create_only).status().code() ==
        StatusCode::kFailedPrecondition);
  CHECK(store->Put("raw", "k/new", v1, create_only).ok());
}

TEST_CASE("local store: list with prefix and pagination, delete") {
  TempDir dir;
  auto store = OpenStore(dir);
  MemorySource src("x");
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) {
    char k[32];
    std::snprintf(k, sizeof k, "p/%02d/obj", i);
    keys.push_back(k);
    REQUIRE(store->Put("raw", k, src, {}).ok());
  }
  REQUIRE(store->Put("raw", "q/other", src, {}).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = store->List("raw", "p/", token, 10);
    REQUIRE(page.ok());
    for (auto& o : page->objects) seen.push_back(o.key);
    token = page->next_token;
    ++pages;
  } while (!token.empty());
  CHECK(pages == 3);
  CHECK(seen == keys);
  auto all = store->ListAll("raw", "");
  REQUIRE(all.ok());
  CHECK(all->size() == 26);
  auto failures = store->DeleteMany("raw", keys);
  REQUIRE(failures.ok());
  CHECK(failures->empty());
  auto rest = store->ListAll("raw", "");
  REQUIRE(rest.ok());
  REQUIRE(rest->size() == 1);
  CHECK(rest->at(0).key == "q/other");
  CHECK(!fs::exists(dir.path() / "store/raw/p"));  // emptied directories removed
  CHECK(fs::exists(dir.path() / "store/raw"));
}

// Persists parts like the pipeline's checkpoint journal would.
class MemoryJournal final : public MultipartJournal {
 public:
  Status OnBegin(const std::string&, const std::string&, const MultipartState& s) override {
    state = s;
    ++begins;
    return Status::Ok();
  }
  Status OnPart(const std::string&, const std::string&, const std::string&,
                const UploadedPart& p) override {
    std::lock_guard<std::mutex> l(mu);
    state.parts.push_back(p);
    if (fail_after_parts > 0 && static_cast<int>(state.parts.size()) >= fail_after_parts) {
      return Status::Cancelled("interrupted");
    }
    return Status::Ok();
  }
  Status OnFinish(const std::string&, const std::string&, const std::string&) override {
    ++finishes;
    return Status::Ok();
  }
  std::mutex mu;
  MultipartState state;
  int begins = 0, finishes = 0, fail_after_parts = 0;
};

TEST_CASE("local store: multipart primitives through the generic driver, with resume") {
  TempDir dir;
  auto store = OpenStore(dir);
  std::string data(23 * 1024 * 1024 + 11, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + (i >> 12));
  MemorySource src(data);
  MemoryJournal journal;
  journal.fail_after_parts = 2;
  UploadOptions opts;
  opts.part_size = 5 * kMiB;
  opts.multipart_threshold = 1;
  opts.parallel_parts = 1;
  opts.journal = &journal;
  // Call the base-class driver (LocalObjectStore::Upload would skip multipart).
  auto first = store->ObjectStore::Upload("raw", "big", src, opts);
  CHECK(first.status().code() == StatusCode::kCancelled);
  CHECK(journal.begins == 1);
  CHECK(journal.state.parts.size() == 2);
  MultipartState recorded = journal.state;
  journal.fail_after_parts = 0;
  opts.resume = &recorded;
  auto second = store->ObjectStore::Upload("raw", "big", src, opts);
  REQUIRE(second.ok());
  CHECK(journal.begins == 1);           // resumed, not restarted
  CHECK(journal.state.parts.size() == 5);  // 2 before + 3 missing ones
  CHECK(journal.finishes == 1);
  StringObjectSink sink;
  REQUIRE(store->Get("raw", "big", sink).ok());
  CHECK(sink.str() == data);
}

}  // namespace
}  // namespace grin::storage

namespace grin::storage {
namespace {

TEST_CASE("local store: abandoned temp files go, a live or recent writer's stay, objects stay") {
  TempDir dir;
  auto store = OpenStore(dir);
  MemorySource body("the object");
  REQUIRE(store->Put("raw", "lib/B1/B1.tar.gz", body, PutOptions{}).ok());
  std::string d = dir.file("store") + "/raw/lib/B1";
  auto make = [&](const std::string& name, int64_t age_s) {
    std::string p = d + "/" + name;
    grin::testing::WriteFile(p, "partial");
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(age_s));
    return p;
  };
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string me(host);
  for (char& c : me) {
    if (c == '-' || c == '@' || c == '/') c = '_';
  }
  // pid 0x7fffffff: no such process on this host.
  std::string gone = make(".grin-tmp-2147483647@" + me + "-0123456789abcdef", 5);
  std::string live = make(".grin-tmp-" + std::to_string(::getpid()) + "@" + me + "-00", 5);
  std::string other_host = make(".grin-tmp-2147483647@elsewhere-0123", 5);
  std::string old_other = make(".grin-tmp-2147483647@elsewhere-4567", 2 * 24 * 3600);
  std::string old_unnamed = make(".grin-tmp-0123456789abcdef", 2 * 24 * 3600);
  std::string recent_unnamed = make(".grin-tmp-fedcba9876543210", 60);
  // A pid reused by a process started after the file was last written is not its writer; the
  // same live process with a file written after it started may be.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  std::string reused = make(".grin-tmp-" + std::to_string(child) + "@" + me + "-01", 3600);
  std::string child_live = make(".grin-tmp-" + std::to_string(child) + "@" + me + "-02", 0);
  // Outside the prefix: not looked at.
  REQUIRE(store->Put("raw", "other/B2.tar.gz", body, PutOptions{}).ok());
  std::string outside = dir.file("store") + "/raw/other/.grin-tmp-2147483647@" + me + "-11";
  grin::testing::WriteFile(outside, "partial");

  auto n = store->RemoveAbandonedTemporaries("raw", "lib/");
  REQUIRE(n.ok());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(*n == 4);
  CHECK_FALSE(fs::exists(reused));
  CHECK(fs::exists(child_live));
  CHECK_FALSE(fs::exists(gone));
  CHECK_FALSE(fs::exists(old_other));
  CHECK_FALSE(fs::exists(old_unnamed));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other_host));
  CHECK(fs::exists(recent_unnamed));
  CHECK(fs::exists(outside));
  StringObjectSink out;
  REQUIRE(store->Get("raw", "lib/B1/B1.tar.gz", out).ok());
  CHECK(out.str() == "the object");
  auto listed = store->ListAll("raw", "");
  REQUIRE(listed.ok());
  CHECK(listed->size() == 2);
  // A store's own temp files carry its writer: a Put leaves none, and names them so.
  CHECK(store->RemoveAbandonedTemporaries("raw", "").ok());
}

}  // namespace
}  // namespace grin::storage
