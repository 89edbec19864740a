// bench_transport: the two halves of scripts/bench-transport (not a test).
//
//   bench_transport serve --dir D [--threads 64]
//       Generates a CA and server certificate, writes D/ca.pem and D/port, and serves HTTPS on
//       127.0.0.1 until its stdin closes:  GET /small (200 B), GET /bytes?n=N (N bytes from a
//       static random buffer), GET /stats (server-side counters as key=value text).
//   bench_transport client --base URL --ca FILE --path P --count N [--parallel 8] [--no-reuse]
//       Submits N GETs of P to CurlTransport at once (its per-host cap `parallel` bounds what is in
//       flight), discards the bodies, and prints one key=value line: requests, failures, seconds,
//       bytes, new connections (client side), CPU seconds of this process (getrusage).
//
// The server runs in its own process so the client's CPU figures are the client's alone.

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>

#include "engine/net/curl_transport.h"
#include "tests/net/loopback_server.h"
#include "tests/net/test_pki.h"

namespace {

using grin::net::CurlTransport;
using grin::net::Request;
using grin::net::Response;
using grin::net::ResponseSink;
using grin::net::TransportOptions;

std::string Arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return def;
}
bool Flag(int argc, char** argv, const std::string& name) {
  for (int i = 2; i < argc; ++i) {
    if (argv[i] == name) return true;
  }
  return false;
}

int Serve(int argc, char** argv) {
  const std::string dir = Arg(argc, argv, "--dir", "");
  const int threads = std::stoi(Arg(argc, argv, "--threads", "64"));
  if (dir.empty()) {
    std::cerr << "serve: --dir required\n";
    return 2;
  }
  auto pki = grin::net::testing::TestPki::Generate("grin-jobs bench CA");
  if (!pki.WriteCaPem(dir + "/ca.pem")) return 1;
  grin::net::testing::LoopbackServer server(pki, threads);
  static const std::string block = [] {
    std::string b(4 << 20, '\0');
    std::mt19937_64 rng(42);
    for (auto& c : b) c = static_cast<char>(rng());
    return b;
  }();
  server.http().Get("/small", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(block.substr(0, 200), "application/octet-stream");
  });
  server.http().Get("/bytes", [](const httplib::Request& req, httplib::Response& res) {
    const size_t n = std::stoull(req.get_param_value("n"));
    res.set_content_provider(
        n, "application/octet-stream", [n](size_t offset, size_t, httplib::DataSink& sink) {
          const size_t at = offset % block.size();
          const size_t len = std::min({n - offset, block.size() - at, size_t{1} << 20});
          return sink.write(block.data() + at, len);
        });
  });
  server.http().Get("/stats", [&server](const httplib::Request&, httplib::Response& res) {
    res.set_content("tls_connections=" + std::to_string(server.tls_connections()) +
                        " handshakes=" + std::to_string(server.handshakes()) +
                        " resumed=" + std::to_string(server.resumed()) +
                        " requests=" + std::to_string(server.requests()) + "\n",
                    "text/plain");
  });
  if (!server.Start()) return 1;
  { std::ofstream(dir + "/port") << server.port() << "\n"; }
  char buf[256];
  while (::read(0, buf, sizeof buf) > 0) {
  }
  server.Stop();
  return 0;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int Client(int argc, char** argv) {
  const std::string base = Arg(argc, argv, "--base", "");
  const std::string path = Arg(argc, argv, "--path", "/small");
  const int count = std::stoi(Arg(argc, argv, "--count", "1000"));
  const int parallel = std::stoi(Arg(argc, argv, "--parallel", "8"));
  TransportOptions o;
  o.ca_file = Arg(argc, argv, "--ca", "");
  o.max_connections_per_host = parallel;
  o.forbid_reuse = Flag(argc, argv, "--no-reuse");
  o.retry.max_attempts = 1;  // measure the transport, not the retry policy
  auto created = CurlTransport::Create(o);
  if (!created.ok()) {
    std::cerr << created.status().ToString() << "\n";
    return 1;
  }
  auto transport = std::move(created).value();
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, failures = 0;
  int64_t bytes = 0;
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  // Everything is submitted up front, as curl --parallel gets all URLs at once: the transport's
  // per-host cap (max_connections_per_host = parallel) bounds what is in flight, so no thread
  // handoff per request is needed to keep the pipe full.
  for (int i = 0; i < count; ++i) {
    Request r;
    r.url = base + path;
    r.sink = ResponseSink::Discard();
    transport->Submit(std::move(r), [&](Response resp) {
      std::lock_guard<std::mutex> l(mu);
      ++done;
      bytes += resp.bytes_down;
      if (!resp.ToStatus().ok()) {
        if (failures++ == 0) std::cerr << "first failure: " << resp.ToStatus().ToString() << "\n";
      }
      if (done == count) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done == count; });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  uint64_t conns = 0;
  for (const auto& h : transport->HostStats()) conns += h.new_connections;
  transport->Shutdown();
  std::printf("requests=%d failures=%d seconds=%.4f bytes=%lld new_connections=%llu cpu=%.4f\n",
              count, failures, secs, static_cast<long long>(bytes),
              static_cast<unsigned long long>(conns), cpu);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve") return Serve(argc, argv);
  if (mode == "client") return Client(argc, argv);
  std::cerr << "usage: bench_transport serve --dir D | client --base URL --ca F --path P "
               "--count N [--parallel 8] [--no-reuse]\n";
  return 2;
}
