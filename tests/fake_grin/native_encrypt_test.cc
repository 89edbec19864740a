// The fake GRIN's native encryptor (native_encrypt.h) against the two decoders that matter: the
// real `gpg --decrypt` (the reference: what GRIN's archives are judged by) and the engine's own
// native decryptor. Both must return the plaintext byte for byte and verify the MDC.

#include "tests/fake_grin/native_encrypt.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/archive/decryptor.h"
#include "tests/archive/fixtures.h"
#include "tests/fake_grin/archive.h"
#include "tests/support/temp_dir.h"

namespace grin::fake {
namespace {

const char kPass[] = "fake passphrase for TEST";

// The engine's native backend; *outline receives what it read.
Result<std::string> EngineDecrypt(const std::string& ciphertext, const std::string& pass,
                                  archive::MessageOutline* outline) {
  archive::StringSink sink;
  archive::DecryptOptions o;
  o.backend = archive::DecryptBackend::kNative;
  o.outline = outline;
  archive::Secret secret(pass);
  GRIN_ASSIGN_OR_RETURN(auto dec, archive::NewDecryptor(o, secret, &sink));
  // In uneven chunks, as a download delivers them.
  size_t at = 0;
  for (size_t step = 1; at < ciphertext.size(); step = step * 3 + 7) {
    const size_t n = std::min(step, ciphertext.size() - at);
    Status s = dec->Write(reinterpret_cast<const uint8_t*>(ciphertext.data() + at), n);
    if (!s.ok()) break;
    at += n;
  }
  GRIN_RETURN_IF_ERROR(dec->Finish());
  return std::move(sink.data());
}

std::string Pseudo(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  archive::testing::FillRandom(seed, reinterpret_cast<uint8_t*>(s.data()), n);
  return s;
}

TEST_CASE("native encryptor: real gpg and the engine decrypt it byte for byte") {
  struct Case {
    const char* cipher;
    const char* compress;
    const char* digest;
    int64_t s2k_count;
    size_t size;
  };
  // Sizes cross each packet-length form: 1-octet (< 192), 2-octet (< 8384), 5-octet.
  const std::vector<Case> cases = {
      {"AES256", "none", "SHA1", 65536, 0},          {"AES256", "none", "SHA1", 65536, 100},
      {"AES256", "none", "SHA1", 65536, 5000},       {"AES256", "none", "SHA1", 65536, 300000},
      {"AES", "none", "SHA256", 1024, 9000},         {"AES192", "zip", "SHA512", 100000, 70000},
      {"AES256", "zlib", "SHA1", 65011712, 20000},   {"AES256", "none", "SHA224", 5000, 191},
  };
  for (const auto& c : cases) {
    ArchiveParams p;
    p.cipher = c.cipher;
    p.compress = c.compress;
    p.s2k_digest = c.digest;
    p.s2k_count = c.s2k_count;
    const std::string plain = Pseudo(c.size, c.size + 1);
    CAPTURE(c.cipher);
    CAPTURE(c.compress);
    CAPTURE(c.digest);
    CAPTURE(c.size);
    auto enc = NativeEncrypt(p, kPass, plain);
    REQUIRE_MESSAGE(enc.ok(), enc.status().ToString());

    auto by_gpg = archive::testing::GpgDecrypt(*enc, kPass);
    REQUIRE_MESSAGE(by_gpg.ok(), by_gpg.status().ToString());
    CHECK(*by_gpg == plain);

    archive::MessageOutline outline;
    auto by_engine = EngineDecrypt(*enc, kPass, &outline);
    REQUIRE_MESSAGE(by_engine.ok(), by_engine.status().ToString());
    CHECK(*by_engine == plain);
    CHECK(outline.mdc_verified);
    CHECK(outline.seipd_version == 1);
    REQUIRE(outline.key_packets.size() == 1);
    CHECK(outline.key_packets[0].version == 4);
    CHECK(outline.key_packets[0].s2k_type == 3);
    CHECK_FALSE(outline.key_packets[0].encrypted_session_key);
    CHECK(static_cast<int64_t>(outline.key_packets[0].s2k_count) ==
          DecodeS2kCount(EncodeS2kCount(c.s2k_count)));
    CHECK(static_cast<int64_t>(outline.key_packets[0].s2k_count) >= c.s2k_count);
    CHECK(outline.compression == (std::string(c.compress) == "none"  ? -1
                                  : std::string(c.compress) == "zip" ? 1
                                                                     : 2));
    CHECK(outline.literal_format == 'b');
  }
}

TEST_CASE("native encryptor: a fake GRIN archive decrypts to the tar.gz the fake built") {
  ArchiveParams p;
  ArchiveSpec spec{"TEST", "39015000000042", 1, 4, "A title & more"};
  const std::string plain = BuildTarGz(spec, p, 7);
  auto enc = NativeEncrypt(p, kPass, plain);
  REQUIRE(enc.ok());
  auto by_gpg = archive::testing::GpgDecrypt(*enc, kPass);
  REQUIRE_MESSAGE(by_gpg.ok(), by_gpg.status().ToString());
  CHECK(*by_gpg == plain);
  archive::MessageOutline outline;
  auto by_engine = EngineDecrypt(*enc, kPass, &outline);
  REQUIRE(by_engine.ok());
  CHECK(*by_engine == plain);
  // Random salt and prefix: a second encryption differs, as gpg's do.
  auto again = NativeEncrypt(p, kPass, plain);
  REQUIRE(again.ok());
  CHECK(*again != *enc);
}

TEST_CASE("native encryptor: the archive store serves it when asked, gpg stays the default") {
  CHECK(ArchiveParams{}.encryptor == "gpg");
  grin::testing::TempDir tmp;
  ArchiveParams p;
  p.encryptor = "native";
  ArchiveStore store(tmp.file("cache"), p, 7);
  ArchiveSpec spec{"TEST", "39015000000042", 2, 3, "Title"};
  auto bytes = store.Get(spec, kPass);
  REQUIRE_MESSAGE(bytes.ok(), bytes.status().ToString());
  auto by_gpg = archive::testing::GpgDecrypt(**bytes, kPass);
  REQUIRE_MESSAGE(by_gpg.ok(), by_gpg.status().ToString());
  CHECK(*by_gpg == BuildTarGz(spec, p, 7));
  CHECK(store.encryptions() == 1);
  // A second store on the same cache directory reads the file instead of encrypting again.
  ArchiveStore again(tmp.file("cache"), p, 7);
  auto cached = again.Get(spec, kPass);
  REQUIRE(cached.ok());
  CHECK(**cached == **bytes);
  CHECK(again.encryptions() == 0);
  p.encryptor = "rot13";
  ArchiveStore bad(tmp.file("cache"), p, 7);
  auto r = bad.Get(spec, kPass);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("rot13") != std::string::npos);
}

TEST_CASE("native encryptor: a wrong passphrase or a flipped byte is refused by both decoders") {
  ArchiveParams p;
  const std::string plain = Pseudo(20000, 3);
  auto enc = NativeEncrypt(p, kPass, plain);
  REQUIRE(enc.ok());
  CHECK_FALSE(archive::testing::GpgDecrypt(*enc, "not the passphrase").ok());
  archive::MessageOutline outline;
  CHECK_FALSE(EngineDecrypt(*enc, "not the passphrase", &outline).ok());
  // A flipped byte deep in the encrypted data: the MDC no longer matches.
  std::string bad = *enc;
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x01);
  CHECK_FALSE(archive::testing::GpgDecrypt(bad, kPass).ok());
  CHECK_FALSE(EngineDecrypt(bad, kPass, &outline).ok());
}

TEST_CASE("native encryptor: parameters it cannot honour are refused, naming them") {
  ArchiveParams p;
  p.cipher = "CAST5";
  auto r = NativeEncrypt(p, kPass, "x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("CAST5") != std::string::npos);
  p = ArchiveParams{};
  p.compress = "bzip2";
  r = NativeEncrypt(p, kPass, "x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("bzip2") != std::string::npos);
  p = ArchiveParams{};
  p.s2k_digest = "MD5";
  CHECK_FALSE(NativeEncrypt(p, kPass, "x").ok());
}

TEST_CASE("native encryptor: the S2K count coding rounds up as gpg does") {
  CHECK(DecodeS2kCount(96) == 65536);
  CHECK(EncodeS2kCount(65536) == 96);
  CHECK(EncodeS2kCount(65537) == 97);
  CHECK(DecodeS2kCount(97) >= 65537);
  CHECK(EncodeS2kCount(1) == 0);
  CHECK(DecodeS2kCount(0) == 1024);
  CHECK(DecodeS2kCount(255) == 65011712);
  CHECK(EncodeS2kCount(65011712) == 255);
  CHECK(EncodeS2kCount(int64_t{1} << 40) == 255);
}

}  // namespace
}  // namespace grin::fake
