// The throwaway PostgreSQL cluster for tests (tests/support/pg_cluster.h): it answers over
// loopback TCP and its private socket, runs unprivileged, and leaves no process and no directory
// behind, also when the test fails inside its scope.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "engine/base/fn_deleter.h"
#include "tests/support/pg_cluster.h"

namespace grin::testing {
namespace {

namespace fs = std::filesystem;
using PgConn = std::unique_ptr<PGconn, FnDeleter<PQfinish>>;
using PgResult = std::unique_ptr<PGresult, FnDeleter<PQclear>>;

// The first column of the first row of sql, or "<error: ...>".
std::string QueryOne(const std::string& conninfo, const std::string& sql) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return std::string("<error: ") + PQerrorMessage(conn.get()) + ">";
  }
  PgResult res(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) < 1) {
    return std::string("<error: ") + PQerrorMessage(conn.get()) + ">";
  }
  return PQgetvalue(res.get(), 0, 0);
}

// Processes whose command line mentions `needle` (the cluster's directory).
int ProcessesMentioning(const std::string& needle) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string cmd;
    try {
      std::ifstream in(e.path() / "cmdline", std::ios::binary);
      cmd.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      continue;  // the process exited while it was read (ESRCH): it mentions nothing any more
    }
    if (cmd.find(needle) != std::string::npos && PgCluster::ProcessAlive(
            static_cast<pid_t>(std::atol(e.path().filename().c_str())))) {
      ++n;
    }
  }
  return n;
}

// The real uid of a process (from /proc/<pid>/status), -1 if unknown.
long UidOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return std::atol(line.c_str() + 4);
  }
  return -1;
}

#define SKIP_WITHOUT_POSTGRES()                                   \
  if (Status a = PgCluster::Available(); !a.ok()) {               \
    MESSAGE("skipped: " << a.message());                          \
    return;                                                       \
  }

TEST_CASE("a throwaway PostgreSQL cluster answers SELECT 1 and leaves nothing behind") {
  SKIP_WITHOUT_POSTGRES();
  fs::path dir;
  pid_t pid = -1;
  {
    auto started = PgCluster::Start();
    REQUIRE_MESSAGE(started.ok(), started.status().ToString());
    PgCluster& c = **started;
    dir = c.dir();
    pid = c.server_pid();
    CHECK(pid > 0);
    CHECK(PgCluster::ProcessAlive(pid));
    CHECK(fs::exists(dir / "data" / "PG_VERSION"));
    CHECK(c.conninfo().rfind("postgresql://grin@127.0.0.1:", 0) == 0);

    CHECK(QueryOne(c.conninfo(), "SELECT 1") == "1");
    CHECK(QueryOne(c.conninfo(), "SHOW listen_addresses") == "127.0.0.1");
    CHECK(QueryOne(c.conninfo(), "SELECT current_user") == "grin");
    // The private unix socket answers too.
    CHECK(fs::exists(dir / (".s.PGSQL." + std::to_string(c.port()))));
    CHECK(QueryOne("host=" + dir.string() + " port=" + std::to_string(c.port()) +
                       " user=grin dbname=postgres",
                   "SELECT 2") == "2");
    // initdb refuses root: the server never runs as root.
    CHECK(UidOf(pid) > 0);

    auto db = c.CreateDatabase("conformance_1");
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    CHECK(QueryOne(*db, "SELECT current_database()") == "conformance_1");
    CHECK(c.CreateDatabase("x\"; DROP DATABASE postgres; --").status().code() ==
          StatusCode::kInvalidArgument);
    CHECK(ProcessesMentioning(dir.string()) >= 1);
  }
  CHECK_FALSE(PgCluster::ProcessAlive(pid));
  CHECK_FALSE(fs::exists(dir));
  CHECK(ProcessesMentioning(dir.string()) == 0);
}

TEST_CASE("a PostgreSQL cluster is stopped and removed when the test fails inside its scope") {
  SKIP_WITHOUT_POSTGRES();
  fs::path dir;
  pid_t pid = -1;
  std::string conninfo;
  CHECK_THROWS_AS(
      [&] {
        auto started = PgCluster::Start();
        REQUIRE_MESSAGE(started.ok(), started.status().ToString());
        dir = (*started)->dir();
        pid = (*started)->server_pid();
        conninfo = (*started)->conninfo();
        // What a failed REQUIRE does: throw through the cluster's scope.
        throw std::runtime_error("simulated test failure");
      }(),
      std::runtime_error);
  REQUIRE(pid > 0);
  CHECK_FALSE(PgCluster::ProcessAlive(pid));
  CHECK_FALSE(fs::exists(dir));
  CHECK(PQping(conninfo.c_str()) == PQPING_NO_RESPONSE);
}

TEST_CASE("a cluster refuses extra addresses that are not plain IPv4") {
  PgClusterOptions o;
  o.extra_listen = {"10.0.0.1' port = 1"};
  CHECK(PgCluster::Start(o).status().code() == StatusCode::kInvalidArgument);
  o.extra_listen = {"10.0.0.1"};
  o.extra_trusted = {"0.0.0.0/0\nhost all all ::/0"};
  CHECK(PgCluster::Start(o).status().code() == StatusCode::kInvalidArgument);
  o.extra_trusted = {"10.0.0.2"};  // a network needs its /n
  CHECK(PgCluster::Start(o).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("without PostgreSQL binaries a cluster says what to install") {
  const char* old = std::getenv("GRIN_PG_BINDIR");
  std::string saved = old ? old : "";
  ::setenv("GRIN_PG_BINDIR", "/nonexistent/pg/bin", 1);
  Status available = PgCluster::Available();
  auto started = PgCluster::Start();
  if (old) {
    ::setenv("GRIN_PG_BINDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("GRIN_PG_BINDIR");
  }
  CHECK(available.code() == StatusCode::kUnavailable);
  CHECK(available.message().find("postgresql-15") != std::string::npos);
  REQUIRE_FALSE(started.ok());
  CHECK(started.status().code() == StatusCode::kUnavailable);
}

}  // namespace
}  // namespace grin::testing
