// docs/real-grin.md, run: the guide's commands against the project's fake GRIN over HTTPS (and
// the Swift S3 server where the guide shows MinIO), so the guide cannot rot.
//
// The conventions for the guide's blocks (which run, in which session, with which exit status or
// output; the files it tells the reader to create) are in tests/docs/guide_blocks.h. Here:
//
// - Sessions. Each session has its own working folder (the guide's /srv/grin-jobs) and its own
//   local storage folder (/data/books); all share one home folder (HOME, so ~/.config/grin-jobs
//   and ~/.aws are the guide's). "main" always runs; "minio" runs when GRIN_S3_ENV names the
//   Swift S3 server (skipped with a message otherwise, as the other S3 tests do).
// - Placeholders replaced in every block before it runs: /srv/grin-jobs, /data/books,
//   /usr/local/bin/grin-jobs (the built binary), https://minio.example.org:9000,
//   /etc/ssl/minio-ca.pem, YOUR_ACCESS_KEY_ID / YOUR_SECRET_ACCESS_KEY and the bucket names
//   harvard-raw|meta|full (unique per test run). `grin-jobs` is found on PATH.
// - What the reader has before starting, made by the test: ~/Downloads/client_secret_<id>.json
//   (the fake's OAuth client) and ~/grin-passphrase.txt (the fake library's passphrase).
// - Real GRIN vs the fake, the only rewrites of a command: after each `grin-jobs init` line the
//   run is pointed at the fake (`config set` of grin_base_url, grin_token_url, ca_file); an
//   `auth setup` without a run gets `--ca-file` of the fake's CA; GRIN_OAUTH_PORT=0 (any free
//   port for the browser redirect).
// - The wait for GRIN: the fake converts a requested book after 10 virtual minutes; after a block
//   that runs `grin-jobs request` (not --dry-run) the test moves the fake's clock past that, and
//   the next block that syncs the main run must store more books than were stored before.
// - The browser: when a block prints the fake's consent address, the test opens it (curl, no
//   redirect following) and either pastes the address it was sent to (`--paste` blocks, on
//   stdin) or follows it to grin-jobs' loopback listener.
// - File blocks: crontab lines are checked (five valid fields or @daily..., no bare %) and their
//   commands run with cron's PATH from the home folder; systemd units are written out, checked
//   with `systemd-analyze verify` when the machine has it (skipped otherwise), and each service's
//   ExecStart= lines run in its WorkingDirectory.
// GRIN_GUIDE_VERBOSE=1 prints every block, as run, and its output.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/docs/guide_blocks.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/support/swift_server.h"
#include "tests/support/temp_dir.h"

