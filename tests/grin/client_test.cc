// GrinClient and TokenSource against the fake GRIN server over HTTPS.
#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <thread>

#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
using testing::FakeOptions;
using testing::GrinEnv;

TEST_SUITE("integration") {

TEST_CASE("auth: first request refreshes, the credentials file keeps expiry, mode 0600") {
  GrinEnv env(FakeOptions(10), /*proactive=*/false);
  REQUIRE(env.client->Probe().ok());
  CHECK(env.tokens->refreshes() == 1);
  CHECK(env.tokens->account() == "tester@example.org");
  auto saved = LoadCredentials(env.creds_path);
  REQUIRE(saved.ok());
  CHECK(saved->expiry_micros > 0);
  CHECK_FALSE(saved->access_token.empty());
  auto perms = std::filesystem::status(env.creds_path).permissions();
  CHECK((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
}

TEST_CASE("auth: a 401 or a 302 to ServiceLogin forces one refresh and a retry") {
  for (std::string mode : {"401", "302"}) {
    auto o = FakeOptions(10);
    o.auth_failure = mode;
    GrinEnv env(o, false);
    REQUIRE(env.client->Probe().ok());
    env.server->RevokeAccessTokens();
    Status s = env.client->Probe();
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(env.tokens->refreshes() == 2);
    CHECK(env.server->Stats().auth_failures == 1);
  }
}

TEST_CASE("auth: a revoked refresh token is a clear PermissionDenied, 403 names the access list") {
  GrinEnv env(FakeOptions(10), false);
  REQUIRE(env.client->Probe().ok());
  env.server->RevokeRefreshToken();
  env.server->RevokeAccessTokens();
  Status s = env.client->Probe();
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("auth setup") != std::string::npos);
  CHECK(s.message().find("ya29") == std::string::npos);

  GrinEnv env2(FakeOptions(10), false);
  ClientOptions co = env2.client->options();
  co.directory = "NotOurs";
  GrinClient other(env2.transport.get(), env2.tokens.get(), co);
  s = other.Probe();
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message().find("access list") != std::string::npos);
  CHECK(s.message().find("12 h") != std::string::npos);
}

TEST_CASE("auth: proactive refresh replaces the token before it expires") {
  auto o = FakeOptions(10);
  o.token_ttl_s = 3;
  GrinEnv env(o, /*proactive=*/true, /*margin_s=*/2);
  REQUIRE(env.client->Probe().ok());
  const std::string first = env.tokens->CachedToken();
  // The refresher wakes within ~1 s of "expiry - margin".
  for (int i = 0; i < 60 && env.tokens->CachedToken() == first; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(env.tokens->CachedToken() != first);
  CHECK(env.client->Probe().ok());
  CHECK(env.server->Stats().auth_failures == 0);
}

TEST_CASE("lists: paged HTML of 0, 1 and 250 books, every href style, ctoken") {
  for (int64_t n : {0, 1, 250}) {
    for (std::string style : {"relative", "root", "absolute"}) {
      auto o = FakeOptions(n);
      o.next_href_style = style;
      o.use_ctoken = style == "root";
      GrinEnv env(o, false);
      std::set<std::string> seen;
      int pages = 0;
      Status s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                             [&](const ListPage& p) {
                                               ++pages;
                                               for (const auto& r : p.rows) seen.insert(r.Barcode());
                                               return Status::Ok();
                                             });
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      CHECK(static_cast<int64_t>(seen.size()) == n);
      CHECK(pages == std::max<int64_t>(1, (n + 99) / 100));
    }
  }
}

TEST_CASE("lists: the unavailable page is retried, a malformed page is an error naming it") {
  GrinEnv env(FakeOptions(30), false);
  fake::FaultRule f;
  f.endpoint = "all_books";
  f.action = "unavailable";
  f.times = 1;
  env.server->AddFault(f);
  int rows = 0;
  Status s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                         [&](const ListPage& p) {
                                           rows += static_cast<int>(p.rows.size());
                                           return Status::Ok();
                                         });
  CHECK(s.ok());
  CHECK(rows == 30);
  fake::FaultRule m;
  m.endpoint = "all_books";
  m.action = "malformed";
  env.server->AddFault(m);
  s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                  [](const ListPage&) { return Status::Ok(); });
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK(s.message().find("_all_books?result_count=100") != std::string::npos);
}

