// Credentials: environment, shared credentials file with profiles, the reference tool's R2 JSON.

#include "storage/s3/credentials.h"

#include <doctest/doctest.h>

#include <map>

#include "tests/support/temp_dir.h"

namespace grin::s3 {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST_CASE("credentials from the environment") {
  auto r = ResolveCredentials({}, FakeEnv({{"AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE1"},
                                           {"AWS_SECRET_ACCESS_KEY", "s3cr3t-env"},
                                           {"AWS_SESSION_TOKEN", "tok"},
                                           {"HOME", "/nonexistent"}}));
  REQUIRE(r.ok());
  CHECK(r->credentials.access_key_id == "AKIAENVEXAMPLE1");
  CHECK(r->credentials.secret_access_key == "s3cr3t-env");
  CHECK(r->credentials.session_token == "tok");
  std::string d = DescribeCredentials(*r);
  CHECK(d.find("s3cr3t") == std::string::npos);
  CHECK(d.find("AKIAENVEXAMPLE1") == std::string::npos);
  CHECK(d.find("AKIA") != std::string::npos);
}

TEST_CASE("shared credentials file with profiles") {
  grin::testing::TempDir dir;
  grin::testing::WriteFile(dir.path() / "credentials",
                           "# comment\n[default]\naws_access_key_id = DEFAULTKEY\n"
                           "aws_secret_access_key = defaultsecret\n\n"
                           "[profile work]\naws_access_key_id=WORKKEY\n"
                           "aws_secret_access_key=work/secret+x\naws_session_token = t1\n"
                           "[broken]\naws_access_key_id=ONLYID\n");
  auto env = FakeEnv({{"AWS_SHARED_CREDENTIALS_FILE", dir.file("credentials")}});
  auto d = ResolveCredentials({}, env);
  REQUIRE(d.ok());
  CHECK(d->credentials.access_key_id == "DEFAULTKEY");
  auto w = ResolveCredentials({"", "work", false}, env);
  REQUIRE(w.ok());
  CHECK(w->credentials.secret_access_key == "work/secret+x");
  CHECK(w->credentials.session_token == "t1");
  auto via_env = ResolveCredentials(
      {}, FakeEnv({{"AWS_SHARED_CREDENTIALS_FILE", dir.file("credentials")},
                   {"AWS_PROFILE", "work"}}));
  REQUIRE(via_env.ok());
  CHECK(via_env->credentials.access_key_id == "WORKKEY");
  auto missing = ResolveCredentials({"", "nope", false}, env);
  CHECK(missing.status().code() == StatusCode::kNotFound);
  auto broken = ResolveCredentials({"", "broken", false}, env);
  CHECK(broken.status().code() == StatusCode::kInvalidArgument);
  CHECK(broken.status().message().find("ONLYID") == std::string::npos);
  // An explicit file wins over the environment.
  auto explicit_file = ResolveCredentials(
      {dir.file("credentials"), "", false},
      FakeEnv({{"AWS_ACCESS_KEY_ID", "ENV"}, {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"}}));
  REQUIRE(explicit_file.ok());
  CHECK(explicit_file->credentials.access_key_id == "DEFAULTKEY");
}

TEST_CASE("the reference tool's r2_credentials.json") {
  grin::testing::TempDir dir;
  grin::testing::WriteFile(dir.path() / "r2.json",
                           R"({"endpoint_url": "https://acct.r2.cloudflarestorage.com",
                               "access_key": "R2KEY", "secret_key": "r2secret",
                               "bucket_raw": "my-raw"})");
  auto r = ResolveCredentials({dir.file("r2.json"), "", true}, FakeEnv({}));
  REQUIRE(r.ok());
  CHECK(r->credentials.access_key_id == "R2KEY");
  CHECK(r->endpoint_url == "https://acct.r2.cloudflarestorage.com");
  CHECK(r->bucket_raw == "my-raw");
  // Default location under $HOME for r2.
  std::filesystem::create_directories(dir.path() / "home/.config/grin-transfer");
  std::filesystem::copy_file(dir.path() / "r2.json",
                             dir.path() / "home/.config/grin-transfer/r2_credentials.json");
  auto h = ResolveCredentials({"", "", true}, FakeEnv({{"HOME", dir.file("home")}}));
  REQUIRE(h.ok());
  CHECK(h->credentials.secret_access_key == "r2secret");
  grin::testing::WriteFile(dir.path() / "bad.json", R"({"access_key": "X"})");
  auto bad = ResolveCredentials({dir.file("bad.json"), "", true}, FakeEnv({}));
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  auto none = ResolveCredentials({}, FakeEnv({{"HOME", dir.file("empty-home")}}));
  CHECK(none.status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace grin::s3
