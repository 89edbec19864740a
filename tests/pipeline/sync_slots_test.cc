// grin-jobs sync's GRIN download slots (--download-concurrency) against the memory budget for
// streamed books (--memory-limit-mb): a slot is held only while its bytes move. The fake GRIN
// over HTTPS (real gpg archives, a per-GET throttle) into a local-folder store; the slots are
// judged from the server's own record of every archive GET (arrival, first byte, end).
#include <algorithm>
#include <map>
#include <vector>

#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

constexpr int64_t kMiB = 1 << 20;

// What sync reserves from the memory budget to stream a book of `size` encrypted bytes (whole
// 256 KiB chunks plus 512 KiB; SyncPipeline::Impl::StreamReserve).
int64_t Reserve(int64_t size) {
  const int64_t chunk = 256 << 10;
  return (size + chunk - 1) / chunk * chunk + kMiB / 2;
}

// Microseconds during which at least two of `gets` were open at the server (arrival to end).
int64_t TimeWithTwoOpen(const std::vector<fake::ArchiveGetTiming>& gets) {
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& g : gets) {
    edges.emplace_back(g.arrived_us, +1);
    edges.emplace_back(g.end_us, -1);
  }
  std::sort(edges.begin(), edges.end());  // an end before an arrival at the same instant
  int open = 0;
  int64_t since = 0, total = 0;
  for (const auto& [t, d] : edges) {
    if (open >= 2) total += t - since;
    open += d;
    since = t;
  }
  return total;
}

// Up to 8 converted books whose streaming reservation is over 1.5 MiB and at most 3 MiB (one
// fits a 3 MiB budget, two do not), listed in a barcodes file; GETs throttled to 2 MiB/s
// (~0.5-1.2 s each).
struct OneBookBudget {
  OneBookBudget() : env(60, 0.8, 7, /*image_bytes=*/500000) {
    int64_t total = 0;
    for (int64_t i : env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 100,
                                                      &total)) {
      std::string b = fake::Corpus::BarcodeAt(i);
      auto enc = env.server->ArchiveBytes("TEST", b);
      REQUIRE(enc.ok());
      const int64_t r = Reserve(static_cast<int64_t>((*enc)->size()));
      if (r > 3 * kMiB / 2 && r <= 3 * kMiB) books.push_back(b);
      if (books.size() == 8) break;
    }
    REQUIRE(books.size() >= 6);
    list = (env.tmp.path() / "barcodes.txt").string();
    std::string text;
    for (const auto& b : books) text += b + "\n";
    grin::testing::WriteFile(list, text);
    fake::FaultRule slow;
    slow.endpoint = "archive_get";
    slow.action = "throttle";
    slow.rate_bps = 2 * kMiB;
    env.server->AddFault(slow);
  }
  CliRun Sync(std::vector<std::string> extra) {
    std::vector<std::string> a = {"--barcodes-file", list, "--workers", "4",
                                  "--download-concurrency", "2", "--memory-limit-mb", "3",
                                  "--skip-csv-export"};
    a.insert(a.end(), extra.begin(), extra.end());
    return Cli(env.SyncArgs(a));
  }
  // GRIN requests the fake saw for book `b`: HEADs and GETs.
  int64_t Requests(const std::string& b) const {
    auto st = env.server->Stats();
    auto it = st.barcodes.find("TEST/" + b);
    return it == st.barcodes.end() ? 0 : it->second.heads + it->second.gets;
  }
  // Every book stored byte for byte, with one GET each.
  void CheckStored() {
    REQUIRE(env.Uploaded() == std::set<std::string>(books.begin(), books.end()));
    for (const auto& b : books) {
      CAPTURE(b);
      CHECK(env.Gets(b) == 1);  // no GET dropped and repeated
      CHECK(grin::testing::ReadFile(env.RawPath(b)) == env.FixturePlaintext(b));
    }
  }
  SyncEnv env;
  std::vector<std::string> books;
  std::string list;
};

TEST_CASE("a download slot is never held waiting for memory: with room for one streamed book "
          "both slots still download") {
  // Each book streams alone, no two fit at once. A worker that took a download slot and then
  // waited for memory held the slot while no byte moved, so the server saw one GET at a time; a
  // book that finds no memory free is staged instead.
  OneBookBudget t;
  SyncEnv& env = t.env;
  const auto& books = t.books;
  auto r = t.Sync({});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  t.CheckStored();

  auto st = env.server->Stats();
  std::vector<fake::ArchiveGetTiming> gets;
  int64_t first = INT64_MAX, last = 0;
  for (const auto& g : st.archive_gets) {
    if (g.status != 200 || g.end_us < 0) continue;
    gets.push_back(g);
    first = std::min(first, g.arrived_us);
    last = std::max(last, g.end_us);
  }
  REQUIRE(gets.size() == books.size());
  // Both slots download through most of the run (the last book downloads alone, and a book
  // waits a moment between GETs for its check); one slot at a time is 0.
  const double both = static_cast<double>(TimeWithTwoOpen(gets)) / static_cast<double>(last - first);
  CAPTURE(both);
  CHECK(both >= 0.5);
}

