// bench_archive: decryption throughput and fixed cost per book for every backend (and auto),
// side by side with `gpg --decrypt` run per book on the same files; extraction pages/s.
// Built with the project, run by scripts/bench-archive (never by ctest).
//
// Usage: bench_archive [--dir DIR] [--small N] [--large N] [--pages N] [--only decrypt|extract]
//   DIR holds the encrypted fixtures (made once with real gpg, reused by later runs).

#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/archive/book.h"
#include "engine/archive/decryptor.h"
#include "tests/archive/fixtures.h"

namespace grin::archive {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Cost {
  double wall_s = 0;
  double cpu_s = 0;  // user + sys of this process and its children
};

double CpuNow() {
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(self.ru_utime) + sec(self.ru_stime) + sec(kids.ru_utime) + sec(kids.ru_stime);
}

template <typename Fn>
Cost Measure(Fn fn) {
  double c0 = CpuNow();
  auto t0 = Clock::now();
  fn();
  Cost c;
  c.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  c.cpu_s = CpuNow() - c0;
  return c;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Encrypted fixtures: random (incompressible, like GRIN's tar.gz) plaintext, AES-256, no OpenPGP
// compression, the given S2K count. Cached in dir.
std::vector<std::string> Fixtures(const fs::path& dir, size_t bytes, uint64_t s2k, int count) {
  std::vector<std::string> out;
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    fs::path p = dir / ("b" + std::to_string(bytes >> 10) + "k_s2k" + std::to_string(s2k) + "_" +
                        std::to_string(i) + ".gpg");
    if (!fs::exists(p)) {
      std::string plain(bytes, '\0');
      testing::FillRandom(static_cast<uint64_t>(i) * 7919 + bytes + s2k,
                          reinterpret_cast<uint8_t*>(plain.data()), plain.size());
      testing::GpgParams gp;
      gp.cipher = "AES256";
      gp.compress = "none";
      gp.s2k_count = s2k;
      auto ct = testing::GpgEncrypt(plain, gp);
      if (!ct.ok()) {
        std::fprintf(stderr, "gpg encrypt failed: %s\n", ct.status().ToString().c_str());
        std::exit(1);
      }
      std::ofstream(p, std::ios::binary) << *ct;
    }
    out.push_back(p.string());
  }
  return out;
}

// Our decryptor over in-memory ciphertext, 1 MiB writes, plaintext discarded.
void DecryptOurs(DecryptBackend b, const std::string& ct) {
  DecryptOptions o;
  o.backend = b;
  o.size_hint = ct.size();
  Secret pass(testing::kPassphrase);
  NullSink sink;
  auto d = NewDecryptor(o, pass, &sink);
  if (!d.ok()) std::exit(2);
  for (size_t pos = 0; pos < ct.size(); pos += 1 << 20) {
    if (!(*d)->Write(reinterpret_cast<const uint8_t*>(ct.data()) + pos,
                     std::min<size_t>(1 << 20, ct.size() - pos))
             .ok()) {
      break;
    }
  }
  if (!(*d)->Finish().ok()) {
    std::fprintf(stderr, "decryption failed (%s)\n", std::string(BackendName(b)).c_str());
    std::exit(3);
  }
}

// The baseline: `gpg --decrypt --output OUT FILE` per book, as the reference tool runs it
// (its output goes to a staging file; here one scratch file, overwritten and removed).
void DecryptGpgCli(const std::string& file, const std::string& out) {
  auto r = testing::RunProcess({"gpg", "--homedir", testing::TestGnupgHome(), "--batch",
                                "--yes", "--no-tty", "--quiet", "--no-symkey-cache",
                                "--pinentry-mode", "loopback", "--passphrase-fd", "3",
                                "--output", out, "--decrypt", file},
                               "", std::string(testing::kPassphrase) + "\n");
  if (!r.ok() || r->exit_code != 0) {
    std::fprintf(stderr, "gpg --decrypt failed\n");
    std::exit(4);
  }
}

struct Row {
  std::string name;
  Cost cost;
};

void BenchConfig(const fs::path& dir, size_t bytes, uint64_t s2k, int count,
                 std::vector<std::string>* table) {
  auto files = Fixtures(dir, bytes, s2k, count);
  std::vector<std::string> cts;
  for (const auto& f : files) cts.push_back(ReadAll(f));
  std::vector<Row> rows;
  const std::string scratch = (dir / "gpg-cli-output.tmp").string();
  // Warm-up, not timed: page cache, and one-time process set-up (OpenSSL providers, librnp).
  DecryptGpgCli(files[0], scratch);
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    DecryptOurs(b, cts[0]);
  }
  rows.push_back({"gpg --decrypt per file", Measure([&] {
                    for (const auto& f : files) DecryptGpgCli(f, scratch);
                  })});
  fs::remove(scratch);
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp,
                           DecryptBackend::kAuto}) {
    rows.push_back({"grin " + std::string(BackendName(b)), Measure([&] {
                      for (const auto& ct : cts) DecryptOurs(b, ct);
                    })});
  }
  const double mib = static_cast<double>(bytes) / (1 << 20);
  const double base_wall = rows[0].cost.wall_s;
  const double base_cpu = rows[0].cost.cpu_s;
  for (const Row& r : rows) {
    char line[512];
    std::snprintf(line, sizeof line,
                  "| %8.3f MiB | %9llu | %-24s | %3d | %8.2f | %8.2f | %8.1f | %5.2fx | %5.2fx |", mib,
                  static_cast<unsigned long long>(s2k), r.name.c_str(), count,
                  1000 * r.cost.wall_s / count, 1000 * r.cost.cpu_s / count,
                  mib * count / r.cost.wall_s, base_wall / r.cost.wall_s,
                  base_cpu / r.cost.cpu_s);
    table->push_back(line);
  }
  std::fflush(stdout);
}

