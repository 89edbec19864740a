// Settings that stick: `grin-jobs config show|set|unset`, sync's stored defaults, init on an
// existing run, and error messages that name the command that fixes the configuration.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

using grin::testing::ReadFile;
using grin::testing::TempDir;
using grin::testing::WriteFile;
using pipeline::testing::Cli;

nlohmann::json Config(const std::string& run) {
  return nlohmann::json::parse(ReadFile(run + "/run_config.json"));
}

bool OneLine(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

TEST_CASE("config set checks each value by its option's rule and refuses unknown keys") {
  TempDir tmp;
  const std::string run = tmp.file("r");
  REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "Harvard"}).code == kExitOk);
  const std::string before = ReadFile(run + "/run_config.json");
  struct Bad {
    std::vector<std::string> kv;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{"sync.workers", "0"}, "sync.workers 0: use a whole number from 1 to 512"},
           {{"sync.workers", "many"}, "use a whole number from 1 to 512"},
           {{"sync.grin_rate", "1e7"}, "use a number from 0 to"},
           {{"sync.queue", "converted,bogus"}, "use converted, previous or unconverted"},
           {{"sync.durable", "yes"}, "use true or false"},
           {{"sync.multipart_threshold_mb", "4"}, "S3 parts are at least 5 MiB"},
           {{"sync.passphrase_file", tmp.file("nope")}, "no such file"},
           {{"sync.barcodes", "ABC123"}, "unknown setting 'sync.barcodes'"},
           {{"storage.type", "gcs"}, "use local, s3, r2 or minio"},
           {{"storage.path_style", "maybe"}, "use true, false or auto"},
           {{"storage.pathstyle", "true"}, "unknown setting 'storage.pathstyle'; use one of"},
           {{"storage.endpoint_url", "127.0.0.1:9000"}, "use an http:// or https:// URL"},
           {{"library_directory", "a b"}, "use GRIN's directory name"},
           {{"credentials_dir", tmp.file("nope")}, "not an existing directory"},
           {{"nosuch", "1"}, "library_directory, grin_base_url"},
       }) {
    CAPTURE(b.kv[0]);
    auto r = Cli({"config", "set", "--run-dir", run, b.kv[0], b.kv[1]});
    CHECK(r.code == kExitUsage);
    CHECK(OneLine(r.err));
    CHECK_MESSAGE(r.err.find(b.says) != std::string::npos, r.err);
  }
  CHECK(ReadFile(run + "/run_config.json") == before);  // nothing refused was stored

  CHECK(Cli({"config", "set", "--run-dir", run, "sync.workers", "16"}).code == kExitOk);
  CHECK(Cli({"config", "set", "--run-dir", run, "sync.grin-rate", "2.5"}).code == kExitOk);
  CHECK(Cli({"config", "set", "--run-dir", run, "sync.queue", "converted,previous"}).code ==
        kExitOk);
  CHECK(Cli({"config", "set", "--run-dir", run, "sync.skip_extract_ocr", "true"}).code ==
        kExitOk);
  CHECK(Cli({"config", "set", "--run-dir", run, "storage.path_style", "true"}).code == kExitOk);
  CHECK(Cli({"config", "set", "--run-dir", run, "credentials_dir", tmp.path().string()}).code ==
        kExitOk);
  auto cfg = Config(run);
  CHECK(cfg["sync"]["workers"] == 16);
  CHECK(cfg["sync"]["grin_rate"] == 2.5);
  CHECK(cfg["sync"]["queue"] == nlohmann::json({"converted", "previous"}));
  CHECK(cfg["sync"]["skip_extract_ocr"] == true);
  CHECK(cfg["storage"]["path_style"] == true);
  CHECK(cfg["credentials_dir"] == tmp.path().string());
  CHECK(cfg["library_directory"] == "Harvard");  // the rest unchanged
  CHECK(Cli({"config", "unset", "--run-dir", run, "sync.workers"}).code == kExitOk);
  CHECK(!Config(run)["sync"].contains("workers"));
  auto usage = Cli({"config", "set", "--run-dir", run, "sync.workers"});
  CHECK(usage.code == kExitUsage);
  CHECK(OneLine(usage.err));
}

