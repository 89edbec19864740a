#include "storage/s3/sigv4.h"

#include <algorithm>
#include <ctime>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"

namespace grin::s3 {

namespace {

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims and collapses every run of whitespace (space, tab, CR, LF) to one space.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool HasHeader(const HeaderList& h, std::string_view lower_name) {
  return std::any_of(h.begin(), h.end(),
                     [&](const auto& kv) { return ToLower(kv.first) == lower_name; });
}

}  // namespace

std::string CanonicalQuery(const HeaderList& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(PercentEncode(k), PercentEncode(v));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segs;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto s : segs) {
    out.push_back('/');
    out.append(s);
  }
  // A trailing slash is kept ("/example/" stays a directory), but not doubled.
  bool trailing = !path.empty() && path.back() == '/';
  if (out.empty() || trailing) out.push_back('/');
  return out;
}

std::string FormatAmzDate(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Signer::Signer(std::string region, std::string service, SigningFlavor flavor)
    : region_(std::move(region)), service_(std::move(service)), flavor_(flavor) {}

std::string Signer::DeriveSigningKey(std::string_view secret, std::string_view date,
                                     std::string_view region, std::string_view service) {
  std::string k = HmacSha256(std::string("AWS4").append(secret), date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  return HmacSha256(k, "aws4_request");
}

std::string Signer::SigningKey(const Credentials& creds, const std::string& date) const {
  // The cache id holds a hash of the secret rather than the secret itself.
  std::string id = date + '\n' + creds.access_key_id + '\n' + Sha256(creds.secret_access_key);
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [cid, key] : key_cache_) {
    if (cid == id) return key;
  }
  std::string key = DeriveSigningKey(creds.secret_access_key, date, region_, service_);
  if (key_cache_.size() >= 8) key_cache_.erase(key_cache_.begin());
  key_cache_.emplace_back(std::move(id), key);
  return key;
}

SignedRequest Signer::Sign(const SigningInput& in, const Credentials& creds,
                           int64_t unix_seconds) const {
  SignedRequest out;
  const std::string amz_date = FormatAmzDate(unix_seconds);
  const std::string date = amz_date.substr(0, 8);

  HeaderList headers = in.headers;
  auto add = [&](std::string name, std::string value) {
    if (HasHeader(headers, name)) return;
    out.added_headers.emplace_back(name, value);
    headers.emplace_back(std::move(name), std::move(value));
  };
  add("x-amz-date", amz_date);
  if (flavor_ == SigningFlavor::kS3) add("x-amz-content-sha256", in.payload_hash);
  if (!creds.session_token.empty()) add("x-amz-security-token", creds.session_token);

  // Lower-case names; a stable sort keeps repeated headers in the order they were sent.
  std::vector<std::pair<std::string, std::string>> canon;
  for (const auto& [k, v] : headers) canon.emplace_back(ToLower(k), CanonicalHeaderValue(v));
  std::stable_sort(canon.begin(), canon.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string header_block;
  std::string signed_headers;
  for (size_t i = 0; i < canon.size();) {
    std::string value = canon[i].second;
    size_t j = i + 1;
    for (; j < canon.size() && canon[j].first == canon[i].first; ++j) {
      value += ',';
      value += canon[j].second;
    }
    header_block += canon[i].first + ':' + value + '\n';
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += canon[i].first;
    i = j;
  }

  const std::string path =
      flavor_ == SigningFlavor::kGeneric ? NormalizePath(in.path) : std::string(in.path);
  out.canonical_request = in.method + '\n' + EncodePath(path.empty() ? "/" : path) + '\n' +
                          CanonicalQuery(in.query) + '\n' + header_block + '\n' +
                          signed_headers + '\n' + in.payload_hash;
  const std::string scope = date + '/' + region_ + '/' + service_ + "/aws4_request";
  out.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + '\n' + scope + '\n' +
                       Sha256Hex(out.canonical_request);
  out.signature = HexEncode(HmacSha256(SigningKey(creds, date), out.string_to_sign));
  out.signed_headers = signed_headers;
  out.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + '/' + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + out.signature;
  return out;
}

}  // namespace grin::s3
