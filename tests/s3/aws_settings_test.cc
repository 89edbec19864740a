// Storage settings as aws-cli and botocore users expect them (cli/object_store_factory.h):
// AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3), AWS_CA_BUNDLE, AWS_PROFILE, the
// ~/.aws/config profile (region, endpoint_url, ca_bundle, the "s3 =" sub-section) and the
// precedence run config > env > files; path style chosen for IP-address and localhost endpoints;
// a run's meta scope. The resolution tests read real files in a temp HOME with the environment
// injected; the integration tests run `init` and `storage cp` in-process against the real Swift
// S3 server (GRIN_S3_ENV) with the process environment set, and check with boto3.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/object_store_factory.h"
#include "storage/s3/aws_config.h"
#include "tests/cli/cli_harness.h"
#include "tests/s3/subprocess.h"
#include "tests/support/swift_server.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

using grin::testing::TempDir;
using grin::testing::WriteFile;

s3::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kConfig = R"([default]
region = eu-west-3
endpoint_url = https://default.example.org
s3 =
  addressing_style = virtual

[profile minio]
region = us-west-1   # the MinIO's region
ca_bundle = /etc/minio-ca.pem
endpoint_url = https://profile.example.org
s3 =
  endpoint_url = https://s3-only.example.org
  addressing_style = path
output = json
)";

TEST_CASE("the AWS config file: profiles, the s3 sub-section, inline comments") {
  auto d = s3::ParseAwsConfig(kConfig, "default");
  REQUIRE(d.ok());
  CHECK(d->Value("region") == "eu-west-3");
  CHECK(d->S3Value("addressing_style") == "virtual");
  CHECK(d->Value("s3") == "");
  auto m = s3::ParseAwsConfig(kConfig, "minio");
  REQUIRE(m.ok());
  CHECK(m->Value("region") == "us-west-1");
  CHECK(m->Value("endpoint_url") == "https://profile.example.org");
  CHECK(m->S3Value("endpoint_url") == "https://s3-only.example.org");
  CHECK(m->Value("output") == "json");  // back at the top level after the sub-section
  CHECK(s3::ParseAwsConfig(kConfig, "nope").status().code() == StatusCode::kNotFound);
}

TEST_CASE("region, endpoint, addressing and CA: run config > env > ~/.aws/config > default") {
  TempDir home;
  std::filesystem::create_directories(home.path() / ".aws");
  WriteFile(home.path() / ".aws/config", kConfig);
  nlohmann::json s3cfg = {{"type", "s3"}};
  std::map<std::string, std::string> vars = {{"HOME", home.path().string()}};

  // Files only: the default profile.
  auto r = ResolveStorage(s3cfg, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->region == "eu-west-3");
  CHECK(r->endpoint_url == "https://default.example.org");
  CHECK_FALSE(r->path_style);
  CHECK(r->ca_file == "");

  // AWS_PROFILE: its region, its s3 sub-section's endpoint before its own, addressing, CA.
  vars["AWS_PROFILE"] = "minio";
  r = ResolveStorage(s3cfg, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->profile == "minio");
  CHECK(r->region == "us-west-1");
  CHECK(r->endpoint_url == "https://s3-only.example.org");
  CHECK(r->path_style);
  CHECK(r->ca_file == "/etc/minio-ca.pem");
  CHECK(StorageCaFile(s3cfg, Env(vars)) == "/etc/minio-ca.pem");

  // The environment beats the files.
  vars["AWS_DEFAULT_REGION"] = "ap-south-1";
  vars["AWS_ENDPOINT_URL"] = "https://env-generic.example.org";
  vars["AWS_CA_BUNDLE"] = "/env/ca.pem";
  r = ResolveStorage(s3cfg, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->region == "ap-south-1");
  CHECK(r->endpoint_url == "https://env-generic.example.org");
  CHECK(r->ca_file == "/env/ca.pem");
  vars["AWS_REGION"] = "ca-central-1";  // AWS_REGION before AWS_DEFAULT_REGION
  vars["AWS_ENDPOINT_URL_S3"] = "https://env-s3.example.org";  // the service's own first
  r = ResolveStorage(s3cfg, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->region == "ca-central-1");
  CHECK(r->endpoint_url == "https://env-s3.example.org");

  // The run config beats the environment.
  nlohmann::json run = {{"type", "s3"}, {"region", "us-east-2"},
                        {"endpoint_url", "https://run.example.org"}, {"ca_file", "/run/ca.pem"},
                        {"path_style", "false"}};
  r = ResolveStorage(run, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->region == "us-east-2");
  CHECK(r->endpoint_url == "https://run.example.org");
  CHECK(r->ca_file == "/run/ca.pem");
  CHECK_FALSE(r->path_style);

  // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: the AWS endpoint for the region, as botocore.
  vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  r = ResolveStorage(s3cfg, Env(vars));
  REQUIRE(r.ok());
  CHECK(r->endpoint_url == "https://s3.ca-central-1.amazonaws.com");

  // Nothing anywhere: AWS defaults.
  r = ResolveStorage(s3cfg, Env({}));
  REQUIRE(r.ok());
  CHECK(r->region == "us-east-1");
  CHECK(r->endpoint_url == "https://s3.us-east-1.amazonaws.com");
  CHECK_FALSE(r->path_style);
}

