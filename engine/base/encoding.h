#pragma once
// Text encodings of bytes: hex, base64 (standard and URL-safe) and RFC 3986 percent-encoding.
// The one place for each; digests that produce the bytes live in engine/base/digest.h.
//
// All functions are pure and thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace grin {

// Lower-case hex, two digits per byte.
std::string HexEncode(std::string_view raw);
inline std::string HexEncode(const uint8_t* data, size_t n) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(data), n));
}
// Decodes hex (either case); false on odd length or a non-hex character (*raw is then
// unspecified).
bool HexDecode(std::string_view hex, std::string* raw);

// Standard base64 with '=' padding (RFC 4648 section 4), as Content-MD5 and x-amz-checksum want.
std::string Base64Encode(std::string_view raw);
inline std::string Base64Encode(const uint8_t* data, size_t n) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(data), n));
}
// Inverse of Base64Encode: false on a length that is not a multiple of 4 or a character OpenSSL's
// decoder rejects (*raw is then unchanged).
bool Base64Decode(std::string_view text, std::string* raw);

// URL-safe base64 ('-' and '_') without padding (RFC 4648 section 5), as JWTs use.
std::string Base64UrlEncode(std::string_view raw);
// Lenient decoder for JWT segments: accepts either alphabet, stops at the first character outside
// them ('=' padding included) and drops trailing bits that do not fill a byte.
std::string Base64UrlDecode(std::string_view text);

// Percent-encodes every byte outside RFC 3986's unreserved set (A-Z a-z 0-9 - _ . ~) as %XX with
// upper-case hex; with keep_slash, '/' is left as is (an S3 object key in a path). This is the
// encoding of GRIN query strings, OAuth form bodies and SigV4 canonical requests alike.
std::string PercentEncode(std::string_view s, bool keep_slash = false);

}  // namespace grin
