// grin-jobs collect / enrich / request / auth, run in-process (RunCli) against the fake over HTTPS.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <functional>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "engine/net/curl_transport.h"
#include "tests/cli/cli_harness.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
namespace {

using testing::Cli;
using testing::Run;

// A fake server and a run directory configured for it, with the fake's credentials copied in.
struct CliEnv {
  explicit CliEnv(int64_t books, int64_t queue_max = 50'000,
                  const std::function<void(fake::FakeGrinOptions&)>& tweak = {}) {
    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.corpus.queue_max = queue_max;
    o.threads = 16;
    if (tweak) tweak(o);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    run = tmp.file("run");
    Run init = Cli({"init", "--run-dir", run, "--library-directory", "TEST", "--grin-base-url",
                    server->base_url()});
    REQUIRE_MESSAGE(init.code == 0, init.err);
    auto config = LoadRunConfig(run);
    REQUIRE(config.ok());
    config->grin_token_url = server->token_url();
    config->ca_file = server->ca_file();
    config->credentials_dir = tmp.file("creds");
    REQUIRE(SaveRunConfig(run, *config).ok());
    std::filesystem::create_directories(tmp.file("creds"));
    std::filesystem::copy_file(server->state_dir() + "/credentials.json",
                               tmp.file("creds") + "/credentials.json");
  }
  int64_t Scalar(const std::string& sql) {
    SQLite::Database db(run + "/books.db", SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }
  grin::testing::TempDir tmp;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::string run;
};

}  // namespace

TEST_SUITE("integration") {

TEST_CASE("cli: collect (resumed after --max-pages), enrich, request, auth status never shows the token") {
  CliEnv env(2'345);
  Run r = Cli({"collect", "--run-dir", env.run, "--page-size", "500", "--max-pages", "2"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("1000 new") != std::string::npos);
  CHECK(r.out.find("not finished") != std::string::npos);
  r = Cli({"collect", "--run-dir", env.run, "--page-size", "500"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("resumed") != std::string::npos);
  CHECK(r.out.find("1345 new") != std::string::npos);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 2'345);

  r = Cli({"enrich", "--run-dir", env.run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(env.Scalar("SELECT count(*) FROM books WHERE enrichment_timestamp IS NULL") == 0);

  r = Cli({"request", "--run-dir", env.run, "--limit", "12", "--batch", "5"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("requested: 12") != std::string::npos);
  CHECK(r.out.find("free of 50000") != std::string::npos);

  r = Cli({"auth", "status", "--run-dir", env.run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("tester@example.org") != std::string::npos);
  CHECK(r.out.find("valid until") != std::string::npos);
  CHECK(r.out.find("ya29") == std::string::npos);
  CHECK(r.out.find("1//") == std::string::npos);
  auto perms = std::filesystem::status(env.tmp.file("creds") + "/credentials.json").permissions();
  CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
}

TEST_CASE("cli: request reports a full queue, a revoked refresh token says to rerun auth setup") {
  CliEnv env(400, /*queue_max=*/5);
  REQUIRE(Cli({"collect", "--run-dir", env.run}).code == 0);
  Run r = Cli({"request", "--run-dir", env.run, "--limit", "300", "--batch", "10"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("queue is full") != std::string::npos);

  env.server->RevokeRefreshToken();
  env.server->RevokeAccessTokens();
  r = Cli({"collect", "--run-dir", env.run});
  CHECK(r.code == kExitFailure);
  CHECK(r.err.find("auth setup") != std::string::npos);
  CHECK(r.err.find("ya29") == std::string::npos);
}

TEST_CASE("cli: auth setup exchanges a consent code and saves 0600 credentials") {
  CliEnv env(10);
  // Consent at the fake's /auth, as a browser would, without following its redirect.
  net::TransportOptions t;
  t.ca_file = env.server->ca_file();
  auto transport = net::CurlTransport::Create(t);
  REQUIRE(transport.ok());
  net::Request req;
  req.url = env.server->auth_url() + "?client_id=" + env.server->options().client_id +
            "&redirect_uri=http%3A%2F%2F127.0.0.1%3A58432%2F&response_type=code&state=s";
  net::Response resp = (*transport)->SubmitFuture(std::move(req)).get();
  (*transport)->Shutdown();
  REQUIRE(resp.http_status == 302);
  std::string loc = net::FindHeader(resp.headers, "Location").value_or("");
  std::string code = loc.substr(loc.find("code=") + 5);
  code = code.substr(0, code.find('&'));
  std::string decoded;
  for (size_t i = 0; i < code.size(); ++i) {
    if (code[i] == '%') {
      decoded += static_cast<char>(std::stoi(code.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += code[i];
    }
  }
  std::filesystem::remove(env.tmp.file("creds") + "/credentials.json");
  Run r = Cli({"auth", "setup", "--run-dir", env.run, "--client-secret",
               env.server->state_dir() + "/client_secret.json", "--code", decoded,
               "--redirect-uri", "http://127.0.0.1:58432/"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("tester@example.org") != std::string::npos);
  auto perms = std::filesystem::status(env.tmp.file("creds") + "/credentials.json").permissions();
  CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
        std::filesystem::perms::none);
  REQUIRE(Cli({"collect", "--run-dir", env.run}).code == 0);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 10);
  // A used code is refused, with a clear message.
  r = Cli({"auth", "setup", "--run-dir", env.run, "--client-secret",
           env.server->state_dir() + "/client_secret.json", "--code", decoded, "--redirect-uri",
           "http://127.0.0.1:58432/"});
  CHECK(r.code == kExitFailure);
  CHECK(r.err.find("auth setup") != std::string::npos);
}

TEST_CASE("cli: enrich counts skipped reply rows and _failed, request --retry-refused") {
  CliEnv env(60, 50'000, [](fake::FakeGrinOptions& o) {
    o.search_empty_barcode_row = true;
    o.corpus.frac_converted = 0;
    o.corpus.frac_in_process = 0;
    o.corpus.frac_not_allowed = 0;
    o.corpus.frac_failed = 0.2;
  });
  REQUIRE(Cli({"collect", "--run-dir", env.run}).code == 0);
  Run r = Cli({"enrich", "--run-dir", env.run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("reply rows skipped without a readable barcode") != std::string::npos);
  const int64_t failed = env.server->corpus("TEST")->Count(fake::ConvertStatus::kFailed);
  CHECK(r.out.find(std::to_string(failed) + " books in GRIN's _failed list") != std::string::npos);
  r = Cli({"status", "--run-dir", env.run});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("GRIN conversion failed for " + std::to_string(failed) + " books") !=
        std::string::npos);
  r = Cli({"request", "--run-dir", env.run, "--limit", "5", "--retry-refused"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
}

TEST_CASE("cli: collect and sync --dry-run over the live site's page shapes") {
  // Linked Barcode / Title cells, select-all and totals rows, labels in sort links, a lower-case
  // "next page" link, and junk lines in _converted?format=text.
  CliEnv env(1'234, 50'000, [](fake::FakeGrinOptions& o) {
    o.barcode_cell_links = true;
    o.select_all_row = true;
    o.sort_link_headings = true;
    o.next_link_text = "next page";
    o.converted_junk_lines = true;
  });
  Run r = Cli({"collect", "--run-dir", env.run, "--page-size", "500"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("3 pages") != std::string::npos);
  // A select-all and a totals row per page, skipped and counted in the summary.
  CHECK(r.out.find("6 rows skipped without a readable barcode") != std::string::npos);
  CHECK(r.out.find("1234 new") != std::string::npos);
  CHECK(env.Scalar("SELECT count(*) FROM books") == 1'234);
  CHECK(env.Scalar("SELECT count(*) FROM books WHERE title IS NULL OR title = '' OR "
                   "grin_state IS NULL OR grin_state = ''") == 0);

  const int64_t converted = env.server->corpus("TEST")->Count(fake::ConvertStatus::kConverted);
  r = Cli({"sync", "--run-dir", env.run, "--queue", "converted", "--dry-run"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("Barcode filtering (converted): " + std::to_string(converted) +
                   " candidates") != std::string::npos);
  CHECK(r.out.find("  Filename") == std::string::npos);
  CHECK(r.out.find("39015999999999") == std::string::npos);
}

}  // TEST_SUITE

}  // namespace grin::cli
