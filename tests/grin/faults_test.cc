// The GRIN client stack (CurlTransport, TokenSource, GrinClient) against the fake's transport,
// auth and listing faults (docs/grin-protocol.md, The fake GRIN server: Faults): it retries, refreshes, or fails with one
// clear error.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "engine/grin/workflows.h"
#include "storage/sqlite_book_catalog.h"
#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
using testing::FakeOptions;
using testing::GrinEnv;

namespace {

std::string FirstConverted(GrinEnv& env) {
  int64_t total = 0;
  auto idx = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1, &total);
  REQUIRE_FALSE(idx.empty());
  return fake::Corpus::BarcodeAt(idx[0]);
}

net::Response GetArchive(GrinEnv& env, const std::string& bc) {
  REQUIRE(env.tokens->Token().ok());
  return env.transport->SubmitFuture(env.client->ArchiveRequest(bc, net::ResponseSink::Memory()))
      .get();
}

}  // namespace

TEST_SUITE("integration") {

TEST_CASE("faults: an archive cut by RST or by a missing last chunk is retried and arrives whole") {
  GrinEnv env(FakeOptions(20), false);
  const std::string bc = FirstConverted(env);
  const std::string good = GetArchive(env, bc).body;
  REQUIRE(good.size() > 3000);
  for (std::string mode : {"rst", "chunked", "fin"}) {
    CAPTURE(mode);
    fake::FaultRule f;
    f.endpoint = "archive_get";
    f.action = "truncate";
    f.at_byte = 2000;
    f.close_mode = mode;
    f.times = 1;
    env.server->AddFault(f);
    net::Response r = GetArchive(env, bc);
    auto head = env.client->CheckArchiveResponse(r);
    CHECK_MESSAGE(head.ok(), head.status().ToString());
    CHECK(r.body == good);
    CHECK(r.attempts == 2);
  }
}

TEST_CASE("faults: reset on keep-alive reuse and an early idle close do not fail requests") {
  auto o = FakeOptions(20);
  o.keep_alive_timeout_s = 1;
  GrinEnv env(o, false);
  REQUIRE(env.client->Probe().ok());
  fake::FaultRule reset;
  reset.endpoint = "*";
  reset.action = "reset";
  reset.conn_after = 1;
  reset.probability = 0.5;
  env.server->AddFault(reset);
  for (int i = 0; i < 10; ++i) {
    Status s = env.client->Probe();
    CHECK_MESSAGE(s.ok(), s.ToString());
  }
  CHECK(env.server->Stats().resets > 0);
  env.server->ClearFaults();
  // The server closes idle connections after 1 s; the client's pool still holds them.
  const int64_t before = env.server->Stats().connections;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Status s = env.client->Probe();
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(env.server->Stats().connections > before);
}

TEST_CASE("faults: above the download cap (429 or 503) archive GETs are retried") {
  for (int cap_status : {429, 503}) {
    auto o = FakeOptions(20);
    o.max_concurrent_downloads = 1;
    o.download_cap_status = cap_status;
    GrinEnv env(o, false);
    const std::string bc = FirstConverted(env);
    fake::FaultRule slow;
    slow.endpoint = "archive_get";
    slow.action = "throttle";
    auto bytes = env.server->ArchiveBytes("TEST", bc);
    REQUIRE(bytes.ok());
    // Holds the only download slot for ~1.5 s, even under sanitizers and load.
    slow.rate_bps = std::max<int64_t>(1, static_cast<int64_t>((*bytes)->size()) * 2 / 3);
    slow.times = 1;
    env.server->AddFault(slow);
    auto first = std::async(std::launch::async, [&] { return GetArchive(env, bc); });
    while (env.server->BarcodeCounters("TEST", bc).gets == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(env.tokens->Token().ok());
    net::Request req = env.client->ArchiveRequest(bc, net::ResponseSink::Memory());
    net::RetryOptions patient;
    patient.max_attempts = 40;
    patient.base_delay_ms = patient.throttle_base_delay_ms = 100;
    patient.max_delay_ms = 300;
    req.retry = patient;
    net::Response r = env.transport->SubmitFuture(std::move(req)).get();
    CHECK(env.client->CheckArchiveResponse(r).ok());
    CHECK(r.attempts > 1);
    CHECK(first.get().body == r.body);
    CHECK(env.server->Stats().endpoints["archive_get"].by_status[cap_status] > 0);
  }
}

TEST_CASE("faults: expired between HEAD and GET is NotFound, re-conversion shows a new ETag") {
  GrinEnv env(FakeOptions(20), false);
  const std::string bc = FirstConverted(env);
  fake::FaultRule e;
  e.endpoint = "archive_head";
  e.action = "expire";
  e.times = 1;
  env.server->AddFault(e);
  REQUIRE(env.client->HeadArchive(bc).ok());
  auto got = env.client->CheckArchiveResponse(GetArchive(env, bc));
  CHECK(got.status().code() == StatusCode::kNotFound);

  env.server->corpus("TEST")->Reconvert(*env.server->corpus("TEST")->IndexOf(bc),
                                        env.server->NowSeconds());
  fake::FaultRule rc;
  rc.endpoint = "archive_head";
  rc.action = "reconvert";
  rc.times = 1;
  env.server->AddFault(rc);
  auto head = env.client->HeadArchive(bc);
  REQUIRE(head.ok());
  got = env.client->CheckArchiveResponse(GetArchive(env, bc));
  REQUIRE(got.ok());
  CHECK(got->etag != head->etag);  // the caller can tell the archive changed under it
}

TEST_CASE("faults: 414 on _barcode_search is one clear error naming the batch") {
  auto o = FakeOptions(3000);
  o.max_url_length = 2000;  // lower than the client's 7,500-character bound
  GrinEnv env(o, false);
  std::vector<std::string> asked;
  for (int i = 0; i < 300; ++i) asked.push_back(fake::Corpus::BarcodeAt(i));
  auto groups = env.client->SplitForSearch(asked);
  REQUIRE(groups.size() == 1);
  auto r = env.client->BarcodeSearch(groups[0]);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_MESSAGE(r.status().message().find("414") != std::string::npos, r.status().ToString());
  CHECK(r.status().message().find("_barcode_search (300 barcodes)") != std::string::npos);
}

TEST_CASE("faults: slow and failing token endpoint, revoked grant, refresh without a new token") {
  GrinEnv env(FakeOptions(10), false);
  auto rules = fake::ParseFaultRules(
      R"([{"endpoint":"token","action":"slow_first_byte","delay_ms":400,"nth":1},
          {"endpoint":"token","status":503,"nth":2},
          {"endpoint":"token","status":500,"nth":3}])");
  REQUIRE(rules.ok());
  for (auto& f : *rules) env.server->AddFault(f);
  Status s = env.client->Probe();  // a slow refresh is waited for
  CHECK_MESSAGE(s.ok(), s.ToString());
  env.server->RevokeAccessTokens();
  s = env.client->Probe();  // refresh answered 503, then 500, then 200: the transport retries
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(env.tokens->refreshes() == 2);
  // Google's refresh replies carry no refresh_token: the stored one is kept.
  auto saved = LoadCredentials(env.creds_path);
  REQUIRE(saved.ok());
  CHECK(saved->refresh_token == env.server->options().refresh_token);

  fake::FaultRule bad;
  bad.endpoint = "token";
  bad.action = "invalid_grant";
  env.server->AddFault(bad);
  env.server->RevokeAccessTokens();
  s = env.client->Probe();
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("auth setup") != std::string::npos);
  CHECK(s.message().find("1//") == std::string::npos);
}

