// A PostgreSQL run end to end: `init --state postgresql://...` on a throwaway cluster
// (tests/support/pg_cluster.h), `collect` and `sync` against the fake GRIN over HTTPS into a
// local storage folder, checked in the database (libpq) and in storage; a second sync does
// nothing; a sync killed with SIGKILL mid-run is resumed by the next one to exactly-once
// completion; a forced exit (two SIGINTs) gives back its leases, worker registration and GRIN
// slots so the next sync starts at once, and exits within its grace when the database does not
// answer. Also: what init refuses (a password in the URI, a server that is not there) leaves
// nothing behind; sql and export answer on it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>
#include <tuple>

#include "storage/postgres/pg_connection.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::pipeline::testing {
namespace {

namespace fs = std::filesystem;

// A PostgreSQL run beside env's SQLite one, on the same fake GRIN and storage folder.
struct PgRun {
  explicit PgRun(SyncEnv& env) : env_(env) {
    uri = grin::testing::FreshDatabase();
    dir = env.InitRun((env.tmp.path() / "pgrun").string(), uri);
    auto c = storage::pg::PgConnection::Connect(uri, "test");
    REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    conn = std::move(c).value();
  }

  std::vector<std::string> SyncArgs(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"sync", "--run-dir", dir, "--workers", "4", "--grin-rate", "0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  int64_t Sql(const std::string& q) {
    auto r = conn->Exec(q);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->Int(0, 0);
  }

  std::set<std::string> Uploaded() {
    auto r = conn->Exec("SELECT barcode FROM uploaded");
    REQUIRE(r.ok());
    std::set<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.insert(r->Text(i, 0));
    return out;
  }

  int64_t Converted() {
    int64_t total = 0;
    env_.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 0, &total);
    return total;
  }

  // Every converted book stored once: at `uploaded` in the database, one completion per stage
  // (events), nothing leased, its raw archive in storage as GRIN's fixture decrypts (checked by
  // the real gpg for the first `plain_checks` books).
  void CheckAllStoredOnce(int plain_checks) {
    const auto up = Uploaded();
    CHECK(static_cast<int64_t>(up.size()) == Converted());
    CHECK(Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
    CHECK(Sql("SELECT count(*) FROM (SELECT barcode, stage, count(*) AS n FROM events "
              "WHERE outcome = 'completed' GROUP BY barcode, stage HAVING count(*) <> 1) x") == 0);
    int n = 0;
    for (const auto& b : up) {
      CAPTURE(b);
      REQUIRE(fs::exists(env_.RawPath(b)));
      CHECK(fs::exists(env_.OcrPath(b)));
      if (n++ < plain_checks) {
        CHECK(grin::testing::ReadFile(env_.RawPath(b)) == env_.FixturePlaintext(b));
      }
    }
  }

  SyncEnv& env_;
  std::string uri;
  std::string dir;
  std::unique_ptr<storage::pg::PgConnection> conn;
};

TEST_CASE("PostgreSQL run: init --state, collect, sync, and a second sync does nothing") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(60, 0.6);
  PgRun run(env);
  CHECK(!fs::exists(run.dir + "/books.db"));  // the state is on the server
  // config shows it, cannot change it, and keeps it when another setting changes.
  auto show = Cli({"config", "show", "--run-dir", run.dir});
  INFO(show.out << show.err);
  CHECK(show.out.find(run.uri) != std::string::npos);
  CHECK(Cli({"config", "set", "--run-dir", run.dir, "state", "postgresql://x@y/z"}).code ==
        cli::kExitUsage);
  REQUIRE(Cli({"config", "set", "--run-dir", run.dir, "sync.workers", "3"}).code == 0);
  CHECK(nlohmann::json::parse(grin::testing::ReadFile(run.dir + "/run_config.json"))["state"] ==
        run.uri);

  auto collect = Cli({"collect", "--run-dir", run.dir});
  INFO(collect.out << collect.err);
  REQUIRE(collect.code == 0);
  CHECK(run.Sql("SELECT count(*) FROM books") == 60);

  auto sync = Cli(run.SyncArgs({"--queue", "converted"}));
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  CHECK(run.Converted() >= 20);
  run.CheckAllStoredOnce(5);
  CHECK(!fs::exists(run.dir + "/books.db"));
  CHECK(fs::exists(run.dir + "/process_summary.json"));

