// bench_storage: uploads every file of a directory to an S3 endpoint with S3ObjectStore over one
// CurlTransport, `parallel` objects at a time (each through ObjectStore::Upload with the library's
// default multipart threshold and part size, PARTS parts in flight per object), and prints one
// JSON line with wall time, bytes, new connections and this process's CPU. No digests are
// passed, so the store computes what it needs itself (the harder case for CPU). Driven by
// scripts/bench-storage (not a ctest).
//
//   bench_storage ENV_FILE DIR BUCKET KEY_PREFIX PARALLEL [PARTS [given]]
// PARTS: parts in flight per multipart object (default 4); 0 = no multipart, single PUTs only.
// With "given", every file's SHA-256 and MD5 are computed before the clock starts and passed in
// PutOptions, as the sync pipeline does with the digests it computed while decrypting; the
// reported client_cpu_s then covers the uploads only (the store hashes nothing for single PUTs).
// ENV_FILE is scripts/s3-server's env file (endpoint, CA, credentials); secrets never in argv.

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "engine/net/curl_transport.h"
#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "storage/s3/s3_object_store.h"

namespace {

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || argc > 8) {
    std::cerr << "usage: bench_storage ENV_FILE DIR BUCKET KEY_PREFIX PARALLEL [PARTS [given]]\n";
    return 2;
  }
  std::map<std::string, std::string> env;
  std::ifstream in(argv[1]);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  const std::string dir = argv[2], bucket = argv[3], prefix = argv[4];
  const int parallel = std::max(1, std::atoi(argv[5]));
  const int parts = argc >= 7 ? std::max(0, std::atoi(argv[6])) : 4;
  const bool given = argc == 8 && std::string(argv[7]) == "given";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());

  grin::net::TransportOptions to;
  to.ca_file = env["GRIN_S3_CA_FILE"];
  to.max_connections_per_host = std::max(parallel, 16);  // curl's --parallel-max 16
  to.max_total_connections = to.max_connections_per_host * 2;
  // BENCH_TLS13_CIPHERS overrides the TLS 1.3 preference (bench-storage's BENCH_AES256 row).
  if (const char* c = std::getenv("BENCH_TLS13_CIPHERS")) to.tls13_ciphers = c;
  auto transport = grin::net::CurlTransport::Create(to);
  if (!transport.ok()) {
    std::cerr << transport.status().ToString() << "\n";
    return 1;
  }
  grin::s3::S3Config sc;
  sc.endpoint_url = env["GRIN_S3_ENDPOINT"];
  sc.region = env["GRIN_S3_REGION"];
  auto store = grin::s3::S3ObjectStore::Create(
      sc, {env["GRIN_S3_ACCESS_KEY"], env["GRIN_S3_SECRET_KEY"], ""}, transport->get());
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> digests(files.size());  // sha256, md5
  if (given) {
    std::vector<char> buf(1 << 20);
    for (size_t i = 0; i < files.size(); ++i) {
      grin::Hasher sha(grin::Hasher::Kind::kSha256), md5(grin::Hasher::Kind::kMd5);
      std::ifstream f(files[i], std::ios::binary);
      while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0) {
        sha.Update(buf.data(), static_cast<size_t>(f.gcount()));
        md5.Update(buf.data(), static_cast<size_t>(f.gcount()));
      }
      digests[i] = {grin::HexEncode(sha.Final()), grin::HexEncode(md5.Final())};
    }
  }
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<int> failures{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      auto src = grin::FileSource::Open(files[i].string());
      if (!src.ok()) {
        ++failures;
        continue;
      }
      grin::UploadOptions u;
      u.parallel_parts = std::max(parts, 1);
      if (parts == 0) u.multipart_threshold = UINT64_MAX;  // single PUTs at every size
      u.put.metadata = {{"barcode", files[i].filename().string()}};
      u.put.sha256_hex = digests[i].first;
      u.put.md5_hex = digests[i].second;
      auto r = (*store)->Upload(bucket, prefix + files[i].filename().string(), **src, u);
      if (!r.ok()) {
        ++failures;
        std::cerr << r.status().ToString() << "\n";
      } else {
        bytes += r->size;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < parallel; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  uint64_t conns = 0, tls = 0, requests = 0;
  std::string cipher;
  for (const auto& h : (*transport)->HostStats()) {
    if (!h.tls_cipher.empty()) cipher = h.tls_cipher;
    conns += h.new_connections;
    tls += h.tls_handshakes;
    requests += h.requests;
  }
  std::printf(
      "{\"objects\": %zu, \"bytes\": %llu, \"wall_s\": %.3f, \"client_cpu_s\": %.3f, "
      "\"new_connections\": %llu, \"tls_handshakes\": %llu, \"requests\": %llu, "
      "\"failures\": %d, \"tls_cipher\": \"%s\"}\n",
      files.size(), static_cast<unsigned long long>(bytes.load()), wall, cpu,
      static_cast<unsigned long long>(conns), static_cast<unsigned long long>(tls),
      static_cast<unsigned long long>(requests), failures.load(), cipher.c_str());
  return failures.load() == 0 ? 0 : 1;
}
