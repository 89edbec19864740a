// CurlTransport streaming and lifecycle: large bodies with flat memory, back-pressure both ways,
// prompt wakeups, cancellation and shutdown with transfers in flight.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "tests/net/net_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed blocks in a 256 MiB quarantine by default, which alone would make RSS grow
// with any streamed body (every TLS record's buffers are freed into it). A small quarantine keeps
// the RSS check meaningful; use-after-free detection still works for recently freed blocks.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=16"; }
#endif

namespace grin::net {
namespace {

using testing::Get;
using testing::MakeTransport;
using testing::NetEnv;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kLargeBody = 256ull << 20;  // sanitizers: 256 MiB keeps the run short
#else
constexpr uint64_t kLargeBody = 1ull << 30;  // 1 GiB
#endif

TEST_SUITE("integration") {
  TEST_CASE("a large streamed body keeps RSS flat and every byte arrives in order") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    const int64_t rss_before = testing::RssBytes();
    std::atomic<int64_t> rss_max{0};
    uint64_t received = 0;
    uint64_t mismatches = 0;
    Request req = Get(env.url("/bytes?n=" + std::to_string(kLargeBody)));
    req.sink = ResponseSink::Callback([&](const char* data, size_t len) {
      // Spot-check the pattern (a full check would dominate the run time under sanitizers).
      for (size_t i = 0; i < len; i += 997) {
        mismatches += data[i] != testing::PatternByte(received + i);
      }
      received += len;
      if ((received & ((64u << 20) - 1)) < len) {
        rss_max = std::max<int64_t>(rss_max.load(), testing::RssBytes());
      }
      return len;
    });
    Response r = t->SubmitFuture(req).get();
    REQUIRE(r.ToStatus().ok());
    CHECK(received == kLargeBody);
    CHECK(static_cast<uint64_t>(r.bytes_down) == kLargeBody);
    CHECK(mismatches == 0);
    MESSAGE("RSS before " << rss_before / 1048576 << " MiB, max during " << rss_max / 1048576
                          << " MiB, body " << (kLargeBody >> 20) << " MiB");
    CHECK(rss_max.load() - rss_before < (64 << 20));
  }

  TEST_CASE("download back-pressure: a paused sink resumes from another thread, no byte lost") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    std::mutex mu;
    std::condition_variable cv;
    bool paused = false;
    int pauses = 0;
    std::string got;
    RequestId id = 0;
    std::atomic<bool> done{false};
    Request req = Get(env.url("/bytes?n=2000000"));
    req.sink = ResponseSink::Callback([&](const char* data, size_t len) -> size_t {
      std::lock_guard<std::mutex> l(mu);
      if (pauses < 20 && got.size() >= static_cast<size_t>(pauses) * 100'000) {
        ++pauses;  // refuse these bytes; the consumer thread resumes us
        paused = true;
        cv.notify_all();
        return kBodyPause;
      }
      got.append(data, len);
      return len;
    });
    auto p = std::make_shared<std::promise<Response>>();
    id = t->Submit(req, [&mu, &cv, &done, p](Response r) {
      {
        std::lock_guard<std::mutex> l(mu);  // the waiter may destroy cv as soon as it sees done
        done = true;
        cv.notify_all();
      }
      p->set_value(std::move(r));
    });
    std::thread consumer([&] {
      std::unique_lock<std::mutex> l(mu);
      while (!done) {
        cv.wait_for(l, std::chrono::milliseconds(50), [&] { return paused || done.load(); });
        if (paused) {
          paused = false;
          l.unlock();
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          t->Resume(id);
          l.lock();
        }
      }
    });
    Response r = p->get_future().get();
    consumer.join();
    REQUIRE(r.ToStatus().ok());
    CHECK(pauses == 20);
    REQUIRE(got.size() == 2'000'000);
    bool same = true;
    for (size_t i = 0; i < got.size(); ++i) same &= got[i] == testing::PatternByte(i);
    CHECK(same);
  }

  TEST_CASE("upload back-pressure: a callback body pauses until the producer resumes it") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    std::mutex mu;
    std::string pending;
    bool eof = false;
    std::string expected;
    Request req;
    req.method = Method::kPut;
    req.url = env.url("/echo");
    req.body = BodySource::Callback(
        [&](char* buf, size_t len) -> size_t {
          std::lock_guard<std::mutex> l(mu);
          if (pending.empty()) return eof ? 0 : kBodyPause;
          const size_t n = std::min(len, pending.size());
          std::memcpy(buf, pending.data(), n);
          pending.erase(0, n);
          return n;
        },
        -1);  // unknown length: chunked upload
    std::atomic<RequestId> id{0};
    auto fut = std::make_shared<std::promise<Response>>();
    id = t->Submit(req, [fut](Response r) { fut->set_value(std::move(r)); });
    for (int i = 0; i < 30; ++i) {  // produce in bursts, like a decrypter feeding an upload
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      std::string chunk(10'000 + i, static_cast<char>('A' + i % 26));
      {
        std::lock_guard<std::mutex> l(mu);
        pending += chunk;
        if (i == 29) eof = true;
      }
      expected += chunk;
      t->Resume(id);
    }
    Response r = fut->get_future().get();
    REQUIRE(r.ToStatus().ok());
    CHECK(r.body == expected);
  }