TEST_CASE("keys in the ~/.aws/config profile are found when ~/.aws/credentials lacks them") {
  TempDir home;
  std::filesystem::create_directories(home.path() / ".aws");
  WriteFile(home.path() / ".aws/config",
            "[profile cfg]\nregion = eu-north-1\naws_access_key_id = AKIDCONFIGFILE01\n"
            "aws_secret_access_key = config-secret\n");
  WriteFile(home.path() / ".aws/credentials", "[other]\naws_access_key_id = X\n"
                                              "aws_secret_access_key = Y\n");
  auto env = Env({{"HOME", home.path().string()}, {"AWS_PROFILE", "cfg"}});
  auto c = s3::ResolveCredentials(s3::CredentialRequest{}, env);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  CHECK(c->credentials.access_key_id == "AKIDCONFIGFILE01");
  CHECK(c->source.find(".aws/config") != std::string::npos);
  // The credentials file's profile, when it has one, comes first.
  WriteFile(home.path() / ".aws/credentials", "[cfg]\naws_access_key_id = AKIDCREDFILE0001\n"
                                              "aws_secret_access_key = Y\n");
  c = s3::ResolveCredentials(s3::CredentialRequest{}, env);
  REQUIRE(c.ok());
  CHECK(c->credentials.access_key_id == "AKIDCREDFILE0001");
}

TEST_CASE("path style is chosen for IP-address and localhost endpoints, as botocore does") {
  auto style = [](nlohmann::json cfg) {
    auto r = ResolveStorage(cfg, Env({}));
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->path_style;
  };
  for (const char* ep : {"https://127.0.0.1:8443", "http://10.1.2.3", "https://[::1]:9000",
                         "http://localhost:9000", "https://minio.localhost"}) {
    CAPTURE(ep);
    CHECK(style({{"type", "s3"}, {"endpoint_url", ep}}));
    CHECK_FALSE(style({{"type", "s3"}, {"endpoint_url", ep}, {"path_style", false}}));
  }
  CHECK_FALSE(style({{"type", "s3"}, {"endpoint_url", "https://s3.example.org"}}));
  CHECK(style({{"type", "s3"}, {"endpoint_url", "https://s3.example.org"}, {"path_style", "true"}}));
  CHECK(style({{"type", "s3"}, {"endpoint_url", "https://s3.example.org"}, {"path_style", "auto"},
               {"bucket_raw", "My_Raw"}}));  // not a DNS label
  CHECK(style({{"type", "r2"}, {"endpoint_url", "https://acct.r2.cloudflarestorage.com"}}));
  CHECK(style({{"type", "minio"}}));
  auto bad = ResolveStorage({{"type", "s3"}, {"path_style", "yes"}}, Env({}));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("storage.path_style 'yes': use true, false or auto") !=
        std::string::npos);
  auto r2 = ResolveStorage({{"type", "r2"}}, Env({}));
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().message().find("--endpoint-url") != std::string::npos);
}