TEST_CASE("lists: text forms of _converted / _in_process / _failed") {
  auto o = FakeOptions(200);
  o.converted_dir_prefix = true;
  o.in_process_filename_form = true;
  o.crlf = true;
  GrinEnv env(o, false);
  for (auto [list, status] : std::vector<std::pair<std::string, fake::ConvertStatus>>{
           {"converted", fake::ConvertStatus::kConverted},
           {"in_process", fake::ConvertStatus::kInProcess},
           {"failed", fake::ConvertStatus::kFailed}}) {
    std::vector<std::string> got;
    REQUIRE(env.client->ForEachTextLine(list, "", [&](const std::string& bc) {
      got.push_back(bc);
      return Status::Ok();
    }).ok());
    int64_t total = 0;
    auto want = env.server->corpus("TEST")->List(status, 0, -1, &total);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == fake::Corpus::BarcodeAt(want[i]));
  }
}

TEST_CASE("_barcode_search: URL-bounded groups, found and missing, shuffled columns") {
  auto o = FakeOptions(3000);
  o.tsv_columns = "shuffle";
  GrinEnv env(o, false);
  std::vector<std::string> asked;
  for (int i = 0; i < 2000; ++i) asked.push_back(fake::Corpus::BarcodeAt(i));
  asked.push_back("NOSUCHBOOK1");
  auto groups = env.client->SplitForSearch(asked);
  CHECK(groups.size() >= 4);
  size_t total = 0;
  for (const auto& g : groups) total += g.size();
  CHECK(total == asked.size());
  auto r = env.client->BarcodeSearch(groups.back());
  REQUIRE(r.ok());
  CHECK(r->missing == std::vector<std::string>{"NOSUCHBOOK1"});
  auto first = env.client->BarcodeSearch({fake::Corpus::BarcodeAt(0)});
  REQUIRE(first.ok());
  REQUIRE(first->found.size() == 1);
  fake::BookRecord b = env.server->corpus("TEST")->Get(0);
  std::map<std::string, std::string> cols(first->found[0].columns.begin(),
                                          first->found[0].columns.end());
  CHECK(cols["grin_state"] == b.state);
  CHECK(cols["grin_viewability"] == b.viewability);
  CHECK(cols["scanned_date"] == GrinDateToIso(fake::FormatGrinDate(b.scanned)));
  CHECK(cols["grin_digitization_method"] == b.digitization_method);
  CHECK(env.server->Stats().endpoints["barcode_search"].requests == 2);
}

TEST_CASE("_process: statuses classified, 429 means queue full") {
  auto o = FakeOptions(20);
  o.corpus.frac_converted = 0.5;
  o.corpus.frac_in_process = 0;
  o.corpus.frac_failed = 0;
  o.corpus.frac_not_allowed = 0.2;
  o.corpus.queue_max = 3;
  GrinEnv env(o, false);
  std::vector<std::string> all;
  for (int i = 0; i < 20; ++i) all.push_back(fake::Corpus::BarcodeAt(i));
  auto r = env.client->Process({all[0], all[1], all[2], all[3], all[4], all[5]});
  REQUIRE(r.ok());
  if (r->queue_full) {
    CHECK(env.server->corpus("TEST")->Count(fake::ConvertStatus::kInProcess) == 0);
  } else {
    CHECK(r->rows.size() == 6);
  }
  // Fill the queue, then one more is refused whole.
  int requested = 0;
  for (const auto& bc : all) {
    auto one = env.client->Process({bc});
    REQUIRE(one.ok());
    if (one->queue_full) break;
    for (const auto& row : one->rows) requested += row.outcome == ProcessOutcome::kRequested;
  }
  CHECK(env.server->corpus("TEST")->Count(fake::ConvertStatus::kInProcess) == 3);
  auto full = env.client->Process({all[19]});
  REQUIRE(full.ok());
  CHECK((full->queue_full || full->rows[0].outcome != ProcessOutcome::kRequested));
}

