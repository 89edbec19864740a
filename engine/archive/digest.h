#pragma once
// StreamDigests: SHA-256 and MD5 of a byte stream computed as it passes (OpenSSL EVP), for the
// upload's integrity headers (x-amz-content-sha256, Content-MD5). OpenSSL types stay out of this
// header. Not thread-safe; one stream per object.
// MD5 costs ~1.1 ms/MiB, twice SHA-256 with SHA-NI: construct with md5 = false to skip it (then
// md5() stays all zero and md5_hex() is empty).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace grin::archive {

class StreamDigests {
 public:
  explicit StreamDigests(bool md5 = true);
  ~StreamDigests();
  StreamDigests(const StreamDigests&) = delete;
  StreamDigests& operator=(const StreamDigests&) = delete;

  void Update(const uint8_t* data, size_t n);
  // Finalises both digests (further Updates are ignored).
  void Final();
  uint64_t bytes() const { return bytes_; }
  // Lower-case hex; valid after Final().
  std::string sha256_hex() const;
  std::string md5_hex() const;
  bool has_md5() const { return md5_enabled_; }
  const std::array<uint8_t, 32>& sha256() const { return sha256_; }
  const std::array<uint8_t, 16>& md5() const { return md5_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_ = 0;
  bool final_ = false;
  bool md5_enabled_ = true;
  std::array<uint8_t, 32> sha256_{};
  std::array<uint8_t, 16> md5_{};
};

// MD5 of a whole buffer as lower-case hex (for member checksums).
class Md5Stream {
 public:
  Md5Stream();
  ~Md5Stream();
  Md5Stream(const Md5Stream&) = delete;
  Md5Stream& operator=(const Md5Stream&) = delete;
  void Update(const uint8_t* data, size_t n);
  std::string FinalHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string ToHex(const uint8_t* data, size_t n);

}  // namespace grin::archive
