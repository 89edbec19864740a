#pragma once
// Archives of the fake GRIN server (docs/grin-protocol.md: Archive contents; The fake GRIN server).
//
// BuildTarGz() makes the plaintext: a flat tar.gz with checksum.md5, <DIR>_<BARCODE>.xml (METS
// with a MARC21-slim record holding 001, 008, 245), then per page NNNNNNNN.jp2 (a JP2 signature
// box plus pseudo-random bytes), NNNNNNNN.txt (UTF-8 with non-ASCII) and NNNNNNNN.html (hOCR).
// It is a pure function of its inputs: same spec and seed, same bytes.
//
// ArchiveStore encrypts it with the real `gpg` (OpenPGP symmetric, passphrase handed over on a
// pipe as --passphrase-fd, never in argv), or with NativeEncrypt (native_encrypt.h) when
// params.encryptor is "native", and caches the result on disk under
// <cache_dir>/<params-key>/<DIR>/<BARCODE>.v<N>.gpg, and in memory up to a byte budget. gpg's
// salt and IV are random, so ciphertext bytes differ between cache regenerations; identity
// (ETag) is therefore derived from (dir, barcode, version, seed), not from the bytes.
//
// Thread safety: ArchiveStore may be used from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "engine/base/result.h"

namespace grin::fake {

struct ArchiveParams {
  std::string cipher = "AES256";   // gpg --cipher-algo: AES, AES192, AES256, CAST5
  std::string compress = "none";   // gpg --compress-algo: none, zip, zlib
  int64_t s2k_count = 65536;       // 1024 .. 65011712 (GnuPG 2.x default)
  std::string s2k_digest = "SHA1"; // gpg --s2k-digest-algo
  int image_bytes = 2048;          // bytes of each page image
  std::string gpg_program = "gpg";
  // "gpg": the real gpg subprocess (the default, for every test); "native": the in-process
  // OpenSSL encryptor of native_encrypt.h, same format, for benchmarks of many archives.
  std::string encryptor = "gpg";
};

struct ArchiveSpec {
  std::string dir;
  std::string barcode;
  uint32_t version = 1;
  int pages = 3;
  std::string title;
};

// The plaintext tar.gz for spec. Deterministic in (spec, params.image_bytes, seed).
std::string BuildTarGz(const ArchiveSpec& spec, const ArchiveParams& params, uint64_t seed);

// Runs gpg --symmetric on `plaintext`, writing `out_path`. kInternal with gpg's stderr on failure.
Status GpgEncrypt(const ArchiveParams& params, const std::string& homedir,
                  const std::string& passphrase, const std::string& plaintext,
                  const std::string& out_path);

class ArchiveStore {
 public:
  // cache_dir is created if missing; memory_budget bounds the in-memory cache.
  ArchiveStore(std::string cache_dir, ArchiveParams params, uint64_t seed,
               int64_t memory_budget = 256LL << 20);

  // The encrypted archive, generated on first use. kInternal if gpg fails.
  Result<std::shared_ptr<const std::string>> Get(const ArchiveSpec& spec,
                                                 const std::string& passphrase);

  const ArchiveParams& params() const { return params_; }
  // How many archives this store has encrypted (cache misses); for tests of the cache.
  int64_t encryptions() const;

 private:
  const std::string cache_dir_;
  const ArchiveParams params_;
  const uint64_t seed_;
  const int64_t memory_budget_;
  std::string homedir_;

  mutable std::mutex mu_;  // guards memory_, memory_bytes_, encryptions_
  std::map<std::string, std::shared_ptr<const std::string>> memory_;
  int64_t memory_bytes_ = 0;
  int64_t encryptions_ = 0;
  std::mutex gen_mu_;  // one generation at a time (gpg is quick at low S2K counts)
};

// A valid OpenPGP framing header (v4 SKESK, AES-256, iterated+salted S2K; then a SEIPD packet
// header with a 5-octet length) for a message of exactly total_size bytes; the rest of the body
// is filler. Used by the size-only mode. total_size must be > 64 and < 4 GiB + header.
std::string SizeOnlyHeader(uint64_t total_size, uint64_t seed);

}  // namespace grin::fake
