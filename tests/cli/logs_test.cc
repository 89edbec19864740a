// The run's log files (<run>/logs/<command>-<UTC>.log): written by sync and the GRIN commands at
// info, the console quiet unless -v, --log-level / -q / -v as documented, rotation keeping the
// newest --log-keep, never a secret in a log, the path printed first and last, bad values exit 2.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include "engine/base/clock.h"
#include "tests/fake_grin/faults.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

bool HasLineStarting(const std::string& text, const std::string& prefix) {
  for (const auto& l : Lines(text)) {
    if (l.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The log file a command printed ("Log: PATH" as its first line); "" if none.
std::string LogPath(const CliRun& r) {
  auto lines = Lines(r.out);
  if (lines.empty() || lines.front().rfind("Log: ", 0) != 0) return "";
  return lines.front().substr(5);
}

// fd 2 (the console loggers write there) into a file while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { Stop(); }
  std::string Stop() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
    return grin::testing::ReadFile(path_);
  }

 private:
  std::string path_;
  int saved_ = -1;
};

std::vector<std::string> Converted(SyncEnv& env, size_t n) {
  std::vector<std::string> out;
  auto* corpus = env.server->corpus("TEST");
  for (int64_t i = 0; i < corpus->size() && out.size() < n; ++i) {
    if (corpus->Get(i).status == fake::ConvertStatus::kConverted) {
      out.push_back(corpus->Get(i).barcode);
    }
  }
  REQUIRE(out.size() == n);
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& b : v) s += (s.empty() ? "" : ",") + b;
  return s;
}

// One bad GET for `barcode` (a body shorter than declared): the book's attempt fails once
// ("WARN book.failed") and its retry stores it.
void FailOnce(SyncEnv& env, const std::string& barcode) {
  auto rule = fake::ParseFaultRule(R"({"endpoint": "archive_get", "barcode": ")" + barcode +
                                   R"(", "times": 1, "action": "wrong_length", )"
                                   R"("length_delta": -700})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
}

std::vector<std::string> LogFiles(const std::string& run, const std::string& command) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run + "/logs", ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(command + "-", 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("logs: sync writes <run>/logs/sync-<UTC>.log at info, its path printed first and last") {
  SyncEnv env(30);
  const std::string before = FormatIsoUtcMillis(SystemClock::Default()->NowMicros());
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "5"}));
  const std::string after = FormatIsoUtcMillis(SystemClock::Default()->NowMicros());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string path = LogPath(r);
  REQUIRE(!path.empty());
  CHECK(std::regex_match(fs::path(path).filename().string(),
                         std::regex(R"(sync-\d{8}T\d{6}Z(-\d+)?\.log)")));
  CHECK(fs::path(path).parent_path() == fs::path(env.run) / "logs");
  CHECK(Lines(r.out).back() == "Log: " + path);  // and in the summary
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  const std::string log = grin::testing::ReadFile(path);
  INFO(log);
  const std::regex shape(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) )"
      R"([a-z_]+(\.[a-z_]+)*( [a-z_]+=\S.*)?)");
  auto lines = Lines(log);
  REQUIRE(lines.size() >= 4);
  for (const auto& l : lines) {
    CAPTURE(l);
    CHECK(std::regex_match(l, shape));
    CHECK(l.substr(0, 24) >= before);  // UTC, within the run
    CHECK(l.substr(0, 24) <= after);
  }
  CHECK(lines.front().find(" INFO command.started command=sync run_dir=" + env.run) !=
        std::string::npos);
  CHECK(Contains(lines.front(), "args=\"--run-dir=" + env.run));
  CHECK(Contains(lines.back(), " INFO command.finished command=sync seconds="));
  // What the command printed is in the log too: the plan line, the progress, the summary.
  CHECK(Contains(log, " INFO stdout text=\"Sync of " + env.run + ": 5 new jobs"));
  CHECK(Contains(log, "/5 (100.0%)"));
  CHECK(!Contains(log, " DEBUG "));
}