TEST_CASE("archives: HEAD, GET through ArchiveRequest, missing ETag, 404") {
  GrinEnv env(FakeOptions(20), false);
  std::string bc;
  REQUIRE(env.client->ForEachTextLine("converted", "", [&](const std::string& b) {
    if (bc.empty()) bc = b;
    return Status::Ok();
  }).ok());
  REQUIRE_FALSE(bc.empty());
  auto head = env.client->HeadArchive(bc);
  REQUIRE(head.ok());
  CHECK("\"" + head->etag + "\"" == env.server->CurrentETag("TEST", bc));
  REQUIRE(env.tokens->Token().ok());
  net::Response r = env.transport->SubmitFuture(
                        env.client->ArchiveRequest(bc, net::ResponseSink::Memory())).get();
  auto got = env.client->CheckArchiveResponse(r);
  REQUIRE(got.ok());
  CHECK(got->etag == head->etag);
  CHECK(static_cast<int64_t>(r.body.size()) == head->size);
  CHECK(env.server->BarcodeCounters("TEST", bc).gets == 1);

  fake::FaultRule e;
  e.endpoint = "archive_get";
  e.action = "etag";
  e.etag_mode = "missing";
  env.server->AddFault(e);
  r = env.transport->SubmitFuture(env.client->ArchiveRequest(bc, net::ResponseSink::Memory())).get();
  CHECK(env.client->CheckArchiveResponse(r).status().code() == StatusCode::kDataLoss);
  env.server->corpus("TEST")->SetStatus(*env.server->corpus("TEST")->IndexOf(bc),
                                        fake::ConvertStatus::kAvailable, env.server->NowSeconds());
  CHECK(env.client->HeadArchive(bc).status().code() == StatusCode::kNotFound);
}

}  // TEST_SUITE

}  // namespace grin::grin_client

namespace grin::grin_client {

TEST_SUITE("integration") {

TEST_CASE("faults: 5xx / 429 on list pages are retried, slow first byte is waited out") {
  GrinEnv env(testing::FakeOptions(250), false);
  for (auto [status, retry_after] : std::vector<std::pair<int, std::string>>{
           {503, ""}, {500, ""}, {429, "1"}, {429, ""}}) {
    env.server->ClearFaults();
    fake::FaultRule f;
    f.endpoint = "all_books";
    f.status = status;
    f.retry_after = retry_after;
    f.nth = 2;
    env.server->AddFault(f);
    fake::FaultRule slow;
    slow.endpoint = "all_books";
    slow.action = "slow_first_byte";
    slow.delay_ms = 300;
    slow.nth = 1;
    env.server->AddFault(slow);
    int rows = 0;
    Status s = env.client->ForEachListPage(env.client->ListUrl("all_books", 100),
                                           [&](const ListPage& p) {
                                             rows += static_cast<int>(p.rows.size());
                                             return Status::Ok();
                                           });
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(rows == 250);
  }
}

TEST_CASE("faults: throttled and stalled archive bodies arrive whole, truncated ones fail") {
  GrinEnv env(testing::FakeOptions(20), false);
  std::string bc;
  REQUIRE(env.client->ForEachTextLine("converted", "", [&](const std::string& b) {
    if (bc.empty()) bc = b;
    return Status::Ok();
  }).ok());
  REQUIRE(env.tokens->Token().ok());
  auto get = [&] {
    return env.transport->SubmitFuture(env.client->ArchiveRequest(bc, net::ResponseSink::Memory()))
        .get();
  };
  const std::string good = get().body;
  REQUIRE(good.size() > 4000);

  fake::FaultRule t;
  t.endpoint = "archive_get";
  t.action = "throttle";
  t.rate_bps = 20'000;
  t.times = 1;
  env.server->AddFault(t);
  auto start = std::chrono::steady_clock::now();
  net::Response r = get();
  CHECK(r.body == good);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));

  fake::FaultRule st;
  st.endpoint = "archive_get";
  st.action = "stall";
  st.stall_ms = 700;
  st.at_byte = 1000;
  st.times = 1;
  env.server->AddFault(st);
  start = std::chrono::steady_clock::now();
  r = get();
  CHECK(r.body == good);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(600));

  fake::FaultRule tr;
  tr.endpoint = "archive_get";
  tr.action = "truncate";
  tr.at_byte = 2000;
  env.server->AddFault(tr);
  net::Request no_retry = env.client->ArchiveRequest(bc, net::ResponseSink::Memory());
  net::RetryOptions once;
  once.max_attempts = 1;
  no_retry.retry = once;
  r = env.transport->SubmitFuture(std::move(no_retry)).get();
  CHECK_FALSE(env.client->CheckArchiveResponse(r).ok());
  CHECK(env.server->BarcodeCounters("TEST", bc).gets == 4);
  CHECK(env.server->Stats().wasted_bytes > 0);
}

}  // TEST_SUITE

}  // namespace grin::grin_client