TEST_CASE("with no memory free and staging full a book waits for memory without its slot, and "
          "every book is stored") {
  // Staging past its limit after one book: a book without memory may not be staged, so its
  // worker gives the download slot back, waits for memory, then takes a slot again.
  OneBookBudget t;
  auto r = t.Sync({"--staging-limit-mb", "1"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  t.CheckStored();
  const std::string staging = t.env.run + "/staging";  // nothing left behind
  CHECK((!std::filesystem::exists(staging) || std::filesystem::is_empty(staging)));
}

// A new book (storage's listing at the start does not hold it) costs GRIN one request, its GET:
// whether it is streamed or staged is decided from that GET's response head, never from a HEAD
// before it, and never by holding the slot while waiting for memory. More workers than slots,
// and a budget that holds one book (some are streamed, the others staged) or none (every book
// staged).
void CheckOneRequestPerBook(const char* memory_mb) {
  OneBookBudget t;
  auto r = t.Sync({"--workers", "6", "--memory-limit-mb", memory_mb});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  t.CheckStored();
  for (const auto& b : t.books) {
    CAPTURE(b);
    CHECK(t.Requests(b) == 1);
  }
  const std::string staging = t.env.run + "/staging";  // nothing left behind
  CHECK((!std::filesystem::exists(staging) || std::filesystem::is_empty(staging)));
}

TEST_CASE("one GRIN request per new book when the budget holds one book: streamed or staged "
          "from its GET") {
  CheckOneRequestPerBook("3");
}

TEST_CASE("one GRIN request per new book when no book fits the budget: staged from its GET") {
  CheckOneRequestPerBook("1");
}

// ---- connections per host ----

// "host:port" of an https:// URL (the transport's host key).
std::string HostPort(const std::string& url) {
  std::string h = url.substr(url.find("://") + 3);
  return h.substr(0, h.find('/'));
}

TEST_CASE("TLS connections per host stay within its pool for the whole run: storage max(4, "
          "workers) under parallel multipart parts of four uploads, GRIN download slots + 1") {
  // Books of ~20-35 MiB go multipart above 5 MiB (8 MiB parts, four in flight per object).
  // Their GETs, throttled alike, run side by side and end close together, so four workers
  // upload at once and want up to 16 storage connections. Each host's pool bounds its
  // connections: storage's max(4, workers) = 4, GRIN's download slots + 1 = 5 (before:
  // max(8, workers + 4) = 8 for both, and storage opened 8).
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  SyncEnv env(10, 1.0, 47, /*image_bytes=*/7'000'000);
  fake::FaultRule slow;
  slow.endpoint = "archive_get";
  slow.action = "throttle";
  slow.rate_bps = 24 * kMiB;
  env.server->AddFault(slow);
  const std::string suffix = std::to_string(::getpid()) + "pool";
  PointRunAtSwift(env, swift, suffix);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--workers", "4", "--download-concurrency",
                             "4", "--multipart-threshold-mb", "5", "--skip-csv-export"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto uploaded = env.Uploaded();
  REQUIRE(uploaded.size() >= 4);
  int64_t largest = 0;
  for (const auto& b : uploaded) {
    largest = std::max<int64_t>(largest, static_cast<int64_t>(env.FixturePlaintext(b).size()));
  }
  REQUIRE(largest > 16 * kMiB);  // three parts or more: parallel parts did happen

  auto summary = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/process_summary.json"));
  const std::string storage_host = HostPort(swift.get("GRIN_S3_ENDPOINT"));
  const std::string grin_host = HostPort(env.server->base_url());
  int64_t storage_tls = -1, storage_requests = 0, grin_tls = -1;
  for (const auto& h : summary["hosts"]) {
    const std::string host = h["host"].get<std::string>();
    if (host == storage_host) {
      storage_tls = h["tls_handshakes"].get<int64_t>();
      storage_requests = h["requests"].get<int64_t>();
    }
    if (host == grin_host) grin_tls = h["tls_handshakes"].get<int64_t>();
  }
  MESSAGE("storage " << storage_tls << " TLS handshakes for " << storage_requests
                     << " requests, GRIN " << grin_tls << ", largest book " << largest);
  // Begin, three or more parts and complete per book, besides the listings.
  CHECK(storage_requests >= 5 * static_cast<int64_t>(uploaded.size()));
  CHECK(storage_tls >= 1);
  CHECK(storage_tls <= 4);
  CHECK(grin_tls >= 1);
  CHECK(grin_tls <= 5);
  // The fake GRIN's own count of new connections agrees.
  CHECK(env.server->Stats().connections <= 5);
}

}  // namespace
}  // namespace grin::pipeline::testing