TEST_CASE("logs: -q, -v and --log-level on the console and in the file") {
  SyncEnv env(60, 0.8);
  auto books = Converted(env, 8);
  struct Mode {
    std::vector<std::string> flags;
    bool console_warn, console_info, file_info;
  };
  const Mode modes[] = {
      {{}, true, false, true},                             // default: warnings on the console
      {{"-q"}, false, false, true},                        // errors only
      {{"-v"}, true, true, true},                          // everything the file gets
      {{"--log-level", "warning"}, true, false, false},    // the file at warning
      {{"--quiet", "--log-level", "warning"}, false, false, false},
      {{"--verbose", "--log-level", "warning"}, true, false, false},
  };
  size_t next = 0;
  for (const auto& m : modes) {
    std::string flags = Join(m.flags);
    CAPTURE(flags);
    const std::string book = books[next++];
    FailOnce(env, book);
    std::vector<std::string> args = {"--barcodes", book, "--retry-base-ms", "10"};
    args.insert(args.end(), m.flags.begin(), m.flags.end());
    StderrCapture capture(env.tmp.file("console.txt"));
    auto r = Cli(env.SyncArgs(args));
    const std::string console = capture.Stop();
    INFO(r.out << r.err << "\n--- console:\n" << console);
    REQUIRE(r.code == 0);
    const std::string log = grin::testing::ReadFile(LogPath(r));
    INFO("--- log:\n" << log);
    // The failed attempt is a warning, in the file at every level here.
    CHECK(Contains(log, " WARN book.failed barcode=" + book));
    CHECK(Contains(log, " INFO ") == m.file_info);
    CHECK(Contains(log, " INFO command.started") == m.file_info);
    CHECK(HasLineStarting(console, "WARN book.failed barcode=" + book) == m.console_warn);
    CHECK(HasLineStarting(console, "INFO command.started command=sync") == m.console_info);
    CHECK(HasLineStarting(console, "INFO ") == m.console_info);
    // stdout is the same whatever the level.
    CHECK(Contains(r.out, "Sync of " + env.run + ": 1 new jobs"));
  }
}

TEST_CASE("logs: bad logging options exit 2 with one line, before any work, no log written") {
  SyncEnv env(10);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--log-level", "loud"}, "--log-level loud: use debug, info, warning or error"},
      {{"--log-level", ""}, "--log-level '': use debug, info, warning or error"},
      {{"--log-keep", "0"}, "--log-keep 0: use a whole number from 1 to 10000"},
      {{"--log-keep", "many"}, "--log-keep many: use a whole number from 1 to 10000"},
      {{"-q", "-v"}, "-q and -v: give one of them, not both"},
  };
  for (const char* command : {"sync", "collect", "enrich", "request", "doctor", "status", "retry",
                              "export", "sql", "init"}) {
    for (const auto& [flags, message] : cases) {
      std::vector<std::string> args = {command, "--run-dir", env.run};
      args.insert(args.end(), flags.begin(), flags.end());
      CAPTURE(Join(args));
      auto r = Cli(args);
      CHECK(r.code == 2);
      CHECK(r.out.empty());
      CHECK(r.err == "grin-jobs " + std::string(command) + ": " + message + "\n");
    }
  }
  auto x = Cli({"extract", "--log-level", "loud", "x.tar.gz"});
  CHECK(x.code == 2);
  CHECK(x.err == "grin-jobs extract: --log-level loud: use debug, info, warning or error\n");
  CHECK(!fs::exists(env.run + "/logs"));
  // Every command takes them.
  for (const char* command : {"status", "export"}) {
    auto ok = Cli({command, "--run-dir", env.run, "-q", "--log-level", "debug"});
    CAPTURE(command);
    CHECK(ok.code == 0);
  }
}