TEST_CASE("init refuses unknown storage keys and bad storage values") {
  TempDir tmp;
  for (const auto& kv : {"pathstyle=true", "path_style=maybe", "endpoint_url=host:9000",
                         "bucket_raw=a/b"}) {
    CAPTURE(kv);
    auto r = Cli({"init", "--run-dir", tmp.file("r"), "--storage", "s3", "--storage-config", kv});
    CHECK(r.code == kExitUsage);
    CHECK(OneLine(r.err));
    const std::string key = std::string(kv).substr(0, std::string(kv).find('='));
    CHECK(r.err.find("--storage-config ") != std::string::npos);
    CHECK(r.err.find(key) != std::string::npos);
    CHECK(!std::filesystem::exists(tmp.file("r")));
  }
  auto ok = Cli({"init", "--run-dir", tmp.file("r"), "--storage", "s3", "--storage-config",
                 "path_style=true", "--storage-config", "endpoint_url=https://127.0.0.1:9000"});
  REQUIRE_MESSAGE(ok.code == kExitOk, ok.err);
  CHECK(Config(tmp.file("r"))["storage"]["path_style"] == true);
}

TEST_CASE("init on an existing run with other flags is refused and names config set") {
  TempDir tmp;
  const std::string run = tmp.file("r");
  REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "Harvard"}).code == kExitOk);
  const std::string before = ReadFile(run + "/run_config.json");
  auto again = Cli({"init", "--run-dir", run, "--library-directory", "Yale", "--storage-config",
                    "prefix=p1"});
  CHECK(again.code == kExitUsage);
  CHECK(OneLine(again.err));
  CHECK(again.err.find("`grin-jobs config set --run-dir " + run + " library_directory Yale`") !=
        std::string::npos);
  CHECK(again.err.find("storage.prefix p1") != std::string::npos);
  CHECK(ReadFile(run + "/run_config.json") == before);
  // The same flags, or none: the run is fine as it is.
  auto same = Cli({"init", "--run-dir", run, "--library-directory", "Harvard"});
  CHECK(same.code == kExitOk);
  CHECK(same.out.find("already exists") != std::string::npos);
  CHECK(Cli({"init", "--run-dir", run}).code == kExitOk);
  // Following the message works, and init then agrees.
  CHECK(Cli({"config", "set", "--run-dir", run, "library_directory", "Yale"}).code == kExitOk);
  CHECK(Cli({"init", "--run-dir", run, "--library-directory", "Yale"}).code == kExitOk);
}

TEST_CASE("config show lists every key with its value and source, secret files by path only") {
  TempDir tmp;
  const std::string run = tmp.file("r");
  REQUIRE(Cli({"init", "--run-dir", run, "--library-directory", "Harvard"}).code == kExitOk);
  std::filesystem::create_directories(tmp.file("creds"));
  WriteFile(tmp.file("creds") + "/gpg_passphrase.asc", "TOP-SECRET-PASSPHRASE\n");
  std::filesystem::permissions(tmp.file("creds") + "/gpg_passphrase.asc",
                               std::filesystem::perms::owner_read);
  REQUIRE(Cli({"config", "set", "--run-dir", run, "sync.workers", "16"}).code == kExitOk);
  REQUIRE(Cli({"config", "set", "--run-dir", run, "credentials_dir", tmp.file("creds")}).code ==
          kExitOk);
  auto cfg = Config(run);
  cfg["storage"]["secret_key"] = "HAND-EDITED-SECRET";
  WriteFile(run + "/run_config.json", cfg.dump(2));
  auto show = Cli({"config", "show", "--run-dir", run});
  REQUIRE(show.code == kExitOk);
  auto line = [&](const std::string& key) {
    auto at = show.out.find("  " + key + " ");
    return at == std::string::npos ? std::string()
                                   : show.out.substr(at, show.out.find('\n', at) - at);
  };
  for (const char* key : {"library_directory", "grin_base_url", "credentials_dir", "storage.type",
                          "storage.path_style", "sync.queue", "sync.workers", "sync.grin_rate",
                          "sync.skip_extract_ocr", "sync.stop_after_systemic"}) {
    CAPTURE(key);
    CHECK(!line(key).empty());
  }
  CHECK(line("sync.workers").find("16  [run config]") != std::string::npos);
  CHECK(line("sync.check_concurrency").find("2  [default]") != std::string::npos);
  CHECK(line("sync.grin_rate").find("5  [default]") != std::string::npos);
  CHECK(line("library_directory").find("Harvard  [run config]") != std::string::npos);
  CHECK(show.out.find(tmp.file("creds") + "/gpg_passphrase.asc (from run config "
                                          "credentials_dir)") != std::string::npos);
  CHECK(line("storage.secret_key").find("hidden") != std::string::npos);
  CHECK(show.out.find("TOP-SECRET") == std::string::npos);
  CHECK(show.out.find("HAND-EDITED-SECRET") == std::string::npos);
}

