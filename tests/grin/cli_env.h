#pragma once
// A fake GRIN and a run directory configured for it (credentials copied in), for tests that run
// the CLI in-process (RunCli) over HTTPS.

#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "tests/cli/cli_harness.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/temp_dir.h"

namespace grin::cli::testing {

struct FakeRun {
  explicit FakeRun(int64_t books, const std::function<void(fake::FakeGrinOptions&)>& tweak = {}) {
    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.threads = 16;
    if (tweak) tweak(o);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    run = tmp.file("run");
    Run init = Cli({"init", "--run-dir", run, "--library-directory", "TEST",
                              "--grin-base-url", server->base_url()});
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
  std::string db() const { return run + "/books.db"; }

  grin::testing::TempDir tmp;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::string run;
};

}  // namespace grin::cli::testing
