// The one credentials search order (cli/credentials_search.h), step by step with HOME and the
// environment pointed at temp dirs, and the commands that use it (auth status, sync).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/credentials_search.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using grin::testing::ReadFile;
using grin::testing::TempDir;
using grin::testing::WriteFile;

// Sets (or unsets, with nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

void WriteSecret(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  WriteFile(path, text);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

CredentialsSearch::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST_CASE("credentials search: each step of the order wins over the ones after it") {
  TempDir tmp;
  const std::string home = tmp.file("home");
  struct Step {
    std::string dir, source;
  };
  const std::vector<Step> steps = {
      {tmp.file("flag"), "--credentials-dir"},
      {tmp.file("runcfg"), "run config credentials_dir"},
      {tmp.file("jobsenv"), "$GRIN_JOBS_CONFIG_DIR"},
      {tmp.file("legacyenv"), "$GRIN_CREDENTIALS_DIR"},
      {home + "/.config/grin-jobs", "~/.config/grin-jobs"},
      {home + "/.config/grin-transfer", "~/.config/grin-transfer"},
  };
  auto env = Env({{"HOME", home},
                  {"GRIN_JOBS_CONFIG_DIR", tmp.file("jobsenv")},
                  {"GRIN_CREDENTIALS_DIR", tmp.file("legacyenv")}});
  RunConfig config;
  config.credentials_dir = tmp.file("runcfg");
  for (const auto& kind : {SecretKind::kClientSecret, SecretKind::kToken, SecretKind::kPassphrase,
                           SecretKind::kR2Keys}) {
    for (const auto& s : steps) WriteSecret(s.dir + "/" + SecretFileName(kind), "x");
  }
  for (const auto& kind : {SecretKind::kClientSecret, SecretKind::kToken, SecretKind::kPassphrase,
                           SecretKind::kR2Keys}) {
    CAPTURE(SecretFileName(kind));
    // With the flag: the flag's directory; without it, the run config's (the flag replaces it).
    {
      CredentialsSearch search(tmp.file("flag"), &config, env);
      auto f = search.Find(kind);
      REQUIRE(f.ok());
      CHECK(f->path == tmp.file("flag") + "/" + SecretFileName(kind));
      CHECK(f->source == "--credentials-dir");
      CHECK(search.dirs().size() == 5);  // the run config's directory is not searched
    }
    // Without the flag, each step in turn: remove the winner, the next one wins.
    for (size_t i = 1; i < steps.size(); ++i) {
      CredentialsSearch search("", &config, env);
      auto f = search.Find(kind);
      REQUIRE(f.ok());
      CHECK(f->path == steps[i].dir + "/" + SecretFileName(kind));
      CHECK(f->source == steps[i].source);
      CHECK(Describe(*f) == f->path + " (from " + steps[i].source + ")");
      fs::remove(steps[i].dir + "/" + SecretFileName(kind));
    }
    auto none = CredentialsSearch("", &config, env).Find(kind);
    REQUIRE(!none.ok());
    CHECK(none.status().code() == StatusCode::kNotFound);
    for (size_t i = 1; i < steps.size(); ++i) {
      CHECK(none.status().message().find(steps[i].dir + "/" + SecretFileName(kind)) !=
            std::string::npos);
    }
    CHECK(none.status().message().find('\n') == std::string::npos);
  }
}

TEST_CASE("credentials search: the reference tool's secrets.json, the write directory, passphrase flag") {
  TempDir tmp;
  const std::string home = tmp.file("home");
  auto env = Env({{"HOME", home}});
  WriteSecret(home + "/.config/grin-transfer/secrets.json", "{}");
  CredentialsSearch search("", nullptr, env);
  auto f = search.Find(SecretKind::kClientSecret);
  REQUIRE(f.ok());
  CHECK(f->path == home + "/.config/grin-transfer/secrets.json");
  // Read from the reference tool's directory, never written there.
  CHECK(search.WriteDir().path == home + "/.config/grin-jobs");
  CHECK(CredentialsSearch(tmp.file("d"), nullptr, env).WriteDir().path == tmp.file("d"));
  // --passphrase-file wins, alone: a missing one is not searched around.
  WriteSecret(home + "/.config/grin-jobs/gpg_passphrase.asc", "p");
  auto given = search.FindPassphrase(tmp.file("given.asc"));
  CHECK(given.status().code() == StatusCode::kNotFound);
  CHECK(given.status().message().find(tmp.file("given.asc")) != std::string::npos);
  WriteSecret(tmp.file("given.asc"), "p");
  CHECK(search.FindPassphrase(tmp.file("given.asc"))->source == "--passphrase-file");
  CHECK(search.FindPassphrase("")->path == home + "/.config/grin-jobs/gpg_passphrase.asc");
}

TEST_CASE("credentials search: r2 keys from the search order, other storage untouched") {
  TempDir tmp;
  const std::string home = tmp.file("home");
  auto env = Env({{"HOME", home}});
  CredentialsSearch search("", nullptr, env);
  nlohmann::json r2 = {{"type", "r2"}};
  std::optional<FoundSecret> found;
  CHECK(!WithStorageCredentials(r2, search, &found).contains("credentials_file"));
  CHECK(!found);
  WriteSecret(home + "/.config/grin-jobs/r2_credentials.json", "{}");
  CHECK(WithStorageCredentials(r2, search, &found)["credentials_file"] ==
        home + "/.config/grin-jobs/r2_credentials.json");
  REQUIRE(found);
  CHECK(found->source == "~/.config/grin-jobs");
  nlohmann::json given = {{"type", "r2"}, {"credentials_file", "/etc/k.json"}};
  CHECK(WithStorageCredentials(given, search)["credentials_file"] == "/etc/k.json");
  nlohmann::json s3 = {{"type", "s3"}};
  CHECK(!WithStorageCredentials(s3, search).contains("credentials_file"));
}

pipeline::testing::CliRun Run(std::vector<std::string> args) {
  return pipeline::testing::Cli(std::move(args));
}

TEST_CASE("auth status finds a migrating user's token in ~/.config/grin-transfer, keeps the 0600 rule") {
  TempDir tmp;
  ScopedEnv home("HOME", tmp.file("home").c_str());
  ScopedEnv jobs("GRIN_JOBS_CONFIG_DIR", nullptr);
  ScopedEnv legacy("GRIN_CREDENTIALS_DIR", nullptr);
  const std::string token = tmp.file("home") + "/.config/grin-transfer/credentials.json";
  auto none = Run({"auth", "status"});
  CHECK(none.code == kExitFailure);
  CHECK(none.err.find(tmp.file("home") + "/.config/grin-jobs/credentials.json") !=
        std::string::npos);
  CHECK(none.err.find(token) != std::string::npos);
  CHECK(none.err.find("grin-jobs auth setup") != std::string::npos);
  nlohmann::json creds = {{"token", "ya29.SECRET-ACCESS"},
                          {"refresh_token", "1//SECRET-REFRESH"},
                          {"token_uri", "https://oauth2.googleapis.com/token"},
                          {"client_id", "id"},
                          {"client_secret", "SECRET-CLIENT"},
                          {"scopes", {"openid"}}};
  WriteSecret(token, creds.dump());
  auto found = Run({"auth", "status"});
  CHECK_MESSAGE(found.code == kExitOk, found.err);
  CHECK(found.out.find(token + " (from ~/.config/grin-transfer)") != std::string::npos);
  CHECK(found.out.find("SECRET") == std::string::npos);
  // --credentials-dir first.
  WriteSecret(tmp.file("mine") + "/credentials.json", creds.dump());
  auto flag = Run({"auth", "status", "--credentials-dir", tmp.file("mine")});
  CHECK(flag.out.find(tmp.file("mine") + "/credentials.json (from --credentials-dir)") !=
        std::string::npos);
  // A token others can read is refused, wherever it was found.
  fs::permissions(token, fs::perms::group_read, fs::perm_options::add);
  auto open = Run({"auth", "status"});
  CHECK(open.code == kExitFailure);
  CHECK(open.err.find("chmod 600") != std::string::npos);
}

TEST_CASE("sync finds the token and the passphrase through the search order") {
  pipeline::testing::SyncEnv env(6, 1.0);
  TempDir tmp;
  const std::string home = tmp.file("home");
  ScopedEnv h("HOME", home.c_str());
  ScopedEnv jobs("GRIN_JOBS_CONFIG_DIR", nullptr);
  ScopedEnv legacy("GRIN_CREDENTIALS_DIR", nullptr);
  // The run names no credentials_dir: the token in ~/.config/grin-transfer (a migrating user),
  // the passphrase in ~/.config/grin-jobs.
  auto cfg = nlohmann::json::parse(ReadFile(env.run + "/run_config.json"));
  cfg.erase("credentials_dir");
  WriteFile(env.run + "/run_config.json", cfg.dump(2));
  WriteSecret(home + "/.config/grin-transfer/credentials.json",
              ReadFile(env.server->state_dir() + "/credentials.json"));
  WriteSecret(home + "/.config/grin-jobs/gpg_passphrase.asc",
              ReadFile(env.server->state_dir() + "/gpg_passphrase.asc"));
  auto r = Run(env.SyncArgs({"--queue", "converted", "--limit", "2"}));
  CHECK_MESSAGE(r.code == kExitOk, r.err);
  CHECK(env.Uploaded().size() == 2);
  // Which files were used is reported (paths, never contents).
  CHECK(r.out.find("GPG passphrase: " + home + "/.config/grin-jobs/gpg_passphrase.asc (from "
                   "~/.config/grin-jobs)") != std::string::npos);
  CHECK(r.out.find("GRIN token: " + home + "/.config/grin-transfer/credentials.json") !=
        std::string::npos);
  CHECK(r.out.find(env.server->passphrase("TEST")) == std::string::npos);
  // Nothing anywhere: the passphrase error lists every place tried.
  fs::remove(home + "/.config/grin-jobs/gpg_passphrase.asc");
  auto missing = Run(env.SyncArgs({"--queue", "converted", "--limit", "3"}));
  CHECK(missing.code == kExitFailure);
  CHECK(missing.err.find(home + "/.config/grin-jobs/gpg_passphrase.asc") != std::string::npos);
  CHECK(missing.err.find(home + "/.config/grin-transfer/gpg_passphrase.asc") != std::string::npos);
}

}  // namespace
}  // namespace grin::cli
