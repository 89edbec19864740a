// `grin-jobs storage ls|head|cp|rm` run in-process against the real S3 server the integration
// tests use: OpenStack Swift + s3api behind nginx TLS (tests/support/swift_server.h). Everything
// the CLI claims is checked with an independent client (python3-boto3): bytes and metadata of
// uploads, and which keys exist after `rm --dry-run`, a refused `rm` and `rm --yes`.

#include <doctest/doctest.h>

#include <filesystem>
#include <iostream>
#include <random>
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
TEST_SUITE_BEGIN("integration");

using grin::testing::RunProcess;
using grin::testing::SourceDir;
using grin::testing::SwiftServer;
using grin::testing::TempDir;

struct Run {
  int code;
  std::string out, err;
};

// Runs `grin-jobs storage ARGS`; `answer` is what the user types if rm asks for confirmation.
Run Storage(const std::vector<std::string>& args, const std::string& answer = "") {
  std::ostringstream out, err;
  std::istringstream in(answer);
  std::streambuf* saved = std::cin.rdbuf(in.rdbuf());
  int code = cli::RunStorage(args, out, err);
  std::cin.rdbuf(saved);
  return {code, out.str(), err.str()};
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

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

// Runs a boto3 snippet (after kBoto3Prelude) with argv; returns its stdout.
std::string Boto3(const SwiftServer& server, const std::string& code,
                  const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", std::string(kBoto3Prelude) + code};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunProcess(argv, "", server.ChildEnv());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return r.out;
}

// The keys under bucket/prefix, as boto3 lists them.
std::vector<std::string> Boto3Keys(const SwiftServer& server, const std::string& bucket,
                                   const std::string& prefix) {
  auto out = Boto3(server, R"(
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):
    keys += [o["Key"] for o in page.get("Contents", [])]
print(json.dumps(sorted(keys)))
)",
                   {bucket, prefix});
  return nlohmann::json::parse(out).get<std::vector<std::string>>();
}