TEST_CASE("faults: a rotated refresh token replaces the stored one") {
  auto o = FakeOptions(10);
  o.rotate_refresh_token = true;
  GrinEnv env(o, false);
  REQUIRE(env.client->Probe().ok());
  auto saved = LoadCredentials(env.creds_path);
  REQUIRE(saved.ok());
  CHECK(saved->refresh_token != o.refresh_token);
  env.server->RevokeAccessTokens();
  CHECK(env.client->Probe().ok());  // the rotated token is the one that works now
}

TEST_CASE("faults: 403 'ACL not yet applied' for the first minutes, then access") {
  GrinEnv env(FakeOptions(10), false);
  fake::FaultRule acl;
  acl.endpoint = "grin";  // GRIN refuses; Google's token endpoint does not
  acl.status = 403;
  acl.window_end_s = 600;
  env.server->AddFault(acl);
  Status s = env.client->Probe();
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("12 h") != std::string::npos);
  env.server->AdvanceClock(600);
  s = env.client->Probe();
  CHECK_MESSAGE(s.ok(), s.ToString());
}

TEST_CASE("faults: duplicate rows across pages are delivered, an empty _converted is fine") {
  GrinEnv env(FakeOptions(250), false);
  fake::FaultRule dup;
  dup.endpoint = "all_books";
  dup.action = "shift_rows";
  dup.shift = -5;
  dup.nth = 2;
  env.server->AddFault(dup);
  std::set<std::string> seen;
  int rows = 0;
  Status s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                         [&](const ListPage& p) {
                                           rows += static_cast<int>(p.rows.size());
                                           for (const auto& r : p.rows) seen.insert(r.Barcode());
                                           return Status::Ok();
                                         });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(rows == 255);
  CHECK(seen.size() == 250);

  fake::FaultRule empty;
  empty.endpoint = "converted";
  empty.action = "empty";
  env.server->AddFault(empty);
  int lines = 0;
  CHECK(env.client->ForEachTextLine("converted", "", [&](const std::string&) {
    ++lines;
    return Status::Ok();
  }).ok());
  CHECK(lines == 0);
  s = env.client->ForEachListPage(env.client->ListUrl("converted", 100), [&](const ListPage& p) {
    lines += static_cast<int>(p.rows.size());
    return Status::Ok();
  });
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(lines == 0);
}

