// CurlTransport against the loopback HTTPS server: requests and responses, connection reuse under
// concurrency, error mapping (truncation, stalls, TLS), retries, rate control and counters.

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>  // TLS1_2_VERSION
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "tests/net/net_fixture.h"

namespace grin::net {
namespace {

using testing::Get;
using testing::MakeTransport;
using testing::NetEnv;

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST_SUITE("integration") {
  TEST_CASE("GET into memory, PUT and POST from memory and file, response into a file") {
    NetEnv env;
    auto t = MakeTransport(env.Options());

    Response r = t->SubmitFuture(Get(env.url("/small"))).get();
    REQUIRE(r.transport_status.ok());
    CHECK(r.http_status == 200);
    CHECK(r.body == std::string(200, 'x'));
    CHECK(r.bytes_down == 200);
    CHECK(r.attempts == 1);
    CHECK(r.new_connections == 1);
    CHECK(FindHeader(r.headers, "content-type") == std::optional<std::string>("text/plain"));
    CHECK(r.ToStatus().ok());

    Request put;
    put.method = Method::kPut;
    put.url = env.url("/echo");
    put.body = BodySource::Memory("hello, upload");
    put.headers = {{"X-Attempt", "one"}};
    r = t->SubmitFuture(put).get();
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body == "hello, upload");
    CHECK(r.bytes_up == 13);
    CHECK(FindHeader(r.headers, "X-Seen-Attempt") == std::optional<std::string>("one"));
    CHECK(r.new_connections == 0);  // reused

    const std::string in = env.dir().file("in.bin");
    std::string content(300'000, '\0');
    for (size_t i = 0; i < content.size(); ++i) content[i] = testing::PatternByte(i);
    grin::testing::WriteFile(in, content);
    Request post;
    post.method = Method::kPost;
    post.url = env.url("/echo");
    post.body = BodySource::File(in, 1000, 200'000);
    const std::string out = env.dir().file("out.bin");
    grin::testing::WriteFile(out, "garbage that must be truncated away ..........");
    post.sink = ResponseSink::File(out);
    r = t->SubmitFuture(post).get();
    INFO(r.ToStatus().ToString());
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body.empty());
    CHECK(grin::testing::ReadFile(out) == content.substr(1000, 200'000));

    r = t->SubmitFuture(Get(env.url("/nothing-here"))).get();
    CHECK(r.transport_status.ok());  // a 404 is a response
    CHECK(r.http_status == 404);
    CHECK(r.attempts == 1);  // permanent: not retried
    CHECK(r.ToStatus().code() == StatusCode::kNotFound);

    auto stats = t->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].host == env.host_key());
    CHECK(stats[0].requests == 4);
    CHECK(stats[0].status_class[2] == 3);
    CHECK(stats[0].status_class[4] == 1);
    CHECK(stats[0].new_connections == 1);
    CHECK(stats[0].tls_handshakes == 1);
    CHECK(stats[0].reused == 3);
    CHECK(stats[0].bytes_up == 13 + 200'000);
    CHECK(stats[0].tls_cipher == "TLS_AES_128_GCM_SHA256");  // the default preference
    CHECK(env.server().handshakes() == 1);
  }

  TEST_CASE("the TLS 1.3 suite follows the configured preference") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.tls13_ciphers = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    auto t = MakeTransport(o);
    Response r = t->SubmitFuture(Get(env.url("/small"))).get();
    REQUIRE(r.ToStatus().ok());
    auto stats = t->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].tls_cipher == "TLS_CHACHA20_POLY1305_SHA256");
  }

