#pragma once
// StreamDigests: SHA-256 and MD5 of a byte stream computed as it passes, for the upload's
// integrity headers (x-amz-content-sha256, Content-MD5). Built on engine/base/digest.h's Hasher.
// Not thread-safe; one stream per object.
// MD5 costs ~1.1 ms/MiB, twice SHA-256 with SHA-NI: construct with md5 = false to skip it (then
// md5() stays all zero and md5_hex() is empty).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/base/digest.h"

namespace grin::archive {

class StreamDigests {
 public:
  explicit StreamDigests(bool md5 = true);
  StreamDigests(const StreamDigests&) = delete;
  StreamDigests& operator=(const StreamDigests&) = delete;

  void Update(const uint8_t* data, size_t n);
  // Finalises both digests (further Updates are ignored).
  void Final();
  uint64_t bytes() const { return bytes_; }
  // Lower-case hex; valid after Final().
  std::string sha256_hex() const;
  std::string md5_hex() const;
  bool has_md5() const { return md5_hasher_.has_value(); }
  const std::array<uint8_t, 32>& sha256() const { return sha256_; }
  const std::array<uint8_t, 16>& md5() const { return md5_; }

 private:
  Hasher sha256_hasher_{Hasher::Kind::kSha256};
  std::optional<Hasher> md5_hasher_;
  uint64_t bytes_ = 0;
  bool final_ = false;
  std::array<uint8_t, 32> sha256_{};
  std::array<uint8_t, 16> md5_{};
};

}  // namespace grin::archive
