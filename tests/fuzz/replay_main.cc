// The standalone driver the fuzz targets link to in ordinary builds (no libFuzzer): it runs the
// target's LLVMFuzzerTestOneInput over every file of its seed corpus and then over a bounded
// number of deterministic mutations of them (bit flips, byte changes, truncations, splices,
// deletions, duplications). ctest runs it per target in every build, so the sanitizer build of
// scripts/test replays the corpora under ASan+UBSan; scripts/fuzz does the real fuzzing.
//
//   <target>_replay [--mutations N] [--max-len BYTES] PATH...
// PATH is a corpus file or directory (its regular files, sorted). A crash, sanitizer report or
// uncaught exception ends the process abnormally, naming on stderr the input that was running
// (the seed file and mutation number: the sequence is deterministic, so rerunning reproduces it).

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Present only in sanitizer builds.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

// What is running, for the report of a crash (async-signal-safe: written with write(2)).
char g_current[1024] = "";

void ReportCurrent() {
  static const char kHead[] = "\nfuzz replay: crashed on ";
  (void)!write(2, kHead, sizeof kHead - 1);
  (void)!write(2, g_current, strlen(g_current));
  (void)!write(2, "\n", 1);
}

void OnSignal(int sig) {
  ReportCurrent();
  signal(sig, SIG_DFL);
  raise(sig);
}

void SetCurrent(const std::string& path, long mutation) {
  if (mutation < 0) {
    snprintf(g_current, sizeof g_current, "%s", path.c_str());
  } else {
    snprintf(g_current, sizeof g_current, "%s, mutation %ld", path.c_str(), mutation);
  }
}

struct Seed {
  std::string path;
  std::string bytes;
};

// xorshift64*: deterministic across platforms and runs.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
};

// Values that tend to sit on a parser's edges.
constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '<', '>', '"', '\t',
                                    '\n', '\r', '&', ';', '/', '.', '0', '9', ' '};

std::string Mutate(const std::string& in, const std::vector<Seed>& seeds, Rng& rng,
                   size_t max_len, int* kind) {
  std::string out = in;
  *kind = static_cast<int>(rng.Below(8));
  const size_t n = out.size();
  switch (*kind) {
    case 0:  // flip a bit
      if (n) out[rng.Below(n)] ^= static_cast<char>(1u << rng.Below(8));
      break;
    case 1:  // an interesting byte
      if (n) out[rng.Below(n)] = static_cast<char>(kInteresting[rng.Below(sizeof kInteresting)]);
      break;
    case 2:  // truncate
      out.resize(rng.Below(n + 1));
      break;
    case 3: {  // delete a run
      if (!n) break;
      size_t at = rng.Below(n), len = 1 + rng.Below(std::min<size_t>(n - at, 64));
      out.erase(at, len);
      break;
    }
    case 4: {  // duplicate a run
      if (!n) break;
      size_t at = rng.Below(n), len = 1 + rng.Below(std::min<size_t>(n - at, 256));
      out.insert(at, out.substr(at, len));
      break;
    }
    case 5: {  // splice: our head, another seed's tail
      const std::string& other = seeds[rng.Below(seeds.size())].bytes;
      out = out.substr(0, rng.Below(n + 1)) + other.substr(rng.Below(other.size() + 1));
      break;
    }
    case 6: {  // insert random bytes
      size_t at = rng.Below(n + 1), len = 1 + rng.Below(8);
      std::string ins;
      for (size_t i = 0; i < len; ++i) ins += static_cast<char>(rng.Next() & 0xff);
      out.insert(at, ins);
      break;
    }
    default: {  // overwrite a 1..8 byte number with an extreme value
      if (!n) break;
      size_t at = rng.Below(n), len = std::min<size_t>(n - at, 1 + rng.Below(8));
      const uint8_t fill = rng.Below(2) ? 0xff : 0x00;
      for (size_t i = 0; i < len; ++i) out[at + i] = static_cast<char>(fill);
      break;
    }
  }
  if (out.size() > max_len) out.resize(max_len);
  return out;
}

int Run(const std::string& bytes) {
  // A copy in its own allocation, so ASan sees reads past the end of the input.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  return LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 100;
  size_t max_len = 1 << 20;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mutations" && i + 1 < argc) {
      mutations = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--max-len" && i + 1 < argc) {
      max_len = std::strtoull(argv[++i], nullptr, 10);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "usage: %s [--mutations N] [--max-len BYTES] PATH...\n", argv[0]);
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  std::vector<Seed> seeds;
  for (const std::string& p : paths) {
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(p);
    }
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", f.c_str());
        return 2;
      }
      seeds.push_back({f, std::string(std::istreambuf_iterator<char>(in), {})});
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "no corpus files in the given paths\n");
    return 2;
  }
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(ReportCurrent);
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, OnSignal);
  const auto start = std::chrono::steady_clock::now();
  long runs = 0;
  for (const Seed& s : seeds) {
    SetCurrent(s.path, -1);
    Run(s.bytes);
    ++runs;
  }
  for (size_t i = 0; i < seeds.size(); ++i) {
    Rng rng{0x9e3779b97f4a7c15ull ^ (i + 1) * 0x2545f4914f6cdd1dull};
    std::string cur = seeds[i].bytes;
    for (long m = 0; m < mutations; ++m) {
      int kind = 0;  // which mutation, for a debugger
      // Stack mutations in short chains, then start again from the seed.
      if (m % 4 == 0) cur = seeds[i].bytes;
      cur = Mutate(cur, seeds, rng, max_len, &kind);
      SetCurrent(seeds[i].path, m);
      Run(cur);
      ++runs;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "%zu corpus files, %ld inputs run in %.1f s: no crash\n", seeds.size(),
               runs, secs);
  return 0;
}
