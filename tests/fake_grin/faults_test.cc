// Fault forms (docs/grin-protocol.md, The fake GRIN server: Faults) beyond the basic ones, each observed on the wire: with a
// raw socket (plain HTTP, to tell a reset from a close and see chunk framing), with the project's
// CurlTransport over HTTPS, or with cpp-httplib's client.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "engine/net/curl_transport.h"
#include "tests/fake_grin/fake_grin.h"

namespace grin::fake {
namespace {

using nlohmann::json;

std::unique_ptr<FakeGrinServer> Start(FakeGrinOptions o) {
  auto s = FakeGrinServer::Start(std::move(o));
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(s).value();
}

FakeGrinOptions Small(int64_t books = 30, bool tls = true) {
  FakeGrinOptions o;
  o.corpus.size = books;
  o.corpus.seed = 5;
  o.default_page_size = 10;
  o.tls = tls;
  o.threads = 8;
  return o;
}

// One plain-HTTP connection, read by hand.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawConn() { close(fd_); }

  void Send(const std::string& target, const std::string& token) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                      token + "\r\n\r\n";
    REQUIRE(send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }

  // Reads until `want` bytes are buffered, EOF, a socket error or `timeout_ms`. Returns errno of
  // a failed read (ECONNRESET for a reset), 0 for EOF, -1 if the bytes arrived or time ran out.
  int ReadUntil(size_t want, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (data_.size() < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return -1;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0) return errno;
      if (n == 0) return 0;
      data_.append(buf, static_cast<size_t>(n));
    }
    return -1;
  }
  // Reads one response with a Content-Length body; returns its status, or 0 if the connection
  // ended first (*err: what ended it).
  int ReadResponse(int* err) {
    *err = -1;
    size_t hdr_end;
    while ((hdr_end = data_.find("\r\n\r\n")) == std::string::npos) {
      *err = ReadUntil(data_.size() + 1);
      if (*err >= 0) return 0;
    }
    const std::string head = data_.substr(0, hdr_end);
    const size_t cl = head.find("Content-Length: ");
    const size_t len = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
    *err = ReadUntil(hdr_end + 4 + len);
    if (data_.size() < hdr_end + 4 + len) return 0;
    const int status = std::stoi(head.substr(9, 3));
    data_.erase(0, hdr_end + 4 + len);
    return status;
  }
  std::string& data() { return data_; }

 private:
  int fd_ = -1;
  std::string data_;
};

std::string FirstConverted(FakeGrinServer& s) {
  int64_t total = 0;
  auto idx = s.corpus("TEST")->List(ConvertStatus::kConverted, 0, 1, &total);
  REQUIRE_FALSE(idx.empty());
  return Corpus::BarcodeAt(idx[0]);
}

// The project's transport over HTTPS, retries off unless asked.
struct Curl {
  explicit Curl(FakeGrinServer& s, int attempts = 1) : server(s) {
    net::TransportOptions t;
    t.ca_file = s.ca_file();
    t.retry.max_attempts = attempts;
    t.max_connections_per_host = 1;
    auto tr = net::CurlTransport::Create(t);
    REQUIRE_MESSAGE(tr.ok(), tr.status().ToString());
    transport = std::move(tr).value();
    token = s.IssueAccessToken();
  }
  ~Curl() { transport->Shutdown(); }
  net::Response Get(const std::string& path) {
    net::Request r;
    r.url = server.origin() + path;
    r.headers = {{"Authorization", "Bearer " + token}};
    r.sink = net::ResponseSink::Memory();
    return transport->SubmitFuture(std::move(r)).get();
  }
  FakeGrinServer& server;
  std::unique_ptr<net::CurlTransport> transport;
  std::string token;
};

}  // namespace

