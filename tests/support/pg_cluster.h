#pragma once
// PgCluster: a throwaway PostgreSQL server for tests and benchmarks.
//
// Start() runs initdb into a fresh temporary directory, configures the server to listen on
// 127.0.0.1 at a free port and on a unix socket inside that directory, with trust
// authentication for loopback and that socket only (pg_hba.conf has no other line unless the
// options name extra networks), and starts it
// with pg_ctl. The returned cluster's conninfo() is a libpq URI
// (postgresql://grin@127.0.0.1:<port>/postgres; "grin" is the superuser).
//
// Teardown: Stop() (and the destructor, so also when a failed REQUIRE throws through the test)
// stops the server with pg_ctl (fast, then immediate, then SIGKILL of the postmaster if it is
// still there) and removes the whole directory. A test process killed outright (SIGKILL) leaves
// the server running: nothing in-process can prevent that.
//
// Privileges: initdb refuses to run as root. When the effective uid is 0, initdb, pg_ctl and so
// the server run as the unprivileged user `nobody` (through setpriv, argv only, no shell), and
// the temporary directory is owned by it. Otherwise they run as the calling user.
//
// Binaries: initdb and pg_ctl are taken from $GRIN_PG_BINDIR, else the newest
// /usr/lib/postgresql/<N>/bin (Debian's postgresql-N), else PATH. When they are missing,
// Available() and Start() return kUnavailable with a message naming what to install, so a test
// can print it and skip.
//
// Thread safety: a PgCluster is used by one thread at a time; any number of threads and processes
// may connect to the server it runs.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::testing {

struct PgClusterOptions {
  // false (tests): fsync, synchronous_commit and full_page_writes off, which is fast and fine
  // for a server thrown away afterwards. true (benchmarks): PostgreSQL's durable defaults.
  bool durable = false;
  int max_connections = 100;
  // Extra postgresql.conf lines ("name = value"), appended after ours.
  std::vector<std::string> settings;
  // For tests that simulate hosts (network namespaces): more IPv4 addresses to listen on besides
  // 127.0.0.1, and the client networks ("10.231.7.2/32") trusted on them. Empty: loopback only.
  std::vector<std::string> extra_listen;
  std::vector<std::string> extra_trusted;
};

class PgCluster {
 public:
  // OK if the server binaries are present; kUnavailable saying what to install otherwise.
  static Status Available();

  // Creates and starts a cluster. Errors: kUnavailable (binaries missing, initdb or the server
  // failed; the message carries the tail of their output), kInternal (temp dir, user lookup).
  static Result<std::unique_ptr<PgCluster>> Start(const PgClusterOptions& options = {});

  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // libpq URI of the database "postgres" over loopback TCP.
  const std::string& conninfo() const { return conninfo_; }
  // libpq URI of another database of this cluster (over loopback TCP).
  std::string ConnInfo(std::string_view database) const;

  // Creates database `name` (1-63 of [a-z0-9_], starting with a letter) and returns its URI.
  Result<std::string> CreateDatabase(std::string_view name);

  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }          // removed by Stop()
  const std::filesystem::path& socket_dir() const { return dir_; }   // holds .s.PGSQL.<port>
  pid_t server_pid() const { return server_pid_; }                   // the postmaster
  // The server log (for messages when something goes wrong); "" after Stop().
  std::string LogTail(size_t max_bytes = 2000) const;

  // Stops the server and removes the directory. Idempotent. Returns the first problem seen
  // (the directory is removed in any case).
  Status Stop();

  // True if pid names a live process (not a zombie).
  static bool ProcessAlive(pid_t pid);

 private:
  PgCluster() = default;
  Status Init(const PgClusterOptions& options);
  Result<std::string> RunTool(const std::vector<std::string>& args) const;

  std::string bindir_;
  std::vector<std::string> as_user_;  // argv prefix that drops root (empty when not root)
  std::filesystem::path dir_;
  std::filesystem::path data_;
  std::filesystem::path log_;
  int port_ = 0;
  pid_t server_pid_ = -1;
  bool running_ = false;
  std::string conninfo_;
};

}  // namespace grin::testing
