// `grin-jobs storage` with hostile object keys: every printable ASCII character, commas, `%2F`,
// `.` and `..` segments, empty segments, NFC and NFD unicode, 1,024 bytes. No argument is split
// at commas (cxxopts' vector options did: `rm 's3://b/k1,s3://b/k2'` deleted k1 and k2).
// Against the Swift S3 server each key round-trips exactly, checked with boto3; the local folder
// store stores the keys that are safe paths and refuses the others with one clear line.

#include <doctest/doctest.h>

#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/s3/subprocess.h"
#include "tests/support/swift_server.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
int RunStorage(const std::vector<std::string>&, std::ostream&, std::ostream&);
}

namespace grin {
namespace {

using grin::testing::RunProcess;
using grin::testing::SourceDir;
using grin::testing::SwiftServer;
using grin::testing::TempDir;

struct Run {
  int code;
  std::string out, err;
};

Run Storage(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = cli::RunStorage(args, out, err);
  return {code, out.str(), err.str()};
}

bool OneLine(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

std::string PrintableAscii(bool with_backslash) {
  std::string s;
  for (char c = 0x20; c < 0x7f; ++c) {
    if (c != '\\' || with_backslash) s += c;
  }
  return s;
}

// 1,024 bytes with a two-byte character at the end; segments of 200 bytes when `slashes`.
std::string Key1024(bool slashes) {
  std::string s;
  while (s.size() < 1022) s += (slashes && s.size() % 200 == 199) ? '/' : 'k';
  s += "\xc3\xa9";  // é
  REQUIRE(s.size() == 1024);
  return s;
}

const std::string kNfc = "caf\xc3\xa9";   // café, U+00E9
const std::string kNfd = "cafe\xcc\x81";  // café, e + U+0301

TEST_CASE("storage cli, local store: hostile keys round-trip or are refused with one line") {
  TempDir dir;
  const std::string base = dir.file("store");
  std::filesystem::create_directories(base);
  const std::vector<std::string> s = {"--storage", "local", "--storage-path", base};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = s;
    a.insert(a.end(), extra.begin(), extra.end());
    return Storage(a);
  };
  const std::vector<std::string> good = {PrintableAscii(false), "k1,k2", "a,b,c", "%2F",
                                         "a%2Fb", kNfc, kNfd, Key1024(true), "sp ", " sp",
                                         "-dash", "x=y&z?#frag"};
  int i = 0;
  for (const auto& key : good) {
    CAPTURE(key);
    const std::string body = "object " + std::to_string(i++) + " " + key;
    grin::testing::WriteFile(dir.path() / "in", body);
    auto up = with({"cp", dir.file("in"), "s3://bkt/" + key});
    REQUIRE_MESSAGE(up.code == 0, up.err);
    auto down = with({"cp", "s3://bkt/" + key, dir.file("out")});
    REQUIRE_MESSAGE(down.code == 0, down.err);
    CHECK(grin::testing::ReadFile(dir.path() / "out") == body);
    auto head = with({"head", "s3://bkt/" + key});
    CHECK(head.out.find("\nkey: " + key + "\n") != std::string::npos);
  }
  auto ls = with({"ls", "s3://bkt/"});
  REQUIRE(ls.code == 0);
  for (const auto& key : good) CHECK(ls.out.find("  " + key + "\n") != std::string::npos);
  CHECK(ls.out.find(std::to_string(good.size()) + " objects") != std::string::npos);

  // Keys that cannot be a safe path under the bucket: one line naming the key, nothing written.
  const std::vector<std::string> bad = {PrintableAscii(true), "..", "a/../b", "../up", "./x",
                                        "x/./y", "x/..", ".", "a//b", "/lead", "a\\b",
                                        Key1024(false), "x/.grin-meta.json"};
  for (const auto& key : bad) {
    CAPTURE(key);
    auto up = with({"cp", dir.file("in"), "s3://bkt/" + key});
    CHECK(up.code == 1);
    CHECK(OneLine(up.err));
    CHECK(up.err.find("bkt/" + key.substr(0, 60)) != std::string::npos);
  }
  auto after = with({"ls", "s3://bkt/"});
  CHECK(after.out == ls.out);
  CHECK(!std::filesystem::exists(base + "/up"));     // "../up" stayed out of the store root
  CHECK(!std::filesystem::exists(base + "/bkt/b"));  // "a/../b" was not stored as "b"
  // A key with a control character is refused, and the message stays one line.
  auto ctl = with({"cp", dir.file("in"), "s3://bkt/a\nb"});
  CHECK(ctl.code == 1);
  CHECK(OneLine(ctl.err));
  CHECK(ctl.err.find("bkt/a\\x0ab") != std::string::npos);

  // rm of one comma-named object deletes only that object.
  auto rm = with({"rm", "--yes", "s3://bkt/k1,k2"});
  CHECK(rm.out == "deleted 1 object(s)\n");
  auto left = with({"ls", "s3://bkt/"});
  CHECK(left.out.find("  k1,k2\n") == std::string::npos);
  CHECK(left.out.find("  a,b,c\n") != std::string::npos);
}

TEST_SUITE_BEGIN("integration");

// boto3 with the server's endpoint, CA and credentials from the environment (never argv).
constexpr const char* kBoto3Prelude = R"(
import json, os, sys, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
                  aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
                  region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
                  verify=os.environ["GRIN_S3_CA_FILE"],
                  config=botocore.config.Config(s3={"addressing_style": "path"}))
)";

