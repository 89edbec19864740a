// The embeddable library (include/grin_jobs/) on PostgreSQL, through its public API only: a run
// made by Run::Create with a postgresql:// state on a throwaway cluster (tests/support/
// pg_cluster.h) collects and syncs a few books from the fake GRIN over HTTPS into a local folder,
// and its state is in the database (read back with libpq), not in a books.db; state_location()
// names the database without a password. What Create refuses (not a postgresql:// URI, a
// password in it, a server that is not there) leaves no run directory behind.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "grin_jobs/grin_jobs.h"
#include "storage/postgres/pg_connection.h"
#include "tests/fake_grin/fake_grin.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/temp_dir.h"

namespace grin::jobs {
namespace {

namespace fs = std::filesystem;

// A fake GRIN whose books are all converted, and the CreateOptions of a run on it.
struct Env {
  explicit Env(int64_t books) {
    fake::FakeGrinOptions o;
    o.corpus.size = books;
    o.corpus.seed = 29;
    o.corpus.frac_converted = 1.0;
    o.corpus.frac_in_process = 0;
    o.corpus.frac_failed = 0;
    o.corpus.frac_not_allowed = 0;
    o.range_support = true;
    o.threads = 4;
    o.state_dir = (tmp.path() / "fake").string();
    fs::create_directories(o.state_dir);
    auto s = fake::FakeGrinServer::Start(o);
    REQUIRE_MESSAGE(s.ok(), s.status().ToString());
    server = std::move(s).value();
    const std::string pass = server->state_dir() + "/gpg_passphrase.asc";
    grin::testing::WriteFile(pass, server->passphrase("TEST") + "\n");
    fs::permissions(pass, fs::perms::owner_read | fs::perms::owner_write);
    storage = (tmp.path() / "storage").string();
  }

  CreateOptions Create(const std::string& name, const std::string& state) const {
    CreateOptions c;
    c.run_dir = (tmp.path() / name).string();
    c.library_directory = "TEST";
    c.grin_base_url = server->base_url();
    c.grin_token_url = server->token_url();
    c.credentials_dir = server->state_dir();
    c.ca_file = server->ca_file();
    c.storage = {{"type", "local"}, {"base_path", storage}};
    c.state = state;
    return c;
  }

  grin::testing::TempDir tmp;
  std::unique_ptr<fake::FakeGrinServer> server;
  std::string storage;
};

int64_t Count(storage::pg::PgConnection& c, const std::string& sql) {
  auto r = c.Exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->Int(0, 0);
}

TEST_CASE("Run::Create with a PostgreSQL state: collect and sync keep the run's state there") {
  PG_SKIP_WITHOUT_POSTGRES();
  Env env(12);
  const std::string uri = grin::testing::FreshDatabase();
  const CreateOptions options = env.Create("pgrun", uri);
  auto created = Run::Create(options);
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  Run& run = **created;
  CHECK(run.state_location() == uri);
  CHECK_FALSE(fs::exists(run.db_path()));  // no books.db: the state is on the server
  // Opened again (another process, later): the same place.
  auto opened = Run::Open({options.run_dir, ""});
  REQUIRE(opened.ok());
  CHECK((*opened)->state_location() == uri);
  // The run directory holds it once: a second Create is refused.
  CHECK(Run::Create(options).status().code() == StatusCode::kAlreadyExists);

  auto collected = run.Collect({});
  REQUIRE_MESSAGE(collected.ok(), collected.status().ToString());
  CHECK(collected->rows == 12);
  SyncOptions so;
  so.queues = {"converted"};
  so.limit = 5;
  so.workers = 2;
  so.grin_requests_per_second = 0;
  auto synced = run.Sync(so);
  REQUIRE_MESSAGE(synced.ok(), synced.status().ToString());
  CHECK(synced->uploaded == 5);
  CHECK(synced->done());
  CHECK_FALSE(fs::exists(run.db_path()));

  // The state is in PostgreSQL: the books, five stored jobs with their events, nothing leased,
  // no sync worker still registered.
  auto conn = storage::pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  storage::pg::PgConnection& c = **conn;
  CHECK(Count(c, "SELECT count(*) FROM books") == 12);
  CHECK(Count(c, "SELECT count(*) FROM jobs") == 5);
  CHECK(Count(c, "SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
  CHECK(Count(c, "SELECT count(*) FROM events WHERE outcome = 'completed'") >= 5);
  CHECK(Count(c, "SELECT count(*) FROM workers WHERE ended_at IS NULL") == 0);
  auto up = c.Exec("SELECT barcode FROM uploaded");
  REQUIRE(up.ok());
  REQUIRE(up->rows() == 5);
  for (int i = 0; i < up->rows(); ++i) {
    const std::string b = up->Text(i, 0);
    CAPTURE(b);
    CHECK(fs::exists(env.storage + "/raw/" + b + "/" + b + ".tar.gz"));
    CHECK(fs::exists(env.storage + "/full/" + b + "_ocr.jsonl.gz"));
  }
}

TEST_CASE("Run::Create refuses a state it cannot use and leaves no run directory") {
  PG_SKIP_WITHOUT_POSTGRES();
  Env env(3);
  struct Case {
    std::string state;
    StatusCode code;
  } cases[] = {
      {"sqlite:///tmp/books.db", StatusCode::kInvalidArgument},
      {"postgresql://grin:s3cret-pw@127.0.0.1:1/grin_jobs", StatusCode::kInvalidArgument},
      {"postgresql://grin@127.0.0.1:1/grin_jobs?connect_timeout=5", StatusCode::kUnavailable},
  };
  for (const auto& k : cases) {
    CAPTURE(k.state);
    const CreateOptions options = env.Create("refused", k.state);
    auto r = Run::Create(options);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == k.code);
    CHECK(r.status().message().find("s3cret-pw") == std::string::npos);
    CHECK_FALSE(fs::exists(options.run_dir));
  }
  // A SQLite run (no state): its state is books.db.
  auto sqlite = Run::Create(env.Create("sqliterun", ""));
  REQUIRE_MESSAGE(sqlite.ok(), sqlite.status().ToString());
  CHECK((*sqlite)->state_location() == (*sqlite)->db_path());
  CHECK(fs::exists((*sqlite)->db_path()));
}

TEST_CASE("Run::state_location never shows a password written into run_config.json by hand") {
  grin::testing::TempDir tmp;
  const std::string dir = (tmp.path() / "run").string();
  fs::create_directories(dir);
  std::ofstream(dir + "/run_config.json")
      << R"({"library_directory": "TEST", "state": "postgresql://grin:s3cret-pw@db.example.org/gj"})";
  auto run = Run::Open({dir, ""});  // reads the config only: no server is reached
  REQUIRE_MESSAGE(run.ok(), run.status().ToString());
  CHECK((*run)->state_location().find("s3cret-pw") == std::string::npos);
  CHECK((*run)->state_location().find("db.example.org") != std::string::npos);
}

}  // namespace
}  // namespace grin::jobs
