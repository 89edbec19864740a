// Decryption: both backends against messages made by real gpg, across the cipher x compression x
// S2K matrix, byte-identical to `gpg --decrypt`; and every way a message can be bad.

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "engine/archive/decryptor.h"
#include "engine/archive/decryptor_internal.h"
#include "tests/archive/fixtures.h"
#include "tests/support/temp_dir.h"

namespace grin::archive {
namespace {

using testing::CachedGpgEncrypt;
using testing::GpgParams;

// Feeds ct in pseudo-random chunk sizes (1 byte .. 96 KiB) and returns the verdict.
Status Decrypt(DecryptBackend backend, const std::string& ct, StringSink* out,
               const std::string& passphrase = testing::kPassphrase, uint64_t seed = 1,
               uint64_t max_plaintext = 0, DecryptBackend* used = nullptr) {
  DecryptOptions o;
  o.backend = backend;
  o.max_plaintext_bytes = max_plaintext;
  o.size_hint = ct.size();
  Secret pass(passphrase);
  auto d = NewDecryptor(o, pass, out);
  if (!d.ok()) return d.status();
  std::mt19937_64 rng(seed);
  size_t pos = 0;
  while (pos < ct.size()) {
    size_t n = std::min<size_t>(ct.size() - pos, 1 + rng() % (96 * 1024));
    if (rng() % 8 == 0) n = std::min<size_t>(ct.size() - pos, 1 + rng() % 7);
    Status s = (*d)->Write(reinterpret_cast<const uint8_t*>(ct.data()) + pos, n);
    if (!s.ok()) break;
    pos += n;
  }
  Status v = (*d)->Finish();
  if (used) *used = (*d)->backend();
  return v;
}

std::string MatrixPlaintext() {
  // An uncompressed tar-like payload (compressible text + random bytes) so gpg really applies
  // ZIP/ZLIB compression; ~270 KiB keeps the 18-message matrix small.
  std::string p;
  for (uint32_t i = 1; i <= 300; ++i) p += testing::PageText(i);
  std::string rnd(150 * 1024, '\0');
  testing::FillRandom(42, reinterpret_cast<uint8_t*>(rnd.data()), rnd.size());
  return p + rnd + p;
}

TEST_CASE("decrypt: gpg matrix, every backend byte-identical to gpg --decrypt") {
  const std::string plain = MatrixPlaintext();
  int checked = 0;
  for (const char* cipher : {"AES128", "AES256", "CAST5"}) {
    for (const char* compress : {"none", "ZIP", "ZLIB"}) {
      for (uint64_t count : {65536ull, 65011712ull}) {
        GpgParams p;
        p.cipher = cipher;
        p.compress = compress;
        p.s2k_count = count;
        CAPTURE(cipher);
        CAPTURE(compress);
        CAPTURE(count);
        auto ct = CachedGpgEncrypt(plain, p);
        REQUIRE_MESSAGE(ct.ok(), ct.status().ToString());
        CHECK(PeekS2kCount(reinterpret_cast<const uint8_t*>(ct->data()), ct->size()) == count);
        auto reference = testing::GpgDecrypt(*ct);
        REQUIRE_MESSAGE(reference.ok(), reference.status().ToString());
        REQUIRE(*reference == plain);
        for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
          CAPTURE(BackendName(b));
          StringSink out;
          Status s = Decrypt(b, *ct, &out, testing::kPassphrase, count + checked);
          CHECK_MESSAGE(s.ok(), s.ToString());
          CHECK(out.data().size() == reference->size());
          CHECK(out.data() == *reference);
          ++checked;
        }
      }
    }
  }
  CHECK(checked == 54);
}

TEST_CASE("decrypt: compression really is applied in the matrix fixtures") {
  // Guards the matrix: if gpg silently skipped compression, ZIP/ZLIB would not be exercised.
  const std::string plain = MatrixPlaintext();
  for (const char* compress : {"none", "ZIP", "ZLIB"}) {
    GpgParams p;
    p.compress = compress;
    auto ct = CachedGpgEncrypt(plain, p);
    REQUIRE(ct.ok());
    if (std::string(compress) == "none") {
      CHECK(ct->size() > plain.size());
    } else {
      CHECK(ct->size() < plain.size() - 40000);
    }
  }
}

TEST_CASE("decrypt: auto picks a backend and still verifies") {
  const std::string plain = MatrixPlaintext();
  GpgParams p;
  auto ct = CachedGpgEncrypt(plain, p);
  REQUIRE(ct.ok());
  StringSink out;
  DecryptBackend used = DecryptBackend::kAuto;
  Status s = Decrypt(DecryptBackend::kAuto, *ct, &out, testing::kPassphrase, 7, 0, &used);
  CHECK(s.ok());
  CHECK(out.data() == plain);
  CHECK(used == ChooseBackend(ct->size(), 65536));
  CHECK(used == DecryptBackend::kNative);
}

TEST_CASE("decrypt: the default-backend rule") {
  // Native wherever it can decrypt the message (it measured fastest at every size and count).
  CHECK(ChooseBackend(std::nullopt, std::nullopt) == DecryptBackend::kNative);
  CHECK(ChooseBackend(64 << 10, 65536) == DecryptBackend::kNative);
  CHECK(ChooseBackend(1ull << 30, 65011712) == DecryptBackend::kNative);
  // The older rule, still used for messages only librnp / gpg can decrypt.
  using internal::ChooseExternalBackend;
  CHECK(ChooseExternalBackend(std::nullopt, std::nullopt) == DecryptBackend::kGpg);
  CHECK(ChooseExternalBackend(64 << 10, 65536) == DecryptBackend::kRnp);
  CHECK(ChooseExternalBackend(1ull << 30, 65011712) == DecryptBackend::kGpg);
  CHECK(ChooseExternalBackend(50ull << 20, 65536) == DecryptBackend::kGpg);
  CHECK(ChooseExternalBackend(1ull << 20, 65536) == DecryptBackend::kRnp);
  CHECK(ChooseExternalBackend(4ull << 20, 65536) == DecryptBackend::kGpg);
  CHECK(ChooseExternalBackend(8ull << 20, 65011712) == DecryptBackend::kRnp);
  CHECK(ChooseExternalBackend(8ull << 20, std::nullopt) == DecryptBackend::kRnp);
  CHECK(ChooseExternalBackend(20ull << 20, 65011712) == DecryptBackend::kGpg);
  CHECK(ParseBackend("gpg").ok());
  CHECK(*ParseBackend("native") == DecryptBackend::kNative);
  CHECK(BackendName(DecryptBackend::kNative) == "native");
  CHECK(!ParseBackend("pgp").ok());
  const uint8_t junk[] = {0x00, 0x01, 0x02};
  CHECK(!PeekS2kCount(junk, sizeof junk).has_value());
}

struct BadCase {
  const char* name;
  std::string ct;
  std::string passphrase;
  StatusCode code;
  const char* contains;  // expected in the message (both backends)
};

std::vector<BadCase> BadMessages() {
  const std::string plain = MatrixPlaintext();
  GpgParams aes;
  std::string good = *CachedGpgEncrypt(plain, aes);
  std::vector<BadCase> v;
  v.push_back({"wrong passphrase", good, "not the passphrase", StatusCode::kPermissionDenied,
               "wrong passphrase"});
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  v.push_back({"corrupt byte", flipped, testing::kPassphrase, StatusCode::kDataLoss, ""});
  std::string flipped_end = good;
  flipped_end[flipped_end.size() - 5] ^= 0x01;  // inside the MDC packet
  v.push_back({"corrupt MDC", flipped_end, testing::kPassphrase, StatusCode::kDataLoss, ""});
  v.push_back({"truncated", good.substr(0, good.size() - 100), testing::kPassphrase,
               StatusCode::kDataLoss, ""});
  v.push_back({"truncated header", good.substr(0, 30), testing::kPassphrase,
               StatusCode::kDataLoss, ""});
  v.push_back({"empty", "", testing::kPassphrase, StatusCode::kDataLoss, ""});
  std::string junk(5000, '\0');
  testing::FillRandom(9, reinterpret_cast<uint8_t*>(junk.data()), junk.size());
  junk[0] = 0x23;  // not a packet tag
  v.push_back({"not OpenPGP", junk, testing::kPassphrase, StatusCode::kDataLoss, ""});
  GpgParams sed;
  sed.cipher = "CAST5";
  sed.rfc2440 = true;
  v.push_back({"no MDC (legacy SED)", *CachedGpgEncrypt(plain, sed), testing::kPassphrase,
               StatusCode::kDataLoss, "integrity protection"});
  GpgParams store;
  store.store_only = true;
  v.push_back({"not encrypted (literal data)", *CachedGpgEncrypt(plain, store),
               testing::kPassphrase, StatusCode::kDataLoss, "not encrypted"});
  return v;
}

TEST_CASE("decrypt: bad messages fail with a clear reason on every backend") {
  for (const BadCase& c : BadMessages()) {
    for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
      CAPTURE(std::string(c.name));
      CAPTURE(BackendName(b));
      StringSink out;
      Status s = Decrypt(b, c.ct, &out, c.passphrase);
      CHECK(!s.ok());
      CHECK_MESSAGE(s.code() == c.code, s.ToString());
      CHECK_MESSAGE(s.message().find(c.contains) != std::string::npos, s.ToString());
      CHECK(!s.message().empty());
      // The passphrase never appears in an error.
      CHECK(s.message().find(testing::kPassphrase) == std::string::npos);
    }
  }
}

