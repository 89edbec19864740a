// Several worker processes share one run on PostgreSQL (issue 21 item 4, at the state store's
// level: no GRIN, no bucket): each is pg_worker_child with its own PgStateStore, on a throwaway
// cluster. Every job ends uploaded with exactly one completion event; a worker killed with
// SIGKILL keeps its jobs only until its leases run out by the database's clock, then the others
// take them back and finish them; a worker stopped (SIGSTOP: no heartbeats, as if partitioned
// from the database) past its lease finds its late completions refused when it resumes; and a
// worker on a second "host" (a network namespace behind a veth pair, run as root) partitioned
// from the database mid-run loses its leases and is fenced out when the link returns.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/fn_deleter.h"
#include "engine/base/subprocess.h"
#include "storage/postgres/pg_state_store.h"
#include "tests/support/netns.h"
#include "tests/support/pg_cluster.h"

namespace grin::testing {
namespace {

using PgConn = std::unique_ptr<PGconn, FnDeleter<PQfinish>>;
using PgResult = std::unique_ptr<PGresult, FnDeleter<PQclear>>;
using SteadyClock = std::chrono::steady_clock;

// One number from sql, or -1 (with the error in a MESSAGE).
int64_t QueryInt(const std::string& conninfo, const std::string& sql) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    MESSAGE("connect: " << PQerrorMessage(conn.get()));
    return -1;
  }
  PgResult res(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1) {
    MESSAGE(sql << ": " << PQerrorMessage(conn.get()));
    return -1;
  }
  return std::atoll(PQgetvalue(res.get(), 0, 0));
}

struct Worker {
  Subprocess proc;
  std::string out;
};

// The worker's stdout is parent_fds()[0]; with_stdin, its stdin is parent_fds()[1]. prefix runs
// it through another program (e.g. ip netns exec <ns>).
Worker StartWorker(const std::vector<std::string>& args, bool with_stdin = false,
                   const std::vector<std::string>& prefix = {}) {
  std::vector<std::string> argv = prefix;
  argv.push_back(GRIN_PG_WORKER_CHILD);
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<ChildPipe> pipes = {ChildPipe{1, PipeDir::kChildWrites}};
  if (with_stdin) pipes.push_back(ChildPipe{0, PipeDir::kChildReads});
  auto p = Subprocess::Spawn(argv, MinimalEnv({}), pipes);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return Worker{std::move(p).value(), ""};
}

// Reads the worker's stdout until it has a full line (returns it) or EOF/timeout ("").
std::string ReadLine(Worker& w, int timeout_s) {
  int fd = w.proc.parent_fds()[0].get();
  auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_s);
  while (SteadyClock::now() < deadline) {
    size_t nl = w.out.find('\n');
    if (nl != std::string::npos) {
      std::string line = w.out.substr(0, nl);
      w.out.erase(0, nl + 1);
      return line;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return "";
    if (n > 0) w.out.append(buf, static_cast<size_t>(n));
  }
  return "";
}

// Waits for a drain worker: its "done <completed> <refused>" line and exit 0. Returns completed.
int64_t FinishDrain(Worker& w) {
  std::string line = ReadLine(w, 180);
  auto st = w.proc.Wait();
  REQUIRE(st.ok());
  CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), "worker exit status " << *st);
  std::istringstream in(line);
  std::string word;
  int64_t completed = -1, refused = -1;
  in >> word >> completed >> refused;
  CHECK_MESSAGE(word == "done", "worker said: " << line);
  if (refused > 0) MESSAGE("a worker had " << refused << " completions refused (lease lost)");
  return completed;
}

// Waits for a holding worker's "claimed <n> <run id>" line; checks it holds `expected` jobs and
// returns its run id.
int64_t AwaitClaimed(Worker& w, int expected) {
  std::string line = ReadLine(w, 60);
  std::istringstream in(line);
  std::string word;
  int64_t held = -1, run_id = -1;
  in >> word >> held >> run_id;
  REQUIRE_MESSAGE(word == "claimed", "worker said: " << line);
  REQUIRE(held == expected);
  return run_id;
}

