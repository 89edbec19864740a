#pragma once
// Test fixtures for the archive module: a generator of GRIN-like book archives (tar.gz written by
// libarchive: page .jp2/.txt/.html, checksum.md5, METS with a MARC record), hostile members, and
// real gpg runs to encrypt (cached under the build dir) and to decrypt as the reference.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/archive/sink.h"
#include "engine/base/result.h"

namespace grin::archive::testing {

inline constexpr const char* kPassphrase = "correct horse battery staple";

struct Member {
  enum Type { kFile, kDir, kSymlink, kHardlink, kCharDevice, kFifo };
  Member() = default;
  Member(std::string n, std::string d, Type t = kFile, std::string l = "")
      : name(std::move(n)), data(std::move(d)), type(t), link(std::move(l)) {}
  std::string name;
  std::string data;
  Type type = kFile;
  std::string link;  // symlink / hard link target
};

// Writes members as a tar.gz (gzip level 0..9) to sink, streaming.
Status WriteTarGz(const std::vector<Member>& members, ByteSink* sink, int level = 6);
std::string TarGz(const std::vector<Member>& members, int level = 6);

struct BookSpec {
  std::string dir = "TEST";
  std::string barcode = "39015012345678";
  uint32_t pages = 5;
  std::set<uint32_t> missing_text;  // pages without a .txt member
  size_t image_bytes = 2000;        // per .jp2 (pseudo-random)
  // Images with a JPEG 2000-like entropy (~7.6 bits/byte: gzip Huffman-codes them, gaining a few
  // per cent) instead of uniform random bytes (which gzip stores verbatim).
  bool jp2_like_images = false;
  bool checksum = true;
  bool mets = true;
  bool reverse_order = false;       // members in reverse order (order must not matter)
  std::vector<Member> extra;        // appended (also listed in checksum.md5)
};

// The OCR text of page n: non-ASCII, quotes, backslashes, tabs, newlines, a control character;
// every 4th page also has invalid UTF-8 bytes.
std::string PageText(uint32_t page);
// METS (with namespaces as GRIN's) wrapping a MARC record with repeated fields.
std::string MetsXml(const std::string& dir, const std::string& barcode);
// The members of a book per spec, in archive order.
std::vector<Member> BookMembers(const BookSpec& spec);
std::string BookTarGz(const BookSpec& spec);

// Pseudo-random bytes (xorshift), deterministic per seed.
void FillRandom(uint64_t seed, uint8_t* out, size_t n);

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs argv with stdin_data on fd 0 and fd3_data on fd 3 (e.g. a passphrase); collects stdout.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const std::string& stdin_data, const std::string& fd3_data);

struct GpgParams {
  std::string cipher = "AES256";  // AES128 | AES256 | CAST5 | any gpg --cipher-algo name
  std::string compress = "none";  // none | ZIP | ZLIB
  uint64_t s2k_count = 65536;
  int s2k_mode = 3;                // 0 simple, 1 salted, 3 iterated+salted
  std::string s2k_digest = "SHA1";
  bool rfc2440 = false;           // no MDC (legacy SED packet)
  bool store_only = false;        // --store: a literal packet, not encrypted
};
// gpg -c with a private GNUPGHOME; the passphrase goes through fd 3.
Result<std::string> GpgEncrypt(const std::string& plaintext, const GpgParams& p,
                               const std::string& passphrase = kPassphrase);
// The same, cached in $GRIN_BINARY_DIR/archive-fixtures keyed by plaintext hash and params.
Result<std::string> CachedGpgEncrypt(const std::string& plaintext, const GpgParams& p);
// Plain `gpg --decrypt` (the reference output). Fails if gpg exits non-zero.
Result<std::string> GpgDecrypt(const std::string& ciphertext,
                               const std::string& passphrase = kPassphrase);

// A private GNUPGHOME for the test process.
std::string TestGnupgHome();

// Resident-set figures of this process from /proc/self/status, in KiB.
int64_t VmRssKiB();
int64_t VmHwmKiB();

std::string Sha256Hex(const std::string& data);

}  // namespace grin::archive::testing