TEST_CASE("decrypt: wrong passphrase on a message larger than the pipes") {
  // gpg stops reading early here, so the reason comes from the write path, not Finish().
  std::string big(6 << 20, '\0');
  testing::FillRandom(11, reinterpret_cast<uint8_t*>(big.data()), big.size());
  auto ct = CachedGpgEncrypt(big, GpgParams{});
  REQUIRE(ct.ok());
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    CAPTURE(BackendName(b));
    StringSink out;
    Status s = Decrypt(b, *ct, &out, "wrong words");
    CHECK_MESSAGE(s.code() == StatusCode::kPermissionDenied, s.ToString());
    CHECK(out.data().empty());
  }
}

TEST_CASE("decrypt: plaintext limit stops a compression bomb at the OpenPGP layer") {
  std::string zeros(8 << 20, '\0');
  GpgParams p;
  p.compress = "ZLIB";
  auto ct = CachedGpgEncrypt(zeros, p);
  REQUIRE(ct.ok());
  REQUIRE(ct->size() < 100000);
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    CAPTURE(BackendName(b));
    StringSink out;
    Status s = Decrypt(b, *ct, &out, testing::kPassphrase, 3, /*max_plaintext=*/1 << 20);
    CHECK(!s.ok());
    CHECK(out.data().size() <= (2u << 20));
  }
}

