// grin-fake: runs the fake GRIN server as a process (loopback only) until SIGINT/SIGTERM.
//   grin-fake [--port 0] [--port-file F] [--http] [--dirs TEST,OTHER] [--books N] [--seed S]
//             [--state-dir D] [--cache-dir D] [--size-only BYTES] [--no-auth] [--token-ttl S]
//             [--page-size N] [--range] [--faults FILE] [--threads N] ...
// Prints one line "grin-fake base_url=... token_url=... ca_file=... state_dir=..." once ready;
// the state dir holds client_secret.json and credentials.json for grin-jobs.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "tests/fake_grin/fake_grin.h"

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A tiny "--name value" / "--flag" parser: cxxopts pulls in <regex>, whose GCC 12 headers trip
// -Werror=maybe-uninitialized under the Sanitize build.
struct Args {
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  bool Has(const std::string& k) const { return values.count(k) || flags.count(k); }
  std::string Str(const std::string& k, const std::string& def) const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
  int64_t Int(const std::string& k, int64_t def) const {
    auto it = values.find(k);
    return it == values.end() ? def : std::stoll(it->second);
  }
};

constexpr const char* kUsage = R"(usage: grin-fake [options]
  --port N             port (0 = ephemeral, default)
  --port-file F        write the chosen port to F
  --http               plain HTTP instead of HTTPS
  --dirs A,B           library directories (default TEST)
  --books N            books per directory (default 1000)
  --converted-fraction F   share of books converted at start (default 0.2; the in-process,
                       failed and not-allowed shares, 0.05 each, shrink to fit)
  --seed S             seed (default 1)
  --state-dir D        TLS files, client_secret.json, credentials.json (default: a temp dir)
  --cache-dir D        archive cache (default <state-dir>/archives)
  --size-only BYTES    serve pseudo-random archive bodies of BYTES (uniform up to --size-max)
  --size-max BYTES
  --cipher C --compress none|zip|zlib --s2k-count N --image-bytes N   gpg archive matrix
  --pregenerate        encrypt every converted book's archive into the cache before serving
  --encrypt gpg|native archives encrypted by the real gpg (default) or in process by OpenSSL
                       (same OpenPGP format, ~100x faster: for benchmarks of many books)
  --pages-min N --pages-max N   pages per book, uniform (default 2..5; an archive is about
                       pages x image-bytes)
  --no-auth            accept requests without a token
  --token-ttl S        access token lifetime (default 3600)
  --auth-failure 401|302|403
  --page-size N        default HTML page size (default 100)
  --ctoken             Next links carry ctoken= instead of first=
  --ctoken-ttl S       ctokens older than S virtual seconds get the "unavailable" page
  --keep-alive-timeout S   close keep-alive connections idle this long (default 30)
  --href-style relative|root|absolute
  --range              honour Range / If-Range
  --redirect-archives  archive GETs answer 302 to /_blob/
  --queue-max N --convert-delay S
  --faults FILE        JSON fault rules (see tests/fake_grin/faults.h)
  --threads N          worker threads (default 64)
  --page-shapes A,B    live-site page shapes: links (linked Barcode/Filename/Title cells),
                       select-all (select-all and totals rows), sort-headings (labels in sort
                       links), search-empty-row (_barcode_search row without a barcode),
                       converted-junk (non-file-name lines in _converted?format=text)
  --next-text HTML     the Next link's text (default "Next &gt;"; e.g. "next page")
)";

}  // namespace

