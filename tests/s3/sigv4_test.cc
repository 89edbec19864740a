// SigV4: AWS's published suite (every case), AWS's S3 examples, and agreement with botocore on
// random hostile S3 keys.

#include "storage/s3/sigv4.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "tests/s3/subprocess.h"
#include "tests/support/temp_dir.h"

namespace grin::s3 {
namespace {

namespace fs = std::filesystem;
using grin::testing::ReadFile;

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && i + 2 <= s.size() - 1 + 1) {
      std::string raw;
      if (HexDecode(s.substr(i + 1, 2), &raw)) {
        out += raw;
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct SuiteCase {
  std::string name;
  SigningInput input;
};

// Parses a suite .req: request line, headers (continuation lines folded in), blank line, body.
SuiteCase ParseReq(const fs::path& file) {
  SuiteCase c;
  c.name = file.stem().string();
  std::string text = ReadFile(file);
  size_t eol = text.find('\n');
  std::string line = text.substr(0, eol);
  size_t sp = line.find(' ');
  size_t http = line.rfind(" HTTP/");
  c.input.method = line.substr(0, sp);
  std::string target = line.substr(sp + 1, http - sp - 1);
  size_t q = target.find('?');
  c.input.path = PercentDecode(target.substr(0, q));
  if (q != std::string::npos) {
    std::string query = target.substr(q + 1);
    size_t i = 0;
    while (i <= query.size()) {
      size_t amp = query.find('&', i);
      if (amp == std::string::npos) amp = query.size();
      std::string pair = query.substr(i, amp - i);
      size_t eq = pair.find('=');
      c.input.query.emplace_back(PercentDecode(pair.substr(0, eq)),
                                 eq == std::string::npos ? "" : PercentDecode(pair.substr(eq + 1)));
      i = amp + 1;
    }
  }
  std::string body;
  size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string h = text.substr(pos, e - pos);
    pos = e + 1;
    if (h.empty()) {
      body = pos < text.size() ? text.substr(pos) : "";
      break;
    }
    if (h[0] == ' ' || h[0] == '\t') {
      c.input.headers.back().second += "\n" + h;
      continue;
    }
    size_t colon = h.find(':');
    c.input.headers.emplace_back(h.substr(0, colon), h.substr(colon + 1));
  }
  c.input.payload_hash = Sha256Hex(body);
  return c;
}

fs::path SuiteDir() { return fs::path(grin::testing::SourceDir()) / "tests/s3/testdata/sigv4"; }

constexpr int64_t kSuiteTime = 1440938160;  // 20150830T123600Z

TEST_CASE("FormatAmzDate") {
  CHECK(FormatAmzDate(kSuiteTime) == "20150830T123600Z");
  CHECK(FormatAmzDate(1369353600) == "20130524T000000Z");
}

TEST_CASE("PercentEncode follows the AWS rules") {
  CHECK(PercentEncode("a b+c~d_e-f.g/h", true) == "a%20b%2Bc~d_e-f.g/h");
  CHECK(PercentEncode("a/b", false) == "a%2Fb");
  CHECK(PercentEncode("\xe1\x88\xb4", true) == "%E1%88%B4");
  CHECK(PercentEncode("=&?%", false) == "%3D%26%3F%25");
}

TEST_CASE("every case of the AWS SigV4 test suite") {
  REQUIRE(fs::is_directory(SuiteDir()));
  Signer signer("us-east-1", "service", SigningFlavor::kGeneric);
  Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  int cases = 0;
  for (const auto& e : fs::recursive_directory_iterator(SuiteDir())) {
    if (e.path().extension() != ".req") continue;
    SuiteCase c = ParseReq(e.path());
    Credentials use = creds;
    if (c.name == "get-vanilla-with-session-token") {
      // The token is part of the credentials; its value is the .creq's security-token line.
      std::string creq = ReadFile(fs::path(e.path()).replace_extension(".creq"));
      size_t p = creq.find("x-amz-security-token:");
      use.session_token = creq.substr(p + 21, creq.find('\n', p) - p - 21);
    }
    SignedRequest s = signer.Sign(c.input, use, kSuiteTime);
    auto expect = [&](const char* ext) {
      return ReadFile(fs::path(e.path()).replace_extension(ext));
    };
    INFO("case " << c.name);
    CHECK(s.canonical_request == expect(".creq"));
    CHECK(s.string_to_sign == expect(".sts"));
    CHECK(s.authorization == expect(".authz"));
    ++cases;
  }
  CHECK(cases == 34);  // every .req in the suite
}

TEST_CASE("S3 flavour does not normalise paths") {
  Signer signer("us-east-1", "s3", SigningFlavor::kS3);
  Credentials creds{"AKIDEXAMPLE", "secret", ""};
  SigningInput in{"GET", "/bucket/a//b/./c/../d", {}, {{"host", "h"}}, std::string(kEmptySha256)};
  SignedRequest s = signer.Sign(in, creds, kSuiteTime);
  CHECK(s.canonical_request.rfind("GET\n/bucket/a//b/./c/../d\n", 0) == 0);
  CHECK(s.signed_headers == "host;x-amz-content-sha256;x-amz-date");
}

// AWS's documented examplebucket cases (the S3 SigV4 reference's worked examples: GET with a
// range, PUT, GET ?lifecycle, GET ?max-keys&prefix), inputs and signatures as published.
TEST_CASE("AWS S3 examples") {
  Signer signer("us-east-1", "s3", SigningFlavor::kS3);
  Credentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  const int64_t t = 1369353600;  // 20130524T000000Z
  const std::string host = "examplebucket.s3.amazonaws.com";
  CHECK(HexEncode(Signer::DeriveSigningKey(creds.secret_access_key, "20130524", "us-east-1",
                                           "s3")) ==
        "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
  SUBCASE("GET object with range") {
    SigningInput in{"GET", "/test.txt", {}, {{"host", host}, {"range", "bytes=0-9"}},
                    std::string(kEmptySha256)};
    auto s = signer.Sign(in, creds, t);
    CHECK(s.signed_headers == "host;range;x-amz-content-sha256;x-amz-date");
    CHECK(s.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  SUBCASE("PUT object") {
    CHECK(Sha256Hex("Welcome to Amazon S3.") ==
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    SigningInput in{"PUT", "/test$file.text", {},
                    {{"host", host},
                     {"date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                    Sha256Hex("Welcome to Amazon S3.")};
    auto s = signer.Sign(in, creds, t);
    CHECK(s.canonical_request.find("\n/test%24file.text\n") != std::string::npos);
    CHECK(s.signed_headers == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    CHECK(s.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  }
  SUBCASE("GET bucket lifecycle") {
    SigningInput in{"GET", "/", {{"lifecycle", ""}}, {{"host", host}}, std::string(kEmptySha256)};
    auto s = signer.Sign(in, creds, t);
    CHECK(s.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }
  SUBCASE("list objects") {
    SigningInput in{"GET", "/", {{"max-keys", "2"}, {"prefix", "J"}}, {{"host", host}},
                    std::string(kEmptySha256)};
    auto s = signer.Sign(in, creds, t);
    CHECK(s.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("a different secret or time changes the signature, the cache is per date") {
  Signer signer("auto", "s3", SigningFlavor::kS3);
  SigningInput in{"GET", "/b/k", {}, {{"host", "h"}}, std::string(kUnsignedPayload)};
  Credentials a{"id", "secret-a", ""}, b{"id", "secret-b", ""};
  auto s1 = signer.Sign(in, a, kSuiteTime);
  auto s2 = signer.Sign(in, b, kSuiteTime);
  auto s3 = signer.Sign(in, a, kSuiteTime + 86400);
  auto s4 = signer.Sign(in, a, kSuiteTime);
  CHECK(s1.signature != s2.signature);
  CHECK(s1.signature != s3.signature);
  CHECK(s1.signature == s4.signature);
  CHECK(s1.authorization.find("secret") == std::string::npos);
  CHECK(s1.canonical_request.find("x-amz-content-sha256:UNSIGNED-PAYLOAD") != std::string::npos);
}

// Random keys built from the characters that break signers: spaces, unicode, + ~ = ? & % / and
// friends, repeated slashes, dot segments, up to 1024 bytes.
std::string HostileKey(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {
      "a", "Z", "0", " ", "  ", "+", "~", "=", "?", "&", "%", "%20", "/", "//", "./", "../", "#",
      "@", "$", ":", ",", ";", "!", "*", "'", "(", ")", "[", "]", "^", "`", "{", "}", "|", "<",
      ">", "\"", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x93\x9a", "-", "_", ".",
      "book", "BARCODE_1"};
  std::uniform_int_distribution<int> len_dist(1, 60);
  std::uniform_int_distribution<size_t> pick(0, kPieces.size() - 1);
  int pieces = rng() % 8 == 0 ? 400 : len_dist(rng);
  std::string key;
  for (int i = 0; i < pieces; ++i) key += kPieces[pick(rng)];
  if (key.size() > 1024) key.resize(1024);
  // Do not cut a UTF-8 sequence in half.
  while (!key.empty() && (static_cast<unsigned char>(key.back()) & 0xC0) == 0x80) key.pop_back();
  while (!key.empty() && (static_cast<unsigned char>(key.back()) & 0xC0) == 0xC0) key.pop_back();
  if (key.empty()) key = "k";
  return key;
}

TEST_CASE("agrees with botocore on S3 requests with hostile keys" * doctest::timeout(120)) {
  const std::string script = grin::testing::SourceDir() + "/tests/s3/botocore_sign.py";
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  INFO("seed " << seed);
  rng.seed(seed);
  Signer signer("us-east-1", "s3", SigningFlavor::kS3);
  struct Case {
    SigningInput in;
    Credentials creds;
    int64_t t;
    std::string bucket, key;
  };
  std::vector<Case> cases;
  std::string input;
  const std::vector<std::string> methods = {"GET", "PUT", "HEAD", "DELETE", "POST"};
  for (int i = 0; i < 200; ++i) {
    Case c;
    c.bucket = "bucket-" + std::to_string(i % 7);
    c.key = HostileKey(rng);
    c.t = 1'600'000'000 + static_cast<int64_t>(rng() % 300'000'000);
    c.creds = {"AKID" + std::to_string(i), "secret/" + std::to_string(rng()) + "+=", ""};
    if (i % 5 == 0) c.creds.session_token = "token+/=" + std::to_string(rng());
    std::string body = i % 3 == 0 ? "" : HostileKey(rng);
    c.in.method = methods[static_cast<size_t>(i) % methods.size()];
    c.in.path = "/" + c.bucket + "/" + c.key;
    c.in.headers = {{"host", "127.0.0.1:8443"}};
    if (i % 2 == 0) c.in.headers.emplace_back("x-amz-meta-encrypted_etag", "  \"ab  cd\"  ");
    if (i % 4 == 1) c.in.headers.emplace_back("content-type", "application/octet-stream");
    if (i % 3 == 1) {
      c.in.query = {{"partNumber", std::to_string(i)}, {"uploadId", HostileKey(rng)}};
    } else if (i % 3 == 2) {
      c.in.query = {{"list-type", "2"}, {"continuation-token", "1/a+b=c/" + HostileKey(rng)},
                    {"prefix", HostileKey(rng)}, {"uploads", ""}};
    }
    c.in.payload_hash = Sha256Hex(body);
    nlohmann::json j = {{"method", c.in.method}, {"endpoint", "https://127.0.0.1:8443"},
                        {"bucket", c.bucket}, {"key", c.key},
                        {"query", nlohmann::json::array()}, {"headers", nlohmann::json::array()},
                        {"body_hex", HexEncode(body)}, {"amz_date", FormatAmzDate(c.t)},
                        {"access", c.creds.access_key_id}, {"secret", c.creds.secret_access_key},
                        {"token", c.creds.session_token}, {"region", "us-east-1"}};
    for (const auto& [k, v] : c.in.query) j["query"].push_back({k, v});
    for (const auto& [k, v] : c.in.headers) j["headers"].push_back({k, v});
    input += j.dump() + "\n";
    cases.push_back(std::move(c));
  }
  auto r = grin::testing::RunProcess({"/usr/bin/python3", script}, input);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::istringstream lines(r.out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line) && n < cases.size()) {
    auto j = nlohmann::json::parse(line);
    const Case& c = cases[n++];
    SignedRequest s = signer.Sign(c.in, c.creds, c.t);
    INFO("key " << c.key);
    CHECK(EncodePath(c.in.path) == j["url_path"].get<std::string>());
    CHECK(s.canonical_request == j["creq"].get<std::string>());
    CHECK(s.signature == j["sig"].get<std::string>());
  }
  CHECK(n == cases.size());
}

}  // namespace
}  // namespace grin::s3