TEST_CASE("decrypt: a failing sink stops decryption with its status") {
  const std::string plain = MatrixPlaintext();
  auto ct = CachedGpgEncrypt(plain, GpgParams{});
  REQUIRE(ct.ok());
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    size_t seen = 0;
    FunctionSink sink([&](const uint8_t*, size_t n) {
      seen += n;
      return seen > 1000 ? Status::Unavailable("upload failed") : Status();
    });
    DecryptOptions o;
    o.backend = b;
    Secret pass(testing::kPassphrase);
    auto d = NewDecryptor(o, pass, &sink);
    REQUIRE(d.ok());
    Status w;
    for (size_t pos = 0; pos < ct->size() && w.ok(); pos += 4096) {
      w = (*d)->Write(reinterpret_cast<const uint8_t*>(ct->data()) + pos,
                      std::min<size_t>(4096, ct->size() - pos));
    }
    Status f = (*d)->Finish();
    CHECK(f.code() == StatusCode::kUnavailable);
    CHECK(f.message() == "upload failed");
  }
}

TEST_CASE("decrypt: abandoning a decryptor mid-stream neither hangs nor leaks a child") {
  const std::string plain = MatrixPlaintext();
  auto ct = CachedGpgEncrypt(plain, GpgParams{});
  REQUIRE(ct.ok());
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    StringSink out;
    DecryptOptions o;
    o.backend = b;
    Secret pass(testing::kPassphrase);
    auto d = NewDecryptor(o, pass, &out);
    REQUIRE(d.ok());
    CHECK((*d)->Write(reinterpret_cast<const uint8_t*>(ct->data()), ct->size() / 2).ok());
    d->reset();
  }
  // No zombie or running child left behind.
  CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
}