TEST_CASE("sync uses the run's stored defaults and the command line overrides them for one run") {
  pipeline::testing::SyncEnv env(12, 1.0);
  const std::string run = env.run;
  auto sync = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"sync", "--run-dir", run, "--dry-run"};
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(a);
  };
  // Nothing stored: no queue listed.
  auto plain = sync({});
  REQUIRE_MESSAGE(plain.code == kExitOk, plain.err);
  CHECK(plain.out.find("Barcode filtering") == std::string::npos);
  REQUIRE(Cli({"config", "set", "--run-dir", run, "sync.queue", "converted"}).code == kExitOk);
  REQUIRE(Cli({"config", "set", "--run-dir", run, "sync.limit", "3"}).code == kExitOk);
  REQUIRE(Cli({"config", "set", "--run-dir", run, "sync.grin_rate", "0"}).code == kExitOk);
  auto stored = sync({});
  REQUIRE_MESSAGE(stored.code == kExitOk, stored.err);
  CHECK(stored.out.find("Barcode filtering (converted): ") != std::string::npos);
  CHECK(stored.out.find(" 3 selected") != std::string::npos);
  auto override_limit = sync({"--limit", "2"});
  CHECK(override_limit.out.find(" 2 selected") != std::string::npos);
  CHECK(Config(run)["sync"]["limit"] == 3);  // for that run only
  CHECK(sync({}).out.find(" 3 selected") != std::string::npos);
  // A selection on the command line replaces the stored one (queue and limit).
  auto named = sync({"--barcodes", "ABC0001"});
  CHECK_MESSAGE(named.code == kExitOk, named.err);
  CHECK(named.out.find("Barcode filtering") == std::string::npos);
  // A stored value the rule refuses (hand-edited) stops sync before any work, naming the fix.
  auto cfg = Config(run);
  cfg["sync"]["workers"] = 0;
  WriteFile(run + "/run_config.json", cfg.dump(2));
  auto bad = sync({});
  CHECK(bad.code == kExitUsage);
  CHECK(OneLine(bad.err));
  CHECK(bad.err.find("sync.workers 0: use a whole number from 1 to 512") != std::string::npos);
  CHECK(bad.err.find("`grin-jobs config set sync.workers VALUE`") != std::string::npos);
  CHECK(sync({"--workers", "4"}).code == kExitOk);  // the command line wins
  cfg["sync"].erase("workers");
  cfg["sync"]["pathstyle"] = true;
  WriteFile(run + "/run_config.json", cfg.dump(2));
  auto unknown = sync({});
  CHECK(unknown.code == kExitUsage);
  CHECK(unknown.err.find("`grin-jobs config unset sync.pathstyle`") != std::string::npos);
}

TEST_CASE("a run without library_directory: sync names the command that sets it") {
  TempDir tmp;
  const std::string run = tmp.file("r");
  REQUIRE(Cli({"init", "--run-dir", run}).code == kExitOk);
  auto r = Cli({"sync", "--run-dir", run});
  CHECK(r.code == kExitUsage);
  CHECK(r.err.find("grin-jobs config set library_directory") != std::string::npos);
  CHECK(r.err.find("init --") == std::string::npos);
}

}  // namespace
}  // namespace grin::cli
