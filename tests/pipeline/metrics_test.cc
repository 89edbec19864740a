// sync --metrics-listen scraped by a real Prometheus server (Debian `prometheus`, started here on
// loopback with its own scrape config and storage directory), queried through its HTTP API; the
// listener's HTTP answers; `status --metrics` parsed back and compared with the database.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "engine/base/encoding.h"
#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A plain HTTP/1.1 request to 127.0.0.1:port; the whole response ("" if it cannot connect).
std::string HttpRaw(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string HttpGet(int port, const std::string& target) {
  return HttpRaw(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

std::string Body(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Text exposition format parsed back: "name{labels}" -> value; every sample's family must have
// HELP and TYPE lines before it.
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::set<std::string> help, type;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      help.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      type.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.empty()) continue;
    size_t sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    std::string series = line.substr(0, sp);
    std::string name = series.substr(0, series.find('{'));
    INFO(line);
    CHECK(help.count(name) == 1);
    CHECK(type.count(name) == 1);
    CHECK(std::regex_match(name, std::regex("grin_jobs_[a-z_]+")));
    out[series] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// A Prometheus server on loopback scraping 127.0.0.1:target_port every second.
struct Prometheus {
  Prometheus(const std::filesystem::path& dir, int target_port) {
    std::filesystem::create_directories(dir / "tsdb");
    std::ofstream(dir / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: grin_jobs\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << target_port << "']\n";
    port = FreePort();
    log = (dir / "prometheus.log").string();
    std::vector<std::string> args = {
        "prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir / "tsdb").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE_MESSAGE(posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0,
                    "prometheus is not installed (scripts/install-deps)");
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Prometheus() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
  }

  // The instant vector of a PromQL query ("" -> value of each result's labels as JSON).
  json Query(const std::string& promql) const {
    std::string body = Body(HttpGet(port, "/api/v1/query?query=" + PercentEncode(promql)));
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return json::array();
    return j["data"]["result"];
  }
  // The single value of `promql`, NaN if it has no result.
  double Value(const std::string& promql) const {
    json r = Query(promql);
    if (r.size() != 1) return std::nan("");
    return std::stod(r[0]["value"][1].get<std::string>());
  }

  int port = 0;
  pid_t pid = 0;
  std::string log;
};

// Waits until `pred` holds (polling every 200 ms), at most `seconds`.
template <typename Pred>
bool WaitFor(double seconds, Pred pred) {
  auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return pred();
}

TEST_CASE("metrics: a real Prometheus scrapes a sync, its last values match the database" *
          doctest::timeout(90)) {
  SyncEnv env(24);
  std::string log = (env.tmp.path() / "sync.log").string();
  pid_t sync = SpawnGrinJobs(env.SyncArgs({"--queue", "converted", "--metrics-listen",
                                           "127.0.0.1:0", "--metrics-linger", "60"}),
                             log);
  // Port 0: the sync prints the one it got.
  std::smatch m;
  std::regex printed("Metrics: http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  std::string text;
  REQUIRE_MESSAGE(WaitFor(20, [&] {
                    text = grin::testing::ReadFile(log);
                    return std::regex_search(text, m, printed);
                  }),
                  text);
  const int port = std::stoi(m[1]);
  Prometheus prom(env.tmp.path() / "prom", port);

  // The listener itself: /metrics in the text format, anything else refused.
  std::string r = HttpGet(port, "/metrics");
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  // The job counts appear once the run's jobs are enqueued.
  CHECK(WaitFor(20, [&] {
    return Body(HttpGet(port, "/metrics")).find("# TYPE grin_jobs_jobs gauge\n") !=
           std::string::npos;
  }));
  CHECK(HttpGet(port, "/").rfind("HTTP/1.1 404", 0) == 0);
  CHECK(HttpRaw(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);
  CHECK(Body(HttpRaw(port, "HEAD /metrics HTTP/1.1\r\n\r\n")).empty());

  // The sync finishes (and lingers, still serving).
  REQUIRE_MESSAGE(WaitFor(60, [&] {
                    text = grin::testing::ReadFile(log);
                    return text.find("Sync finished") != std::string::npos;
                  }),
                  text);
  const int64_t uploaded = env.Sql("SELECT count(*) FROM uploaded");
  REQUIRE(uploaded > 0);
  const std::string grin_host = "127.0.0.1:" + std::to_string(env.server->port());
  int64_t grin_requests = 0;
  for (const auto& [name, e] : env.server->Stats().endpoints) grin_requests += e.requests;

  // Prometheus scraped it: its latest sample shows the final state.
  const std::string done = "grin_jobs_jobs{job=\"grin_jobs\",stage=\"uploaded\"}";
  bool converged = WaitFor(30, [&] { return prom.Value(done) == static_cast<double>(uploaded); });
  INFO("prometheus log: " << grin::testing::ReadFile(prom.log));
  INFO("sync log: " << grin::testing::ReadFile(log));
  REQUIRE(converged);
  CHECK(prom.Value("up{job=\"grin_jobs\"}") == 1);
  CHECK(prom.Value("grin_jobs_books_finished_total{result=\"uploaded\"}") == uploaded);
  CHECK(prom.Value("grin_jobs_jobs{stage=\"pending\"}") ==
        env.Sql("SELECT count(*) FROM jobs WHERE stage = 'pending'"));
  CHECK(prom.Value("grin_jobs_books_in_flight") == 0);
  CHECK(prom.Value("grin_jobs_memory_budget_used_bytes") == 0);
  CHECK(prom.Value("grin_jobs_memory_budget_capacity_bytes") == 512.0 * 1024 * 1024);
  int64_t archive_bytes = 0;
  for (const auto& [key, b] : env.server->Stats().barcodes) archive_bytes += b.bytes;
  CHECK(archive_bytes > 0);
  CHECK(prom.Value("grin_jobs_downloaded_bytes_total") == archive_bytes);
  // The transport's own counters, per host: every attempt at GRIN reached the fake GRIN.
  CHECK(prom.Value("grin_jobs_http_attempts_total{host=\"" + grin_host + "\"}") == grin_requests);
  CHECK(prom.Value("grin_jobs_http_responses_total{host=\"" + grin_host + "\",class=\"2xx\"}") > 0);
  CHECK(prom.Value("grin_jobs_tls_handshakes_total{host=\"" + grin_host + "\"}") >= 1);
  CHECK(prom.Value("grin_jobs_tls_handshakes_total{host=\"" + grin_host + "\"}") <=
        env.server->Stats().connections);
  // Latency histograms: every book claimed was timed; +Inf equals _count.
  double timed = prom.Value("sum(grin_jobs_stage_duration_seconds_count)");
  CHECK(timed >= static_cast<double>(uploaded));
  CHECK(prom.Value("sum(grin_jobs_stage_duration_seconds_bucket{le=\"+Inf\"})") == timed);
  CHECK(prom.Value("histogram_quantile(0.5, sum by (le) "
                   "(grin_jobs_stage_duration_seconds_bucket))") >= 0);

  // status --metrics: the database's subset, the same names and the same values.
  auto st = Cli({"status", "--run-dir", env.run, "--metrics"});
  REQUIRE_MESSAGE(st.code == 0, st.err);
  auto parsed = ParseExposition(st.out);
  CHECK(parsed.at("grin_jobs_jobs{stage=\"uploaded\"}") == uploaded);
  for (const char* stage : {"pending", "checked", "downloaded", "uploaded"}) {
    std::string series = std::string("grin_jobs_jobs{stage=\"") + stage + "\"}";
    CHECK(parsed.at(series) == prom.Value(series));
  }
  CHECK(parsed.at("grin_jobs_jobs_dead") == prom.Value("grin_jobs_jobs_dead"));
  CHECK(parsed.at("grin_jobs_jobs_awaiting_conversion") ==
        env.Sql("SELECT count(*) FROM jobs WHERE status = 'awaiting'"));

  // Ctrl-C ends the linger; the sync's own exit status stands.
  ::kill(sync, SIGINT);
  CHECK(WaitChild(sync) == 0);
}

TEST_CASE("metrics: status --metrics counts failed jobs by reason, parsed back") {
  SyncEnv env(20, 0.6, 5);
  // Books the fake has no archive for (not converted) and one that does not exist at all.
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "6"}));
  REQUIRE_MESSAGE(r.code == 0, r.err);
  (void)Cli(env.SyncArgs({"--barcodes", "NOSUCHBOOK1,NOSUCHBOOK2"}));
  auto st = Cli({"status", "--run-dir", env.run, "--metrics"});
  REQUIRE_MESSAGE(st.code == 0, st.err);
  auto parsed = ParseExposition(st.out);
  CHECK(parsed.at("grin_jobs_jobs{stage=\"uploaded\"}") == env.Sql("SELECT count(*) FROM uploaded"));
  int64_t total = 0;
  for (const char* stage : {"pending", "checked", "downloaded", "uploaded"}) {
    total += static_cast<int64_t>(parsed.at("grin_jobs_jobs{stage=\"" + std::string(stage) + "\"}"));
  }
  CHECK(total == env.Sql("SELECT count(*) FROM jobs"));
  double failed = 0;
  for (const auto& [series, v] : parsed) {
    if (series.rfind("grin_jobs_jobs_failed{", 0) == 0) failed += v;
  }
  CHECK(failed > 0);
  CHECK(failed == env.Sql("SELECT count(*) FROM jobs WHERE status IN ('retry', 'dead')"));
  CHECK(Cli({"status", "--run-dir", env.run, "--metrics", "--json"}).code == 2);
}

TEST_CASE("metrics: --metrics-listen refuses a non-loopback address unless allowed") {
  SyncEnv env(3);
  auto r = Cli(env.SyncArgs({"--metrics-listen", "0.0.0.0:0"}));
  CHECK(r.code == 2);
  CHECK(r.err.find("--metrics-listen '0.0.0.0:0': not a loopback address") != std::string::npos);
  r = Cli(env.SyncArgs({"--metrics-listen", "127.0.0.1:99999"}));
  CHECK(r.code == 2);
  CHECK(r.err.find("port") != std::string::npos);
  r = Cli(env.SyncArgs({"--metrics-listen", "example.org:9100"}));
  CHECK(r.code == 2);
  // A port already taken: exit 1, named, before any book is touched.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string taken = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  r = Cli(env.SyncArgs({"--queue", "converted", "--metrics-listen", taken}));
  ::close(fd);
  CHECK(r.code == 1);
  CHECK(r.err.find("--metrics-listen " + taken + ": cannot listen") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM uploaded") == 0);
}

}  // namespace
}  // namespace grin::pipeline::testing