TEST_CASE("logs: --log-keep N keeps the newest N of the command, and never a log in use") {
  SyncEnv env(10);
  const std::string logs = env.run + "/logs";
  fs::create_directories(logs);
  // Another command's log, an unrelated file, and an old request log a live process holds.
  grin::testing::WriteFile(logs + "/sync-20200101T000000Z.log", "x\n");
  grin::testing::WriteFile(logs + "/notes.txt", "mine\n");
  grin::testing::WriteFile(logs + "/request-20200101T000000Z.log", "held\n");
  grin::testing::WriteFile(logs + "/request-20200101T000001Z.log", "old\n");
  int held = ::open((logs + "/request-20200101T000000Z.log").c_str(), O_RDONLY);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX | LOCK_NB) == 0);

  std::vector<std::string> printed;
  for (int i = 0; i < 5; ++i) {
    auto r = Cli({"request", "--run-dir", env.run, "--dry-run", "--log-keep", "3"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    printed.push_back(LogPath(r));
    REQUIRE(fs::exists(printed.back()));
  }
  ::close(held);
  // Five runs within a few seconds: names stay unique (-N within one second), in order.
  CHECK(std::set<std::string>(printed.begin(), printed.end()).size() == 5);
  std::vector<std::string> expected = {printed[2], printed[3], printed[4],
                                       logs + "/request-20200101T000000Z.log"};
  std::sort(expected.begin(), expected.end());
  CHECK(LogFiles(env.run, "request") == expected);
  CHECK(fs::exists(logs + "/sync-20200101T000000Z.log"));
  CHECK(grin::testing::ReadFile(logs + "/notes.txt") == "mine\n");
  // The run that removed old logs says so in its own log.
  CHECK(Contains(grin::testing::ReadFile(printed[4]), " INFO log.rotated removed=1 kept=3"));
}

TEST_CASE("logs: the error that stops a sync is in its log, at --log-level error too") {
  SyncEnv env(20);
  // A wrong passphrase stops the run (exit 1) with one line on stderr.
  grin::testing::WriteFile(env.server->state_dir() + "/gpg_passphrase.asc", "not it\n");
  for (const char* level : {"info", "error"}) {
    CAPTURE(level);
    auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "2", "--log-level", level}));
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    auto err = Lines(r.err);
    REQUIRE(!err.empty());
    const std::string log = grin::testing::ReadFile(LogPath(r));
    INFO(log);
    CHECK(Contains(log, " ERROR stderr text=\"" + err.back().substr(0, 40)));
    CHECK(Contains(log, " INFO ") == (std::string(level) == "info"));
    CHECK(!Contains(log, "not it"));  // the passphrase tried
  }
}

TEST_CASE("logs: a log file that cannot be made costs one warning, the sync goes on") {
  SyncEnv env(20);
  grin::testing::WriteFile(env.run + "/logs", "not a directory\n");
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "2"}));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(env.Uploaded().size() == 2);
  CHECK(!Contains(r.out, "Log: "));
  auto err = Lines(r.err);
  REQUIRE(err.size() == 1);
  CHECK(err[0].rfind("grin-jobs sync: warning: no log file (", 0) == 0);
  CHECK(Contains(err[0], env.run + "/logs"));
  CHECK(Contains(err[0], "going on without one"));
}

TEST_CASE("logs: collect, enrich, request and doctor write their own logs, doctor --json keeps "
          "stdout JSON") {
  SyncEnv env(30);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"collect", "--run-dir", env.run},
        std::vector<std::string>{"enrich", "--run-dir", env.run},
        std::vector<std::string>{"request", "--run-dir", env.run, "--limit", "2"},
        std::vector<std::string>{"doctor", "--run-dir", env.run, "--staging-limit-mb", "1"}}) {
    CAPTURE(args[0]);
    auto r = Cli(args);
    INFO(r.out << r.err);
    const std::string path = LogPath(r);
    REQUIRE(!path.empty());
    CHECK(fs::path(path).filename().string().rfind(args[0] + "-", 0) == 0);
    CHECK(Lines(r.out).back() == "Log: " + path);
    const std::string log = grin::testing::ReadFile(path);
    CHECK(Contains(log, " INFO command.started command=" + args[0]));
    CHECK(Contains(log, " INFO command.finished command=" + args[0]));
  }
  auto j = Cli({"doctor", "--run-dir", env.run, "--staging-limit-mb", "1", "--json"});
  INFO(j.out << j.err);
  auto doc = nlohmann::json::parse(j.out);  // stdout is only the JSON
  CHECK(doc.contains("checks"));
  CHECK(Contains(j.err, "Log: " + env.run + "/logs/doctor-"));
  // Commands that do no network work write no log.
  auto s = Cli({"status", "--run-dir", env.run});
  CHECK(s.code == 0);
  CHECK(!Contains(s.out, "Log: "));
  CHECK(LogFiles(env.run, "status").empty());
}