  // Again: nothing to do, nothing fetched from GRIN again.
  std::map<std::string, int64_t> gets;
  for (const auto& b : run.Uploaded()) gets[b] = env.Gets(b);
  const int64_t events = run.Sql("SELECT count(*) FROM events WHERE outcome = 'completed'");
  auto again = Cli(run.SyncArgs({"--queue", "converted"}));
  INFO(again.out << again.err);
  REQUIRE(again.code == 0);
  CHECK(again.out.find("nothing to do") != std::string::npos);
  CHECK(again.out.find("ETags of the ") != std::string::npos);  // the hint, read from PostgreSQL
  for (const auto& [b, n] : gets) CHECK(env.Gets(b) == n);
  CHECK(run.Sql("SELECT count(*) FROM events WHERE outcome = 'completed'") == events);

  // The dry run plans from PostgreSQL too; retry and verify work on it.
  auto dry = Cli(run.SyncArgs({"--dry-run"}));
  INFO(dry.out << dry.err);
  CHECK(dry.code == 0);
  auto retry = Cli({"retry", "--run-dir", run.dir});
  INFO(retry.out << retry.err);
  CHECK(retry.code == 0);
  auto verify = Cli({"verify", "--run-dir", run.dir});
  INFO(verify.out << verify.err);
  CHECK(verify.code == 0);
  // status and report read PostgreSQL: the same figures as the database holds; no worker is
  // registered once the syncs ended.
  auto status = Cli({"status", "--run-dir", run.dir, "--json"});
  INFO(status.out << status.err);
  REQUIRE(status.code == 0);
  auto sj = nlohmann::json::parse(status.out);
  CHECK(sj["stages"]["uploaded"].get<int64_t>() == run.Sql("SELECT count(*) FROM uploaded"));
  CHECK(sj["books"].get<int64_t>() == 60);
  CHECK(sj["workers"].size() == 0);
  auto status_text = Cli({"status", "--run-dir", run.dir});
  CHECK(status_text.code == 0);
  CHECK(status_text.out.find("sync workers: 0 live") != std::string::npos);
  auto report = Cli({"report", "--run-dir", run.dir});
  INFO(report.out << report.err);
  CHECK(report.code == 0);
  CHECK(fs::exists(run.dir + "/report.html"));
  // sql and export read PostgreSQL too (more in pg_cmds_test.cc); neither makes a books.db.
  auto sql = Cli({"sql", "--run-dir", run.dir, "SELECT count(*) AS n FROM uploaded"});
  INFO(sql.err);
  CHECK(sql.code == 0);
  CHECK(sql.out.find(std::to_string(run.Uploaded().size())) != std::string::npos);
  CHECK(Cli({"export", "--run-dir", run.dir}).code == 0);
  CHECK(!fs::exists(run.dir + "/books.db"));
}