TEST_CASE("the storage keys live in one list, path_style among them, each with its help") {
  const auto& keys = StorageConfigKeys();
  for (const char* k : {"endpoint_url", "region", "path_style", "bucket_raw", "bucket_meta",
                        "bucket_full", "prefix", "credentials_file", "profile", "ca_file",
                        "base_path"}) {
    CAPTURE(k);
    CHECK(std::find(keys.begin(), keys.end(), k) != keys.end());
    CHECK(StorageConfigHelp().find(std::string(k) + ": ") != std::string::npos);
  }
  CHECK(std::find(keys.begin(), keys.end(), "pathstyle") == keys.end());
  CHECK(CheckStorageValue("path_style", "auto").ok());
  CHECK(CheckStorageValue("endpoint_url", "https://127.0.0.1:9000").ok());
  CHECK(CheckStorageValue("pathstyle", "true").message().find("unknown") != std::string::npos);
  CHECK(CheckStorageValue("path_style", "yes").message() ==
        "path_style 'yes': use true, false or auto");
  CHECK_FALSE(CheckStorageValue("endpoint_url", "127.0.0.1:9000").ok());
  TempDir runs;
  std::ostringstream o2, e2;
  CHECK(RunCli({"init", "--run-dir", runs.file("r"), "--storage", "s3", "--storage-config",
                "path_style=yes"}, o2, e2) != 0);
  CHECK(e2.str().find("path_style 'yes': use true, false or auto") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(runs.file("r")));
  std::ostringstream out, err;
  CHECK(RunCli({"init", "--help"}, out, err) == 0);
  CHECK(out.str().find("path_style: true") != std::string::npos);
  CHECK(out.str().find("--endpoint-url") != std::string::npos);
}