TEST_SUITE("integration") {

TEST_CASE("faults: truncation closes with FIN, resets with RST, or cuts chunked framing") {
  auto s = Start(Small(30, /*tls=*/false));
  const std::string token = s->IssueAccessToken();
  const std::string bc = FirstConverted(*s);
  const std::string path = "/libraries/TEST/" + bc + ".tar.gz.gpg";
  for (std::string mode : {"fin", "rst", "chunked"}) {
    CAPTURE(mode);
    s->ClearFaults();
    FaultRule f;
    f.endpoint = "archive_get";
    f.action = "truncate";
    f.at_byte = 1500;
    f.close_mode = mode;
    s->AddFault(f);
    RawConn c(s->port());
    c.Send(path, token);
    const int err = c.ReadUntil(1 << 30);
    const std::string& d = c.data();
    const size_t body_at = d.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    if (mode == "rst") {
      CHECK(err == ECONNRESET);
      CHECK(d.size() - (body_at + 4) == 1500);  // what was written before the reset arrived
    } else {
      CHECK(err == 0);  // an orderly close
    }
    if (mode == "chunked") {
      CHECK(d.find("Transfer-Encoding: chunked") < body_at);
      CHECK(d.find("Content-Length") > body_at);
      CHECK(d.size() > body_at + 4 + 1500);  // chunk sizes add a few bytes
      CHECK(d.find("\r\n0\r\n\r\n") == std::string::npos);  // no terminating chunk
    } else {
      CHECK(d.size() - (body_at + 4) == 1500);
      CHECK(std::stoul(d.substr(d.find("Content-Length: ") + 16)) > 1500);
    }
  }
  CHECK(s->Stats().resets == 1);
}

TEST_CASE("faults: over HTTPS curl sees a reset, and a chunked body without its last chunk") {
  auto s = Start(Small());
  const std::string bc = FirstConverted(*s);
  Curl curl(*s);
  FaultRule f;
  f.endpoint = "archive_get";
  f.action = "truncate";
  f.at_byte = 1000;
  f.close_mode = "rst";
  f.times = 1;
  s->AddFault(f);
  net::Response r = curl.Get("/libraries/TEST/" + bc + ".tar.gz.gpg");
  CHECK(r.curl_code == 56);  // CURLE_RECV_ERROR
  CHECK_MESSAGE(r.transport_status.message().find("reset") != std::string::npos,
                r.transport_status.ToString());
  f.close_mode = "chunked";
  s->AddFault(f);
  r = curl.Get("/libraries/TEST/" + bc + ".tar.gz.gpg");
  CHECK_FALSE(r.transport_status.ok());
  CHECK(r.bytes_down >= 1000);
  r = curl.Get("/libraries/TEST/" + bc + ".tar.gz.gpg");
  CHECK(r.transport_status.ok());
  CHECK(r.http_status == 200);
}

TEST_CASE("faults: reset on keep-alive reuse, and first N requests per connection") {
  auto s = Start(Small(30, false));
  const std::string token = s->IssueAccessToken();
  FaultRule reset;
  reset.endpoint = "probe";
  reset.action = "reset";
  reset.conn_after = 1;  // any request after the first on its connection
  s->AddFault(reset);
  {
    RawConn c(s->port());
    int err = 0;
    c.Send("/libraries/TEST/?format=text", token);
    CHECK(c.ReadResponse(&err) == 200);
    c.Send("/libraries/TEST/?format=text", token);
    CHECK(c.ReadResponse(&err) == 0);
    CHECK(err == ECONNRESET);
  }
  {
    RawConn c(s->port());  // a new connection: its first request is served again
    int err = 0;
    c.Send("/libraries/TEST/?format=text", token);
    CHECK(c.ReadResponse(&err) == 200);
  }
  s->ClearFaults();
  FaultRule first;
  first.endpoint = "probe";
  first.status = 503;
  first.conn_first = 2;
  s->AddFault(first);
  for (int conn = 0; conn < 2; ++conn) {
    RawConn c(s->port());
    int err = 0;
    std::string got;
    for (int i = 0; i < 4; ++i) {
      c.Send("/libraries/TEST/?format=text", token);
      got += std::to_string(c.ReadResponse(&err)) + " ";
    }
    CHECK(got == "503 503 200 200 ");
  }
  auto st = s->Stats();
  CHECK(st.resets == 1);
  CHECK(st.connections == 4);
}

TEST_CASE("faults: TLS connections are counted, resumptions too") {
  auto s = Start(Small());
  Curl curl(*s);
  for (int i = 0; i < 3; ++i) CHECK(curl.Get("/libraries/TEST/?format=text").http_status == 200);
  CHECK(s->Stats().connections == 1);  // one keep-alive connection
  FaultRule reset;
  reset.endpoint = "probe";
  reset.action = "reset";
  reset.conn_after = 1;
  s->AddFault(reset);
  net::Response r = curl.Get("/libraries/TEST/?format=text");
  // curl replays a request that died on a reused connection before any reply, on a new one.
  CHECK(r.http_status == 200);
  auto st = s->Stats();
  CHECK(st.resets == 1);
  CHECK(st.connections == 2);
  CHECK(st.tls_resumed == 1);
}

TEST_CASE("server closes a keep-alive connection idle for keep_alive_timeout_s") {
  auto o = Small(30, false);
  o.keep_alive_timeout_s = 1;
  auto s = Start(o);
  RawConn c(s->port());
  int err = 0;
  c.Send("/libraries/TEST/?format=text", s->IssueAccessToken());
  REQUIRE(c.ReadResponse(&err) == 200);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(c.ReadUntil(1, 4000) == 0);  // the server's FIN
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(700));
}