TEST_CASE("PostgreSQL run: a sync killed with SIGKILL mid-run is finished by the next one") {
  PG_SKIP_WITHOUT_POSTGRES();
  // The killed sync's leases expire 2 s after its last heartbeat (not the default 2 min).
  ::setenv("GRIN_JOBS_PG_LEASE_SECONDS", "2", 1);
  SyncEnv env(120, 0.6, 11);
  PgRun run(env);
  const std::string log = (env.tmp.path() / "sync.log").string();
  int killed_mid_run = 0;
  for (int k = 0; k < 3; ++k) {
    const size_t start = run.Uploaded().size();
    pid_t pid = SpawnGrinJobs(run.SyncArgs({"--queue", "converted", "--workers", "2"}), log);
    for (int i = 0; i < 3000 && run.Uploaded().size() <= start; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid < 0) break;  // finished before it could be killed
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    kill(pid, SIGKILL);
    const int code = WaitChild(pid);
    if (code == 128 + SIGKILL) {
      ++killed_mid_run;
    } else {
      REQUIRE_MESSAGE(code == 0, "sync exited " << code << ": " << grin::testing::ReadFile(log));
    }
  }
  MESSAGE(killed_mid_run << " of 3 syncs killed mid-run");
  CHECK(killed_mid_run >= 1);
  const int64_t stored_before = static_cast<int64_t>(run.Uploaded().size());
  CHECK(stored_before < run.Converted());  // the kills left work for the last sync
  std::map<std::string, int64_t> gets;
  for (const auto& b : run.Uploaded()) gets[b] = env.Gets(b);
  pid_t pid = SpawnGrinJobs(run.SyncArgs({"--queue", "converted"}), log);
  REQUIRE_MESSAGE(WaitChild(pid) == 0, grin::testing::ReadFile(log));
  // Books stored before the last sync were not fetched again; the dead run's leases were taken
  // back after they expired, and every book is stored once.
  for (const auto& [b, n] : gets) CHECK(env.Gets(b) == n);
  if (killed_mid_run > 0) {
    CHECK(run.Sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed'") >= 1);
  }
  run.CheckAllStoredOnce(3);
  ::unsetenv("GRIN_JOBS_PG_LEASE_SECONDS");
}

TEST_CASE("PostgreSQL run: two SIGINTs give the leases and GRIN slots back at once, a rerun starts at once") {
  PG_SKIP_WITHOUT_POSTGRES();
  ::unsetenv("GRIN_JOBS_PG_LEASE_SECONDS");  // default leases (2 min): only the abort frees them
  SyncEnv env(60, 0.6, 303);
  PgRun run(env);
  // Every archive GET waits 1 s for its first byte, so books are still in flight when the second
  // signal comes (with instant GETs the first signal's finish could end the pipeline before it,
  // leaving no lease to give back and no forced exit to record).
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive", "action": "slow_first_byte", "delay_ms": 1000})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  const std::string log = (env.tmp.path() / "sync.log").string();
  pid_t pid = SpawnGrinJobs(run.SyncArgs({"--queue", "converted", "--workers", "2"}), log);
  for (int i = 0; i < 600 && run.Uploaded().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  const int code = WaitChild(pid);
  INFO(grin::testing::ReadFile(log));
  REQUIRE(code == 130);  // books take >= 1 s each: it cannot have finished before the signals
  // The abort gave every lease back (ReleaseForExit on PostgreSQL): none left to expire.
  CHECK(run.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  CHECK(run.Sql("SELECT count(*) FROM runs WHERE forced_exit = 1") == 1);
  // ... and ended its worker registration with its GRIN download slots (not left to their 30 s
  // lease): no worker of the run is registered, no slot is held.
  CHECK(run.Sql("SELECT count(*) FROM workers") >= 1);
  CHECK(run.Sql("SELECT count(*) FROM workers WHERE ended_at IS NULL") == 0);
  CHECK(run.Sql("SELECT count(*) FROM grin_slots WHERE worker_id IS NOT NULL") == 0);
  // So the rerun waits for no lease (books: 2 min, slots: 30 s): it takes every slot at once
  // and stores its first book (downloaded: it held a slot) within seconds.
  const size_t stored = run.Uploaded().size();
  env.server->ClearFaults();
  const auto start = std::chrono::steady_clock::now();
  pid = SpawnGrinJobs(run.SyncArgs({"--queue", "converted"}), log);
  auto seconds = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double first_stored_s = -1;
  for (int i = 0; i < 2000 && first_stored_s < 0; ++i) {
    if (run.Uploaded().size() > stored) first_stored_s = seconds();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(WaitChild(pid) == 0);
  MESSAGE("rerun: first book stored after " << first_stored_s << " s, done after " << seconds()
                                            << " s");
  CHECK(first_stored_s >= 0);
  CHECK(first_stored_s < 10);
  CHECK(seconds() < 20);
  run.CheckAllStoredOnce(2);
}

TEST_CASE("PostgreSQL run: a forced exit while the database does not answer exits anyway") {
  PG_SKIP_WITHOUT_POSTGRES();
  ::unsetenv("GRIN_JOBS_PG_LEASE_SECONDS");
  SyncEnv env(40, 0.6, 307);
  PgRun run(env);
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive", "action": "slow_first_byte", "delay_ms": 1000})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  const std::string log = (env.tmp.path() / "sync.log").string();
  pid_t pid = SpawnGrinJobs(run.SyncArgs({"--queue", "converted", "--workers", "2"}), log);
  for (int i = 0; i < 600 && run.Uploaded().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The database stops answering the sync: a transaction of ours holds its tables.
  REQUIRE(run.conn->Exec("BEGIN").ok());
  REQUIRE(run.conn->Exec("LOCK TABLE jobs, runs, workers, grin_slots IN ACCESS EXCLUSIVE MODE")
              .ok());
  const auto start = std::chrono::steady_clock::now();
  kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  const int code = WaitChild(pid);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(run.conn->Exec("ROLLBACK").ok());
  const std::string out = grin::testing::ReadFile(log);
  INFO(out);
  CHECK(code == 130);
  CHECK(took < 8);  // the 3 s grace, not a lease or a TCP timeout
  CHECK(out.find("did not answer within 3 s; exiting anyway") != std::string::npos);
  // What it could not give back is left to the leases, as it says.
  CHECK(run.Sql("SELECT count(*) FROM jobs WHERE status = 'leased'") > 0);
}

// The most books whose archive GETs the fake GRIN held at once, waiting for their first byte
// (arrival to first byte: the 300 ms every GET waits in this test). Not to the body's end: the
// server notes an end after its last write, and under load a client that has all the bytes may
// already have sent its next GET on that slot by then. Books, not requests: a request the
// transport sent again for the same book (a pooled connection the server had closed) is one
// download.
int PeakConcurrentDownloads(const fake::FakeGrinStats& stats) {
  std::vector<std::tuple<int64_t, int, std::string>> edges;
  for (const auto& g : stats.archive_gets) {
    if (g.first_byte_us < 0) continue;
    edges.emplace_back(g.arrived_us, +1, g.barcode);
    edges.emplace_back(g.first_byte_us, -1, g.barcode);
  }
  std::sort(edges.begin(), edges.end());  // an end before a start at the same instant
  std::map<std::string, int> open;
  int peak = 0;
  for (const auto& [t, d, barcode] : edges) {
    if ((open[barcode] += d) == 0) open.erase(barcode);
    peak = std::max(peak, static_cast<int>(open.size()));
  }
  return peak;
}

TEST_CASE("PostgreSQL run: two syncs from two run directories share GRIN's download slots") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(90, 1.0, 23);
  PgRun run(env);
  // A second run directory (another host's) joins the same database.
  const std::string dir2 = (env.tmp.path() / "pgrun2").string();
  auto init2 = Cli({"init", "--run-dir", dir2, "--state", run.uri, "--library-directory", "TEST",
                    "--grin-base-url", env.server->base_url(), "--storage", "local",
                    "--storage-path", env.storage});
  REQUIRE_MESSAGE(init2.code == 0, init2.err);
  grin::testing::WriteFile(dir2 + "/run_config.json",
                           grin::testing::ReadFile(run.dir + "/run_config.json"));
  REQUIRE(Cli({"collect", "--run-dir", run.dir}).code == 0);
  // Every archive GET waits 300 ms for its first byte, so downloads overlap across processes.
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive", "action": "slow_first_byte", "delay_ms": 300})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  env.server->ResetStats();
  // Each asks for 3 download slots: the run has 3 (set by the first worker), shared by both.
  const std::vector<std::string> extra = {"--queue", "converted", "--download-concurrency", "3",
                                          "--check-concurrency", "3", "--workers", "6"};
  const std::string log1 = (env.tmp.path() / "sync1.log").string();
  const std::string log2 = (env.tmp.path() / "sync2.log").string();
  std::vector<std::string> args2 = run.SyncArgs(extra);
  args2[2] = dir2;  // "sync", "--run-dir", <dir>
  pid_t a = SpawnGrinJobs(run.SyncArgs(extra), log1);
  pid_t b = SpawnGrinJobs(args2, log2);
  REQUIRE_MESSAGE(WaitChild(a) == 0, grin::testing::ReadFile(log1));
  REQUIRE_MESSAGE(WaitChild(b) == 0, grin::testing::ReadFile(log2));
  run.CheckAllStoredOnce(3);
  // Both did work (two runs rows completed books), and GRIN never saw more than the run's 3
  // downloads at once (without the shared slots: 6, two processes with 3 each).
  CHECK(run.Sql("SELECT count(DISTINCT run_id) FROM events WHERE stage = 'uploaded' AND "
                "outcome = 'completed'") == 2);
  const int peak = PeakConcurrentDownloads(env.server->Stats());
  MESSAGE("peak concurrent archive downloads: " << peak);
  CHECK(peak >= 1);
  if (peak > 3) {  // what GRIN saw, for the failure's report
    for (const auto& g : env.server->Stats().archive_gets) {
      MESSAGE("GET " << g.barcode << " arrived " << g.arrived_us << " first byte "
                     << g.first_byte_us << " end " << g.end_us << " status " << g.status);
    }
  }
  CHECK(peak <= 3);
  // Both workers are gone from the registry.
  CHECK(run.Sql("SELECT count(*) FROM workers WHERE ended_at IS NULL") == 0);
}

TEST_CASE("init --state: a password in the URI or a server that is not there leaves nothing") {
  PG_SKIP_WITHOUT_POSTGRES();
  grin::testing::TempDir tmp;
  const std::string dir = (tmp.path() / "run").string();
  const std::string good = grin::testing::FreshDatabase();

  // A password: refused before anything is touched, never echoed.
  std::string with_pw = good;
  with_pw.replace(with_pw.find("grin@"), 5, "grin:s3cret@");
  auto pw = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state", with_pw});
  CHECK(pw.code == cli::kExitUsage);
  CHECK(cli::testing::OneLine(pw.err));
  CHECK(pw.err.find("~/.pgpass") != std::string::npos);
  CHECK(pw.err.find("PGPASSWORD") != std::string::npos);
  CHECK(pw.err.find("s3cret") == std::string::npos);
  CHECK(!fs::exists(dir));
  auto qpw = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state",
                  good + "?password=s3cret"});
  CHECK(qpw.code == cli::kExitUsage);
  CHECK(qpw.err.find("s3cret") == std::string::npos);
  CHECK(!fs::exists(dir));

  // Not a URI; a URI libpq cannot parse.
  auto kv = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state",
                 "host=localhost dbname=x"});
  CHECK(kv.code == cli::kExitUsage);
  CHECK(cli::testing::OneLine(kv.err));
  auto bad = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state",
                  "postgresql://grin@127.0.0.1:5432/db?nonsense_option=1"});
  CHECK(bad.code == cli::kExitUsage);
  CHECK(cli::testing::OneLine(bad.err));
  CHECK(!fs::exists(dir));

  // A port nobody listens on: one line, no run directory, no run_config.json.
  auto gone = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state",
                   "postgresql://grin@127.0.0.1:1/grin_jobs"});
  CHECK(gone.code != 0);
  CHECK(cli::testing::OneLine(gone.err));
  CHECK(gone.err.find("127.0.0.1") != std::string::npos);
  CHECK(!fs::exists(dir));

  // A database that does not exist on a live server: refused the same way.
  std::string missing = good.substr(0, good.rfind('/')) + "/no_such_db";
  auto nodb = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state", missing});
  CHECK(nodb.code != 0);
  CHECK(cli::testing::OneLine(nodb.err));
  CHECK(!fs::exists(dir));

  // The good one works; init again on it is an upgrade; another --state is refused.
  auto ok = Cli({"init", "--run-dir", dir, "--library-directory", "TEST", "--state", good});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  CHECK(!fs::exists(dir + "/books.db"));
  auto again = Cli({"init", "--run-dir", dir, "--library-directory", "TEST"});
  INFO(again.err);
  CHECK(again.code == 0);
  CHECK(!fs::exists(dir + "/books.db"));
  auto other = Cli({"init", "--run-dir", dir, "--state", good + "x"});
  CHECK(other.code == cli::kExitUsage);
  CHECK(other.err.find("state is fixed at init") != std::string::npos);
  // A SQLite run refuses --state the same way.
  const std::string sqlite_dir = (tmp.path() / "sqlite").string();
  REQUIRE(Cli({"init", "--run-dir", sqlite_dir, "--library-directory", "TEST"}).code == 0);
  auto move = Cli({"init", "--run-dir", sqlite_dir, "--state", good});
  CHECK(move.code == cli::kExitUsage);
  CHECK(move.err.find("migrate-state") != std::string::npos);
}

}  // namespace
}  // namespace grin::pipeline::testing
