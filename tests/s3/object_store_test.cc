// Layout helpers, part sizing and sources (engine/object_store.h).

#include "engine/object_store.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace grin {
namespace {

TEST_CASE("default layout does not depend on the run name") {
  StorageLayout l;
  auto raw = RawArchiveLocation(l, "32044010"), full = FullTextLocation(l, "32044010");
  CHECK(raw.bucket == "raw");
  CHECK(raw.key == "32044010/32044010.tar.gz");
  CHECK(full.bucket == "full");
  CHECK(full.key == "32044010_ocr.jsonl.gz");
  CHECK(LatestCsvLocation(l).key == "books_latest.csv.gz");
  CHECK(TimestampedMetaLocation(l, 1'764'363'600'000'000, "books.csv.gz").key ==
        "timestamped/20251128_210000_books.csv.gz");
  l.prefix = "harvard/";
  l.bucket_raw = "b-raw";
  CHECK(RawArchiveLocation(l, "X1").bucket == "b-raw");
  CHECK(RawArchiveLocation(l, "X1").key == "harvard/X1/X1.tar.gz");
  CHECK(MetaLocation(l, "books_latest.db.gz").key == "harvard/books_latest.db.gz");
  auto m = RawArchiveMetadata("X1", "\"abc\"", "2026-01-01T00:00:00");
  CHECK(m.at("encrypted_etag") == "abc");
  CHECK(m.at("original_filename") == "X1.tar.gz.gpg");
  CHECK(FullTextMetadata("X1", "d", 42).at("page_count") == "42");
  CHECK(ValidateMetadata(m).ok());
  CHECK(!ValidateMetadata({{"Bad Name", "v"}}).ok());
  CHECK(!ValidateMetadata({{"n", "caf\xc3\xa9"}}).ok());
  CHECK(!ValidateMetadata({{"n", std::string(2100, 'a')}}).ok());
}

TEST_CASE("part sizes keep every non-final part equal and within 10,000 parts") {
  CHECK(ChoosePartSize(0) == 8 * kMiB);
  CHECK(ChoosePartSize(200 * kMiB) == 8 * kMiB);
  CHECK(ChoosePartSize(80'000 * kMiB) == 8 * kMiB);
  CHECK(ChoosePartSize(80'001 * kMiB) == 16 * kMiB);
  uint64_t five_tib = 5ULL * 1024 * 1024 * kMiB;
  uint64_t p = ChoosePartSize(five_tib);
  CHECK((five_tib + p - 1) / p <= 10'000);
  CHECK(p <= kMaxPartSize);
}

TEST_CASE("key validation") {
  CHECK(ValidateObjectKey("a b/c+d=e?f&g%h~i/\xe6\x97\xa5").ok());
  CHECK(!ValidateObjectKey("").ok());
  CHECK(!ValidateObjectKey(std::string(1025, 'k')).ok());
  CHECK(!ValidateObjectKey("a\x01").ok());
  CHECK(!ValidateObjectKey("\xc3").ok());
  CHECK(!ValidateObjectKey("\xff").ok());
}

// Everything VisitInPlace hands over, concatenated.
Result<bool> Collect(const ByteSource& src, uint64_t offset, uint64_t length, std::string* out) {
  return src.VisitInPlace(offset, length, [out](std::string_view piece) {
    out->append(piece);
    return Status::Ok();
  });
}

TEST_CASE("sources: VisitInPlace passes memory in order, any window, and files decline it") {
  grin::testing::TempDir dir;
  std::string data(9 * 1024 * 1024 + 4097, '\0');  // odd end
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 12));
  MemorySource mem(data);
  // Windows that start anywhere, end at the end, or are empty.
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, data.size()}, {4095, 5 * 1024 * 1024 + 3}, {data.size() - 10, 10}, {17, 0}}) {
    std::string got;
    auto r = Collect(mem, off, len, &got);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(*r);
    CHECK(got == data.substr(off, len));
  }
  std::string ignored;
  CHECK(Collect(mem, data.size() - 1, 2, &ignored).status().code() == StatusCode::kDataLoss);
  // fn's error ends the visit and comes back.
  int calls = 0;
  auto stopped = mem.VisitInPlace(0, data.size(), [&calls](std::string_view) {
    ++calls;
    return Status::Cancelled("enough");
  });
  CHECK(stopped.status().code() == StatusCode::kCancelled);
  CHECK(calls == 1);
  // A file declines (no mapping, no SIGBUS handler): callers read it with ReadAt().
  grin::testing::WriteFile(dir.path() / "f", data);
  auto file = FileSource::Open(dir.file("f"));
  REQUIRE(file.ok());
  std::string none;
  auto declined = Collect(**file, 0, data.size(), &none);
  REQUIRE(declined.ok());
  CHECK_FALSE(*declined);
  CHECK(none.empty());
}

TEST_CASE("sources: a file that shrinks reads short as kDataLoss") {
  grin::testing::TempDir dir;
  grin::testing::WriteFile(dir.path() / "f", std::string(3 * 1024 * 1024, 'x'));
  auto file = FileSource::Open(dir.file("f"));  // remembers 3 MiB
  REQUIRE(file.ok());
  REQUIRE(::truncate(dir.file("f").c_str(), 1024 * 1024) == 0);
  std::string buf(1024 * 1024, '\0');
  auto head = (*file)->ReadAt(0, buf.data(), buf.size());
  REQUIRE(head.ok());
  CHECK(*head == buf.size());
  CHECK(buf == std::string(1024 * 1024, 'x'));
  auto beyond = (*file)->ReadAt(3 * 1024 * 1024 - 16, buf.data(), 16);
  CHECK(beyond.status().code() == StatusCode::kDataLoss);
}

}  // namespace
}  // namespace grin
