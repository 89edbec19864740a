// grin-jobs report in a real browser: the report of a run with known events, loaded by headless
// Chromium; the page must load without console errors and its charts must carry the right
// points. A real sync writes the report at its end and puts it in the meta bucket.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <regex>

#include "tests/pipeline/sync_fixture.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using pipeline::testing::Cli;
using pipeline::testing::SyncEnv;

struct Page {
  std::string dom;      // --dump-dom
  std::string console;  // the console messages Chromium logged
};

bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    if (::access((p.substr(start, end - start) + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Runs headless Chromium on a file: its DOM after load (stdout) and its log (stderr).
std::string Chromium(std::vector<std::string> args, const std::string& out_file,
                     const std::string& err_file) {
  REQUIRE_MESSAGE(OnPath("chromium"),
                  "chromium is not installed: the report test needs it (apt-get install "
                  "chromium; scripts/install-deps installs it)");
  args.insert(args.begin(), "chromium");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  REQUIRE(posix_spawnp(&pid, "chromium", &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0),
                "chromium failed: " << grin::testing::ReadFile(err_file));
  return grin::testing::ReadFile(out_file);
}

Page Load(const std::string& html, const std::string& screenshot_name,
          const grin::testing::TempDir& tmp) {
  const std::string profile = tmp.file("chromium-profile");
  const std::vector<std::string> common = {"--headless", "--disable-gpu", "--no-sandbox",
                                           "--user-data-dir=" + profile, "--no-first-run",
                                           "--enable-logging=stderr", "--v=0"};
  Page p;
  auto args = common;
  args.push_back("--dump-dom");
  args.push_back("file://" + html);
  p.dom = Chromium(args, tmp.file("dom.html"), tmp.file("chromium.log"));
  std::istringstream log(grin::testing::ReadFile(tmp.file("chromium.log")));
  for (std::string l; std::getline(log, l);) {
    if (l.find(":CONSOLE") != std::string::npos) p.console += l + "\n";
  }
  // The screenshot: a test artifact in the build folder.
  const std::string shot = std::string(GRIN_REPORT_ARTIFACT_DIR) + "/" + screenshot_name;
  args = common;
  args.push_back("--window-size=1000,2400");
  args.push_back("--screenshot=" + shot);
  args.push_back("file://" + html);
  Chromium(args, tmp.file("shot.out"), tmp.file("shot.log"));
  CHECK_MESSAGE(fs::exists(shot), shot);
  CHECK(fs::file_size(shot) > 10'000);
  return p;
}

std::string Unescape(std::string s) {
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
      s.replace(p, from.size(), to);
    }
  }
  return s;
}

std::map<std::string, std::string> Attributes(const std::string& tag) {
  std::map<std::string, std::string> a;
  static const std::regex kAttr(R"re(([a-zA-Z][\w-]*)="([^"]*)")re");
  for (std::sregex_iterator it(tag.begin(), tag.end(), kAttr), end; it != end; ++it) {
    a[(*it)[1]] = Unescape((*it)[2]);
  }
  return a;
}

// The points of every chart: svg id -> series -> [(data-t, data-v)].
using Points = std::map<std::string, std::map<std::string, std::vector<std::pair<std::string, double>>>>;

Points ChartPoints(const std::string& dom) {
  Points out;
  std::string svg;
  for (size_t p = dom.find('<'); p != std::string::npos; p = dom.find('<', p + 1)) {
    size_t end = dom.find('>', p);
    if (end == std::string::npos) break;
    std::string tag = dom.substr(p, end - p + 1);
    if (tag.rfind("<svg", 0) == 0) svg = Attributes(tag)["id"];
    if (tag.rfind("<circle", 0) == 0) {
      auto a = Attributes(tag);
      out[svg][a["data-series"]].emplace_back(a["data-t"], std::stod(a["data-v"]));
    }
  }
  return out;
}

// The first tag (start tag text) whose attributes include name="value".
std::map<std::string, std::string> TagWith(const std::string& dom, const std::string& attr) {
  size_t p = dom.find(attr);
  if (p == std::string::npos) return {};
  size_t start = dom.rfind('<', p);
  return Attributes(dom.substr(start, dom.find('>', p) - start + 1));
}

void Exec(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READWRITE, 10000);
  db.exec(sql);
}

TEST_CASE("report: known events give the charts' points, escaped strings, no console error") {
  SyncEnv env(2);  // a run folder with its database; its jobs come from the SQL below
  const std::string db = env.run + "/books.db";
  const int64_t base = 1767348000LL * 1'000'000;  // 2026-01-02T10:00:00Z
  auto us = [base](double s) { return std::to_string(base + static_cast<int64_t>(s * 1e6)); };
  Exec(db, "INSERT INTO books (barcode, title, created_at, updated_at) SELECT column1, column2, "
           "'2026-01-02T09:00:00Z', '2026-01-02T09:00:00Z' FROM (VALUES "
           "('B00001', 'Moby <b>Dick</b> & \"whales\"'), ('B00002', 'Two'), ('B00003', 'Three'),"
           "('B00004', 'Four'), ('B00005', 'Five'));"
           "INSERT INTO jobs (barcode, stage, status, leased_at, created_at, updated_at) VALUES "
           "('B00001', 'uploaded', 'ready', " + us(-5) + ", " + us(-60) + ", " + us(0) + "),"
           "('B00002', 'uploaded', 'ready', " + us(-10) + ", " + us(-60) + ", " + us(30) + "),"
           "('B00003', 'uploaded', 'ready', " + us(58) + ", " + us(-60) + ", " + us(70) + ");"
           "INSERT INTO jobs (barcode, stage, status, error_class, error_reason, created_at, "
           "updated_at) VALUES ('B00004', 'downloaded', 'retry', 'retryable', "
           "'<script>alert(1)</script>', " + us(-60) + ", " + us(50) + ");"
           "INSERT INTO jobs (barcode, stage, status, failed_at, created_at, updated_at) VALUES "
           "('B00005', 'pending', 'awaiting', " + us(-30) + ", " + us(-60) + ", " + us(-30) + ");"
           "INSERT INTO events (at, barcode, stage, outcome, detail) VALUES "
           "('2026-01-02T10:00:00.000Z', 'B00001', 'uploaded', 'completed', '{\"bytes\":5000000}'),"
           "('2026-01-02T10:00:30.000Z', 'B00002', 'uploaded', 'completed', '{\"bytes\":10000000}'),"
           "('2026-01-02T10:01:10.000Z', 'B00003', 'uploaded', 'completed', '{\"bytes\":2500000}'),"
           "('2026-01-02T10:00:20.000Z', 'B00004', 'downloaded', 'failed', "
           "  '{\"reason\":\"<script>alert(1)</script>\",\"class\":\"retryable\"}'),"
           "('2026-01-02T10:00:50.000Z', 'B00004', 'downloaded', 'failed', "
           "  '{\"reason\":\"<script>alert(1)</script>\",\"class\":\"retryable\"}');"
           // The writer keeps job_counts equal to the jobs per stage (0004): so do we.
           "UPDATE job_counts SET n = (SELECT count(*) FROM jobs j WHERE j.stage = job_counts.stage);");
  const std::string html = env.tmp.file("report.html");
  auto r = Cli({"report", "--run-dir", env.run, "-o", html});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  // Self-contained: nothing that would fetch.
  const std::string raw = grin::testing::ReadFile(html);
  CHECK(raw.find("<script") == std::string::npos);
  CHECK(raw.find("http://") == std::string::npos);
  CHECK(raw.find("https://") == std::string::npos);
  CHECK(raw.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(raw.find("Moby &lt;b&gt;Dick&lt;/b&gt; &amp; &quot;whales&quot;") != std::string::npos);

  Page page = Load(html, "report_known_events.png", env.tmp);
  CHECK_MESSAGE(page.console.empty(), page.console);
  CHECK(page.dom.find("<script") == std::string::npos);  // the reason stayed text
  CHECK(page.dom.find("<b>Dick") == std::string::npos);

  // 70 s of events: 5-second buckets, 15 of them, from 10:00:00.
  auto pts = ChartPoints(page.dom);
  const auto& books = pts["chart-books"]["books/h"];
  REQUIRE(books.size() == 15);
  CHECK(books[0].first == "2026-01-02T10:00:00Z");
  CHECK(books[14].first == "2026-01-02T10:01:10Z");
  for (size_t i = 0; i < books.size(); ++i) {
    CAPTURE(i);
    CHECK(books[i].second == doctest::Approx(i == 0 || i == 6 || i == 14 ? 720.0 : 0.0));
  }
  const auto& mbs = pts["chart-mbs"]["MB/s"];
  REQUIRE(mbs.size() == 15);
  CHECK(mbs[0].second == doctest::Approx(1.0));
  CHECK(mbs[6].second == doctest::Approx(2.0));
  CHECK(mbs[14].second == doctest::Approx(0.5));
  CHECK(mbs[3].second == doctest::Approx(0.0));
  const auto& fails = pts["chart-failures"]["<script>alert(1)</script>"];
  REQUIRE(fails.size() == 15);
  for (size_t i = 0; i < fails.size(); ++i) {
    CAPTURE(i);
    CHECK(fails[i].second == doctest::Approx(i == 4 || i == 10 ? 1.0 : 0.0));
  }
  CHECK(TagWith(page.dom, "data-stage=\"uploaded\"")["data-count"] == "3");
  CHECK(TagWith(page.dom, "data-stage=\"downloaded\"")["data-count"] == "1");
  auto eta = TagWith(page.dom, "id=\"eta\"");
  CHECK(eta["data-remaining"] == "1");
  CHECK(eta["data-books-per-h"] == "154.3");  // 3 books in 70 s
  CHECK(TagWith(page.dom, "id=\"awaiting\"")["data-count"] == "1");
  CHECK(TagWith(page.dom, "data-barcode=\"B00002\"")["data-seconds"] == "40.000");
  // The examples of the failure reason name the failing book.
  size_t row = page.dom.find("data-reason=");
  REQUIRE(row != std::string::npos);
  CHECK(page.dom.find("B00004", row) != std::string::npos);
}

TEST_CASE("report: sync writes it at its end and stores it with the backup") {
  SyncEnv env(16, 0.8);
  auto sync = Cli(env.SyncArgs({"--queue", "converted"}));
  REQUIRE_MESSAGE(sync.code == 0, sync.err);
  const std::string html = env.run + "/report.html";
  REQUIRE(fs::exists(html));
  // In the meta bucket too (a local-folder store: a file somewhere under it).
  bool stored = false;
  for (const auto& e : fs::recursive_directory_iterator(env.storage)) {
    if (e.path().filename() == "report.html") {
      stored = grin::testing::ReadFile(e.path()) == grin::testing::ReadFile(html);
    }
  }
  CHECK(stored);
  Page page = Load(html, "report_sync.png", env.tmp);
  CHECK_MESSAGE(page.console.empty(), page.console);
  const int64_t uploaded = env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'");
  REQUIRE(uploaded > 5);
  CHECK(TagWith(page.dom, "data-stage=\"uploaded\"")["data-count"] == std::to_string(uploaded));
  // The throughput points add up to the books stored, and the bytes to their archives.
  auto svg = TagWith(page.dom, "id=\"chart-books\"");
  const double bucket = std::stod(svg["data-bucket-s"]);
  double books = 0, mb = 0;
  auto pts = ChartPoints(page.dom);
  for (const auto& [t, v] : pts["chart-books"]["books/h"]) books += v * bucket / 3600;
  for (const auto& [t, v] : pts["chart-mbs"]["MB/s"]) mb += v * bucket;
  CHECK(books == doctest::Approx(static_cast<double>(uploaded)));
  const double bytes = static_cast<double>(env.Sql(
      "SELECT sum(json_extract(detail, '$.bytes')) FROM events WHERE stage = 'uploaded'"));
  CHECK(mb == doctest::Approx(bytes / 1e6).epsilon(1e-4));
  // The per-host figures of the sync's process_summary.json.
  CHECK(page.dom.find("id=\"hosts\"") != std::string::npos);
  CHECK(page.dom.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("report: a folder without a run database is one clear line, no file written") {
  grin::testing::TempDir tmp;
  const std::string out = tmp.file("report.html");
  auto r = pipeline::testing::Cli({"report", "--run-dir", tmp.path().string(), "-o", out});
  CHECK(r.code == 4);
  CHECK(r.err.rfind("grin-jobs report: ", 0) == 0);
  CHECK(r.err.find("books.db") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace grin::cli
