#include "tests/support/pg_cluster.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/base/fn_deleter.h"
#include "engine/base/subprocess.h"

namespace grin::testing {
namespace {

namespace fs = std::filesystem;
using PgConn = std::unique_ptr<PGconn, FnDeleter<PQfinish>>;
using PgResult = std::unique_ptr<PGresult, FnDeleter<PQclear>>;

constexpr char kSuperuser[] = "grin";
constexpr int kStartAttempts = 5;

bool HasTools(const fs::path& dir) {
  return ::access((dir / "initdb").c_str(), X_OK) == 0 &&
         ::access((dir / "pg_ctl").c_str(), X_OK) == 0;
}

// "" if not found.
std::string FindBinDir() {
  if (const char* e = std::getenv("GRIN_PG_BINDIR"); e != nullptr && *e != '\0') {
    return HasTools(e) ? std::string(e) : "";
  }
  std::error_code ec;
  int best_version = -1;
  std::string best;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    int version = std::atoi(name.c_str());
    if (version > best_version && HasTools(entry.path() / "bin")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (!best.empty()) return best;
  std::string initdb = FindInPath("initdb");
  if (!initdb.empty() && HasTools(fs::path(initdb).parent_path())) {
    return fs::path(initdb).parent_path().string();
  }
  return "";
}

Status MissingBinaries() {
  return Status::Unavailable(
      "PostgreSQL server binaries (initdb, pg_ctl) not found in $GRIN_PG_BINDIR, "
      "/usr/lib/postgresql/<N>/bin or PATH: install postgresql-15 (scripts/install-deps)");
}

// A port on 127.0.0.1 that nothing listens on right now (the server may still lose a race for
// it; Start() then tries another).
Result<int> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Internal(std::string("bind 127.0.0.1:0: ") + std::strerror(err));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string Tail(const std::string& s, size_t max_bytes) {
  return s.size() <= max_bytes ? s : s.substr(s.size() - max_bytes);
}

// One line: newlines become " | " so a Status message stays on one line.
std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += " | ";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool ValidDatabaseName(std::string_view name) {
  if (name.empty() || name.size() > 63 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Status AppendToFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << text;
  out.flush();
  if (!out) return Status::Internal("cannot write " + p.string());
  return Status::Ok();
}

// Replaces the contents of an existing file, keeping its owner and mode.
Status RewriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) return Status::Internal("cannot write " + p.string());
  return Status::Ok();
}

pid_t ReadPostmasterPid(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  long pid = -1;
  if (!(in >> pid)) return -1;
  return static_cast<pid_t>(pid);
}

}  // namespace

Status PgCluster::Available() {
  return FindBinDir().empty() ? MissingBinaries() : Status::Ok();
}

Result<std::unique_ptr<PgCluster>> PgCluster::Start(const PgClusterOptions& options) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  Status s = c->Init(options);
  if (!s.ok()) {
    (void)c->Stop();  // removes whatever was made
    return s;
  }
  return c;
}

Result<std::string> PgCluster::RunTool(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = as_user_;
  argv.push_back(bindir_ + "/" + args[0]);
  argv.insert(argv.end(), args.begin() + 1, args.end());
  GRIN_ASSIGN_OR_RETURN(CapturedRun run, RunAndCapture(argv, MinimalEnv({}), ""));
  if (!run.exited_zero()) {
    return Status::Unavailable(args[0] + " failed: " + OneLine(Tail(run.err + run.out, 600)));
  }
  return run.out;
}