  TEST_CASE("a submission from another thread wakes the idle loop promptly") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    REQUIRE(t->SubmitFuture(Get(env.url("/small"))).get().ToStatus().ok());  // warm connection
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const uint64_t before = t->LoopIterations();
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    CHECK(t->LoopIterations() - before <= 2);  // idle: asleep in curl_multi_poll, not spinning
    std::atomic<int64_t> latency_us{-1};
    std::thread other([&] {
      const auto start = Clock::now();
      Response r = t->SubmitFuture(Get(env.url("/small"))).get();
      if (r.ToStatus().ok()) {
        latency_us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
      }
    });
    other.join();
    MESSAGE("submit-to-completion on an idle loop: " << latency_us.load() << " us");
    CHECK(latency_us.load() >= 0);
    CHECK(latency_us.load() < 250'000);  // the loop's idle wait is 5 s: only a wakeup is this fast
  }

  TEST_CASE("cancel stops an in-flight transfer and a queued one") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.max_connections_per_host = 1;
    auto t = MakeTransport(o);
    auto p1 = std::make_shared<std::promise<Response>>();
    auto p2 = std::make_shared<std::promise<Response>>();
    std::atomic<int64_t> got{0};
    Request slow = Get(env.url("/slow"));
    slow.sink = ResponseSink::Callback([&](const char*, size_t len) {
      got += static_cast<int64_t>(len);
      return len;
    });
    RequestId a = t->Submit(slow, [p1](Response r) { p1->set_value(std::move(r)); });
    RequestId b =
        t->Submit(Get(env.url("/small")), [p2](Response r) { p2->set_value(std::move(r)); });
    for (int i = 0; i < 200 && got.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(got.load() > 0);
    t->Cancel(b);  // waiting behind the one connection
    t->Cancel(a);
    const auto start = Clock::now();
    Response r1 = p1->get_future().get();
    Response r2 = p2->get_future().get();
    CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 2);
    CHECK(r1.transport_status.code() == StatusCode::kCancelled);
    CHECK(r2.transport_status.code() == StatusCode::kCancelled);
    t->Cancel(a);  // unknown now: ignored
    CHECK(t->HostStats()[0].requests == 2);
    // The transport is still usable.
    CHECK(t->SubmitFuture(Get(env.url("/small"))).get().ToStatus().ok());
  }

  TEST_CASE("cancel-all stops every transfer in flight or queued, and later ones run") {
    NetEnv env;
    TransportOptions o = env.Options();
    o.max_connections_per_host = 2;
    auto t = MakeTransport(o);
    std::vector<std::future<Response>> fs;
    std::atomic<int64_t> got{0};
    for (int i = 0; i < 4; ++i) {
      Request slow = Get(env.url("/slow"));
      slow.sink = ResponseSink::Callback([&](const char*, size_t len) {
        got += static_cast<int64_t>(len);
        return len;
      });
      fs.push_back(t->SubmitFuture(slow));  // 2 run, 2 wait for a connection
    }
    for (int i = 0; i < 300 && got.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(got.load() > 0);
    const auto start = Clock::now();
    t->CancelAll();
    for (auto& f : fs) CHECK(f.get().transport_status.code() == StatusCode::kCancelled);
    CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 2);
    // Not a shutdown: what comes after runs.
    CHECK(t->SubmitFuture(Get(env.url("/small"))).get().ToStatus().ok());
  }

  TEST_CASE("shutdown with transfers in flight completes them all as cancelled, cleanly") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    std::vector<std::future<Response>> fs;
    std::atomic<int64_t> got{0};
    for (int i = 0; i < 6; ++i) {
      Request slow = Get(env.url("/slow"));
      slow.sink = ResponseSink::Callback([&](const char*, size_t len) {
        got += static_cast<int64_t>(len);
        return len;
      });
      fs.push_back(t->SubmitFuture(slow));  // 4 run, 2 wait for a connection
    }
    for (int i = 0; i < 300 && got.load() < 50'000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(got.load() >= 50'000);
    const auto start = Clock::now();
    t->Shutdown();
    CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 2);
    for (auto& f : fs) {
      REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
      CHECK(f.get().transport_status.code() == StatusCode::kCancelled);
    }
    // After shutdown, submissions complete at once as cancelled.
    Response late = t->SubmitFuture(Get(env.url("/small"))).get();
    CHECK(late.transport_status.code() == StatusCode::kCancelled);
    t.reset();  // destructor after Shutdown: idempotent
  }

  TEST_CASE("a memory sink with a byte cap fails instead of growing without bound") {
    NetEnv env;
    auto t = MakeTransport(env.Options());
    Request req = Get(env.url("/bytes?n=1000000"));
    req.sink = ResponseSink::Memory(100'000);
    Response r = t->SubmitFuture(req).get();
    CHECK(r.transport_status.code() == StatusCode::kResourceExhausted);
    CHECK(r.attempts == 1);
  }

}  // TEST_SUITE

}  // namespace
}  // namespace grin::net