std::vector<std::string> Barcodes(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("PW" + std::to_string(100000 + i));
  return v;
}

// A cluster and a database holding n jobs at pending; nullptr if PostgreSQL is missing.
struct Run {
  std::unique_ptr<PgCluster> cluster;
  std::string db;
};
std::unique_ptr<Run> StartRun(int jobs, const PgClusterOptions& options = {}) {
  if (Status a = PgCluster::Available(); !a.ok()) {
    MESSAGE("skipped: " << a.message());
    return nullptr;
  }
  auto run = std::make_unique<Run>();
  auto c = PgCluster::Start(options);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  run->cluster = std::move(c).value();
  auto db = run->cluster->CreateDatabase("workers");
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  run->db = *db;
  storage::PgStateStoreOptions o;
  o.heartbeat_interval_micros = 0;
  auto s = storage::PgStateStore::Open(run->db, o);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  auto n = (*s)->Enqueue(Barcodes(jobs));
  REQUIRE_MESSAGE(n.ok(), n.status().ToString());
  REQUIRE(*n == jobs);
  return run;
}

void CheckEveryJobDoneOnce(const std::string& db, int jobs) {
  CHECK(QueryInt(db, "SELECT count(*) FROM jobs WHERE stage = 'uploaded' AND status = 'ready'") ==
        jobs);
  CHECK(QueryInt(db, "SELECT count(*) FROM jobs WHERE status <> 'ready'") == 0);
  CHECK(QueryInt(db, "SELECT count(*) FROM events WHERE outcome = 'completed'") == jobs);
  CHECK(QueryInt(db, "SELECT count(DISTINCT barcode) FROM events WHERE outcome = 'completed'") ==
        jobs);
}

TEST_CASE("4 worker processes drain 10000 jobs of one PostgreSQL run, each completed once") {
  constexpr int kJobs = 10000, kWorkers = 4;
  auto run = StartRun(kJobs);
  if (!run) return;
  std::vector<Worker> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(StartWorker({run->db, "drain", std::to_string(kJobs), "32"}));
  }
  int64_t completed = 0;
  for (auto& w : workers) completed += FinishDrain(w);
  CHECK(completed == kJobs);  // acknowledged completions: no job twice, none lost
  CheckEveryJobDoneOnce(run->db, kJobs);
  // The run really was shared.
  CHECK(QueryInt(run->db,
                 "SELECT count(DISTINCT run_id) FROM events WHERE outcome = 'completed'") >= 2);
}

TEST_CASE("a SIGKILLed worker's jobs are taken back after its lease runs out and finished") {
  constexpr int kJobs = 2000, kHeld = 100;
  auto run = StartRun(kJobs);
  if (!run) return;
  Worker holder = StartWorker({run->db, "hold", std::to_string(kHeld)});
  const int64_t holder_run = AwaitClaimed(holder, kHeld);
  // Alive, it heartbeats: after more than a lease time its jobs are still its own.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  CHECK(QueryInt(run->db, "SELECT count(*) FROM jobs WHERE status = 'leased' AND lease_run = " +
                              std::to_string(holder_run) + " AND lease_expires_at > now()") ==
        kHeld);
  holder.proc.Kill();
  auto killed_at = SteadyClock::now();

  std::vector<Worker> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(StartWorker({run->db, "drain", std::to_string(kJobs), "50"}));
  }
  int64_t completed = 0;
  for (auto& w : workers) completed += FinishDrain(w);
  double waited = std::chrono::duration<double>(SteadyClock::now() - killed_at).count();
  CHECK(completed == kJobs);
  CheckEveryJobDoneOnce(run->db, kJobs);
  // The held jobs were taken back from the dead run (not before its lease ran out: 3 s after
  // its last heartbeat, at most 0.3 s before the kill) and none was completed by it.
  CHECK(waited >= 2.5);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'reclaimed' AND "
                          "(detail::jsonb ->> 'from_run')::bigint = " +
                              std::to_string(holder_run)) == kHeld);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'completed' AND run_id = " +
                              std::to_string(holder_run)) == 0);
}