int main(int argc, char** argv) {
  using grin::fake::FakeGrinOptions;
  static const std::set<std::string> kFlags = {"http", "no-auth", "ctoken", "range",
                                               "redirect-archives", "pregenerate", "help"};
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::cerr << "grin-fake: unexpected argument " << k << "\n" << kUsage;
      return 2;
    }
    k = k.substr(2);
    if (kFlags.count(k)) {
      a.flags.insert(k);
    } else if (i + 1 < argc) {
      a.values[k] = argv[++i];
    } else {
      std::cerr << "grin-fake: --" << k << " needs a value\n" << kUsage;
      return 2;
    }
  }
  if (a.Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  FakeGrinOptions o;
  try {
    o.port = static_cast<int>(a.Int("port", 0));
    o.tls = !a.Has("http");
    o.directories = Split(a.Str("dirs", "TEST"));
    o.corpus.size = a.Int("books", 1000);
    o.corpus.seed = static_cast<uint64_t>(a.Int("seed", 1));
    if (a.Has("converted-fraction")) {
      const double f = std::stod(a.Str("converted-fraction", "0.2"));
      if (!(f >= 0 && f <= 1)) {
        std::cerr << "grin-fake: --converted-fraction must be within 0..1\n" << kUsage;
        return 2;
      }
      const double rest = std::min(0.05, (1 - f) / 3);
      o.corpus.frac_converted = f;
      o.corpus.frac_in_process = o.corpus.frac_failed = o.corpus.frac_not_allowed = rest;
    }
    o.corpus.queue_max = a.Int("queue-max", 50000);
    o.corpus.convert_delay_s = a.Int("convert-delay", 3600);
    o.corpus.pages_min = static_cast<int>(a.Int("pages-min", o.corpus.pages_min));
    o.corpus.pages_max = static_cast<int>(a.Int("pages-max", o.corpus.pages_max));
    if (o.corpus.pages_min < 1 || o.corpus.pages_max < o.corpus.pages_min) {
      std::cerr << "grin-fake: need 1 <= --pages-min <= --pages-max\n" << kUsage;
      return 2;
    }
    o.state_dir = a.Str("state-dir", "");
    o.cache_dir = a.Str("cache-dir", "");
    if (a.Has("size-only")) {
      o.size_only = true;
      o.size_only_min_bytes = a.Int("size-only", 1 << 20);
      o.size_only_max_bytes = a.Int("size-max", o.size_only_min_bytes);
    }
    o.archive.cipher = a.Str("cipher", "AES256");
    o.archive.compress = a.Str("compress", "none");
    o.archive.s2k_count = a.Int("s2k-count", 65536);
    o.archive.image_bytes = static_cast<int>(a.Int("image-bytes", 2048));
    o.archive.encryptor = a.Str("encrypt", "gpg");
    if (o.archive.encryptor != "gpg" && o.archive.encryptor != "native") {
      std::cerr << "grin-fake: --encrypt must be gpg or native\n" << kUsage;
      return 2;
    }
    o.auth_required = !a.Has("no-auth");
    o.token_ttl_s = a.Int("token-ttl", 3600);
    o.auth_failure = a.Str("auth-failure", "401");
    o.default_page_size = static_cast<int>(a.Int("page-size", 100));
    o.use_ctoken = a.Has("ctoken");
    o.ctoken_ttl_s = a.Int("ctoken-ttl", 0);
    o.keep_alive_timeout_s = static_cast<int>(a.Int("keep-alive-timeout", 30));
    o.next_href_style = a.Str("href-style", "relative");
    o.range_support = a.Has("range");
    o.redirect_archives = a.Has("redirect-archives");
    o.threads = static_cast<int>(a.Int("threads", 64));
    o.next_link_text = a.Str("next-text", o.next_link_text);
    for (const auto& shape : Split(a.Str("page-shapes", ""))) {
      if (shape == "links") {
        o.barcode_cell_links = true;
      } else if (shape == "select-all") {
        o.select_all_row = true;
      } else if (shape == "sort-headings") {
        o.sort_link_headings = true;
      } else if (shape == "search-empty-row") {
        o.search_empty_barcode_row = true;
      } else if (shape == "converted-junk") {
        o.converted_junk_lines = true;
      } else {
        std::cerr << "grin-fake: unknown page shape " << shape << "\n" << kUsage;
        return 2;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "grin-fake: bad number (" << e.what() << ")\n" << kUsage;
    return 2;
  }

  // Block the stop signals before any thread starts so only sigwait below sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto server = grin::fake::FakeGrinServer::Start(o);
  if (!server.ok()) {
    std::cerr << "grin-fake: " << server.status().ToString() << "\n";
    return 1;
  }
  if (a.Has("faults")) {
    std::ifstream f(a.Str("faults", ""));
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto rules = grin::fake::ParseFaultRules(text);
    if (!rules.ok()) {
      std::cerr << "grin-fake: " << rules.status().ToString() << "\n";
      return 2;
    }
    for (auto& r : *rules) (*server)->AddFault(std::move(r));
  }
  if (a.Has("pregenerate")) {
    // Fills the archive cache (benchmarks: generation is then not what a run measures).
    for (const auto& dir : o.directories) {
      grin::fake::Corpus* c = (*server)->corpus(dir);
      int64_t total = 0;
      for (int64_t i : c->List(grin::fake::ConvertStatus::kConverted, 0, -1, &total)) {
        auto bytes = (*server)->ArchiveBytes(dir, grin::fake::Corpus::BarcodeAt(i));
        if (!bytes.ok()) {
          std::cerr << "grin-fake: " << bytes.status().ToString() << "\n";
          return 1;
        }
      }
    }
  }
  if (a.Has("port-file")) {
    const std::string pf = a.Str("port-file", "");
    {
      std::ofstream f(pf + ".tmp");
      f << (*server)->port() << "\n";
    }
    std::rename((pf + ".tmp").c_str(), pf.c_str());
  }
  std::cout << "grin-fake base_url=" << (*server)->base_url()
            << " token_url=" << (*server)->token_url() << " ca_file=" << (*server)->ca_file()
            << " state_dir=" << (*server)->state_dir() << " port=" << (*server)->port()
            << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