  TEST_CASE("a TLS 1.2 server gets AES-128-GCM first too, and OpenSSL's order without the list") {
    NetEnv env(8, TLS1_2_VERSION);
    auto t = MakeTransport(env.Options());
    Response r = t->SubmitFuture(Get(env.url("/small"))).get();
    REQUIRE(r.ToStatus().ok());
    auto stats = t->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].tls_cipher.find("ECDHE-") == 0);
    CHECK(stats[0].tls_cipher.find("-AES128-GCM-SHA256") != std::string::npos);

    NetEnv env2(8, TLS1_2_VERSION);
    TransportOptions o = env2.Options();
    o.tls12_ciphers.clear();
    auto t2 = MakeTransport(o);
    r = t2->SubmitFuture(Get(env2.url("/small"))).get();
    REQUIRE(r.ToStatus().ok());
    stats = t2->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].tls_cipher.find("-AES256-GCM-SHA384") != std::string::npos);
  }

  TEST_CASE("2,000 requests from 8 threads open no more connections than the per-host cap") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.max_connections_per_host = 4;
    auto t = MakeTransport(o);
    constexpr int kThreads = 8, kPerThread = 250;
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        std::vector<std::future<Response>> fs;
        for (int j = 0; j < kPerThread; ++j) fs.push_back(t->SubmitFuture(Get(env.url("/small"))));
        for (auto& f : fs) {
          Response r = f.get();
          (r.ToStatus().ok() && r.body.size() == 200 ? ok : bad)++;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(ok.load() == kThreads * kPerThread);
    CHECK(bad.load() == 0);
    CHECK(env.server().requests() == kThreads * kPerThread);
    // Server side: TLS connections accepted and client ports that carried requests.
    CHECK(env.server().tls_connections() <= 4);
    CHECK(env.server().distinct_client_ports() <= 4);
    CHECK(env.server().handshakes() <= 4);
    auto stats = t->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].new_connections == env.server().handshakes());
    CHECK(stats[0].reused == kThreads * kPerThread - stats[0].new_connections);
  }

  TEST_CASE("a host's pool (HostLimits::max_connections) bounds its connections below the cap, "
            "set before or during a burst") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.max_connections_per_host = 16;
    auto t = MakeTransport(o);
    HostLimits pool;
    pool.max_connections = 3;
    t->SetHostLimits(env.host_key(), pool);
    // 64 requests of 256 KiB at once: without the pool they start together on 16 connections;
    // with it they wait in the transport's queue for one of three.
    std::vector<std::future<Response>> fs;
    for (int i = 0; i < 64; ++i) fs.push_back(t->SubmitFuture(Get(env.url("/bytes?n=262144"))));
    for (auto& f : fs) CHECK(f.get().ToStatus().ok());
    CHECK(env.server().handshakes() <= 3);
    auto stats = t->HostStats();
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].tls_handshakes <= 3);
    CHECK(stats[0].new_connections == env.server().handshakes());
    // Raised during the run: up to the new pool, never past the transport's cap.
    pool.max_connections = 64;
    t->SetHostLimits(env.host_key(), pool);
    fs.clear();
    for (int i = 0; i < 64; ++i) fs.push_back(t->SubmitFuture(Get(env.url("/bytes?n=262144"))));
    for (auto& f : fs) CHECK(f.get().ToStatus().ok());
    CHECK(env.server().handshakes() <= 16);
    CHECK(env.server().handshakes() > 3);
  }

  TEST_CASE("with reuse forbidden every request opens a connection, sessions are resumed") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.forbid_reuse = true;
    auto t = MakeTransport(o);
    for (int i = 0; i < 10; ++i)
      REQUIRE(t->SubmitFuture(Get(env.url("/small"))).get().ToStatus().ok());
    CHECK(env.server().tls_connections() == 10);
    CHECK(t->HostStats()[0].new_connections == 10);
    // The share handle carries TLS sessions between easy handles (TLS 1.3 tickets arrive after the
    // handshake, so not necessarily every one resumes).
    CHECK(env.server().resumed() >= 1);
  }

  TEST_CASE("a truncated body is an error, never a success") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.retry.max_attempts = 3;
    auto t = MakeTransport(o);
    Response r = t->SubmitFuture(Get(env.url("/truncated"))).get();
    CHECK_FALSE(r.transport_status.ok());
    CHECK(r.transport_status.code() == StatusCode::kDataLoss);
    CHECK(r.curl_code == 18);  // CURLE_PARTIAL_FILE
    CHECK(r.attempts == 3);    // retryable, retried, still refused
    CHECK_FALSE(r.ToStatus().ok());
    CHECK(t->HostStats()[0].transport_errors == 3);
    CHECK(t->HostStats()[0].retries == 2);
  }

  TEST_CASE("a stalled body trips the low-speed limit") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.low_speed_bytes_per_second = 1000;
    o.low_speed_time_seconds = 1;
    o.retry.max_attempts = 1;
    auto t = MakeTransport(o);
    const auto start = Clock::now();
    Response r = t->SubmitFuture(Get(env.url("/stall"))).get();
    const double took = SecondsSince(start);
    MESSAGE("stall detected after " << took << " s");
    CHECK(r.transport_status.code() == StatusCode::kUnavailable);
    CHECK(r.curl_code == 28);  // CURLE_OPERATION_TIMEDOUT
    CHECK(r.transport_status.message().find("timeout") != std::string::npos);
    CHECK(took >= 0.9);
    CHECK(took < 10);
  }

  TEST_CASE("429 with Retry-After is waited out, then succeeds") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    const auto start = Clock::now();
    Response r = t->SubmitFuture(Get(env.url("/throttle?k=a"))).get();
    const double took = SecondsSince(start);
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body == "ok");
    CHECK(r.attempts == 2);
    CHECK(took >= 0.95);  // Retry-After: 1, not the 20 ms base backoff
    CHECK(took < 5);
    CHECK(env.Hits("throttle:a") == 2);
    auto s = t->HostStats()[0];
    CHECK(s.retries == 1);
    CHECK(s.throttled == 1);
    CHECK(s.status_class[4] == 1);
  }

  TEST_CASE("retries re-run the prepare hook, non-replayable bodies are not retried") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    std::vector<int> attempts;
    Request req = Get(env.url("/flaky?k=p&f=2"));
    req.prepare = [&attempts](Request& r, int attempt) {
      attempts.push_back(attempt);  // runs on the transport thread, one attempt at a time
      r.headers = {{"X-Attempt", std::to_string(attempt)}};
      return Status::Ok();
    };
    Response r = t->SubmitFuture(req).get();
    REQUIRE(r.ToStatus().ok());
    CHECK(r.attempts == 3);
    CHECK(attempts == std::vector<int>{1, 2, 3});
    CHECK(FindHeader(r.headers, "X-Seen-Attempt") == std::optional<std::string>("3"));

    // Retrying into a file sink: the file holds the successful body only, the 503 page never.
    Request to_file = Get(env.url("/flaky?k=f&f=1"));
    const std::string path = env.dir().file("flaky.out");
    to_file.sink = ResponseSink::File(path);
    r = t->SubmitFuture(to_file).get();
    REQUIRE(r.ToStatus().ok());
    CHECK(r.attempts == 2);
    CHECK(grin::testing::ReadFile(path) == "ok");

    // Retries exhausted into a callback sink: the error body is in Response::body, not the sink.
    std::string streamed;
    Request to_cb = Get(env.url("/flaky?k=c&f=5"));
    to_cb.retry = RetryOptions{};
    to_cb.retry->max_attempts = 2;
    to_cb.retry->throttle_base_delay_ms = 1;
    to_cb.sink = ResponseSink::Callback([&streamed](const char* d, size_t n) {
      streamed.append(d, n);
      return n;
    });
    r = t->SubmitFuture(to_cb).get();
    CHECK(r.http_status == 503);
    CHECK(r.attempts == 2);
    CHECK(r.body == "unavailable");
    CHECK(streamed.empty());

    // A callback body without rewind is not replayable: the 503 comes back as is.
    Request once = Get(env.url("/flaky?k=q&f=1"));
    once.body = BodySource::Callback([](char*, size_t) -> size_t { return 0; }, 0);
    r = t->SubmitFuture(once).get();
    CHECK(r.transport_status.ok());
    CHECK(r.http_status == 503);
    CHECK(r.attempts == 1);
    CHECK(r.ToStatus().code() == StatusCode::kUnavailable);

    // A failing prepare hook fails the request with its Status.
    Request bad = Get(env.url("/small"));
    bad.prepare = [](Request&, int) { return Status::PermissionDenied("no credentials"); };
    r = t->SubmitFuture(bad).get();
    CHECK(r.transport_status.code() == StatusCode::kPermissionDenied);
  }

  TEST_CASE("connection refused is retried with backoff, then reported as unavailable") {
    NetEnv env;
    // A port that was just free: bind, read the port, close.
    int port = 0;
    {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      REQUIRE(fd >= 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
      REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
      port = ntohs(a.sin_port);
      ::close(fd);  // never listened: connecting is refused
    }
    REQUIRE(port > 0);
    auto t = MakeTransport(env.Options());
    Response r = t->SubmitFuture(Get("https://127.0.0.1:" + std::to_string(port) + "/x")).get();
    CHECK(r.transport_status.code() == StatusCode::kUnavailable);
    CHECK(r.curl_code == 7);  // CURLE_COULDNT_CONNECT
    CHECK(r.attempts == 4);
    CHECK(r.http_status == 0);
    auto s = t->HostStats();
    REQUIRE(s.size() == 1);
    CHECK(s[0].status_class[0] == 4);
    CHECK(s[0].retries == 3);
    CHECK(s[0].requests == 1);
  }

  TEST_CASE("a certificate from an unknown CA is refused with a clear error") {
    NetEnv env;
    // Trusting a different CA.
    testing::TestPki other = testing::TestPki::Generate("some other CA");
    const std::string other_ca = env.dir().file("other-ca.pem");
    REQUIRE(other.WriteCaPem(other_ca));
    TransportOptions o = env.Options();
    o.ca_file = other_ca;
    auto t = MakeTransport(o);
    Response r = t->SubmitFuture(Get(env.url("/small"))).get();
    CHECK(r.transport_status.code() == StatusCode::kFailedPrecondition);
    CHECK(r.curl_code == 60);  // CURLE_PEER_FAILED_VERIFICATION
    CHECK(r.transport_status.message().find("certificate") != std::string::npos);
    CHECK(r.attempts == 1);  // never retried
    CHECK(env.server().requests() == 0);

    // The system store does not know the test CA either; there is no insecure fallback.
    TransportOptions sys = env.Options();
    sys.ca_file.clear();
    auto t2 = MakeTransport(sys);
    r = t2->SubmitFuture(Get(env.url("/small"))).get();
    CHECK(r.transport_status.code() == StatusCode::kFailedPrecondition);
    CHECK(env.server().requests() == 0);

    TransportOptions missing = env.Options();
    missing.ca_file = env.dir().file("does-not-exist.pem");
    CHECK(CurlTransport::Create(missing).status().code() == StatusCode::kInvalidArgument);
  }

  TEST_CASE("per-host request rate and download byte rate are enforced") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.default_host_limits.requests_per_second = 40;
    o.default_host_limits.burst_seconds = 0.1;  // 4 requests of burst
    auto t = MakeTransport(o);
    auto start = Clock::now();
    std::vector<std::future<Response>> fs;
    for (int i = 0; i < 24; ++i) fs.push_back(t->SubmitFuture(Get(env.url("/small"))));
    for (auto& f : fs) REQUIRE(f.get().ToStatus().ok());
    double took = SecondsSince(start);
    CHECK(took >= 0.45);  // (24 - 4) / 40 s
    CHECK(took < 5);

    HostLimits bytes;
    bytes.bytes_per_second_down = 2 * 1024 * 1024;
    bytes.burst_seconds = 0.1;
    t->SetHostLimits(env.host_key(), bytes);
    start = Clock::now();
    Response r = t->SubmitFuture(Get(env.url("/bytes?n=3145728"))).get();  // 3 MiB at 2 MiB/s
    took = SecondsSince(start);
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body.size() == 3145728);
    CHECK(took >= 1.2);
    CHECK(took < 8);
  }

  TEST_CASE("per-host upload byte rate is enforced") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.default_host_limits.bytes_per_second_up = 1024 * 1024;
    o.default_host_limits.burst_seconds = 0.1;
    auto t = MakeTransport(o);
    Request put;
    put.method = Method::kPut;
    put.url = env.url("/echo");
    put.body = BodySource::Memory(std::string(1536 * 1024, 'u'));  // 1.5 MiB at 1 MiB/s
    const auto start = Clock::now();
    Response r = t->SubmitFuture(put).get();
    const double took = SecondsSince(start);
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body.size() == 1536 * 1024);
    CHECK(took >= 1.2);
    CHECK(took < 8);
  }

  TEST_CASE("429 without Retry-After slows the host down (AIMD) and the budget caps retries") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.max_connections_per_host = 8;
    o.retry.max_attempts = 2;
    o.retry.throttle_base_delay_ms = 5;
    o.retry_budget_capacity = 25;  // 5 retries' worth
    auto t = MakeTransport(o);
    std::vector<std::future<Response>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(t->SubmitFuture(Get(env.url("/always429"))));
    int throttled = 0;
    for (auto& f : fs) {
      Response r = f.get();
      CHECK(r.transport_status.ok());
      throttled += r.http_status == 429;
    }
    CHECK(throttled == 20);
    auto s = t->HostStats()[0];
    CHECK(s.retries == 5);  // the budget, not 20 x (max_attempts - 1)
    CHECK(s.attempts == 25);
    CHECK(s.current_concurrency < 8);
  }

  TEST_CASE("the http2 option falls back to HTTP/1.1 via ALPN on an HTTP/1.1-only server") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.http2 = true;
    auto t = MakeTransport(o);
    std::vector<std::future<Response>> fs;
    for (int i = 0; i < 50; ++i) fs.push_back(t->SubmitFuture(Get(env.url("/small"))));
    for (auto& f : fs) REQUIRE(f.get().ToStatus().ok());
    CHECK(env.server().tls_connections() <= 4);
  }

}  // TEST_SUITE

}  // namespace
}  // namespace grin::net