// The secrets a run of the fixture uses: the passphrase, the OAuth client secret, the refresh
// token and every token in the saved credentials.
std::vector<std::string> FixtureSecrets(SyncEnv& env) {
  std::vector<std::string> secrets = {env.server->passphrase("TEST"),
                                      env.server->options().client_secret,
                                      env.server->options().refresh_token};
  for (const char* file : {"credentials.json", "client_secret.json"}) {
    auto j = nlohmann::json::parse(
        grin::testing::ReadFile(env.server->state_dir() + "/" + file), nullptr, false);
    if (j.is_discarded()) continue;
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
      if (!v.is_object()) return;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& k = it.key();
        if (it->is_string() && (Contains(k, "token") || Contains(k, "secret")) &&
            k != "token_uri" && it->get<std::string>().size() >= 8) {
          secrets.push_back(it->get<std::string>());
        }
        walk(*it);
      }
    };
    walk(j);
  }
  return secrets;
}

TEST_CASE("logs: a sync's log never holds its secrets, not even at debug with auth trouble") {
  SyncEnv env(40);
  auto books = Converted(env, 6);
  // Trouble, so errors and retries get logged: a bad GET in the first run; tokens revoked and a
  // HEAD refused in the second (both refreshed).
  auto refuse = [&env](const char* endpoint) {
    auto rule = fake::ParseFaultRule(std::string(R"({"endpoint": ")") + endpoint +
                                     R"(", "times": 1, "action": "status", "status": 401})");
    REQUIRE(rule.ok());
    env.server->AddFault(*rule);
  };
  FailOnce(env, books[0]);
  StderrCapture capture(env.tmp.file("console.txt"));
  auto r = Cli(env.SyncArgs({"--barcodes", Join(books), "--retry-base-ms", "10", "--log-level",
                             "debug", "-v"}));
  env.server->RevokeAccessTokens();
  refuse("archive_head");
  auto again = Cli(env.SyncArgs({"--barcodes", Join(books), "--recheck", "--log-level", "debug",
                                 "-v"}));
  const std::string console = capture.Stop();
  INFO(r.out << r.err << again.out << again.err << "\n--- console:\n" << console);
  REQUIRE(r.code == 0);
  REQUIRE(again.code == 0);
  auto secrets = FixtureSecrets(env);
  REQUIRE(secrets.size() >= 3);
  CHECK(Contains(grin::testing::ReadFile(LogPath(r)), " WARN book.failed"));
  for (const auto& path : LogFiles(env.run, "sync")) {
    const std::string log = grin::testing::ReadFile(path);
    for (const auto& s : secrets) {
      CAPTURE(s);
      CHECK(!Contains(log, s));
      CHECK(!Contains(console, s));
    }
    CHECK(!Contains(log, "ya29."));  // every access token the fake issues
    CHECK(!Contains(console, "ya29."));
    CHECK(!Contains(log, "Bearer "));
    CHECK(!Contains(log, "Authorization"));
  }
  CHECK(LogFiles(env.run, "sync").size() == 2);
}

TEST_SUITE_BEGIN("integration");

TEST_CASE("logs: a sync into S3 never logs the secret access key or a request signature") {
  grin::testing::SwiftServer swift(GRIN_SOURCE_DIR);
  SyncEnv env(20, 0.6, 43);
  const std::string suffix = "logs" + std::to_string(::getpid());
  PointRunAtSwift(env, swift, suffix);
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "3", "--log-level", "debug"}));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string log = grin::testing::ReadFile(LogPath(r));
  INFO(log);
  CHECK(Contains(log, " INFO command.finished"));
  CHECK(!Contains(log, swift.get("GRIN_S3_SECRET_KEY")));
  CHECK(!std::regex_search(log, std::regex("Signature=[0-9a-f]{16}")));
  for (const auto& s : FixtureSecrets(env)) CHECK(!Contains(log, s));
}

TEST_SUITE_END();

}  // namespace
}  // namespace grin::pipeline::testing
