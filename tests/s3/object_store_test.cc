// Layout helpers and part sizing (engine/object_store.h).

#include "engine/object_store.h"

#include <doctest/doctest.h>

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

}  // namespace
}  // namespace grin