TEST_CASE("a run's meta scope: its name, or its directory's, never a path") {
  CHECK(*RunMetaName("harvard-2026", "/x/y") == "harvard-2026");
  CHECK(*RunMetaName("", "/tmp/runs/nightly") == "nightly");
  CHECK(*RunMetaName("", "/tmp/runs/nightly/") == "nightly");
  for (const char* bad : {"a/b", "..", ".", "a\\b", "tab\there"}) {
    CAPTURE(bad);
    auto r = RunMetaName(bad, "/tmp/x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("run_name") != std::string::npos);
  }
  StorageLayout l;
  l.prefix = "lib/";
  CHECK(MetaLocation(RunMetaLayout(l, "nightly"), "books_latest.db.gz").key ==
        "lib/nightly/books_latest.db.gz");
  CHECK(RawArchiveLocation(l, "B1").key == "lib/B1/B1.tar.gz");  // raw keys never scoped
  CHECK(LatestCsvLocation(RunMetaLayout(StorageLayout{}, "r")).key == "r/books_latest.csv.gz");
}

// ---- against the real Swift S3 server ----

TEST_SUITE_BEGIN("integration");

// Sets environment variables for the scope and restores the previous values after.
class ScopedEnv {
 public:
  void Set(const std::string& k, const std::string& v) {
    Save(k);
    setenv(k.c_str(), v.c_str(), 1);
  }
  void Unset(const std::string& k) {
    Save(k);
    unsetenv(k.c_str());
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved_) {
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }

 private:
  void Save(const std::string& k) {
    if (saved_.count(k)) return;
    const char* v = std::getenv(k.c_str());
    saved_[k] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

using testing::Cli;

// An environment where no AWS setting leaks in from the machine: HOME is a temp dir.
void CleanAwsEnv(ScopedEnv& env, const TempDir& home) {
  env.Set("HOME", home.path().string());
  for (const char* k : {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                        "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                        "AWS_SHARED_CREDENTIALS_FILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"}) {
    env.Unset(k);
  }
}

// boto3 (an independent client, path style against Swift) runs `code` with argv; its stdout.
std::string Boto3(const grin::testing::SwiftServer& server, const std::string& code,
                  const std::vector<std::string>& args) {
  std::string prelude = R"(
import os, sys, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
                  aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
                  region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
                  verify=os.environ["GRIN_S3_CA_FILE"],
                  config=botocore.config.Config(s3={"addressing_style": "path"}))
)";
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", prelude + code};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = grin::testing::RunProcess(argv, "", server.ChildEnv());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return r.out;
}

std::string Boto3Get(const grin::testing::SwiftServer& server, const std::string& bucket,
                     const std::string& key) {
  return Boto3(server,
               "sys.stdout.write(s3.get_object(Bucket=sys.argv[1], "
               "Key=sys.argv[2])['Body'].read().decode())\n",
               {bucket, key});
}

void Boto3CreateBucket(const grin::testing::SwiftServer& server, const std::string& bucket) {
  Boto3(server, "s3.create_bucket(Bucket=sys.argv[1])\n", {bucket});
}

std::string Suffix() {
  std::random_device rd;
  return std::to_string(rd() % 1000000000);
}

TEST_CASE("init --storage s3 with an IP-address endpoint and no path_style reaches the bucket") {
  grin::testing::SwiftServer server(grin::testing::SourceDir());
  TempDir dir, home;
  ScopedEnv env;
  CleanAwsEnv(env, home);
  env.Set("AWS_ACCESS_KEY_ID", server.get("GRIN_S3_ACCESS_KEY"));
  env.Set("AWS_SECRET_ACCESS_KEY", server.get("GRIN_S3_SECRET_KEY"));
  const std::string bucket = "grin-ip-" + Suffix();
  Boto3CreateBucket(server, bucket);
  const std::string run = dir.file("run");
  auto init = Cli({"init", "--run-dir", run, "--library-directory", "TEST", "--storage", "s3",
                   "--storage-config", "endpoint_url=" + server.get("GRIN_S3_ENDPOINT"),
                   "--storage-config", "ca_file=" + server.get("GRIN_S3_CA_FILE"),
                   "--storage-config", "bucket_meta=" + bucket});
  REQUIRE_MESSAGE(init.code == 0, init.err);
  WriteFile(dir.path() / "probe", "probe-ip");
  // Before: "Could not resolve host: <bucket>.127.0.0.1" on every request.
  auto cp = Cli({"storage", "cp", dir.file("probe"), "meta:probe.txt", "--run-dir", run});
  REQUIRE_MESSAGE(cp.code == 0, cp.err);
  CHECK(Boto3Get(server, bucket, "probe.txt") == "probe-ip");
}

TEST_CASE("init --endpoint-url, AWS_CA_BUNDLE and the AWS_ACCESS_KEY_ID pair reach Swift") {
  grin::testing::SwiftServer server(grin::testing::SourceDir());
  TempDir dir, home;
  ScopedEnv env;
  CleanAwsEnv(env, home);
  env.Set("AWS_ACCESS_KEY_ID", server.get("GRIN_S3_ACCESS_KEY"));
  env.Set("AWS_SECRET_ACCESS_KEY", server.get("GRIN_S3_SECRET_KEY"));
  env.Set("AWS_CA_BUNDLE", server.get("GRIN_S3_CA_FILE"));
  env.Set("AWS_REGION", server.get("GRIN_S3_REGION"));
  const std::string bucket = "grin-envca-" + Suffix();
  Boto3CreateBucket(server, bucket);
  const std::string run = dir.file("run");
  auto init = Cli({"init", "--run-dir", run, "--library-directory", "TEST", "--storage", "s3",
                   "--endpoint-url", server.get("GRIN_S3_ENDPOINT"), "--storage-config",
                   "bucket_meta=" + bucket});
  REQUIRE_MESSAGE(init.code == 0, init.err);
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(run + "/run_config.json"));
  CHECK(cfg["storage"]["endpoint_url"] == server.get("GRIN_S3_ENDPOINT"));
  CHECK_FALSE(cfg["storage"].contains("ca_file"));  // the CA comes from AWS_CA_BUNDLE
  WriteFile(dir.path() / "probe", "probe-env");
  auto cp = Cli({"storage", "cp", dir.file("probe"), "meta:env.txt", "--run-dir", run});
  REQUIRE_MESSAGE(cp.code == 0, cp.err);
  CHECK(Boto3Get(server, bucket, "env.txt") == "probe-env");
}

TEST_CASE("a temp ~/.aws/config and ~/.aws/credentials alone configure an s3 run") {
  grin::testing::SwiftServer server(grin::testing::SourceDir());
  TempDir dir, home;
  ScopedEnv env;
  CleanAwsEnv(env, home);
  std::filesystem::create_directories(home.path() / ".aws");
  // Profile "swift" (AWS_PROFILE): region, CA bundle and the s3 sub-section's endpoint and
  // addressing, as a MinIO user would write them; keys in the credentials file.
  WriteFile(home.path() / ".aws/config",
            "[default]\nregion = eu-west-1\n\n[profile swift]\nregion = " +
                server.get("GRIN_S3_REGION") + "\nca_bundle = " + server.get("GRIN_S3_CA_FILE") +
                "\ns3 =\n  endpoint_url = " + server.get("GRIN_S3_ENDPOINT") +
                "\n  addressing_style = path\n");
  WriteFile(home.path() / ".aws/credentials",
            "[swift]\naws_access_key_id = " + server.get("GRIN_S3_ACCESS_KEY") +
                "\naws_secret_access_key = " + server.get("GRIN_S3_SECRET_KEY") + "\n");
  std::filesystem::permissions(home.path() / ".aws/credentials",
                               std::filesystem::perms::owner_read |
                                   std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  env.Set("AWS_PROFILE", "swift");
  const std::string bucket = "grin-awsfiles-" + Suffix();
  Boto3CreateBucket(server, bucket);
  const std::string run = dir.file("run");
  auto init = Cli({"init", "--run-dir", run, "--library-directory", "TEST", "--storage", "s3",
                   "--storage-config", "bucket_meta=" + bucket});
  REQUIRE_MESSAGE(init.code == 0, init.err);
  WriteFile(dir.path() / "probe", "probe-files");
  // Before: ~/.aws/config was never read (endpoint s3.us-east-1.amazonaws.com, no CA).
  auto cp = Cli({"storage", "cp", dir.file("probe"), "meta:files.txt", "--run-dir", run});
  REQUIRE_MESSAGE(cp.code == 0, cp.err);
  CHECK(Boto3Get(server, bucket, "files.txt") == "probe-files");
}

TEST_CASE("a DNS failure on a virtual-host name says to try path style") {
  TempDir dir, home;
  ScopedEnv env;
  CleanAwsEnv(env, home);
  env.Set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEEXAMPLE");
  env.Set("AWS_SECRET_ACCESS_KEY", "not-a-secret-but-never-shown");
  WriteFile(dir.path() / "probe", "x");
  // .invalid never resolves (RFC 2606).
  auto cp = Cli({"storage", "cp", dir.file("probe"), "meta:x.txt", "--storage", "s3",
                 "--endpoint-url", "https://grin-jobs-test.invalid", "--virtual-host"});
  CHECK(cp.code != 0);
  CHECK(cp.err.find("meta.grin-jobs-test.invalid is the virtual-host style name of bucket meta") !=
        std::string::npos);
  CHECK(cp.err.find("path_style=true") != std::string::npos);
  CHECK(cp.err.find("never-shown") == std::string::npos);
  CHECK(std::count(cp.err.begin(), cp.err.end(), '\n') == 1);
}

TEST_SUITE_END();

}  // namespace
}  // namespace grin::cli