Status PgCluster::Init(const PgClusterOptions& options) {
  // Addresses and networks go into postgresql.conf and pg_hba.conf: digits, dots and '/' only.
  std::string listen = "127.0.0.1";
  std::string hba = "# grin-jobs throwaway test cluster: loopback (and networks a test names)\n"
                    "local all all trust\n"
                    "host all all 127.0.0.1/32 trust\n";
  auto plain = [](const std::string& a) {
    return !a.empty() && a.find_first_not_of("0123456789./") == std::string::npos;
  };
  for (const std::string& a : options.extra_listen) {
    if (!plain(a) || a.find('/') != std::string::npos) {
      return Status::InvalidArgument("extra_listen: not an IPv4 address: " + a);
    }
    listen += "," + a;
  }
  for (const std::string& n : options.extra_trusted) {
    if (!plain(n) || n.find('/') == std::string::npos) {
      return Status::InvalidArgument("extra_trusted: not an IPv4 network (a.b.c.d/n): " + n);
    }
    hba += "host all all " + n + " trust\n";
  }
  bindir_ = FindBinDir();
  if (bindir_.empty()) return MissingBinaries();

  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  bool drop_root = uid == 0;
  if (drop_root) {
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) return Status::Internal("running as root and there is no user `nobody`");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    std::string setpriv = FindInPath("setpriv");
    if (setpriv.empty()) {
      return Status::Unavailable("running as root needs setpriv (util-linux) to run initdb as "
                                 "`nobody`");
    }
    as_user_ = {setpriv, "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(gid),
                "--clear-groups", "--"};
  }

  // The directory must be reachable by the server's user: under a private $TMPDIR (mode 0700,
  // root's) `nobody` could not get in, so root falls back to /tmp.
  std::string base = "/tmp";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
    struct stat st {};
    if (!drop_root || (::stat(t, &st) == 0 && (st.st_mode & S_IXOTH) != 0)) base = t;
  }
  std::string tmpl = base + "/grin-pg-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::Internal("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  dir_ = tmpl;
  if (dir_.string().find_first_of("'\\") != std::string::npos) {
    return Status::InvalidArgument("temporary directory has a quote or backslash: " +
                                   dir_.string());
  }
  if (drop_root && ::chown(dir_.c_str(), uid, gid) != 0) {
    return Status::Internal("chown " + dir_.string() + ": " + std::strerror(errno));
  }
  data_ = dir_ / "data";
  log_ = dir_ / "server.log";

  GRIN_ASSIGN_OR_RETURN(std::string unused,
                        RunTool({"initdb", "-D", data_.string(), "-U", kSuperuser, "-A", "trust",
                                 "-E", "UTF8", "--locale=C", "--no-sync"}));
  (void)unused;

  std::ostringstream conf;
  conf << "\n# grin-jobs throwaway test cluster (tests/support/pg_cluster.cc)\n"
       << "listen_addresses = '" << listen << "'\n"
       << "unix_socket_directories = '" << dir_.string() << "'\n"
       << "max_connections = " << options.max_connections << "\n"
       << "logging_collector = off\n";
  if (!options.durable) {
    conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  }
  for (const std::string& line : options.settings) conf << line << "\n";
  GRIN_RETURN_IF_ERROR(AppendToFile(data_ / "postgresql.conf", conf.str()));
  // Trust on the private socket and on loopback (and the networks asked for); nothing else may
  // connect at all.
  GRIN_RETURN_IF_ERROR(RewriteFile(data_ / "pg_hba.conf", hba));

  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    GRIN_ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
    // Later lines win: each attempt appends its port.
    GRIN_RETURN_IF_ERROR(AppendToFile(data_ / "postgresql.conf",
                                      "port = " + std::to_string(port) + "\n"));
    auto started = RunTool({"pg_ctl", "-D", data_.string(), "-l", log_.string(), "-w", "-t",
                            "60", "-s", "start"});
    if (started.ok()) {
      port_ = port;
      running_ = true;
      server_pid_ = ReadPostmasterPid(data_);
      break;
    }
    std::string log = LogTail(4000);
    last = started.status().WithContext("starting PostgreSQL on 127.0.0.1:" +
                                        std::to_string(port));
    // Lost the race for the port to another process: try another one.
    if (log.find("could not bind") == std::string::npos &&
        log.find("already in use") == std::string::npos) {
      break;
    }
  }
  if (!running_) {
    return Status::Unavailable(last.message() + "; server log: " + OneLine(LogTail(800)));
  }
  conninfo_ = ConnInfo("postgres");
  if (PQping(conninfo_.c_str()) != PQPING_OK) {
    return Status::Unavailable("PostgreSQL started but does not answer at " + conninfo_ +
                               "; server log: " + OneLine(LogTail(800)));
  }
  return Status::Ok();
}

std::string PgCluster::ConnInfo(std::string_view database) const {
  return "postgresql://" + std::string(kSuperuser) + "@127.0.0.1:" + std::to_string(port_) + "/" +
         std::string(database);
}

Result<std::string> PgCluster::CreateDatabase(std::string_view name) {
  if (!ValidDatabaseName(name)) {
    return Status::InvalidArgument("database name must be 1-63 of [a-z0-9_] starting with a "
                                   "letter: " + std::string(name));
  }
  PgConn conn(PQconnectdb(conninfo_.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return Status::Unavailable("connect " + conninfo_ + ": " +
                               OneLine(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  // The name is validated above, so quoting it as an identifier is exact.
  std::string sql = "CREATE DATABASE \"" + std::string(name) + "\"";
  PgResult res(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    return Status::Unavailable(sql + ": " + OneLine(PQerrorMessage(conn.get())));
  }
  return ConnInfo(name);
}

std::string PgCluster::LogTail(size_t max_bytes) const {
  if (log_.empty()) return "";
  std::ifstream in(log_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return Tail(ss.str(), max_bytes);
}

bool PgCluster::ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // A zombie still answers kill(0); it is gone for our purposes.
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return !stat.empty();
  return stat[paren + 2] != 'Z';
}

Status PgCluster::Stop() {
  Status first;
  if (running_) {
    running_ = false;
    auto fast = RunTool({"pg_ctl", "-D", data_.string(), "-m", "fast", "-w", "-t", "30", "-s",
                         "stop"});
    if (!fast.ok()) {
      first = fast.status();
      (void)RunTool({"pg_ctl", "-D", data_.string(), "-m", "immediate", "-w", "-t", "10", "-s",
                     "stop"});
    }
    if (ProcessAlive(server_pid_)) {
      ::kill(server_pid_, SIGKILL);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (ProcessAlive(server_pid_) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (first.ok()) first = Status::Internal("PostgreSQL did not stop; killed its postmaster");
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (ec && first.ok()) first = Status::Internal("remove " + dir_.string() + ": " + ec.message());
    dir_.clear();
    log_.clear();
  }
  return first;
}

PgCluster::~PgCluster() { (void)Stop(); }

}  // namespace grin::testing
