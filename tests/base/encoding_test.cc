// engine/base/encoding.h: hex, base64, base64url and percent-encoding against published vectors.
#include "engine/base/encoding.h"

#include <doctest/doctest.h>

#include <string>

namespace grin {
namespace {

TEST_CASE("HexEncode is lower-case and HexDecode takes either case") {
  CHECK(HexEncode(std::string("\x00\x01\xab\xff", 4)) == "0001abff");
  const uint8_t bytes[] = {0xde, 0xad, 0xbe, 0xef};
  CHECK(HexEncode(bytes, sizeof bytes) == "deadbeef");
  std::string raw;
  REQUIRE(HexDecode("DeAdBeEf", &raw));
  CHECK(raw == "\xde\xad\xbe\xef");
  CHECK_FALSE(HexDecode("abc", &raw));   // odd length
  CHECK_FALSE(HexDecode("zz", &raw));    // not hex
  REQUIRE(HexDecode("", &raw));
  CHECK(raw.empty());
}

TEST_CASE("Base64 round-trips the RFC 4648 vectors") {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, text] : vectors) {
    CHECK(Base64Encode(plain) == text);
    std::string back = "untouched";
    REQUIRE(Base64Decode(text, &back));
    CHECK(back == plain);
  }
  std::string raw = "untouched";
  CHECK_FALSE(Base64Decode("Zm9", &raw));   // not a multiple of 4
  CHECK_FALSE(Base64Decode("Zm!v", &raw));  // outside the alphabet
  CHECK(raw == "untouched");
}

TEST_CASE("Base64Url uses - and _ without padding and decodes JWT segments leniently") {
  const std::string bytes("\xfb\xff\xbf", 3);  // standard base64: "+/+/"
  CHECK(Base64Encode(bytes) == "+/+/");
  CHECK(Base64UrlEncode(bytes) == "-_-_");
  CHECK(Base64UrlEncode("f") == "Zg");
  CHECK(Base64UrlDecode("-_-_") == bytes);
  CHECK(Base64UrlDecode("+/+/") == bytes);
  CHECK(Base64UrlDecode("Zg") == "f");
  CHECK(Base64UrlDecode("Zg==") == "f");  // stops at the padding
  CHECK(Base64UrlDecode(Base64UrlEncode(R"({"email":"a@b.org"})")) == R"({"email":"a@b.org"})");
}

TEST_CASE("PercentEncode keeps only RFC 3986 unreserved bytes") {
  CHECK(PercentEncode("AZaz09-_.~") == "AZaz09-_.~");
  CHECK(PercentEncode("a b+c/d") == "a%20b%2Bc%2Fd");
  CHECK(PercentEncode("a b+c/d", /*keep_slash=*/true) == "a%20b%2Bc/d");
  CHECK(PercentEncode("=&?%,") == "%3D%26%3F%25%2C");
  CHECK(PercentEncode("\xe1\x88\xb4\x7f") == "%E1%88%B4%7F");
}

}  // namespace
}  // namespace grin