TEST_CASE("a worker stopped past its lease is fenced out when it resumes, its jobs done once") {
  constexpr int kJobs = 1000, kHeld = 40;
  auto run = StartRun(kJobs);
  if (!run) return;
  Worker late = StartWorker({run->db, "late", std::to_string(kHeld)}, /*with_stdin=*/true);
  const int64_t late_run = AwaitClaimed(late, kHeld);
  // Cut off: the process stops, its heartbeats with it (a partition, as the database sees it).
  REQUIRE(::kill(late.proc.pid(), SIGSTOP) == 0);
  std::vector<Worker> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(StartWorker({run->db, "drain", std::to_string(kJobs), "50"}));
  }
  int64_t completed = 0;
  for (auto& w : workers) completed += FinishDrain(w);
  CHECK(completed == kJobs);  // the held jobs too, once their leases ran out
  // Back: its completions come late and are all refused.
  REQUIRE(::kill(late.proc.pid(), SIGCONT) == 0);
  REQUIRE(WriteAll(late.proc.parent_fds()[1].get(), "go\n", 3).ok());
  std::string line = ReadLine(late, 60);
  auto st = late.proc.Wait();
  REQUIRE(st.ok());
  CHECK((WIFEXITED(*st) && WEXITSTATUS(*st) == 0));
  CHECK(line == "late 0 " + std::to_string(kHeld));
  CheckEveryJobDoneOnce(run->db, kJobs);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'completed' AND run_id = " +
                              std::to_string(late_run)) == 0);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'reclaimed' AND "
                          "(detail::jsonb ->> 'from_run')::bigint = " +
                              std::to_string(late_run)) == kHeld);
}

TEST_CASE("a worker on another host partitioned from the database is fenced out when it returns") {
  constexpr int kJobs = 1000, kHeld = 40;
  auto created = NetNs::Create();
  if (!created.ok()) {
    MESSAGE("skipped: " << created.status().message());
    return;
  }
  auto& ns = *created;
  PgClusterOptions co;
  co.extra_listen = {ns->host_ip()};
  co.extra_trusted = {ns->ns_ip() + "/32"};
  auto run = StartRun(kJobs, co);
  if (!run) return;
  std::string remote = "postgresql://grin@" + ns->host_ip() + ":" +
                       std::to_string(run->cluster->port()) + "/workers";
  Worker late = StartWorker({remote, "late", std::to_string(kHeld)}, /*with_stdin=*/true,
                            ns->ExecPrefix());
  const int64_t late_run = AwaitClaimed(late, kHeld);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM pg_stat_activity WHERE client_addr = '" +
                              ns->ns_ip() + "'") >= 1);  // it really talks over the veth

  REQUIRE(ns->SetLink(false).ok());  // the partition
  std::vector<Worker> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(StartWorker({run->db, "drain", std::to_string(kJobs), "50"}));
  }
  int64_t completed = 0;
  for (auto& w : workers) completed += FinishDrain(w);
  CHECK(completed == kJobs);
  REQUIRE(ns->SetLink(true).ok());  // healed: its late completions arrive and are refused

  REQUIRE(WriteAll(late.proc.parent_fds()[1].get(), "go\n", 3).ok());
  std::string line = ReadLine(late, 120);
  CHECK(line == "late 0 " + std::to_string(kHeld));
  auto st = late.proc.Wait();
  REQUIRE(st.ok());
  CHECK((WIFEXITED(*st) && WEXITSTATUS(*st) == 0));
  CheckEveryJobDoneOnce(run->db, kJobs);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'completed' AND run_id = " +
                              std::to_string(late_run)) == 0);
  CHECK(QueryInt(run->db, "SELECT count(*) FROM events WHERE outcome = 'reclaimed' AND "
                          "(detail::jsonb ->> 'from_run')::bigint = " +
                              std::to_string(late_run)) == kHeld);
}

}  // namespace
}  // namespace grin::testing