TEST_CASE("faults: an expired ctoken is a clear Unavailable error naming the page") {
  auto o = FakeOptions(250);
  o.use_ctoken = true;
  o.ctoken_ttl_s = 600;
  GrinEnv env(o, false);
  int pages = 0;
  Status s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                         [&](const ListPage&) {
                                           // Page 2 may already be in flight; page 3's token
                                           // was issued before this jump.
                                           if (++pages == 1) env.server->AdvanceClock(601);
                                           return Status::Ok();
                                         });
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK(s.message().find("unavailable") != std::string::npos);
  CHECK(s.message().find("ctoken=") != std::string::npos);
}

TEST_CASE("faults: a collect resumed after its ctoken expired starts again from page 1") {
  auto o = FakeOptions(950);
  o.use_ctoken = true;
  o.ctoken_ttl_s = 600;
  GrinEnv env(o, false);
  auto catalog = storage::SqliteBookCatalog::Open(env.tmp.file("books.db"));
  REQUIRE(catalog.ok());
  CollectOptions co;
  co.page_size = 100;
  co.max_pages = 4;
  auto first = CollectAllBooks(*env.client, **catalog, co);
  REQUIRE(first.ok());
  CHECK(first->counts.inserted == 400);
  env.server->AdvanceClock(601);  // the saved cursor's ctoken is now too old
  co.max_pages = 0;
  auto rest = CollectAllBooks(*env.client, **catalog, co);
  REQUIRE_MESSAGE(rest.ok(), rest.status().ToString());
  CHECK(rest->resumed);
  CHECK(rest->restarted);
  CHECK(rest->finished);
  CHECK(rest->counts.inserted == 550);
  CHECK(rest->counts.unchanged == 400);
  // Without a ctoken (first= paging) a refused resume is an error, not a silent restart.
  auto o2 = FakeOptions(300);
  GrinEnv env2(o2, false);
  auto catalog2 = storage::SqliteBookCatalog::Open(env2.tmp.file("books.db"));
  REQUIRE(catalog2.ok());
  co.max_pages = 1;
  REQUIRE(CollectAllBooks(*env2.client, **catalog2, co).ok());
  fake::FaultRule down;
  down.endpoint = "all_books";
  down.action = "unavailable";
  env2.server->AddFault(down);
  co.max_pages = 0;
  auto failed = CollectAllBooks(*env2.client, **catalog2, co);
  CHECK(failed.status().code() == StatusCode::kUnavailable);
}

}  // TEST_SUITE

}  // namespace grin::grin_client