namespace grin::guide {
namespace {

namespace fs = std::filesystem;
using grin::testing::ReadFile;
using grin::testing::WriteFile;

const std::string kGuidePath = std::string(GRIN_SOURCE_DIR) + "/docs/real-grin.md";
const std::string kExitHeader = std::string(GRIN_SOURCE_DIR) + "/cli/cli.h";

struct Proc {
  int code = -1;
  std::string output;  // stdout and stderr, interleaved
  bool timed_out = false;
};

// Runs argv (argv[0] a path) in `cwd` with exactly `env`, stdout and stderr captured together.
// `on_line` sees each output line and may write to the child's stdin (fd given; -1 when stdin
// is /dev/null). Killed (its process group) after `timeout_s`.
Proc Run(const std::vector<std::string>& argv, const std::string& cwd,
         const std::vector<std::string>& env, bool keep_stdin, int timeout_s,
         const std::function<void(const std::string&, int)>& on_line = nullptr) {
  Proc r;
  // A write to a child's stdin after it ended must fail with EPIPE, not end the test.
  signal(SIGPIPE, SIG_IGN);
  int out[2], in[2] = {-1, -1};
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  if (keep_stdin) REQUIRE(pipe2(in, O_CLOEXEC) == 0);
  std::vector<char*> a, e;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);  // the test ignores it (below); the child gets the default
    int devnull = open("/dev/null", O_RDONLY);
    dup2(keep_stdin ? in[0] : devnull, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]);
  if (keep_stdin) close(in[0]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string partial;
  char buf[4096];
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, static_cast<size_t>(n));
    partial.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
      if (on_line) on_line(partial.substr(0, nl), keep_stdin ? in[1] : -1);
      partial.erase(0, nl + 1);
    }
  }
  close(out[0]);
  if (keep_stdin) close(in[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// PATH lookup for a tool the test itself uses.
std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(in, dir, ':')) {
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

int64_t Count(const std::string& db, const std::string& sql) {
  SQLite::Database d(db, SQLite::OPEN_READONLY, 10000);
  return d.execAndGet(sql).getInt64();
}

constexpr int64_t kConvertDelayS = 600;  // below the fake's token lifetime (3600 s)

// True if `script` has a line running `grin-jobs <command>` (without `--dry-run`).
bool Runs(const std::string& script, const std::string& command) {
  for (const std::string& line : LogicalLines(script)) {
    std::vector<std::string> w = Words(line);
    if (w.size() >= 2 && fs::path(w[0]).filename() == "grin-jobs" && w[1] == command &&
        std::find(w.begin(), w.end(), "--dry-run") == w.end()) {
      return true;
    }
  }
  return false;
}

class GuideRunner {
 public:
  GuideRunner() {
    fake::FakeGrinOptions o;
    o.directories = {"Harvard"};
    o.corpus.size = 20;
    o.corpus.seed = 11;
    o.corpus.frac_converted = 0.5;
    o.corpus.frac_in_process = 0.1;
    o.corpus.frac_failed = 0.1;
    o.corpus.frac_not_allowed = 0.05;
    o.corpus.convert_delay_s = kConvertDelayS;
    o.range_support = true;
    o.threads = 16;
    o.state_dir = (tmp_.path() / "fake").string();
    fs::create_directories(o.state_dir);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server_ = std::move(s).value();

    home_ = (tmp_.path() / "home").string();
    fs::create_directories(home_ + "/Downloads");
    WriteFile(home_ + "/Downloads/client_secret_" + o.client_id + ".json",
              ReadFile(server_->state_dir() + "/client_secret.json"));
    WriteFile(home_ + "/grin-passphrase.txt", server_->passphrase("Harvard") + "\n");

    const std::string bin = GRIN_JOBS_BIN;
    const char* path = std::getenv("PATH");
    env_ = {"HOME=" + home_,
            "PATH=" + fs::path(bin).parent_path().string() + ":" + (path ? path : "/usr/bin:/bin"),
            "GRIN_OAUTH_PORT=0", "TERM=dumb", "LC_ALL=C.UTF-8", "USER=grin-guide-test"};
    for (const char* keep : {"TMPDIR", "PYENV_ROOT", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
      if (const char* v = std::getenv(keep)) env_.push_back(std::string(keep) + "=" + v);
    }
    subs_["/usr/local/bin/grin-jobs"] = bin;

    if (const char* e = std::getenv("GRIN_S3_ENV"); e != nullptr && *e != '\0') {
      swift_ = std::make_unique<grin::testing::SwiftServer>(GRIN_SOURCE_DIR);
      const std::string tag = "guide" + std::to_string(::getpid()) + "x" +
                              std::to_string(std::time(nullptr) % 100000);
      subs_["https://minio.example.org:9000"] = swift_->get("GRIN_S3_ENDPOINT");
      subs_["/etc/ssl/minio-ca.pem"] = swift_->get("GRIN_S3_CA_FILE");
      subs_["YOUR_ACCESS_KEY_ID"] = swift_->get("GRIN_S3_ACCESS_KEY");
      subs_["YOUR_SECRET_ACCESS_KEY"] = swift_->get("GRIN_S3_SECRET_KEY");
      for (const char* b : {"raw", "meta", "full"}) {
        subs_[std::string("harvard-") + b] = tag + "-" + b;
      }
    }
  }

  bool HasS3() const { return swift_ != nullptr; }
  fake::FakeGrinServer& server() { return *server_; }
  const std::string& home() const { return home_; }
  // The guide's /srv/grin-jobs and /data/books in `session`.
  std::string WorkDir(const std::string& session) const {
    return (tmp_.path() / session / "srv/grin-jobs").string();
  }
  std::string DataDir(const std::string& session) const {
    return (tmp_.path() / session / "data/books").string();
  }
  std::string UnitDir() const { return (tmp_.path() / "units").string(); }

  std::map<std::string, std::string> Subs(const std::string& session) const {
    auto s = subs_;
    s["/srv/grin-jobs"] = WorkDir(session);
    s["/data/books"] = DataDir(session);
    return s;
  }

  // The guide's script with the fake GRIN's rewrites (see the top of this file).
  std::string Adapt(const std::string& script) {
    std::string out;
    for (const std::string& line : LogicalLines(script)) {
      std::vector<std::string> w = Words(line);
      const bool grin_jobs = !w.empty() && fs::path(w[0]).filename() == "grin-jobs";
      std::string run_flag, run_value;
      for (size_t i = 1; i + 1 < w.size(); ++i) {
        if (w[i] == "--run-name" || w[i] == "--run-dir") {
          run_flag = w[i];
          run_value = w[i + 1];
        }
      }
      if (grin_jobs && w.size() >= 3 && w[1] == "auth" && w[2] == "setup" && run_flag.empty()) {
        out += line + " --ca-file '" + server_->ca_file() + "'\n";
        continue;
      }
      out += line + "\n";
      if (grin_jobs && w.size() >= 2 && w[1] == "init") {
        REQUIRE_MESSAGE(!run_flag.empty(), "an init line without --run-name/--run-dir: " << line);
        for (const auto& [k, v] : std::map<std::string, std::string>{
                 {"grin_base_url", server_->base_url()},
                 {"grin_token_url", server_->token_url()},
                 {"ca_file", server_->ca_file()}}) {
          out += "grin-jobs config set " + run_flag + " '" + run_value + "' " + k + " '" + v +
                 "' >/dev/null\n";
        }
        ++inits_;
      }
    }
    return out;
  }

  // Runs one script with bash in `cwd`, acting as the browser for auth setup.
  Proc Bash(const std::string& script, const std::string& cwd) {
    const std::string file = (tmp_.path() / ("block" + std::to_string(++scripts_) + ".sh")).string();
    WriteFile(file, script);
    const bool paste = script.find("--paste") != std::string::npos;
    return Run({"/bin/bash", "-eu", "-o", "pipefail", file}, cwd, env_, paste, 90,
               [&](const std::string& line, int stdin_fd) { Browser(line, paste, stdin_fd); });
  }

  // A command of a crontab or unit: /bin/sh, as cron and systemd run them (no bash).
  Proc Sh(const std::string& command, const std::string& cwd,
          std::vector<std::string> env_override = {}) {
    std::vector<std::string> env = env_;
    for (auto& e : env_override) {
      const std::string name = e.substr(0, e.find('=') + 1);
      env.erase(std::remove_if(env.begin(), env.end(),
                               [&](const std::string& x) { return x.rfind(name, 0) == 0; }),
                env.end());
      env.push_back(e);
    }
    return Run({"/bin/sh", "-c", command}, cwd, env, false, 90);
  }

  int inits() const { return inits_; }
  int pastes() const { return pastes_; }
  int redirects() const { return redirects_; }

 private:
  // One line of a block's output: the fake's consent address is opened like a browser would.
  void Browser(const std::string& line, bool paste, int stdin_fd) {
    const std::string prefix = server_->auth_url() + "?";
    const size_t at = line.find(prefix);
    if (at == std::string::npos) return;
    std::string url = line.substr(at);
    url = url.substr(0, url.find_first_of(" \t\r"));
    Proc consent = Run({Which("curl"), "-sS", "--cacert", server_->ca_file(), "-o", "/dev/null",
                        "-w", "%{redirect_url}", url},
                       home_, env_, false, 30);
    // CHECK, not REQUIRE: the block's child is still running; on a failure it is left to end
    // (no code arrives) or to be killed at the block's time limit.
    const std::string location = consent.output;
    const bool has_code = location.find("code=") != std::string::npos;
    CHECK_MESSAGE(has_code, "the consent page gave " << location);
    if (!has_code) return;
    if (paste) {
      const std::string typed = location + "\n";
      CHECK(write(stdin_fd, typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
      ++pastes_;
    } else {
      Proc back = Run({Which("curl"), "-sS", "--max-time", "20", location}, home_, env_, false, 30);
      CHECK_MESSAGE(back.code == 0, back.output);
      CHECK(back.output.find("authorisation received") != std::string::npos);
      ++redirects_;
    }
  }

  grin::testing::TempDir tmp_;
  std::unique_ptr<fake::FakeGrinServer> server_;
  std::unique_ptr<grin::testing::SwiftServer> swift_;
  std::string home_;
  std::vector<std::string> env_;
  std::map<std::string, std::string> subs_;
  int scripts_ = 0, inits_ = 0, pastes_ = 0, redirects_ = 0;
};

std::string Where(const Block& b) {
  return "docs/real-grin.md line " + std::to_string(b.line) + " (" + b.section + ")";
}

TEST_CASE("real-grin guide: the blocks follow the test's conventions") {
  const std::string md = ReadFile(kGuidePath);
  REQUIRE_MESSAGE(!md.empty(), "cannot read " << kGuidePath);
  Guide g = ParseGuide(md);
  for (const auto& e : g.errors) FAIL_CHECK(std::string("docs/real-grin.md ") << e);
  int run = 0;
  std::set<std::string> files, commands;
  for (const auto& b : g.blocks) {
    if (!b.file.empty()) {
      files.insert(b.file);
      continue;
    }
    if (b.lang != "sh" || b.skip) continue;
    ++run;
    for (const auto& line : LogicalLines(b.text)) {
      auto w = Words(line);
      if (w.size() >= 2 && w[0] == "grin-jobs") commands.insert(w[1] + (w.size() > 2 && w[1] == "auth" ? " " + w[2] : ""));
    }
    for (const auto& s : b.sessions) CHECK_MESSAGE((s == "main" || s == "minio"), Where(b) << ": session " << s);
  }
  // The guide's promises stay exercised: skipping them all would make the test pass vacuously.
  CHECK(run >= 15);
  for (const char* c : {"auth setup", "auth status", "init", "doctor", "collect", "enrich",
                        "request", "sync", "status", "config", "sql"}) {
    CHECK_MESSAGE(commands.count(c) == 1, "no runnable block uses `grin-jobs " << c << "`");
  }
  CHECK(files == std::set<std::string>{"crontab", "grin-jobs-harvard.service",
                                       "grin-jobs-harvard.timer"});
  CHECK(md.find("grin-jobs auth setup --paste") != std::string::npos);
  CHECK(md.find("(configuration.md#credentials)") != std::string::npos);
  CHECK(md.find("(storage-setup.md)") != std::string::npos);
  // Links: relative files exist, in-page anchors name a heading (GitHub's slugs).
  std::set<std::string> slugs;
  {
    std::istringstream in(md);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("#", 0) != 0) continue;
      std::string text = line.substr(line.find(' ') + 1), slug;
      for (char c : text) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else if (c == ' ' || c == '-') {
          slug += '-';
        }
      }
      slugs.insert(slug);
    }
  }
  static const std::regex kLink(R"(\]\(([^)\s]+)\))");
  int links = 0;
  for (auto it = std::sregex_iterator(md.begin(), md.end(), kLink); it != std::sregex_iterator();
       ++it) {
    const std::string target = (*it)[1].str();
    if (target.rfind("http", 0) == 0) continue;
    ++links;
    const size_t hash = target.find('#');
    const std::string file = target.substr(0, hash);
    if (!file.empty()) {
      CHECK_MESSAGE(fs::exists(fs::path(kGuidePath).parent_path() / file), "broken link " << target);
    } else {
      CHECK_MESSAGE(slugs.count(target.substr(hash + 1)) == 1, "no heading for " << target);
    }
  }
  CHECK(links > 10);
  // The repo stands alone: no pointer to notes outside it.
  CHECK(md.find("/work/") == std::string::npos);
  CHECK(md.find("shared/docs") == std::string::npos);
}

TEST_CASE("real-grin guide: documents every exit code the CLI defines and no other") {
  const auto defined = ExitCodesInHeader(ReadFile(kExitHeader));
  REQUIRE_MESSAGE(defined.size() >= 8, "cannot read the exit codes from " << kExitHeader);
  std::vector<std::string> bad;
  const auto documented = ExitCodesInGuide(ReadFile(kGuidePath), "Exit codes", &bad);
  for (const auto& [name, code] : defined) {
    CHECK_MESSAGE(documented.count(code) == 1,
                  "cli/cli.h defines " << name << " = " << code
                                       << "; docs/real-grin.md's exit code table lacks it");
  }
  std::set<int> values;
  for (const auto& [name, code] : defined) values.insert(code);
  for (int code : documented) {
    CHECK_MESSAGE(values.count(code) == 1, "the guide documents exit " << code
                                                                       << ", which cli/cli.h does not define");
  }
  CHECK_MESSAGE(bad.empty(), "rows of the exit code table without a number: " << bad.size());
}

TEST_CASE("real-grin guide: crontab and unit parsing catch what the guide could get wrong") {
  CHECK(ParseCrontab("17 2 * * * cd /x && true\n").errors.empty());
  CHECK(ParseCrontab("MAILTO=a@b\n*/5 1-3,7 * jan-mar mon-fri run\n@daily run\n").errors.empty());
  CHECK(ParseCrontab("17 2 * * run\n").errors.size() == 1);    // a field short
  CHECK(ParseCrontab("61 2 * * * run\n").errors.size() == 1);  // minute out of range
  CHECK(ParseCrontab("17 2 * * * date +%F\n").errors.size() == 1);
  CHECK(ParseCrontab("@nightly run\n").errors.size() == 1);
  Unit u = ParseUnit("[Service]\nExecStart=/a b\nExecStart=/c\n# x\n[Timer]\nOnCalendar=daily\n");
  CHECK(UnitValues(u, "Service", "ExecStart") == std::vector<std::string>{"/a b", "/c"});
  CHECK(UnitValues(u, "Timer", "OnCalendar") == std::vector<std::string>{"daily"});
  Guide g = ParseGuide("<!-- guide-test: skip why; not; split -->\n```sh\nx\n```\n"
                       "<!-- guide-test: session a,b; exit 4; output o k -->\n\n```sh\ny\n```\n"
                       "<!-- guide-test: bogus 1 -->\n```sh\nz\n```\n<!-- guide-test: exit 1 -->\ntext\n");
  REQUIRE(g.blocks.size() == 3);
  CHECK(g.blocks[0].skip_reason == "why; not; split");
  CHECK(g.blocks[1].sessions == std::vector<std::string>{"a", "b"});
  CHECK(g.blocks[1].exit_code == 4);
  CHECK(g.blocks[1].output == "o k");
  CHECK(g.errors.size() == 2);  // the unknown directive, the marker before text
  CHECK(Substitute("/srv/x /srv/xy", {{"/srv/x", "/srv/xy"}, {"/srv/xy", "Q"}}) == "/srv/xy Q");
}

TEST_CASE("real-grin guide: its commands run against the fake GRIN and store the books") {
  const std::string md = ReadFile(kGuidePath);
  Guide g = ParseGuide(md);
  REQUIRE(g.errors.empty());
  GuideRunner r;
  if (!r.HasS3()) MESSAGE("skipping the MinIO session: set GRIN_S3_ENV for the Swift S3 server");
  for (const char* s : {"main", "minio"}) fs::create_directories(r.WorkDir(s));
  fs::create_directories(r.UnitDir());
  const bool have_analyze = !Which("systemd-analyze").empty();
  if (!have_analyze) MESSAGE("systemd-analyze not found: the units' syntax is not checked");
  std::set<std::string> sessions_run;
  const std::string main_db = r.WorkDir("main") + "/output/harvard/books.db";
  auto main_uploaded = [&] {
    return fs::exists(main_db) ? Count(main_db, "SELECT count(*) FROM uploaded") : 0;
  };
  int64_t stored_before_wait = -1;  // uploaded books when GRIN was last asked to convert
  int waits = 0;
  std::string crontab;
  int unit_commands = 0;

  for (const Block& b : g.blocks) {
    if (b.skip) continue;
    if (!b.file.empty()) {
      const std::string text = Substitute(b.text, r.Subs("main"));
      if (b.file == "crontab") {
        Crontab c = ParseCrontab(text);
        for (const auto& e : c.errors) FAIL_CHECK(Where(b) << ": " << e);
        REQUIRE(!c.entries.empty());
        std::vector<std::string> env = {"PATH=/usr/bin:/bin", "SHELL=/bin/sh"};
        for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
        for (const auto& e : c.entries) {
          Proc p = r.Sh(e.command, r.home(), env);
          INFO(Where(b) << ": " << e.command << "\n" << p.output);
          CHECK(p.code == 0);
          // The guide: cron mails only when something went wrong (it mails any output).
          CHECK(p.output.empty());
        }
        crontab = text;
        continue;
      }
      const std::string path = r.UnitDir() + "/" + b.file;
      WriteFile(path, text);
      if (have_analyze) {
        std::vector<std::string> argv = {Which("systemd-analyze"), "verify", path};
        if (b.file.size() > 6 && b.file.substr(b.file.size() - 6) == ".timer") {
          std::string service = path.substr(0, path.size() - 6) + ".service";
          REQUIRE_MESSAGE(fs::exists(service), Where(b) << ": the timer's service comes first");
          argv.push_back(service);
        }
        Proc p = Run(argv, r.UnitDir(), {"PATH=/usr/bin:/bin"}, false, 60);
        INFO(Where(b) << ": systemd-analyze verify " << b.file << "\n" << p.output);
        CHECK(p.code == 0);
        CHECK(p.output.empty());  // warnings (an unknown key, ...) too
      }
      Unit u = ParseUnit(text);
      if (b.file.size() > 8 && b.file.substr(b.file.size() - 8) == ".service") {
        auto wd = UnitValues(u, "Service", "WorkingDirectory");
        REQUIRE(wd.size() == 1);
        auto execs = UnitValues(u, "Service", "ExecStart");
        REQUIRE(!execs.empty());
        for (std::string cmd : execs) {
          while (!cmd.empty() && std::string("-@:+!").find(cmd[0]) != std::string::npos) {
            cmd.erase(0, 1);
          }
          // systemd's default PATH; ExecStart= names the binary in full anyway.
          Proc p = r.Sh(cmd, wd[0], {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
          INFO(Where(b) << ": ExecStart=" << cmd << "\n" << p.output);
          CHECK(p.code == 0);
          ++unit_commands;
        }
      } else {
        CHECK(!UnitValues(u, "Timer", "OnCalendar").empty());
      }
      continue;
    }
    if (b.lang != "sh") continue;
    for (const std::string& session : b.sessions) {
      if (session == "minio" && !r.HasS3()) continue;
      sessions_run.insert(session);
      const std::string script = r.Adapt(Substitute(b.text, r.Subs(session)));
      Proc p = r.Bash(script, r.WorkDir(session));
      INFO(Where(b) << ", session " << session << ":\n" << b.text << "--- output:\n" << p.output);
      if (std::getenv("GRIN_GUIDE_VERBOSE")) {  // to read what each block printed
        std::cerr << "=== " << Where(b) << ", session " << session << ", exit " << p.code << "\n"
                  << script << "---\n" << p.output;
      }
      REQUIRE_FALSE(p.timed_out);
      REQUIRE(p.code == b.exit_code);
      if (!b.output.empty()) CHECK(p.output.find(b.output) != std::string::npos);
      if (session != "main") continue;
      if (stored_before_wait >= 0 && Runs(b.text, "sync")) {
        // request -> wait -> sync: the books GRIN converted meanwhile are stored now.
        CHECK(main_uploaded() > stored_before_wait);
        stored_before_wait = -1;
      }
      if (Runs(b.text, "request")) {
        r.server().AdvanceClock(kConvertDelayS + 1);
        stored_before_wait = main_uploaded();
        ++waits;
      }
    }
  }
  CHECK(waits >= 1);
  CHECK(stored_before_wait == -1);  // a sync followed the wait

  // Signing in: both ways ran through the browser, and the secrets are private.
  CHECK(r.redirects() >= 1);
  CHECK(r.pastes() >= 1);
  CHECK(r.inits() >= 1);
  const std::string cfg = r.home() + "/.config/grin-jobs";
  CHECK(Mode(cfg) == 0700);
  for (const char* f : {"client_secret.json", "credentials.json", "gpg_passphrase.asc"}) {
    CHECK_MESSAGE(Mode(cfg + "/" + f) == 0600, f);
  }
  CHECK(nlohmann::json::parse(ReadFile(cfg + "/credentials.json")).value("refresh_token", "") != "");
  CHECK(!crontab.empty());
  CHECK(unit_commands >= 2);

  // The main run stored every book GRIN has converted, each archive in the local folder.
  const std::string run = r.WorkDir("main") + "/output/harvard";
  const std::string db = run + "/books.db";
  REQUIRE(fs::exists(db));
  fake::Corpus* corpus = r.server().corpus("Harvard");
  int64_t total = 0;
  std::set<std::string> converted;
  for (int64_t i : corpus->List(fake::ConvertStatus::kConverted, 0, -1, &total)) {
    converted.insert(corpus->Get(i).barcode);
  }
  std::set<std::string> uploaded, archives;
  {
    SQLite::Database d(db, SQLite::OPEN_READONLY, 10000);
    SQLite::Statement q(d, "SELECT barcode FROM uploaded");
    while (q.executeStep()) uploaded.insert(q.getColumn(0).getString());
  }
  const fs::path raw = fs::path(r.DataDir("main")) / "raw";
  if (fs::exists(raw)) {
    for (const auto& e : fs::recursive_directory_iterator(raw)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 7 && name.substr(name.size() - 7) == ".tar.gz") {
        archives.insert(name.substr(0, name.size() - 7));
      }
    }
  }
  CHECK(converted.size() > 10);  // the request step asked GRIN for more than it had converted
  CHECK(uploaded == converted);
  CHECK(archives == converted);
  CHECK(Count(db, "SELECT count(*) FROM failed") == 0);
  CHECK(Count(db, "SELECT count(*) FROM books") == 20);
  bool sync_log = false;
  for (const auto& e : fs::directory_iterator(run + "/logs")) {
    sync_log |= e.path().filename().string().rfind("sync-", 0) == 0;
  }
  CHECK(sync_log);

  // The MinIO run stored books in S3.
  if (r.HasS3()) {
    CHECK(sessions_run.count("minio") == 1);
    CHECK(Count(r.WorkDir("minio") + "/output/harvard/books.db", "SELECT count(*) FROM uploaded") >= 5);
  }
}

}  // namespace
}  // namespace grin::guide
