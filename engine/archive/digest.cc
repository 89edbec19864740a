#include "engine/archive/digest.h"

#include <cstring>

#include "engine/base/encoding.h"

namespace grin::archive {

StreamDigests::StreamDigests(bool md5) {
  if (md5) md5_hasher_.emplace(Hasher::Kind::kMd5);
}

void StreamDigests::Update(const uint8_t* data, size_t n) {
  if (final_) return;
  sha256_hasher_.Update(data, n);
  if (md5_hasher_) md5_hasher_->Update(data, n);
  bytes_ += n;
}

void StreamDigests::Final() {
  if (final_) return;
  final_ = true;
  const std::string sha = sha256_hasher_.Final();
  std::memcpy(sha256_.data(), sha.data(), sha256_.size());
  if (md5_hasher_) {
    const std::string md5 = md5_hasher_->Final();
    std::memcpy(md5_.data(), md5.data(), md5_.size());
  }
}

std::string StreamDigests::sha256_hex() const { return HexEncode(sha256_.data(), sha256_.size()); }
std::string StreamDigests::md5_hex() const {
  return md5_hasher_ ? HexEncode(md5_.data(), md5_.size()) : std::string();
}

}  // namespace grin::archive
