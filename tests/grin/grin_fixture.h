#pragma once
// A fake GRIN server plus the real client stack (CurlTransport over HTTPS, TokenSource from the
// fake's credentials file, GrinClient) for integration tests.

#include <doctest/doctest.h>

#include <filesystem>
#include <memory>

#include "engine/grin/client.h"
#include "engine/grin/oauth.h"
#include "engine/net/curl_transport.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/temp_dir.h"

namespace grin::grin_client::testing {

inline fake::FakeGrinOptions FakeOptions(int64_t books) {
  fake::FakeGrinOptions o;
  o.corpus.size = books;
  o.corpus.seed = 11;
  o.default_page_size = 100;
  o.threads = 16;
  return o;
}

// The client's patience with throttling, shortened for tests (the product waits minutes).
inline net::RetryOptions FastPatience() {
  net::RetryOptions r;
  r.max_attempts = 12;
  r.base_delay_ms = 5;
  r.throttle_base_delay_ms = 10;
  r.max_delay_ms = 100;
  r.max_retry_after_ms = 5'000;
  return r;
}

struct GrinEnv {
  // low_speed_time_s > 0 sets the transport's low-speed window (archive requests keep it).
  explicit GrinEnv(fake::FakeGrinOptions o, bool proactive = true, int64_t margin_s = 300,
                   int64_t low_speed_time_s = 0) {
    auto s = fake::FakeGrinServer::Start(std::move(o));
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    net::TransportOptions t;
    t.ca_file = server->ca_file();
    t.retry.base_delay_ms = 5;
    t.retry.throttle_base_delay_ms = 10;
    t.retry.max_delay_ms = 100;
    t.max_connections_per_host = 8;
    if (low_speed_time_s > 0) t.low_speed_time_seconds = low_speed_time_s;
    auto tr = net::CurlTransport::Create(t);
    REQUIRE_MESSAGE(tr.ok(), tr.status().ToString());
    transport = std::move(tr).value();
    creds_path = tmp.file("credentials.json");
    std::filesystem::copy_file(server->state_dir() + "/credentials.json", creds_path);
    std::filesystem::permissions(creds_path, std::filesystem::perms::owner_read |
                                                 std::filesystem::perms::owner_write);
    auto creds = LoadCredentials(creds_path);
    REQUIRE_MESSAGE(creds.ok(), creds.status().ToString());
    TokenSource::Options to;
    to.credentials_path = creds_path;
    to.proactive = proactive;
    to.refresh_margin_s = margin_s;
    tokens = std::make_unique<TokenSource>(transport.get(), *creds, to);
    ClientOptions co;
    co.base_url = server->base_url();
    co.directory = "TEST";
    co.patience = FastPatience();
    client = std::make_unique<GrinClient>(transport.get(), tokens.get(), co);
  }
  ~GrinEnv() {
    client.reset();
    tokens.reset();
    if (transport) transport->Shutdown();
  }

  grin::testing::TempDir tmp;
  std::string creds_path;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<TokenSource> tokens;
  std::unique_ptr<GrinClient> client;
};

}  // namespace grin::grin_client::testing
