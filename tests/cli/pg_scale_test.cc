// Issue 21 item 4 with real `grin-jobs sync` processes: several syncs, each from a run directory
// of its own naming one PostgreSQL run (a throwaway cluster), against the in-process fake GRIN
// over HTTPS, into one local storage folder.
//
//  * 4 syncs share the run; one is killed with SIGKILL mid-run and started again; its books are
//    taken back after their lease (GRIN_JOBS_PG_LEASE_SECONDS) and every book is done exactly
//    once: one completion per stage in the events, every book at `uploaded`, its objects stored,
//    no archive fetched twice except the killed sync's.
//  * a sync on another "host" (a network namespace behind a veth pair; root only, else skipped)
//    reaches PostgreSQL and the fake GRIN over the veth and is cut off mid-run: its leases expire
//    and the others finish its books; when the link comes back its late completions are refused
//    by fencing (job.stale_write in its log), nothing is recorded twice; cut off for good, it
//    ends by itself in bounded time with one line naming the database (TCP keepalives /
//    tcp_user_timeout, storage/postgres/pg_connection.h).
//
// Sizes are small by default (ctest); scripts/test-pg-scale runs them big through
// GRIN_PG_SCALE_BOOKS and GRIN_PG_SCALE_NETNS_BOOKS. Measured figures are printed as
// "pg-scale: <name> = <value>" lines on stdout.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "storage/postgres/pg_connection.h"
#include "tests/cli/cli_harness.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/netns.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace grin::testing {
namespace {

namespace fs = std::filesystem;
using cli::testing::Cli;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : def;
}

void Figure(const std::string& name, const std::string& value) {
  std::printf("pg-scale: %s = %s\n", name.c_str(), value.c_str());
  std::fflush(stdout);
}
void Figure(const std::string& name, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", value);
  Figure(name, std::string(buf));
}

// Starts argv (argv[0] looked up in PATH) with stdout and stderr appended to log.
pid_t Spawn(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> a;
  for (auto& s : argv) a.push_back(s.data());
  a.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, a[0], &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
  return pid;
}