TEST_CASE("decrypt: gpg gets the passphrase through a pipe, never argv, in a private home") {
  // A stand-in "gpg" that records its argv and what arrives on fd 3, then fails.
  grin::testing::TempDir tmp;
  std::string fake = tmp.file("fake-gpg");
  grin::testing::WriteFile(fake,
                           "#!/bin/sh\n"
                           "printf '%s\\n' \"$@\" > \"$0.argv\"\n"
                           "head -n1 <&3 > \"$0.fd3\"\n"
                           "cat > /dev/null\n"
                           "exit 2\n");
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  DecryptOptions o;
  o.backend = DecryptBackend::kGpg;
  o.gpg_program = fake;
  o.gnupg_home = tmp.file("home");
  Secret pass("s3cret words here");
  StringSink out;
  auto d = NewDecryptor(o, pass, &out);
  REQUIRE(d.ok());
  std::string data(1000, 'x');
  (void)(*d)->Write(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  CHECK(!(*d)->Finish().ok());
  std::string argv = grin::testing::ReadFile(fake + ".argv");
  CHECK(argv.find("s3cret") == std::string::npos);
  CHECK(argv.find("--passphrase-fd\n3\n") != std::string::npos);
  CHECK(argv.find("--pinentry-mode\nloopback\n") != std::string::npos);
  CHECK(argv.find("--batch\n") != std::string::npos);
  CHECK(argv.find("--homedir\n" + tmp.file("home") + "\n") != std::string::npos);
  CHECK(argv.find("--status-fd\n4\n") != std::string::npos);
  CHECK(grin::testing::ReadFile(fake + ".fd3") == "s3cret words here\n");
}

TEST_CASE("decrypt: real gpg in a fresh GNUPGHOME starts no agent") {
  grin::testing::TempDir tmp;
  auto ct = CachedGpgEncrypt(MatrixPlaintext(), GpgParams{});
  REQUIRE(ct.ok());
  DecryptOptions o;
  o.backend = DecryptBackend::kGpg;
  o.gnupg_home = tmp.path().string();
  Secret pass(testing::kPassphrase);
  StringSink out;
  auto d = NewDecryptor(o, pass, &out);
  REQUIRE(d.ok());
  REQUIRE((*d)->Write(reinterpret_cast<const uint8_t*>(ct->data()), ct->size()).ok());
  CHECK((*d)->Finish().ok());
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    CHECK(e.path().filename().string().find("S.gpg-agent") == std::string::npos);
  }
}

TEST_CASE("decrypt: gpg status verdicts") {
  using internal::GpgVerdict;
  const std::string ok =
      "[GNUPG:] NEED_PASSPHRASE_SYM 9 3 2\n[GNUPG:] BEGIN_DECRYPTION\n"
      "[GNUPG:] DECRYPTION_INFO 2 9 0\n[GNUPG:] PLAINTEXT 62 0 \n[GNUPG:] DECRYPTION_OKAY\n"
      "[GNUPG:] GOODMDC\n[GNUPG:] END_DECRYPTION\n";
  CHECK(GpgVerdict({ok, 0, ""}).ok());
  CHECK(!GpgVerdict({ok, 2 << 8, ""}).ok());  // non-zero exit overrides the status lines
  std::string no_mdc = ok;
  no_mdc.replace(no_mdc.find("[GNUPG:] GOODMDC\n"), 17, "");
  CHECK(!GpgVerdict({no_mdc, 0, ""}).ok());
  CHECK(GpgVerdict({ok + "[GNUPG:] DECRYPTION_FAILED\n", 0, ""}).code() == StatusCode::kDataLoss);
  CHECK(GpgVerdict({"[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] ERROR symkey_decrypt.maybe_error "
                    "11_BAD_PASSPHRASE\n[GNUPG:] DECRYPTION_FAILED\n",
                    2 << 8, "gpg: decryption failed: Bad session key\n"})
            .code() == StatusCode::kPermissionDenied);
  CHECK(!GpgVerdict({"", 0, ""}).ok());
}

}  // namespace
}  // namespace grin::archive