std::string Boto3(const SwiftServer& server, const std::string& code,
                  const std::vector<std::string>& args, const std::string& in = "") {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", std::string(kBoto3Prelude) + code};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunProcess(argv, in, server.ChildEnv());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return r.out;
}

// Every key in the bucket, as boto3 lists it (keys travel as JSON, never through argv).
std::set<std::string> Boto3Keys(const SwiftServer& server, const std::string& bucket) {
  auto out = Boto3(server, R"(
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]):
    keys += [o["Key"] for o in page.get("Contents", [])]
print(json.dumps(keys))
)",
                   {bucket});
  auto v = nlohmann::json::parse(out).get<std::vector<std::string>>();
  return {v.begin(), v.end()};
}

TEST_CASE("storage cli against Swift s3api: hostile keys round-trip exactly, checked with boto3" *
          doctest::timeout(300)) {
  SwiftServer server(SourceDir());
  TempDir dir;
  std::random_device rd;
  const std::string bucket = "grin-keys-" + std::to_string(rd() % 1000000000);
  Boto3(server, "s3.create_bucket(Bucket=sys.argv[1])\n", {bucket});
  grin::testing::WriteFile(dir.path() / "credentials",
                           "[cli]\naws_access_key_id = " + server.get("GRIN_S3_ACCESS_KEY") +
                               "\naws_secret_access_key = " + server.get("GRIN_S3_SECRET_KEY") +
                               "\n");
  const std::vector<std::string> base = {"--storage", "s3", "--path-style", "--endpoint-url",
                                         server.get("GRIN_S3_ENDPOINT"), "--region",
                                         server.get("GRIN_S3_REGION"), "--ca-file",
                                         server.get("GRIN_S3_CA_FILE"), "--credentials-file",
                                         dir.file("credentials"), "--profile", "cli"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return Storage(a);
  };
  const std::string obj = "s3://" + bucket + "/";
  // The issue's case: k1, k2, and one object whose key is "k1,s3://BUCKET/k2".
  const std::string comma = "k1," + obj + "k2";
  const std::vector<std::string> keys = {
      PrintableAscii(true), "k1", "k2", comma, "a,b", "%2F", "a%2Fb", "%2e%2e", "..", "a/../b",
      "../up", "./x", "x/./y", "x/..", ".", "a//b", "/lead", "a\\b", kNfc, kNfd, Key1024(false),
      Key1024(true), "sp ", " sp", "-dash", "x=y&z?#frag", "+plus", "~tilde*"};
  nlohmann::json check = nlohmann::json::array();
  for (size_t i = 0; i < keys.size(); ++i) {
    CAPTURE(keys[i]);
    const std::string file = dir.file("in" + std::to_string(i));
    grin::testing::WriteFile(file, "object " + std::to_string(i) + ": " + keys[i]);
    auto up = with({"cp", file, obj + keys[i]});
    REQUIRE_MESSAGE(up.code == 0, up.err);
    check.push_back({{"bucket", bucket}, {"key", keys[i]}, {"file", file}});
  }
  // boto3: exactly these keys, each with its own bytes (NFC and NFD are two objects).
  CHECK(Boto3Keys(server, bucket) == std::set<std::string>(keys.begin(), keys.end()));
  auto verified = RunProcess({"/usr/bin/python3", SourceDir() + "/tests/s3/verify_boto3.py"},
                             check.dump(), server.ChildEnv());
  REQUIRE_MESSAGE(verified.exit_code == 0, verified.err);
  std::istringstream lines(verified.out);
  size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    auto j = nlohmann::json::parse(line);
    CHECK_MESSAGE(j["same"].get<bool>(), j["key"].get<std::string>());
  }
  CHECK(n == keys.size());

  // The CLI reads them back: ls lists each key whole, head and cp name the same object.
  auto ls = with({"ls", obj});
  REQUIRE_MESSAGE(ls.code == 0, ls.err);
  CHECK(ls.out.find(std::to_string(keys.size()) + " objects") != std::string::npos);
  for (size_t i = 0; i < keys.size(); ++i) {
    CAPTURE(keys[i]);
    CHECK(ls.out.find("  " + keys[i] + "\n") != std::string::npos);
    auto head = with({"head", obj + keys[i]});
    CHECK_MESSAGE(head.code == 0, head.err);
    CHECK(head.out.find("\nkey: " + keys[i] + "\n") != std::string::npos);
    auto down = with({"cp", obj + keys[i], dir.file("out")});
    CHECK_MESSAGE(down.code == 0, down.err);
    CHECK(grin::testing::ReadFile(dir.path() / "out") ==
          "object " + std::to_string(i) + ": " + keys[i]);
  }

  // rm of the comma-named object deletes that one object: k1 and k2 stay.
  auto rm = with({"rm", "--yes", obj + comma});
  CHECK_MESSAGE(rm.code == 0, rm.err);
  CHECK(rm.out == "deleted 1 object(s)\n");
  std::set<std::string> expect(keys.begin(), keys.end());
  expect.erase(comma);
  CHECK(Boto3Keys(server, bucket) == expect);
  // Then each of the others by name, one argument each (several in one rm).
  std::vector<std::string> rm_all = {"rm", "--yes"};
  for (const auto& k : expect) rm_all.push_back(obj + k);
  auto rest = with(rm_all);
  CHECK_MESSAGE(rest.code == 0, rest.err);
  CHECK(rest.out == "deleted " + std::to_string(expect.size()) + " object(s)\n");
  CHECK(Boto3Keys(server, bucket).empty());
  Boto3(server, "s3.delete_bucket(Bucket=sys.argv[1])\n", {bucket});
}

TEST_SUITE_END();
}  // namespace
}  // namespace grin