// The exit code of a child that has ended (128 + signal), or -1 while it runs.
int Reap(pid_t pid, bool block) {
  int status = 0;
  pid_t r = waitpid(pid, &status, block ? 0 : WNOHANG);
  if (r != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file's text under dir (the run's logs), and the sync's own output.
std::string Logs(const std::string& run_dir, const std::string& out_log) {
  std::string all = ReadText(out_log);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(run_dir + "/logs", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) all += ReadText(it->path().string());
  }
  return all;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One PostgreSQL run on a cluster of its own, a fake GRIN of `books` books (all converted), one
// storage folder, and run directories joining the run. With ns, the cluster and the fake GRIN
// also serve on the namespace's link.
struct ScaleRun {
  ScaleRun(int books, const NetNs* ns) {
    PgClusterOptions co;
    co.max_connections = 200;
    if (ns != nullptr) {
      co.extra_listen = {ns->host_ip()};
      co.extra_trusted = {ns->ns_ip() + "/32", ns->host_ip() + "/32"};
    }
    auto c = PgCluster::Start(co);
    REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    cluster = std::move(*c);
    auto db = cluster->CreateDatabase("scale");
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    uri = *db;

    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.corpus.seed = 21;
    o.corpus.frac_converted = 1.0;
    o.corpus.frac_in_process = 0.0;
    o.corpus.frac_failed = 0.0;
    o.corpus.frac_not_allowed = 0.0;
    o.archive.encryptor = "native";  // the real gpg per archive would take minutes
    o.corpus.pages_max = 2;
    o.archive.image_bytes = 1024;
    o.range_support = true;
    o.threads = 64;
    o.state_dir = (tmp.path() / "fake").string();
    if (ns != nullptr) o.extra_addresses = {ns->host_ip()};
    fs::create_directories(o.state_dir);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(*s);
    WriteFile(server->state_dir() + "/gpg_passphrase.asc", server->passphrase("TEST") + "\n");
    fs::permissions(server->state_dir() + "/gpg_passphrase.asc",
                    fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    storage = (tmp.path() / "storage").string();
    auto conn = storage::pg::PgConnection::Connect(uri, "test");
    REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
    sql = std::move(*conn);
  }

  // A new run directory joining the run through state_uri; grin_origin replaces the fake GRIN's
  // 127.0.0.1 origin (another host reaches it at another address).
  std::string AddRunDir(const std::string& state_uri, const std::string& grin_host = "") {
    const std::string dir = (tmp.path() / ("run" + std::to_string(dirs.size()))).string();
    auto init = Cli({"init", "--run-dir", dir, "--state", state_uri, "--library-directory", "TEST",
                     "--grin-base-url", server->base_url(), "--storage", "local",
                     "--storage-path", storage});
    REQUIRE_MESSAGE(init.code == 0, init.err);
    auto cfg = nlohmann::json::parse(ReadFile(dir + "/run_config.json"));
    std::string base = server->base_url(), token = server->token_url();
    if (!grin_host.empty()) {
      for (std::string* u : {&base, &token}) u->replace(u->find("127.0.0.1"), 9, grin_host);
    }
    cfg["grin_base_url"] = base;
    cfg["grin_token_url"] = token;
    cfg["credentials_dir"] = server->state_dir();
    cfg["ca_file"] = server->ca_file();
    WriteFile(dir + "/run_config.json", cfg.dump(2));
    dirs.push_back(dir);
    return dir;
  }

  std::vector<std::string> SyncArgv(const std::string& dir) const {
    return {GRIN_JOBS_BIN, "sync", "--run-dir", dir, "--queue", "converted", "--grin-rate", "0",
            "--workers", "4", "--download-concurrency", "8"};
  }

  int64_t Sql(const std::string& q) {
    auto r = sql->Exec(q);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->Int(0, 0);
  }

  std::set<std::string> Strings(const std::string& q) {
    auto r = sql->Exec(q);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    std::set<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.insert(r->Text(i, 0));
    return out;
  }

  int64_t RunIdOf(pid_t pid) {
    return Sql("SELECT coalesce(max(run_id), -1) FROM runs WHERE pid = " + std::to_string(pid));
  }

  // Every book of the corpus done exactly once: at `uploaded`, nothing leased or failed, one
  // completion per stage, its archive and OCR in storage. Returns the books not done (lost).
  int64_t CheckEveryBookDoneOnce(int64_t books) {
    const int64_t uploaded =
        Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded' AND status = 'ready'");
    CHECK(uploaded == books);
    CHECK(Sql("SELECT count(*) FROM jobs") == books);
    // A book reaches `uploaded` once: one event at that stage ("completed", or e.g.
    // "skipped_etag_match" when a fenced-out holder had already stored the same object).
    CHECK(Sql("SELECT count(*) FROM events WHERE stage = 'uploaded'") == books);
    CHECK(Sql("SELECT count(DISTINCT barcode) FROM events WHERE stage = 'uploaded'") == books);
    // No stage completed twice (every event but the lease bookkeeping is a completion here: these
    // runs have no failures).
    const int64_t twice = Sql(
        "SELECT count(*) FROM (SELECT barcode, stage FROM events WHERE outcome NOT IN "
        "('reclaimed', 'released', 'dead_crash_loop') GROUP BY barcode, stage "
        "HAVING count(*) > 1) x");
    CHECK(twice == 0);
    auto outcomes = sql->Exec("SELECT stage || ':' || outcome || '=' || count(*) FROM events "
                              "GROUP BY stage, outcome ORDER BY 1");
    REQUIRE(outcomes.ok());
    std::string list;
    for (int i = 0; i < outcomes->rows(); ++i) list += (i ? " " : "") + outcomes->Text(i, 0);
    Figure("events (stage:outcome=n)", list);
    Figure("stage completions recorded twice", std::to_string(twice));
    int64_t missing = 0;
    for (const auto& b : Strings("SELECT barcode FROM jobs")) {
      if (!fs::exists(storage + "/raw/" + b + "/" + b + ".tar.gz") ||
          !fs::exists(storage + "/full/" + b + "_ocr.jsonl.gz")) {
        ++missing;
      }
    }
    CHECK(missing == 0);
    Figure("books without their stored objects", std::to_string(missing));
    return books - uploaded;
  }

  // Books whose archive GRIN served more than once, among those not in `except`.
  int64_t FetchedTwice(const std::set<std::string>& except) {
    int64_t n = 0;
    for (const auto& [key, st] : server->Stats().barcodes) {
      const std::string b = key.substr(key.find('/') + 1);
      if (st.gets > 1 && except.count(b) == 0) {
        MESSAGE(b << " fetched " << st.gets << " times");
        ++n;
      }
    }
    return n;
  }

  TempDir tmp;
  std::unique_ptr<PgCluster> cluster;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::unique_ptr<storage::pg::PgConnection> sql;
  std::string uri, storage;
  std::vector<std::string> dirs;
};

struct LeaseEnv {
  explicit LeaseEnv(const char* seconds) { ::setenv("GRIN_JOBS_PG_LEASE_SECONDS", seconds, 1); }
  ~LeaseEnv() { ::unsetenv("GRIN_JOBS_PG_LEASE_SECONDS"); }
};

TEST_CASE("pg scale: 4 sync processes, one SIGKILLed and restarted, every book done once") {
  PG_SKIP_WITHOUT_POSTGRES();
  const int books = EnvInt("GRIN_PG_SCALE_BOOKS", 300);
  constexpr int kSyncs = 4;
  LeaseEnv lease("3");  // a killed sync's leases expire 3 s after its last heartbeat
  ScaleRun run(books, nullptr);
  for (int i = 0; i < kSyncs; ++i) run.AddRunDir(run.uri);
  auto collect = Cli({"collect", "--run-dir", run.dirs[0]});
  REQUIRE_MESSAGE(collect.code == 0, collect.err);
  REQUIRE(run.Sql("SELECT count(*) FROM books") == books);

  const auto start = Clock::now();
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  struct Guard {  // a failed REQUIRE leaves no sync behind
    std::vector<pid_t>& pids;
    ~Guard() {
      for (pid_t& pid : pids) {
        if (pid > 0 && Reap(pid, false) < 0) {
          ::kill(pid, SIGKILL);
          (void)Reap(pid, true);
        }
      }
    }
  } guard{pids};
  for (int i = 0; i < kSyncs; ++i) {
    logs.push_back((run.tmp.path() / ("sync" + std::to_string(i) + ".log")).string());
    pids.push_back(Spawn(run.SyncArgv(run.dirs[i]), logs[i]));
  }
  // Mid-run: a quarter of the books stored.
  while (run.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'") < books / 4) {
    REQUIRE_MESSAGE(Since(start) < 600, "no progress: " << ReadText(logs[0]));
    REQUIRE_MESSAGE(Reap(pids[0], false) < 0, "sync 0 ended early: " << ReadText(logs[0]));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t victim_run = run.RunIdOf(pids[0]);
  REQUIRE(victim_run > 0);
  REQUIRE(::kill(pids[0], SIGKILL) == 0);
  const auto killed_at = Clock::now();
  CHECK(Reap(pids[0], true) == 128 + SIGKILL);
  pids[0] = -1;
  const int64_t held = run.Sql("SELECT count(*) FROM jobs WHERE status = 'leased' AND lease_run = " +
                               std::to_string(victim_run));
  const int64_t done_at_kill = run.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'");
  // The killed host comes back: a new sync from the same run directory.
  pids[0] = Spawn(run.SyncArgv(run.dirs[0]), logs[0]);

  double reclaim_s = -1;
  std::vector<int> codes(kSyncs, -1);
  for (int left = kSyncs; left > 0;) {
    REQUIRE_MESSAGE(Since(start) < 900, "the syncs did not finish");
    if (reclaim_s < 0 &&
        run.Sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed' AND "
                "(detail::jsonb ->> 'from_run')::bigint = " + std::to_string(victim_run)) > 0) {
      reclaim_s = Since(killed_at);
    }
    for (int i = 0; i < kSyncs; ++i) {
      if (codes[i] < 0 && (codes[i] = Reap(pids[i], false)) >= 0) {
        pids[i] = -1;
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double wall = Since(start);
  for (int i = 0; i < kSyncs; ++i) CHECK_MESSAGE(codes[i] == 0, ReadText(logs[i]));

  const int64_t lost = run.CheckEveryBookDoneOnce(books);
  const auto reclaimed = run.Strings(
      "SELECT barcode FROM events WHERE outcome = 'reclaimed' AND "
      "(detail::jsonb ->> 'from_run')::bigint = " + std::to_string(victim_run));
  // The killed sync's leased books were taken back (only after its lease ran out) and finished
  // by the others; it completed nothing after the kill.
  CHECK(static_cast<int64_t>(reclaimed.size()) == held);
  if (held > 0) CHECK(reclaim_s >= 2.0);
  const int64_t twice = run.FetchedTwice(reclaimed);
  CHECK(twice == 0);
  CHECK(run.Sql("SELECT count(DISTINCT run_id) FROM events WHERE stage = 'uploaded' AND "
                "outcome = 'completed'") >= 3);  // the run really was shared
  CHECK(run.Sql("SELECT count(*) FROM workers WHERE ended_at IS NULL AND "
                "lease_expires_at > now()") == 0);

  Figure("books", std::to_string(books));
  Figure("sync processes", std::to_string(kSyncs) + " (+1 restarted after the kill)");
  Figure("wall s", wall);
  Figure("books/s", books / wall);
  Figure("uploaded when killed", std::to_string(done_at_kill));
  Figure("books held by the killed sync", std::to_string(held));
  Figure("reclaim s after kill (lease 3 s)", reclaim_s);
  Figure("double claims (archives fetched twice, not the killed sync's)", std::to_string(twice));
  Figure("lost", std::to_string(lost));
}

// The syncs for the partition tests: two on this host, one in the namespace.
struct PartitionRun {
  PartitionRun(int books, const NetNs& ns, const std::string& remote_query) : run(books, &ns) {
    local[0] = run.AddRunDir(run.uri);
    local[1] = run.AddRunDir(run.uri);
    std::string remote_uri = run.uri;
    remote_uri.replace(remote_uri.find("127.0.0.1"), 9, ns.host_ip());
    remote = run.AddRunDir(remote_uri + remote_query, ns.host_ip());
    auto collect = Cli({"collect", "--run-dir", local[0]});
    REQUIRE_MESSAGE(collect.code == 0, collect.err);
    remote_log = (run.tmp.path() / "remote.log").string();
    for (int i = 0; i < 2; ++i) {
      local_log[i] = (run.tmp.path() / ("local" + std::to_string(i) + ".log")).string();
    }
  }

  // Starts the remote sync in the namespace and waits until it has stored `stored` books.
  void StartRemote(const NetNs& ns, int64_t stored) {
    std::vector<std::string> argv = ns.ExecPrefix();
    for (const auto& a : run.SyncArgv(remote)) argv.push_back(a);
    remote_pid = Spawn(argv, remote_log);
    const auto t = Clock::now();
    while (remote_run <= 0 || Uploaded(remote_run) < stored) {
      REQUIRE_MESSAGE(Since(t) < 120, "the remote sync stored nothing: " << ReadText(remote_log));
      REQUIRE_MESSAGE(Reap(remote_pid, false) < 0, "remote sync ended: " << ReadText(remote_log));
      remote_run = run.RunIdOf(remote_pid);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // It really talks over the veth.
    CHECK(run.Sql("SELECT count(*) FROM pg_stat_activity WHERE client_addr = '" + ns.ns_ip() +
                  "'") >= 1);
  }

  // Cuts the link while the remote sync holds leases (with none, there is nothing to take
  // back: the link is restored and cut again a moment later). Returns when it was cut.
  Clock::time_point Cut(NetNs& ns) {
    const auto t = Clock::now();
    for (;;) {
      REQUIRE_MESSAGE(Since(t) < 60, "the remote sync never held a lease when cut");
      if (Leased() > 0) {
        REQUIRE(ns.SetLink(false).ok());
        const auto cut_at = Clock::now();
        if ((held_at_cut = Leased()) > 0) return cut_at;
        REQUIRE(ns.SetLink(true).ok());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  int64_t Leased() {
    return run.Sql("SELECT count(*) FROM jobs WHERE status = 'leased' AND lease_run = " +
                   std::to_string(remote_run));
  }

  void StartLocal() {
    for (int i = 0; i < 2; ++i) local_pid[i] = Spawn(run.SyncArgv(local[i]), local_log[i]);
  }

  int64_t Uploaded(int64_t run_id) {
    return run.Sql("SELECT count(*) FROM events WHERE stage = 'uploaded' AND outcome = "
                   "'completed' AND run_id = " + std::to_string(run_id));
  }
  int64_t ReclaimedFromRemote() {
    return run.Sql("SELECT count(*) FROM events WHERE outcome = 'reclaimed' AND "
                   "(detail::jsonb ->> 'from_run')::bigint = " + std::to_string(remote_run));
  }
  void WaitLocal() {
    for (int i = 0; i < 2; ++i) {
      const int code = Reap(local_pid[i], true);
      local_pid[i] = -1;
      CHECK_MESSAGE(code == 0, ReadText(local_log[i]));
    }
  }

  ~PartitionRun() {  // a failed REQUIRE leaves no sync behind
    for (pid_t pid : {local_pid[0], local_pid[1], remote_pid}) {
      if (pid > 0 && Reap(pid, false) < 0) {
        ::kill(pid, SIGKILL);
        (void)Reap(pid, true);
      }
    }
  }

  ScaleRun run;
  std::string local[2], remote;
  std::string local_log[2], remote_log;
  pid_t local_pid[2] = {-1, -1};
  pid_t remote_pid = -1;
  int64_t remote_run = -1;
  int64_t held_at_cut = 0;
};

// A namespace for the remote sync, or nullptr after saying why it is skipped (not root, no
// `ip`, a kernel or container that refuses namespaces).
std::unique_ptr<NetNs> NetnsOrSkip() {
  auto ns = NetNs::Create();
  if (ns.ok()) return std::move(*ns);
  MESSAGE("skipped: " << ns.status().message());
  std::fprintf(stderr, "GRIN_TEST_SKIPPED: %s\n", ns.status().message().c_str());
  return nullptr;
}

TEST_CASE("pg scale: a sync on another host cut off mid-run is fenced out when the link returns") {
  PG_SKIP_WITHOUT_POSTGRES();
  auto ns = NetnsOrSkip();
  if (!ns) return;
  const int books = EnvInt("GRIN_PG_SCALE_NETNS_BOOKS", 200);
  LeaseEnv lease("2");
  // The remote sync's connections survive a cut shorter than 15 s (TCP retransmits), so its
  // writes arrive late, after its leases were taken back. The server's end gives up on it
  // sooner (keepalives after 1 s idle, 2 probes 1 s apart, unacknowledged replies for 3 s, in
  // place of kTcpDefaults' 20-25 s), so a transaction it left open when cut ends, with its row locks, before the others need
  // them.
  PartitionRun p(books, *ns,
                 "?tcp_user_timeout=15000&keepalives_idle=15&options=-c%20tcp_keepalives_idle%3D1"
                 "%20-c%20tcp_keepalives_interval%3D1%20-c%20tcp_keepalives_count%3D2"
                 "%20-c%20tcp_user_timeout%3D3000");
  p.StartRemote(*ns, 3);
  const auto cut_at = p.Cut(*ns);  // the partition
  const int64_t before = p.Uploaded(p.remote_run);
  p.StartLocal();
  // Its leases expire (2 s after its last heartbeat) and the local syncs take its books.
  double reclaim_s = -1;
  while (p.ReclaimedFromRemote() == 0) {
    REQUIRE_MESSAGE(Since(cut_at) < 60, "nothing taken back from the cut-off sync; "
                                            << p.Leased() << " leased; sessions: "
                                            << *p.run.Strings(
                                                   "SELECT string_agg(coalesce(host(client_addr),"
                                                   "'-') || ' ' || state || ' ' || "
                                                   "coalesce(wait_event_type, '') || ':' || "
                                                   "coalesce(wait_event, '') || ' ' || "
                                                   "left(query, 120), E'\\n') FROM "
                                                   "pg_stat_activity WHERE datname = "
                                                   "current_database()").begin()
                                            << "\nlocal log: "
                                            << ReadText(p.local_log[0]));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reclaim_s = Since(cut_at);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE(ns->SetLink(true).ok());  // healed before its TCP gives up
  const double cut_s = Since(cut_at);
  p.WaitLocal();
  int remote_code = -1;
  while ((remote_code = Reap(p.remote_pid, false)) < 0) {
    REQUIRE_MESSAGE(Since(cut_at) < 120, "the remote sync hangs: " << ReadText(p.remote_log));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  p.remote_pid = -1;
  CHECK(remote_code < 128);  // it ended by itself: done (0) or its connection lost (1)
  const std::string remote_logs = Logs(p.remote, "/dev/null");  // the run's log file
  INFO(remote_logs.substr(remote_logs.size() > 6000 ? remote_logs.size() - 6000 : 0));
  const size_t stale = Count(remote_logs, "job.stale_write");
  CHECK(stale >= 1);  // its late completions were refused
  // Nothing was recorded twice, nothing is lost; what the cut-off sync completed after the cut
  // is only what it completed before its lease was taken back.
  const int64_t lost = p.run.CheckEveryBookDoneOnce(books);
  // Its leases were taken back: those it held when cut (plus any it claimed or un-completed
  // in a transaction the cut left open, which the server rolled back).
  CHECK(p.ReclaimedFromRemote() >= 1);
  Figure("netns books", std::to_string(books));
  Figure("netns books leased by the remote when cut", std::to_string(p.held_at_cut));
  Figure("netns cut s (lease 2 s)", cut_s);
  Figure("netns reclaim s after the cut", reclaim_s);
  Figure("netns remote uploads before the cut", std::to_string(before));
  Figure("netns books taken back from the remote", std::to_string(p.ReclaimedFromRemote()));
  Figure("netns stale writes refused (job.stale_write)", std::to_string(stale));
  Figure("netns remote exit code", std::to_string(remote_code));
  Figure("netns lost", std::to_string(lost));
}

TEST_CASE("pg scale: a sync on another host cut off for good ends with an error in bounded time") {
  PG_SKIP_WITHOUT_POSTGRES();
  auto ns = NetnsOrSkip();
  if (!ns) return;
  const int books = EnvInt("GRIN_PG_SCALE_NETNS_BOOKS", 200);
  LeaseEnv lease("2");
  // Short TCP limits in the URI (they override the defaults, kTcpDefaults) and connect_timeout.
  PartitionRun p(books, *ns,
                 "?tcp_user_timeout=3000&keepalives_idle=2&keepalives_interval=1"
                 "&keepalives_count=2&connect_timeout=3");
  p.StartRemote(*ns, 3);
  const auto cut_at = p.Cut(*ns);  // the partition
  p.StartLocal();
  int remote_code = -1;
  while ((remote_code = Reap(p.remote_pid, false)) < 0) {
    REQUIRE_MESSAGE(Since(cut_at) < 60, "the cut-off sync hangs: " << ReadText(p.remote_log));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  p.remote_pid = -1;
  const double noticed_s = Since(cut_at);
  const std::string out = ReadText(p.remote_log);
  INFO(out);
  // A clear end: non-zero, its last words name the database and say it is unreachable.
  CHECK(remote_code != 0);
  CHECK(remote_code < 128);  // not killed by a signal
  CHECK(out.find("grin-jobs sync: postgresql://") != std::string::npos);
  CHECK(out.find("unreachable") != std::string::npos);
  p.WaitLocal();
  REQUIRE(ns->SetLink(true).ok());
  const int64_t lost = p.run.CheckEveryBookDoneOnce(books);
  Figure("netns cut off for good: remote exit code", std::to_string(remote_code));
  Figure("netns cut off for good: s until it ended (tcp_user_timeout 3 s)", noticed_s);
  Figure("netns cut off for good: lost", std::to_string(lost));
}

}  // namespace
}  // namespace grin::testing
