#pragma once
// Digests on OpenSSL: an incremental Hasher (SHA-256, MD5, SHA-1), one-shot SHA-256 / MD5 and
// HMAC-SHA256. The one place the project wraps EVP_MD_CTX; OpenSSL types stay out of this header.
// Text forms of the raw bytes (hex, base64) live in engine/base/encoding.h.
//
// Thread safety: the free functions are thread-safe; a Hasher belongs to one thread at a time.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace grin {

// Incremental digest. Update() any number of times, then Final() (or FinalHex()) once; the
// hasher cannot be updated afterwards. OpenSSL failing to set up a digest context means it is
// unusable (out of memory): the constructor aborts rather than hash nothing.
class Hasher {
 public:
  enum class Kind { kSha256, kMd5, kSha1 };
  explicit Hasher(Kind kind);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(std::string_view data);
  void Update(const void* data, size_t n) {
    Update(std::string_view(static_cast<const char*>(data), n));
  }
  // Raw digest bytes: 32 (SHA-256), 16 (MD5) or 20 (SHA-1).
  std::string Final();
  // Final() as lower-case hex.
  std::string FinalHex();

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* p) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

std::string Sha256(std::string_view data);                            // raw 32 bytes
std::string Sha256Hex(std::string_view data);                         // lower-case hex
std::string Md5(std::string_view data);                               // raw 16 bytes
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes

// The SHA-256 of the empty string, hex.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace grin
