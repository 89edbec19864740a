#pragma once
// Digests for S3: SHA-256, MD5 and HMAC-SHA256 on OpenSSL, plus hex and base64. OpenSSL types
// stay out of this header (forward-declared), as DuckDB's crypto.hpp does.
//
// Thread safety: the free functions are thread-safe; a Hasher belongs to one thread at a time.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace grin::s3 {

// Incremental digest. Update() any number of times, then Final() once.
class Hasher {
 public:
  enum class Kind { kSha256, kMd5 };
  explicit Hasher(Kind kind);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(std::string_view data);
  void Update(const char* data, size_t n) { Update(std::string_view(data, n)); }
  // Raw digest bytes (32 or 16). The hasher cannot be updated afterwards.
  std::string Final();

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* p) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

std::string Sha256(std::string_view data);                   // raw 32 bytes
std::string Sha256Hex(std::string_view data);                // lower-case hex
std::string Md5(std::string_view data);                      // raw 16 bytes
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes

std::string HexEncode(std::string_view raw);                 // lower-case
// Decodes hex (either case); returns false on odd length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* raw);
std::string Base64Encode(std::string_view raw);
bool Base64Decode(std::string_view text, std::string* raw);

// The SHA-256 of the empty string, hex.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace grin::s3
