#include "engine/archive/digest.h"

#include <openssl/evp.h>

#include "engine/base/fn_deleter.h"

namespace grin::archive {
namespace {
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, FnDeleter<EVP_MD_CTX_free>>;

EvpMdCtx NewCtx(const EVP_MD* md) {
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx) EVP_DigestInit_ex(ctx.get(), md, nullptr);
  return ctx;
}
}  // namespace

struct StreamDigests::Impl {
  explicit Impl(bool with_md5) : md5(with_md5 ? NewCtx(EVP_md5()) : nullptr) {}
  EvpMdCtx sha256 = NewCtx(EVP_sha256());
  EvpMdCtx md5;
};

StreamDigests::StreamDigests(bool md5)
    : impl_(std::make_unique<Impl>(md5)), md5_enabled_(md5) {}
StreamDigests::~StreamDigests() = default;

void StreamDigests::Update(const uint8_t* data, size_t n) {
  if (final_) return;
  EVP_DigestUpdate(impl_->sha256.get(), data, n);
  if (impl_->md5) EVP_DigestUpdate(impl_->md5.get(), data, n);
  bytes_ += n;
}

void StreamDigests::Final() {
  if (final_) return;
  final_ = true;
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->sha256.get(), sha256_.data(), &len);
  if (impl_->md5) EVP_DigestFinal_ex(impl_->md5.get(), md5_.data(), &len);
}

std::string StreamDigests::sha256_hex() const { return ToHex(sha256_.data(), sha256_.size()); }
std::string StreamDigests::md5_hex() const {
  return md5_enabled_ ? ToHex(md5_.data(), md5_.size()) : std::string();
}

struct Md5Stream::Impl {
  EvpMdCtx md5 = NewCtx(EVP_md5());
};

Md5Stream::Md5Stream() : impl_(std::make_unique<Impl>()) {}
Md5Stream::~Md5Stream() = default;
void Md5Stream::Update(const uint8_t* data, size_t n) { EVP_DigestUpdate(impl_->md5.get(), data, n); }
std::string Md5Stream::FinalHex() {
  uint8_t out[16];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->md5.get(), out, &len);
  return ToHex(out, sizeof out);
}

std::string ToHex(const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

}  // namespace grin::archive
