// engine/base/digest.h: SHA-256, MD5, SHA-1 and HMAC-SHA256 against published vectors, and the
// incremental Hasher against the one-shot functions.
#include "engine/base/digest.h"

#include <doctest/doctest.h>

#include <string>

#include "engine/base/encoding.h"

namespace grin {
namespace {

TEST_CASE("one-shot digests match the published vectors") {
  CHECK(Sha256Hex("") == kEmptySha256);
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(HexEncode(Md5("")) == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(HexEncode(Md5("abc")) == "900150983cd24fb0d6963f7d28e17f72");
  // RFC 4231 test case 2.
  CHECK(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("a Hasher fed in pieces equals the one-shot digest") {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  Hasher sha(Hasher::Kind::kSha256), md5(Hasher::Kind::kMd5);
  for (size_t off = 0; off < data.size(); off += 4093) {
    const std::string_view piece = std::string_view(data).substr(off, 4093);
    sha.Update(piece);
    md5.Update(piece.data(), piece.size());
  }
  CHECK(sha.FinalHex() == Sha256Hex(data));
  CHECK(md5.Final() == Md5(data));
}

TEST_CASE("Hasher SHA-1 matches the published vector") {
  Hasher sha1(Hasher::Kind::kSha1);
  sha1.Update("ab");
  sha1.Update(std::string_view("c"));
  const std::string raw = sha1.Final();
  CHECK(raw.size() == 20);
  CHECK(HexEncode(raw) == "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST_CASE("a moved Hasher keeps its state") {
  Hasher a(Hasher::Kind::kSha256);
  a.Update("a");
  Hasher b = std::move(a);
  b.Update("bc");
  CHECK(b.FinalHex() == Sha256Hex("abc"));
}

}  // namespace
}  // namespace grin
