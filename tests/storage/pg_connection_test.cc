// PgConnection::Connect against a throwaway cluster of its own (its pg_hba.conf is edited):
// every connection gets TCP keepalives and tcp_user_timeout unless its URI sets them, and a
// failed connection is classified by the server's SQLSTATE and libpq's password flags, never by
// the words of the message (a database or role whose name says "role" or "password" is not a
// refused login).
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "storage/postgres/pg_connection.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/storage/pg_test_sql.h"

namespace grin::testing {
namespace {

using storage::pg::PgConnection;

// The connection's effective libpq options (what it was opened with).
std::map<std::string, std::string> Options(PgConnection& c) {
  std::map<std::string, std::string> out;
  PQconninfoOption* opts = PQconninfo(c.handle());
  for (PQconninfoOption* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

// The URI of database `db` as user `user` on the cluster (with an optional query string).
std::string Uri(const PgCluster& c, const std::string& user, const std::string& db,
                const std::string& query = "") {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(c.port()) + "/" + db + query;
}

TEST_CASE("PgConnection: TCP keepalives and tcp_user_timeout by default, the URI's own win") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string db = FreshDatabase();
  auto c = PgConnect(db);
  auto o = Options(*c);
  for (const auto& [k, v] : storage::pg::kTcpDefaults) {
    CAPTURE(k);
    CHECK(o[k] == v);
  }
  CHECK(o["tcp_user_timeout"] == "20000");
  CHECK(o["keepalives"] == "1");
  // The server's end of the socket has them too: a backend whose client vanished mid-transaction
  // ends (and frees its locks) in bounded time.
  for (const char* setting : {"tcp_keepalives_idle", "tcp_keepalives_interval",
                              "tcp_keepalives_count", "tcp_user_timeout"}) {
    CAPTURE(setting);
    auto r = c->Exec(std::string("SELECT current_setting('") + setting + "')");
    REQUIRE(r.ok());
    CHECK(r->Text(0, 0) == (std::string(setting) == "tcp_keepalives_idle"       ? "10"
                            : std::string(setting) == "tcp_keepalives_interval" ? "5"
                            : std::string(setting) == "tcp_keepalives_count"    ? "3"
                                                                                 : "20000"));
  }

  auto own = PgConnect(db + "?keepalives_idle=42&tcp_user_timeout=0&keepalives_count=7");
  auto oo = Options(*own);
  CHECK(oo["keepalives_idle"] == "42");
  CHECK(oo["tcp_user_timeout"] == "0");
  CHECK(oo["keepalives_count"] == "7");
  CHECK(oo["keepalives_interval"] == "5");  // the rest keep the defaults
  auto opt = PgConnect(db + "?options=-c%20tcp_keepalives_idle%3D33");
  auto r = opt->Exec("SELECT current_setting('tcp_keepalives_idle')");
  REQUIRE(r.ok());
  CHECK(r->Text(0, 0) == "33");
  r = opt->Exec("SELECT current_setting('tcp_keepalives_interval')");
  REQUIRE(r.ok());
  CHECK(r->Text(0, 0) == "5");  // the ones its options do not name keep ours
}

TEST_CASE("PgConnection::Connect: a refused login by SQLSTATE and password flags, not by words") {
  PG_SKIP_WITHOUT_POSTGRES();
  auto started = PgCluster::Start();
  REQUIRE_MESSAGE(started.ok(), started.status().ToString());
  auto& cluster = **started;
  {
    auto admin = PgConnect(cluster.conninfo());
    REQUIRE(admin->Exec("CREATE ROLE capped_role LOGIN CONNECTION LIMIT 0").ok());
    REQUIRE(admin->Exec("CREATE ROLE pw_user LOGIN PASSWORD 'right-password'").ok());
    REQUIRE(admin->Exec("CREATE DATABASE the_password_db").ok());
  }
  // pw_user must give a password over TCP (the first matching line wins).
  const auto hba = cluster.dir() / "data" / "pg_hba.conf";
  std::stringstream old;
  old << std::ifstream(hba).rdbuf();
  std::ofstream(hba, std::ios::trunc) << "host all pw_user 127.0.0.1/32 scram-sha-256\n"
                                      << old.str();
  {
    auto admin = PgConnect(cluster.conninfo());
    REQUIRE(PgQueryInt(*admin, "SELECT pg_reload_conf()::int") == 1);
  }
  ::setenv("PGPASSFILE", "/nonexistent/grin-jobs-test-pgpass", 1);
  ::unsetenv("PGPASSWORD");

  // Not a refused login, though the text says "role" or "password": a database that does not
  // exist (3D000) and a role over its connection limit (53300).
  auto nodb = PgConnection::Connect(Uri(cluster, "grin", "no_role_or_password_here"), "db");
  REQUIRE(!nodb.ok());
  CHECK(nodb.status().code() == StatusCode::kUnavailable);
  CHECK(nodb.status().message().find("3D000") != std::string::npos);
  CHECK(nodb.status().message().find("LOCATION") == std::string::npos);
  CHECK(nodb.status().message().find('\n') == std::string::npos);
  auto capped = PgConnection::Connect(Uri(cluster, "capped_role", "postgres"), "db");
  REQUIRE(!capped.ok());
  CHECK(capped.status().code() == StatusCode::kUnavailable);
  CHECK(capped.status().message().find("too many connections for role") != std::string::npos);

  // Refused logins: no such role (28000), no password given where one is needed, a wrong
  // password (28P01).
  auto nouser = PgConnection::Connect(Uri(cluster, "nosuch", "postgres"), "db");
  REQUIRE(!nouser.ok());
  CHECK(nouser.status().code() == StatusCode::kPermissionDenied);
  auto nopw = PgConnection::Connect(Uri(cluster, "pw_user", "the_password_db"), "db");
  REQUIRE(!nopw.ok());
  CHECK(nopw.status().code() == StatusCode::kPermissionDenied);
  CHECK(nopw.status().message().find("~/.pgpass") != std::string::npos);
  auto wrong = PgConnection::Connect(
      Uri(cluster, "pw_user", "the_password_db", "?password=wrong-one"), "db");
  REQUIRE(!wrong.ok());
  CHECK(wrong.status().code() == StatusCode::kPermissionDenied);
  CHECK(wrong.status().message().find("password was refused") != std::string::npos);
  CHECK(wrong.status().message().find("28P01") == std::string::npos);  // shown as libpq shows it
  auto right = PgConnection::Connect(
      Uri(cluster, "pw_user", "the_password_db", "?password=right-password"), "db");
  CHECK_MESSAGE(right.ok(), right.status().ToString());

  // No server at all: kUnavailable, the old hint.
  const int port = cluster.port();
  REQUIRE(cluster.Stop().ok());
  auto gone = PgConnection::Connect(
      "postgresql://grin@127.0.0.1:" + std::to_string(port) + "/postgres", "db");
  REQUIRE(!gone.ok());
  CHECK(gone.status().code() == StatusCode::kUnavailable);
  CHECK(gone.status().message().find("reachable") != std::string::npos);
  ::unsetenv("PGPASSFILE");
}

}  // namespace
}  // namespace grin::testing