TEST_CASE("faults: a time window (403 'ACL not yet applied' for the first 10 minutes)") {
  auto s = Start(Small());
  Curl curl(*s);
  FaultRule acl;
  acl.endpoint = "grin";
  acl.status = 403;
  acl.window_end_s = 600;
  s->AddFault(acl);
  FaultRule later;
  later.endpoint = "converted";
  later.status = 502;
  later.window_start_s = 900;
  later.window_end_s = 1000;
  s->AddFault(later);
  CHECK(curl.Get("/libraries/TEST/?format=text").http_status == 403);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").http_status == 403);
  s->AdvanceClock(600);
  curl.token = s->IssueAccessToken();
  CHECK(curl.Get("/libraries/TEST/?format=text").http_status == 200);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").http_status == 200);
  s->AdvanceClock(300);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").http_status == 502);
  s->AdvanceClock(100);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").http_status == 200);
  CHECK(EndpointMatches("grin", "archive_get"));
  CHECK_FALSE(EndpointMatches("grin", "token"));
  auto rules = ParseFaultRules(R"({"status":403,"window_end_s":60,"conn_first":1})");
  REQUIRE(rules.ok());
  CHECK((*rules)[0].window_end_s == 60);
  CHECK(ParseFaultRule(R"({"action":"truncate","close_mode":"abrupt"})").status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("faults: a global bandwidth cap is shared by concurrent downloads") {
  auto o = Small();
  o.size_only = true;
  o.size_only_min_bytes = o.size_only_max_bytes = 200'000;
  auto s = Start(o);
  int64_t total = 0;
  auto idx = s->corpus("TEST")->List(ConvertStatus::kConverted, 0, 2, &total);
  REQUIRE(idx.size() == 2);
  FaultRule cap;
  cap.endpoint = "archive_get";
  cap.action = "global_throttle";
  cap.rate_bps = 800'000;  // two 200 kB bodies share it: >= ~0.5 s together
  s->AddFault(cap);
  const std::string token = s->IssueAccessToken();
  auto get = [&](int64_t i) {
    httplib::Client c(s->origin());
    c.set_ca_cert_path(s->ca_file().c_str());
    auto r = c.Get("/libraries/TEST/" + Corpus::BarcodeAt(i) + ".tar.gz.gpg",
                   {{"Authorization", "Bearer " + token}});
    return r ? r->body.size() : 0;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto a = std::async(std::launch::async, get, idx[0]);
  auto b = std::async(std::launch::async, get, idx[1]);
  CHECK(a.get() == 200'000);
  CHECK(b.get() == 200'000);
  // Each alone at 800 kB/s would take 0.25 s; sharing the cap, 0.5 s.
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(450));
  CHECK(ParseFaultRule(R"({"action":"global_throttle"})").status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("faults: re-conversion on HEAD (next request gets a new version) and mid-stream") {
  auto s = Start(Small());
  Curl curl(*s);
  const std::string bc = FirstConverted(*s);
  const std::string path = "/libraries/TEST/" + bc + ".tar.gz.gpg";
  auto v1 = s->ArchiveBytes("TEST", bc);
  REQUIRE(v1.ok());
  const std::string old_bytes = **v1;
  const std::string etag1 = s->CurrentETag("TEST", bc);

  FaultRule rh;
  rh.endpoint = "archive_head";
  rh.action = "reconvert";
  rh.times = 1;
  s->AddFault(rh);
  httplib::Client hc(s->origin());
  hc.set_ca_cert_path(s->ca_file().c_str());
  auto head = hc.Head(path, {{"Authorization", "Bearer " + curl.token}});
  REQUIRE(head);
  CHECK(head->get_header_value("ETag") == etag1);
  net::Response r = curl.Get(path);
  REQUIRE(r.http_status == 200);
  const std::string etag2 = s->CurrentETag("TEST", bc);
  CHECK(etag2 != etag1);
  CHECK(net::FindHeader(r.headers, "ETag").value_or("") == etag2);
  auto v2 = s->ArchiveBytes("TEST", bc);
  REQUIRE(v2.ok());
  CHECK(r.body == **v2);
  CHECK(r.body != old_bytes);

  FaultRule mid;
  mid.endpoint = "archive_get";
  mid.action = "reconvert";
  mid.at_byte = 1000;
  mid.times = 1;
  s->AddFault(mid);
  r = curl.Get(path);
  // Headers of version 2, the first 1000 bytes of version 2, then version 3's bytes.
  CHECK(net::FindHeader(r.headers, "ETag").value_or("") == etag2);
  auto v3 = s->ArchiveBytes("TEST", bc);
  REQUIRE(v3.ok());
  const std::string& b3 = **v3;
  REQUIRE(r.body.size() >= 1000);
  CHECK(r.body.compare(0, 1000, **v2, 0, 1000) == 0);
  CHECK(r.body.compare(1000, std::string::npos, b3, 1000,
                       std::min(b3.size(), r.body.size()) - 1000) == 0);
  const std::string etag3 = s->CurrentETag("TEST", bc);
  CHECK(etag3 != etag2);
  CHECK(net::FindHeader(curl.Get(path).headers, "ETag").value_or("") == etag3);
}

TEST_CASE("faults: a book expires between HEAD and GET") {
  auto s = Start(Small());
  Curl curl(*s);
  const std::string bc = FirstConverted(*s);
  const std::string path = "/libraries/TEST/" + bc + ".tar.gz.gpg";
  FaultRule e;
  e.endpoint = "archive_head";
  e.barcode = bc;
  e.action = "expire";
  s->AddFault(e);
  httplib::Client hc(s->origin());
  hc.set_ca_cert_path(s->ca_file().c_str());
  auto head = hc.Head(path, {{"Authorization", "Bearer " + curl.token}});
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(curl.Get(path).http_status == 404);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").body.find(bc) == std::string::npos);
  CHECK(curl.Get("/libraries/TEST/_available?format=text").body.find(bc) != std::string::npos);
}

TEST_CASE("414 for over-long _barcode_search and _process URLs") {
  auto s = Start(Small());
  Curl curl(*s);
  std::string list;
  while (list.size() < 8300) list += "39015000000001,";
  CHECK(curl.Get("/libraries/TEST/_barcode_search?execute_query=true&format=text&mode=full&"
                 "barcodes=" + list).http_status == 414);
  CHECK(curl.Get("/libraries/TEST/_process?barcodes=" + list).http_status == 414);
  CHECK(curl.Get("/libraries/TEST/_process?barcodes=39015000000001").http_status == 200);
}

TEST_CASE("faults: token endpoint slow, 5xx, invalid_grant, replies without a refresh token") {
  auto s = Start(Small());
  httplib::Client c(s->origin());
  c.set_ca_cert_path(s->ca_file().c_str());
  const auto& o = s->options();
  const httplib::Params form = {{"grant_type", "refresh_token"},
                                {"client_id", o.client_id},
                                {"client_secret", o.client_secret},
                                {"refresh_token", o.refresh_token}};
  auto r = c.Post("/token", form);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  json j = json::parse(r->body);
  CHECK(j.contains("access_token"));
  CHECK_FALSE(j.contains("refresh_token"));  // as Google usually answers

  auto rules = ParseFaultRules(R"([{"endpoint":"token","action":"slow_first_byte","delay_ms":300,"nth":1},
                                   {"endpoint":"token","status":503,"nth":2},
                                   {"endpoint":"token","action":"invalid_grant","nth":3}])");
  REQUIRE(rules.ok());
  for (auto& f : *rules) s->AddFault(f);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(c.Post("/token", form)->status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(280));
  CHECK(c.Post("/token", form)->status == 503);
  r = c.Post("/token", form);
  CHECK(r->status == 400);
  CHECK(json::parse(r->body)["error"] == "invalid_grant");
  CHECK(c.Post("/token", form)->status == 200);
}

TEST_CASE("faults: duplicate and shifted rows across pages, empty _converted") {
  auto s = Start(Small(40));
  Curl curl(*s);
  auto page = [&](int first) {
    net::Response r = curl.Get("/libraries/TEST/_all_books?result_count=10&first=" +
                               std::to_string(first));
    std::vector<std::string> bcs;
    for (size_t at = 0; (at = r.body.find("name=\"barcodes\" value=\"", at)) != std::string::npos;) {
      at += 23;
      bcs.push_back(r.body.substr(at, r.body.find('"', at) - at));
    }
    const size_t nx = r.body.find("first=", r.body.find("Next &gt;") - 60);
    return std::make_pair(bcs, nx == std::string::npos ? -1 : std::stoi(r.body.substr(nx + 6)));
  };
  FaultRule dup;
  dup.endpoint = "all_books";
  dup.action = "shift_rows";
  dup.shift = -3;
  dup.nth = 2;
  s->AddFault(dup);
  auto [p1, n1] = page(0);
  auto [p2, n2] = page(n1);
  CHECK(n1 == 10);
  REQUIRE(p2.size() == 10);
  CHECK(p2[0] == Corpus::BarcodeAt(7));  // three rows of page 1 again
  CHECK(n2 == 17);
  s->ClearFaults();
  FaultRule skip = dup;
  skip.shift = 4;
  skip.nth = 1;
  s->AddFault(skip);
  auto [p3, n3] = page(10);
  CHECK(p3[0] == Corpus::BarcodeAt(14));  // rows 10-13 never shown
  CHECK(n3 == 24);

  FaultRule empty;
  empty.endpoint = "converted";
  empty.action = "empty";
  s->AddFault(empty);
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").body.empty());
  net::Response html = curl.Get("/libraries/TEST/_converted");
  CHECK(html.body.find("class=\"heading\"") != std::string::npos);
  CHECK(html.body.find("name=\"barcodes\"") == std::string::npos);
  CHECK(html.body.find("Next &gt;") == std::string::npos);
}

TEST_CASE("ctoken expiry: an old continuation token gets the 'unavailable' page") {
  auto o = Small(40);
  o.use_ctoken = true;
  o.ctoken_ttl_s = 600;
  auto s = Start(o);
  Curl curl(*s);
  net::Response first = curl.Get("/libraries/TEST/_all_books?result_count=10");
  const size_t at = first.body.find("ctoken=");
  REQUIRE(at != std::string::npos);
  const std::string next = "/libraries/TEST/_all_books?result_count=10&" +
                           first.body.substr(at, first.body.find('"', at) - at);
  CHECK(curl.Get(next).body.find("name=\"barcodes\"") != std::string::npos);
  s->AdvanceClock(601);
  net::Response late = curl.Get(next);
  CHECK(late.http_status == 200);
  CHECK(late.body.find("Your request is unavailable") != std::string::npos);
}

}  // TEST_SUITE

TEST_CASE("faults: a rate limit answers 429 to requests over its budget") {
  auto s = Start(Small());
  FaultRule limit;
  limit.endpoint = "grin";
  limit.action = "rate_limit";
  limit.rate_rps = 10;
  limit.burst = 3;
  limit.status = 429;
  limit.retry_after = "1";
  s->AddFault(limit);
  Curl curl(*s);
  // A burst of 3 passes, then the budget is spent: the next requests at once are refused.
  int ok = 0, refused = 0;
  for (int i = 0; i < 6; ++i) {
    const int st = curl.Get("/libraries/TEST/_converted?format=text").http_status;
    if (st == 200) ++ok;
    if (st == 429) ++refused;
  }
  CHECK(ok >= 3);
  CHECK(ok <= 4);  // one more may have earned its token on a slow machine
  CHECK(refused == 6 - ok);
  // A tenth of a second later one more token is there.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(curl.Get("/libraries/TEST/_converted?format=text").http_status == 200);
  CHECK(ParseFaultRule(R"({"action":"rate_limit"})").status().code() ==
        StatusCode::kInvalidArgument);
  auto r = ParseFaultRule(R"({"action":"rate_limit","rate_rps":5,"burst":2})");
  REQUIRE(r.ok());
  CHECK(r->status == 429);
}

TEST_CASE("faults: archive GET timings show the first-byte delay and the throttled body") {
  auto o = Small();
  o.size_only = true;
  o.size_only_min_bytes = o.size_only_max_bytes = 100'000;
  auto s = Start(o);
  int64_t total = 0;
  auto idx = s->corpus("TEST")->List(ConvertStatus::kConverted, 0, 1, &total);
  REQUIRE(idx.size() == 1);
  FaultRule slow;
  slow.endpoint = "archive_get";
  slow.action = "slow_first_byte";
  slow.delay_ms = 200;
  s->AddFault(slow);
  FaultRule rate;
  rate.endpoint = "archive_get";
  rate.action = "throttle";
  rate.rate_bps = 500'000;  // 100 kB: ~0.2 s
  s->AddFault(rate);
  Curl curl(*s);
  const std::string path = "/libraries/TEST/" + Corpus::BarcodeAt(idx[0]) + ".tar.gz.gpg";
  CHECK(curl.Get(path).http_status == 200);
  httplib::Client c(s->origin());
  c.set_ca_cert_path(s->ca_file().c_str());
  auto r = c.Get("/_fake/gets");
  REQUIRE(r);
  auto gets = json::parse(r->body);
  REQUIRE(gets.size() == 1);
  const auto& g = gets[0];
  CHECK(g["bytes"].get<int64_t>() == 100'000);
  CHECK(g["status"].get<int>() == 200);
  CHECK(g["first_byte_us"].get<int64_t>() - g["arrived_us"].get<int64_t>() >= 200'000);
  // The throttle sends a twentieth of a second's bytes per step, the first at once.
  CHECK(g["end_us"].get<int64_t>() - g["first_byte_us"].get<int64_t>() >= 120'000);
}

}  // namespace grin::fake
