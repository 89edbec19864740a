#pragma once
// AWS Signature Version 4, for S3 (and, for the published test suite, generic services).
//
// Sign() is a pure function of (request, credentials, time): time is passed in, never read, so
// the published vectors reproduce exactly and retries can be re-signed with a corrected clock.
// The only state is a small cache of derived signing keys per (date, region, service, secret),
// so a request costs one SHA-256 of the canonical request and one HMAC.
//
// S3's rules (they differ from the generic SigV4 suite): the path is percent-encoded once
// (every byte except A-Z a-z 0-9 - _ . ~ and '/'), never normalised ("a//b" and "./" stay); query names and values
// are encoded and sorted by name, then value; header names lower-cased, values trimmed with inner
// whitespace runs collapsed, repeated headers joined by ','; x-amz-content-sha256 is always sent
// and signed. Callers put on the wire exactly EncodePath(path) and CanonicalQuery(query).
//
// Thread safety: a Signer may be shared by threads (the cache is locked).

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/encoding.h"

namespace grin::s3 {

// Never printed: ToString-style helpers elsewhere show only the key id.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" unless temporary credentials
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct SigningInput {
  std::string method;   // "GET", "PUT", ...
  std::string path;     // decoded, e.g. "/bucket/dir/a b.txt"
  HeaderList query;     // decoded names and values; a valueless parameter has value ""
  HeaderList headers;   // every header to sign (must include host), in the order sent
  std::string payload_hash;  // hex SHA-256 of the body, or kUnsignedPayload
};

struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-content-sha256;x-amz-date"
  std::string signature;       // hex
  std::string authorization;   // the Authorization header value
  // Headers the signer added and signed (x-amz-date, x-amz-content-sha256 for S3,
  // x-amz-security-token). The caller sends them plus Authorization.
  HeaderList added_headers;
};

enum class SigningFlavor {
  kS3,       // no path normalisation, x-amz-content-sha256 added
  kGeneric,  // the published suite: paths normalised, no x-amz-content-sha256
};

// A decoded path percent-encoded per AWS (engine/base/encoding.h's PercentEncode, '/' kept).
inline std::string EncodePath(std::string_view decoded_path) {
  return PercentEncode(decoded_path, /*keep_slash=*/true);
}
// "a=1&b=" from decoded pairs: encoded, sorted by name then value.
std::string CanonicalQuery(const HeaderList& query);
// Removes "." and ".." segments and repeated slashes (generic services only, never S3).
std::string NormalizePath(std::string_view path);
// "20150830T123600Z" for a Unix time in seconds.
std::string FormatAmzDate(int64_t unix_seconds);

class Signer {
 public:
  Signer(std::string region, std::string service = "s3",
         SigningFlavor flavor = SigningFlavor::kS3);

  const std::string& region() const { return region_; }

  SignedRequest Sign(const SigningInput& in, const Credentials& creds,
                     int64_t unix_seconds) const;

  // HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request" (raw bytes).
  static std::string DeriveSigningKey(std::string_view secret, std::string_view date,
                                      std::string_view region, std::string_view service);

 private:
  std::string SigningKey(const Credentials& creds, const std::string& date) const;

  std::string region_;
  std::string service_;
  SigningFlavor flavor_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<std::string, std::string>> key_cache_;  // (id, key), tiny
};

}  // namespace grin::s3
