#include "engine/base/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

#include "engine/base/encoding.h"

namespace grin {

void Hasher::CtxDeleter::operator()(evp_md_ctx_st* p) const { EVP_MD_CTX_free(p); }

namespace {
const EVP_MD* MdOf(Hasher::Kind kind) {
  switch (kind) {
    case Hasher::Kind::kSha256: return EVP_sha256();
    case Hasher::Kind::kMd5: return EVP_md5();
    case Hasher::Kind::kSha1: return EVP_sha1();
  }
  return nullptr;
}
}  // namespace

Hasher::Hasher(Kind kind) : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), MdOf(kind), nullptr) != 1) std::abort();
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::string_view data) {
  if (!data.empty()) EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
}

std::string Hasher::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_.get(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string Hasher::FinalHex() { return HexEncode(Final()); }

std::string Sha256(std::string_view data) {
  Hasher h(Hasher::Kind::kSha256);
  h.Update(data);
  return h.Final();
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

std::string Md5(std::string_view data) {
  Hasher h(Hasher::Kind::kMd5);
  h.Update(data);
  return h.Final();
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

}  // namespace grin