TEST_CASE("storage cli against Swift s3api: cp, ls, head, cp back, rm --dry-run, refused, --yes, "
          "checked with boto3" *
          doctest::timeout(240)) {
  SwiftServer server(SourceDir());
  TempDir dir;
  std::random_device rd;
  const std::string bucket = "grin-cli-" + std::to_string(rd() % 1000000000);
  Boto3(server, "s3.create_bucket(Bucket=sys.argv[1])\n", {bucket});
  // Credentials go in through a file, as a user's would (never on the command line).
  grin::testing::WriteFile(dir.path() / "credentials",
                           "[cli]\naws_access_key_id = " + server.get("GRIN_S3_ACCESS_KEY") +
                               "\naws_secret_access_key = " + server.get("GRIN_S3_SECRET_KEY") +
                               "\n");
  const std::vector<std::string> base = {
      "--storage",      "s3",
      "--path-style",  // --storage s3 defaults to virtual-host (AWS); Swift here is path style
      "--endpoint-url", server.get("GRIN_S3_ENDPOINT"),
      "--region",       server.get("GRIN_S3_REGION"),
      "--ca-file",      server.get("GRIN_S3_CA_FILE"),
      "--credentials-file", dir.file("credentials"),
      "--profile",      "cli",
      "--bucket-raw",   bucket,
      "--prefix",       "lib"};
  auto with = [&](std::vector<std::string> extra, const std::string& answer = "") {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return Storage(a, answer);
  };

  // 0 B, a small object with metadata, and one above the multipart threshold (64 MiB).
  const std::string small = RandomBytes(100'001, 1);
  grin::testing::WriteFile(dir.path() / "empty", "");
  grin::testing::WriteFile(dir.path() / "small", small);
  const uint64_t big_size = 64 * 1024 * 1024 + 12345;
  grin::testing::WriteFile(dir.path() / "big", RandomBytes(big_size, 2));
  auto up = with({"cp", dir.file("small"), "raw:B1/B1.tar.gz", "--meta", "barcode=B1",
                  "--meta", "encrypted_etag=abc"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(up.out.find("uploaded 100001 bytes to " + bucket + "/lib/B1/B1.tar.gz") !=
        std::string::npos);
  auto up0 = with({"cp", dir.file("empty"), "raw:B0/B0.tar.gz"});
  REQUIRE_MESSAGE(up0.code == 0, up0.err);
  auto upbig = with({"cp", dir.file("big"), "raw:B2/B2.tar.gz"});
  REQUIRE_MESSAGE(upbig.code == 0, upbig.err);
  CHECK(upbig.out.find("-") != std::string::npos);  // a multipart ETag: "<md5>-<parts>"
  // A dry-run cp uploads nothing.
  auto drycp = with({"cp", dir.file("small"), "raw:B9/B9.tar.gz", "--dry-run"});
  CHECK(drycp.code == 0);
  CHECK(drycp.out.find("would upload 100001 bytes") != std::string::npos);

  // boto3: the bytes and metadata as stored, and exactly the three keys.
  nlohmann::json check = nlohmann::json::array();
  check.push_back({{"bucket", bucket}, {"key", "lib/B1/B1.tar.gz"}, {"file", dir.file("small")}});
  check.push_back({{"bucket", bucket}, {"key", "lib/B0/B0.tar.gz"}, {"file", dir.file("empty")}});
  check.push_back({{"bucket", bucket}, {"key", "lib/B2/B2.tar.gz"}, {"file", dir.file("big")}});
  auto verified = RunProcess({"/usr/bin/python3", SourceDir() + "/tests/s3/verify_boto3.py"},
                             check.dump(), server.ChildEnv());
  REQUIRE_MESSAGE(verified.exit_code == 0, verified.err);
  std::istringstream lines(verified.out);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    auto j = nlohmann::json::parse(line);
    CHECK_MESSAGE(j["same"].get<bool>(), j["key"]);
    if (j["key"] == "lib/B1/B1.tar.gz") {
      CHECK(j["metadata"]["barcode"] == "B1");
      CHECK(j["metadata"]["encrypted_etag"] == "abc");
    }
    if (j["key"] == "lib/B2/B2.tar.gz") CHECK(j["size"].get<uint64_t>() == big_size);
  }
  CHECK(n == 3);
  CHECK(Boto3Keys(server, bucket, "") ==
        std::vector<std::string>{"lib/B0/B0.tar.gz", "lib/B1/B1.tar.gz", "lib/B2/B2.tar.gz"});

  auto ls = with({"ls", "raw:"});
  REQUIRE_MESSAGE(ls.code == 0, ls.err);
  CHECK(ls.out.find("lib/B1/B1.tar.gz") != std::string::npos);
  CHECK(ls.out.find("lib/B2/B2.tar.gz") != std::string::npos);
  CHECK(ls.out.find("3 objects, " + std::to_string(100'001 + big_size) + " bytes in " +
                    bucket) != std::string::npos);
  auto ls1 = with({"ls", "raw:B1"});
  CHECK(ls1.out.find("1 objects, 100001 bytes") != std::string::npos);
  auto ls_literal = with({"ls", "s3://" + bucket + "/lib/B0"});
  CHECK(ls_literal.out.find("1 objects, 0 bytes") != std::string::npos);

  auto head = with({"head", "raw:B1/B1.tar.gz"});
  REQUIRE_MESSAGE(head.code == 0, head.err);
  CHECK(head.out.find("size: 100001") != std::string::npos);
  CHECK(head.out.find("meta.barcode: B1") != std::string::npos);
  CHECK(head.out.find("meta.encrypted_etag: abc") != std::string::npos);
  auto missing = with({"head", "raw:nope"});
  CHECK(missing.code == 1);
  CHECK(missing.err.find("HTTP 404") != std::string::npos);
  CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);

  auto down = with({"cp", "raw:B1/B1.tar.gz", dir.file("back")});
  REQUIRE_MESSAGE(down.code == 0, down.err);
  CHECK(grin::testing::ReadFile(dir.path() / "back") == small);
  auto down_missing = with({"cp", "raw:nope", dir.file("nothing")});
  CHECK(down_missing.code == 1);
  CHECK(!std::filesystem::exists(dir.path() / "nothing"));  // no partial file left

  // rm --dry-run lists and deletes nothing; without --yes a "n" deletes nothing.
  auto dry = with({"rm", "raw:B1/B1.tar.gz", "--dry-run"});
  CHECK(dry.code == 0);
  CHECK(dry.out.find("would delete " + bucket + "/lib/B1/B1.tar.gz") != std::string::npos);
  auto dry_all = with({"rm", "raw:", "--recursive", "--dry-run"});
  CHECK(dry_all.out.find("3 objects would be deleted") != std::string::npos);
  CHECK(Boto3Keys(server, bucket, "").size() == 3);
  auto refused = with({"rm", "raw:B1/B1.tar.gz"}, "n\n");
  CHECK(refused.code == 1);
  CHECK(refused.err.find("not confirmed; nothing deleted") != std::string::npos);
  auto no_answer = with({"rm", "raw:B1/B1.tar.gz"}, "");  // stdin at EOF
  CHECK(no_answer.code == 1);
  CHECK(Boto3Keys(server, bucket, "").size() == 3);
  // Confirmed by typing "y", then --yes without asking, then a prefix with --recursive.
  auto typed = with({"rm", "raw:B1/B1.tar.gz"}, "y\n");
  CHECK_MESSAGE(typed.code == 0, typed.err);
  CHECK(typed.out.find("deleted 1 object(s)") != std::string::npos);
  CHECK(Boto3Keys(server, bucket, "") ==
        std::vector<std::string>{"lib/B0/B0.tar.gz", "lib/B2/B2.tar.gz"});
  auto yes = with({"rm", "raw:B0/B0.tar.gz", "--yes"});
  CHECK_MESSAGE(yes.code == 0, yes.err);
  CHECK(Boto3Keys(server, bucket, "") == std::vector<std::string>{"lib/B2/B2.tar.gz"});
  auto all = with({"rm", "raw:", "--recursive", "--yes"});
  CHECK_MESSAGE(all.code == 0, all.err);
  CHECK(all.out.find("deleted 1 object(s)") != std::string::npos);
  CHECK(Boto3Keys(server, bucket, "").empty());
  auto none = with({"rm", "raw:", "--recursive", "--yes"});
  CHECK(none.out.find("nothing to delete") != std::string::npos);

  // A wrong secret fails with one clear line and stores nothing.
  grin::testing::WriteFile(dir.path() / "bad",
                           "[cli]\naws_access_key_id = " + server.get("GRIN_S3_ACCESS_KEY") +
                               "\naws_secret_access_key = wrong-secret\n");
  auto bad_args = base;
  bad_args[std::find(bad_args.begin(), bad_args.end(), dir.file("credentials")) -
           bad_args.begin()] = dir.file("bad");
  bad_args.insert(bad_args.end(), {"cp", dir.file("small"), "raw:B1/B1.tar.gz"});
  auto bad = Storage(bad_args);
  CHECK(bad.code == 1);
  CHECK(bad.err.find("HTTP 403") != std::string::npos);
  CHECK(bad.err.find("wrong-secret") == std::string::npos);  // secrets never printed
  CHECK(std::count(bad.err.begin(), bad.err.end(), '\n') == 1);
  CHECK(Boto3Keys(server, bucket, "").empty());
  Boto3(server, "s3.delete_bucket(Bucket=sys.argv[1])\n", {bucket});
}

TEST_SUITE_END();
}  // namespace
}  // namespace grin