// Extraction of a plaintext tar.gz (as after decryption) through BookProcessor, libarchive's zlib
// gzip filter vs our ISA-L inflater, side by side; CPU-seconds per GB of archive.
void BenchExtraction(int pages, bool jp2_like) {
  testing::BookSpec spec;
  spec.pages = static_cast<uint32_t>(pages);
  spec.image_bytes = 60000;
  spec.jp2_like_images = jp2_like;
  std::string tgz = testing::BookTarGz(spec);
  auto run = [&](bool fast_gzip, bool md5) {
    return Measure([&] {
      for (int rep = 0; rep < 3; ++rep) {
        BookOptions o;
        o.barcode = spec.barcode;
        o.encrypted = false;
        o.compute_md5 = md5;
        o.extract_options.fast_gzip = fast_gzip;
        auto book = BookProcessor::Open(o, nullptr);
        for (size_t pos = 0; pos < tgz.size(); pos += 1 << 20) {
          (void)(*book)->Write(reinterpret_cast<const uint8_t*>(tgz.data()) + pos,
                               std::min<size_t>(1 << 20, tgz.size() - pos));
        }
        auto r = (*book)->Finish();
        if (!r.ok()) {
          std::fprintf(stderr, "extraction failed: %s\n", r.status().ToString().c_str());
          std::exit(5);
        }
      }
    });
  };
  run(true, true);  // warm-up
  std::printf("\nExtraction (plaintext tar.gz of %d pages: 60 KB %s image + text + hOCR, %.1f MiB; "
              "OCR JSONL.gz + METS/MARC + checksum.md5 verification + SHA-256 [+ MD5]), 3 runs "
              "each:\n",
              pages, jp2_like ? "JP2-like (7.6 bits/byte)" : "uniformly random",
              tgz.size() / 1048576.0);
  std::printf("| gzip inflate            | MD5 | pages/s wall | pages/CPU-s | MiB/s wall | CPU-s/GB |\n"
              "|-------------------------|-----|--------------|-------------|------------|----------|\n");
  for (bool md5 : {true, false}) {
    for (bool fast : {false, true}) {
      Cost c = run(fast, md5);
      const double gb = 3 * tgz.size() / 1e9;
      std::printf("| %-23s | %-3s | %12.0f | %11.0f | %10.0f | %8.2f |\n",
                  fast ? "ISA-L igzip (ours)" : "libarchive (zlib)", md5 ? "yes" : "no",
                  3 * pages / c.wall_s, 3 * pages / c.cpu_s,
                  3 * tgz.size() / 1048576.0 / c.wall_s, c.cpu_s / gb);
    }
  }
}

}  // namespace
}  // namespace grin::archive

int main(int argc, char** argv) {
  using namespace grin::archive;
  std::string dir = "/tmp/grin-bench-archive";
  int small = 40, large = 6, pages = 1000;
  std::string only;  // "decrypt" | "extract": run one half (e.g. under perf)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--small") small = std::atoi(argv[i + 1]);
    if (a == "--large") large = std::atoi(argv[i + 1]);
    if (a == "--pages") pages = std::atoi(argv[i + 1]);
    if (a == "--only") only = argv[i + 1];
  }
  if (only == "extract") {
    BenchExtraction(pages, true);
    return 0;
  }
  std::vector<std::string> table = {
      "| size         | S2K count | decryptor                | n   | ms/book  | CPU ms/b | MiB/s    | vs gpg | vs gpg CPU |",
      "|--------------|-----------|--------------------------|-----|----------|----------|----------|--------|------------|"};
  // Fixed cost per book: a 16 KiB message at the smallest S2K count is almost all overhead.
  BenchConfig(dir, 16 << 10, 65536, small, &table);
  for (uint64_t s2k : {65536ull, 65011712ull}) {
    BenchConfig(dir, 1 << 20, s2k, small, &table);
    BenchConfig(dir, 50u << 20, s2k, large, &table);
  }
  std::printf("Decryption, AES-256, no OpenPGP compression, serial, plaintext discarded:\n");
  for (const auto& l : table) std::printf("%s\n", l.c_str());
  std::printf("(vs gpg = time of `gpg --decrypt` per file / time of the row, wall and CPU; MiB/s is wall)\n");
  if (only == "decrypt") return 0;
  BenchExtraction(pages, true);
  BenchExtraction(pages, false);
  return 0;
}
