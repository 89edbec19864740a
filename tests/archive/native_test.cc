// The native OpenPGP backend beyond the shared gpg matrix: more ciphers, S2K kinds and BZip2 from
// real gpg; an encrypted session key, framing variants and hostile or broken packets crafted here
// (a small OpenPGP writer on OpenSSL, independent of the code under test).

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <random>

#include "engine/archive/decryptor.h"
#include "engine/archive/decryptor_internal.h"
#include "engine/archive/openpgp_crypto.h"
#include "tests/archive/fixtures.h"

namespace grin::archive {
namespace {

using testing::CachedGpgEncrypt;
using testing::GpgParams;

Status DecryptWith(DecryptBackend b, const std::string& ct, StringSink* out,
                   const std::string& passphrase = testing::kPassphrase, size_t max_chunk = 65536,
                   DecryptBackend* used = nullptr) {
  DecryptOptions o;
  o.backend = b;
  o.size_hint = ct.size();
  Secret pass(passphrase);
  auto d = NewDecryptor(o, pass, out);
  if (!d.ok()) return d.status();
  std::mt19937_64 rng(ct.size());
  Status w;
  for (size_t pos = 0; pos < ct.size() && w.ok();) {
    size_t n = std::min<size_t>(ct.size() - pos, 1 + rng() % max_chunk);
    w = (*d)->Write(reinterpret_cast<const uint8_t*>(ct.data()) + pos, n);
    pos += n;
  }
  Status f = (*d)->Finish();
  if (used) *used = (*d)->backend();
  if (!w.ok()) CHECK(f.ToString() == w.ToString());  // Finish repeats the early reason
  return f;
}

std::string SomePlaintext(size_t n, uint64_t seed = 5) {
  std::string p(n, '\0');
  testing::FillRandom(seed, reinterpret_cast<uint8_t*>(p.data()), p.size());
  return p;
}

// ---- a minimal OpenPGP writer for crafted messages ----

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// New-format header with a definite length (5-byte form when forced or large).
std::string Packet(int tag, const std::string& body, bool long_form = false) {
  std::string h(1, static_cast<char>(0xC0 | tag));
  size_t n = body.size();
  if (!long_form && n < 192) {
    h += static_cast<char>(n);
  } else if (!long_form && n < 8384) {
    h += static_cast<char>(((n - 192) >> 8) + 192);
    h += static_cast<char>((n - 192) & 0xff);
  } else {
    h += '\xff';
    h += Be32(static_cast<uint32_t>(n));
  }
  return h + body;
}

// Old-format header: length type 0..2, or 3 for indeterminate.
std::string OldPacket(int tag, const std::string& body, int length_type) {
  std::string h(1, static_cast<char>(0x80 | (tag << 2) | length_type));
  if (length_type == 0) h += static_cast<char>(body.size());
  if (length_type == 1) {
    h += static_cast<char>(body.size() >> 8);
    h += static_cast<char>(body.size());
  }
  if (length_type == 2) h += Be32(static_cast<uint32_t>(body.size()));
  return h + body;
}

// Partial body lengths of 2^power bytes each, then a definite last segment.
std::string PartialPacket(int tag, const std::string& body, int power) {
  std::string out(1, static_cast<char>(0xC0 | tag));
  size_t chunk = size_t{1} << power, pos = 0;
  while (body.size() - pos > chunk) {
    out += static_cast<char>(224 + power);
    out += body.substr(pos, chunk);
    pos += chunk;
  }
  std::string last = Packet(tag, body.substr(pos));
  return out + last.substr(1);
}

std::string Literal(const std::string& data) {
  return Packet(11, std::string("b\x04name", 6) + Be32(0) + data);
}

std::string Digest(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string CfbEncrypt(const EVP_CIPHER* c, const std::string& key, const std::string& data) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  unsigned char iv[16] = {};
  EVP_EncryptInit_ex(ctx, c, nullptr, reinterpret_cast<const unsigned char*>(key.data()), iv);
  std::string out(data.size(), '\0');
  int len = 0;
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(data.data()),
                    static_cast<int>(data.size()));
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// Iterated+salted S2K with SHA-256, written out the long way.
std::string S2kSha256(const std::string& salt, const std::string& pass, uint64_t count,
                      size_t key_len) {
  std::string unit = salt + pass, all;
  while (all.size() < count) all += unit;
  all.resize(std::max<size_t>(count, unit.size()));
  std::string key;
  for (size_t i = 0; key.size() < key_len; ++i) {
    key += Digest(EVP_sha256(), std::string(i, '\0') + all);
  }
  return key.substr(0, key_len);
}

struct Craft {
  bool esk = false;            // AES-256 key-encryption key wrapping an AES-128 session key
  bool esk_twofish = false;    // ... announcing a Twofish session key instead
  bool good_check = true;      // the prefix's quick-check bytes
  int mdc = 1;                 // 1 good, 0 missing, -1 wrong hash
  std::string inner;           // the plaintext packets
  std::string skesk_override;  // replaces the SKESK packet when set
  int framing = 0;  // 0 definite, 1 SEIPD partial (2^power), 2 old-format SKESK header
  int power = 9;
};

std::string CraftMessage(const Craft& c) {
  const std::string salt = "saltsalt";
  const uint8_t coded = 96;  // 65,536
  const uint64_t count = (16ull + (coded & 15)) << ((coded >> 4) + 6);
  std::string kek = S2kSha256(salt, testing::kPassphrase, count, 32);
  std::string skesk_body = std::string("\x04\x09\x03\x08", 4) + salt + static_cast<char>(coded);
  std::string session = kek;
  const EVP_CIPHER* data_cipher = EVP_aes_256_cfb128();
  if (c.esk) {
    session = SomePlaintext(c.esk_twofish ? 32 : 16, 77);
    const char* algo = c.esk_twofish ? "\x0a" : "\x07";
    skesk_body += CfbEncrypt(EVP_aes_256_cfb128(), kek, algo + session);
    data_cipher = EVP_aes_128_cfb128();
  }
  std::string prefix = SomePlaintext(16, 3) + "xx";
  prefix[16] = prefix[14];
  prefix[17] = prefix[15];
  if (!c.good_check) prefix[17] ^= 1;
  std::string plain = prefix + c.inner;
  if (c.mdc != 0) {
    plain += "\xD3\x14";
    std::string h = Digest(EVP_sha1(), plain);
    if (c.mdc < 0) h[7] ^= 1;
    plain += h;
  }
  std::string seipd = "\x01" + CfbEncrypt(data_cipher, session, plain);
  std::string skesk = c.framing == 2 ? OldPacket(3, skesk_body, 0) : Packet(3, skesk_body);
  if (!c.skesk_override.empty()) skesk = c.skesk_override;
  // (SEIPD's tag 18 has no old-format header.)
  return skesk + (c.framing == 1 ? PartialPacket(18, seipd, c.power) : Packet(18, seipd));
}

TEST_CASE("native: more ciphers, S2K kinds and BZip2 from real gpg, byte-identical") {
  const std::string plain = SomePlaintext(200 * 1024) + std::string(100 * 1024, 'a');
  struct Variant {
    const char* cipher;
    int mode;
    const char* digest;
    const char* compress;
  };
  for (const Variant& v : {Variant{"AES192", 3, "SHA256", "none"},
                           Variant{"3DES", 3, "SHA1", "ZIP"},
                           Variant{"BLOWFISH", 1, "SHA512", "none"},
                           Variant{"CAMELLIA128", 0, "MD5", "ZLIB"},
                           Variant{"CAMELLIA256", 3, "SHA224", "BZIP2"},
                           Variant{"AES256", 3, "SHA384", "BZIP2"}}) {
    CAPTURE(v.cipher);
    CAPTURE(v.digest);
    CAPTURE(v.compress);
    GpgParams p;
    p.cipher = v.cipher;
    p.s2k_mode = v.mode;
    p.s2k_digest = v.digest;
    p.compress = v.compress;
    auto ct = CachedGpgEncrypt(plain, p);
    REQUIRE_MESSAGE(ct.ok(), ct.status().ToString());
    StringSink out;
    Status s = DecryptWith(DecryptBackend::kNative, *ct, &out);
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(out.data() == plain);
    StringSink wrong;
    CHECK(DecryptWith(DecryptBackend::kNative, *ct, &wrong, "nope").code() ==
          StatusCode::kPermissionDenied);
    CHECK(wrong.data().empty());
  }
}

TEST_CASE("native: Twofish is refused clearly, auto hands it to another backend") {
  const std::string plain = SomePlaintext(50 * 1024);
  GpgParams p;
  p.cipher = "TWOFISH";
  auto ct = CachedGpgEncrypt(plain, p);
  REQUIRE(ct.ok());
  StringSink out;
  Status s = DecryptWith(DecryptBackend::kNative, *ct, &out);
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK_MESSAGE(s.message().find("Twofish is not supported") != std::string::npos, s.ToString());
  StringSink auto_out;
  DecryptBackend used = DecryptBackend::kAuto;
  Status a = DecryptWith(DecryptBackend::kAuto, *ct, &auto_out, testing::kPassphrase, 65536, &used);
  CHECK_MESSAGE(a.ok(), a.ToString());
  CHECK(used != DecryptBackend::kNative);
  CHECK(auto_out.data() == plain);
}

TEST_CASE("native: gpg's partial body lengths, fed one byte at a time") {
  // gpg reading from a pipe writes both SEIPD and literal packets with partial lengths.
  const std::string plain = SomePlaintext(40 * 1024);
  auto ct = CachedGpgEncrypt(plain, GpgParams{});
  REQUIRE(ct.ok());
  const auto u = [&](size_t i) { return static_cast<uint8_t>((*ct)[i]); };
  REQUIRE(u(15) == 0xD2);  // new-format SEIPD after the 15-byte SKESK
  REQUIRE(u(16) >= 224);   // ... with a partial body length
  REQUIRE(u(16) < 255);
  StringSink out;
  CHECK(DecryptWith(DecryptBackend::kNative, *ct, &out, testing::kPassphrase, 1).ok());
  CHECK(out.data() == plain);
}

TEST_CASE("native: crafted messages — session key, framings, old headers") {
  const std::string data = SomePlaintext(60000, 8);  // fits an old 2-byte length
  Craft base;
  base.inner = Literal(data);
  for (int framing : {0, 1, 2}) {
    for (bool esk : {false, true}) {
      for (int power : {0, 9, 13}) {
        if (framing != 1 && power != 9) continue;
        Craft c = base;
        c.esk = esk;
        c.framing = framing;
        c.power = power;
        CAPTURE(framing);
        CAPTURE(esk);
        CAPTURE(power);
        std::string ct = CraftMessage(c);
        StringSink out;
        Status s = DecryptWith(DecryptBackend::kNative, ct, &out);
        CHECK_MESSAGE(s.ok(), s.ToString());
        CHECK(out.data() == data);
        StringSink wrong;
        CHECK(DecryptWith(DecryptBackend::kNative, ct, &wrong, "other").code() ==
              StatusCode::kPermissionDenied);
      }
    }
  }
  // Inner literal packets: partial lengths, old format 2- and 4-byte lengths, indeterminate.
  const std::string body = std::string("b\0", 2) + Be32(0) + data;
  for (const std::string& inner : {PartialPacket(11, body, 10), OldPacket(11, body, 1),
                                   OldPacket(11, body, 2), OldPacket(11, body, 3),
                                   Packet(11, body, true),
                                   // signatures and markers around the data are skipped
                                   Packet(4, std::string(13, 'x')) + Literal(data) +
                                       Packet(2, std::string(60, 's'))}) {
    Craft c = base;
    c.inner = inner;
    StringSink out;
    Status s = DecryptWith(DecryptBackend::kNative, CraftMessage(c), &out);
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(out.data() == data);
  }
  // A marker packet before the SKESK is allowed (RFC 4880 §5.8).
  StringSink out;
  CHECK(DecryptWith(DecryptBackend::kNative, Packet(10, "PGP") + CraftMessage(base), &out).ok());
  CHECK(out.data() == data);
}

struct Hostile {
  const char* name;
  std::string ct;
  StatusCode code;
  const char* contains;
};

std::vector<Hostile> HostileMessages() {
  const std::string data = SomePlaintext(5000, 9);
  Craft base;
  base.inner = Literal(data);
  const std::string good = CraftMessage(base);
  std::vector<Hostile> v;
  auto crafted = [&](const char* name, Craft c, StatusCode code, const char* contains) {
    v.push_back({name, CraftMessage(c), code, contains});
  };
  Craft c = base;
  c.mdc = 0;
  crafted("SEIPD without its MDC packet", c, StatusCode::kDataLoss, "MDC");
  c = base;
  c.mdc = -1;
  crafted("wrong MDC hash", c, StatusCode::kDataLoss, "integrity check (MDC) failed");
  c = base;
  c.good_check = false;
  crafted("quick check fails", c, StatusCode::kPermissionDenied, "wrong passphrase");
  c = base;
  c.inner = SomePlaintext(3000, 10);
  c.inner[0] = 0x13;  // not a packet: what a wrong key that passed the check would give
  crafted("check passes, plaintext is garbage", c, StatusCode::kPermissionDenied,
          "wrong passphrase, or the message is corrupt at its start");
  c = base;
  c.esk = true;
  c.esk_twofish = true;
  crafted("session key for Twofish", c, StatusCode::kDataLoss, "Twofish is not supported");
  c = base;
  c.inner = Literal(data) + Literal(data);
  crafted("two literal packets", c, StatusCode::kDataLoss, "more than one literal");
  c = base;
  c.inner = Packet(11, std::string("b\0", 2) + Be32(0) + data, true);
  c.inner[2] = '\x7f';  // a 2 GiB literal whose data stops after 5000 bytes
  crafted("literal length beyond the data", c, StatusCode::kDataLoss, "truncated");
  c = base;
  c.inner = Packet(8, "\x01" + std::string(100, '\0'));
  crafted("compressed packet with a broken deflate stream", c, StatusCode::kPermissionDenied,
          "corrupt compressed data");
  c = base;
  c.inner = Packet(8, std::string("\x00", 1) + Packet(8, std::string("\x00", 1) + Literal(data)));
  crafted("nested compression", c, StatusCode::kPermissionDenied, "nested compressed");
  c = base;
  c.inner = Packet(8, "\x09" + data);
  crafted("unknown compression algorithm", c, StatusCode::kPermissionDenied,
          "unsupported compression algorithm 9");
  c = base;
  c.inner = Literal(data) + Packet(3, "x");
  crafted("SKESK inside the encrypted data", c, StatusCode::kDataLoss, "unexpected packet");
  c = base;
  c.skesk_override = std::string("\xC3\xFF\xFF\xFF\xFF\xFF", 6) + std::string(100, '\0');
  crafted("SKESK claiming 4 GiB", c, StatusCode::kDataLoss, "oversized symmetric-key packet");
  c = base;
  c.skesk_override = std::string("\xC3\xE8", 2) + std::string(256, '\x04');
  crafted("SKESK with a partial length", c, StatusCode::kDataLoss, "partial body length");
  c = base;
  c.skesk_override = Packet(3, std::string("\x04\x09\x65\x08", 4));
  crafted("unknown S2K type", c, StatusCode::kDataLoss, "unsupported S2K type 101");
  c = base;
  c.skesk_override = Packet(3, std::string("\x05\x09\x03\x08", 4) + std::string(9, 's'));
  crafted("SKESK v5 (AEAD)", c, StatusCode::kDataLoss, "version 5 (AEAD)");
  std::string huge_seipd = good.substr(0, 15) + "\xD2\xFF\x7F\xFF\xFF\xFF" + good.substr(18);
  v.push_back({"SEIPD claiming 2 GiB", huge_seipd, StatusCode::kDataLoss, "truncated"});
  v.push_back({"data after the encrypted packet", good + Packet(11, "junk"),
               StatusCode::kDataLoss, "after the encrypted data"});
  v.push_back({"reserved tag 0", std::string("\xC0\x01\x00", 3), StatusCode::kDataLoss,
               "reserved tag 0"});
  v.push_back({"ASCII armor", "-----BEGIN PGP MESSAGE-----\n", StatusCode::kDataLoss,
               "ASCII armor"});
  v.push_back({"public-key message", Packet(1, std::string(50, '\x03')) + good.substr(15),
               StatusCode::kDataLoss, "public-key"});
  v.push_back({"AEAD packet", Packet(3, std::string("\x04\x09\x03\x08", 4) + "saltsalt\x60") +
                                  Packet(20, std::string(100, '\x01')),
               StatusCode::kDataLoss, "AEAD"});
  v.push_back({"SEIPD v2", good.substr(0, 18) + "\x02" + good.substr(19), StatusCode::kDataLoss,
               "SEIPD v2"});
  v.push_back({"SEIPD without a SKESK", good.substr(15), StatusCode::kDataLoss,
               "no passphrase"});
  v.push_back({"SKESK only", good.substr(0, 15), StatusCode::kDataLoss, "no encrypted data"});
  return v;
}

TEST_CASE("native: hostile and broken packets fail with one clear reason") {
  for (const Hostile& h : HostileMessages()) {
    CAPTURE(std::string(h.name));
    StringSink out;
    Status s = DecryptWith(DecryptBackend::kNative, h.ct, &out);
    CHECK_MESSAGE(s.code() == h.code, s.ToString());
    CHECK_MESSAGE(s.message().find(h.contains) != std::string::npos, s.ToString());
    CHECK(s.message().find('\n') == std::string::npos);
    CHECK(s.message().find(testing::kPassphrase) == std::string::npos);
  }
}

TEST_CASE("native: kAuto routes AEAD and unsupported SKESKs away, the rest to native") {
  using internal::NativeCanDecrypt;
  auto can = [](const std::string& s) {
    return NativeCanDecrypt(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  Craft base;
  base.inner = Literal("x");
  CHECK(can(CraftMessage(base)));
  CHECK(can(std::string("\x23junk", 5)));
  CHECK(!can(Packet(3, std::string("\x05\x09\x03\x08", 4) + std::string(9, 's'))));
  CHECK(!can(Packet(3, std::string("\x04\x0a\x03\x08", 4) + "saltsalt\x60")));  // Twofish
  CHECK(!can(Packet(3, std::string("\x04\x09\x03\x08", 4) + "saltsalt\x60") +
             Packet(20, std::string(40, '\x01'))));
}

TEST_CASE("native: Write after a failure and Finish twice repeat the reason") {
  Craft c;
  c.inner = Literal("data");
  c.good_check = false;
  std::string ct = CraftMessage(c);
  DecryptOptions o;
  o.backend = DecryptBackend::kNative;
  Secret pass(testing::kPassphrase);
  StringSink out;
  auto d = NewDecryptor(o, pass, &out);
  REQUIRE(d.ok());
  Status w = (*d)->Write(reinterpret_cast<const uint8_t*>(ct.data()), ct.size());
  CHECK(w.code() == StatusCode::kPermissionDenied);
  CHECK((*d)->Write(reinterpret_cast<const uint8_t*>(ct.data()), 1).code() ==
        StatusCode::kPermissionDenied);
  CHECK((*d)->Finish().code() == StatusCode::kPermissionDenied);
  CHECK((*d)->Finish().code() == StatusCode::kPermissionDenied);
  CHECK((*d)->backend() == DecryptBackend::kNative);
}

}  // namespace
}  // namespace grin::archive

namespace grin::archive {
namespace {

// gpg's own account of a message (`gpg --list-packets`), to check MessageOutline against.
struct GpgPackets {
  int cipher = -1, s2k = -1, hash = -1, compress_algo = -1;
  uint64_t count = 0;
  int64_t created = -1;
  char mode = 0;
};

GpgPackets ListPackets(const std::string& ct) {
  auto r = testing::RunProcess({"gpg", "--homedir", testing::TestGnupgHome(), "--batch",
                                "--pinentry-mode", "loopback", "--passphrase-fd", "3",
                                "--list-packets"},
                               ct, std::string(testing::kPassphrase) + "\n");
  REQUIRE(r.ok());
  GpgPackets g;
  const std::string& o = r->out;
  auto num_after = [&o](const std::string& key) -> int64_t {
    size_t at = o.find(key);
    return at == std::string::npos ? -1 : std::stoll(o.substr(at + key.size()));
  };
  g.cipher = static_cast<int>(num_after("cipher "));
  g.s2k = static_cast<int>(num_after("s2k "));
  g.hash = static_cast<int>(num_after("hash "));
  g.compress_algo = static_cast<int>(num_after(":compressed packet: algo="));
  int64_t count = num_after("count ");
  g.count = count < 0 ? 0 : static_cast<uint64_t>(count);
  g.created = num_after("created ");
  size_t m = o.find("mode ");
  if (m != std::string::npos) g.mode = o[m + 5];
  return g;
}

TEST_CASE("native: the message outline matches gpg --list-packets") {
  const std::string plain = SomePlaintext(64 * 1024);
  struct Variant {
    const char* cipher;
    int mode;
    const char* digest;
    const char* compress;
  };
  for (const Variant& v : {Variant{"AES256", 3, "SHA1", "ZIP"}, Variant{"AES128", 3, "SHA256", "none"},
                           Variant{"CAST5", 1, "SHA1", "ZLIB"},
                           Variant{"CAMELLIA256", 3, "SHA512", "BZIP2"}}) {
    CAPTURE(v.cipher);
    CAPTURE(v.compress);
    GpgParams p;
    p.cipher = v.cipher;
    p.s2k_mode = v.mode;
    p.s2k_digest = v.digest;
    p.compress = v.compress;
    auto ct = CachedGpgEncrypt(plain, p);
    REQUIRE_MESSAGE(ct.ok(), ct.status().ToString());
    MessageOutline outline;
    DecryptOptions o;
    o.backend = DecryptBackend::kNative;
    o.outline = &outline;
    Secret pass(testing::kPassphrase);
    StringSink out;
    auto d = NewDecryptor(o, pass, &out);
    REQUIRE(d.ok());
    REQUIRE((*d)->Write(reinterpret_cast<const uint8_t*>(ct->data()), ct->size()).ok());
    REQUIRE((*d)->Finish().ok());
    REQUIRE(out.data() == plain);

    GpgPackets g = ListPackets(*ct);
    REQUIRE(outline.key_packets.size() == 1);
    const auto& k = outline.key_packets[0];
    auto cipher = internal::FindCipher(g.cipher);
    REQUIRE(cipher.ok());
    CHECK(k.version == 4);
    CHECK(k.cipher == (*cipher)->name);
    CHECK(outline.session_cipher == (*cipher)->name);
    CHECK(k.s2k_type == g.s2k);
    CHECK(k.s2k_hash == g.hash);
    if (g.s2k == 3) CHECK(k.s2k_count == g.count);
    CHECK(outline.seipd_version == 1);
    CHECK(outline.mdc_verified);
    CHECK(outline.compression == g.compress_algo);
    CHECK(outline.literal_format == g.mode);
    CHECK(static_cast<int64_t>(outline.literal_date) == g.created);
    const std::string text = DescribeOutline(outline);
    CHECK(text.find(std::string("cipher ") + (*cipher)->name) != std::string::npos);
    CHECK((text.find("compressed data packet") != std::string::npos) == (g.compress_algo >= 0));
    CHECK(text.find("MDC verified") != std::string::npos);
  }
}

}  // namespace
}  // namespace grin::archive
