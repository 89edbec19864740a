// `sql`, `export` and `doctor` on a PostgreSQL run, and a PostgreSQL sync's teardown, against the
// fake GRIN and a throwaway cluster (tests/support/pg_cluster.h):
// - a synced SQLite run moved with migrate-state: export's CSV (both date formats, gzip) and
//   sql's answers (table, csv, json) are byte for byte what they were on SQLite; sql refuses
//   writes and several statements, and names bad SQL, in one line each;
// - a sync of a run made with `init --state` leaves books_export.csv(.gz) and report.html, the
//   CSV equal to `export`'s;
// - doctor passes on a healthy run, and fails its database check naming the problem when the
//   kept counts are off and when the server is stopped.
#include <cstdlib>
#include <sstream>

#include "storage/postgres/pg_connection.h"
#include "tests/pipeline/sync_fixture.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::pipeline::testing {
namespace {

namespace fs = std::filesystem;
using cli::testing::OneLine;

// A run made with `init --state uri` in <env.tmp>/<name>, on env's fake GRIN and storage.
std::string InitPgRun(SyncEnv& env, const std::string& uri, const std::string& name) {
  return env.InitRun((env.tmp.path() / name).string(), uri);
}

int64_t PgInt(const std::string& uri, const std::string& sql) {
  auto c = storage::pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  auto r = (*c)->Exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->Int(0, 0);
}

// A new database of the shared cluster collating by ICU's en-US ("alpha" before "Zeta", unlike
// bytes): what must come out in byte order does so by the query's own COLLATE.
std::string IcuDatabase() {
  auto c = storage::pg::PgConnection::Connect(grin::testing::SharedPgCluster()->conninfo(), "c");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  Status made = (*c)->ExecScript("CREATE DATABASE cmds_icu TEMPLATE template0 LOCALE_PROVIDER "
                                 "icu ICU_LOCALE 'en-US' LOCALE 'C'");
  REQUIRE_MESSAGE(made.ok(), made.ToString());
  const std::string uri = grin::testing::SharedPgCluster()->ConnInfo("cmds_icu");
  REQUIRE(PgInt(uri, "SELECT 'alpha' < 'Zeta'") == 1);
  return uri;
}

// Runs `export` into <tmp>/<name> and returns the file's text (gunzipped when gz).
std::string Export(SyncEnv& env, const std::string& run, const std::string& name,
                   std::vector<std::string> extra = {}) {
  const std::string path = (env.tmp.path() / name).string();
  std::vector<std::string> args = {"export", "--run-dir", run, "--output", path};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = Cli(args);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const bool gz = std::find(extra.begin(), extra.end(), "--gzip") != extra.end();
  return gz ? Gunzip(path) : grin::testing::ReadFile(path);
}

// The output line of doctor's check `name` ("" if none).
std::string DoctorLine(const std::string& out, const std::string& name) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(": ");
    if (line.size() > 6 && colon != std::string::npos && line.substr(6, colon - 6) == name) {
      return line;
    }
  }
  return "";
}

const std::vector<std::string> kQueries = {
    "SELECT barcode, stage, status, attempts, lease_token FROM jobs ORDER BY barcode",
    "SELECT count(*) AS n, avg(is_decrypted) AS mean, sum(is_decrypted) AS decrypted, "
    "avg(length(barcode)) AS len FROM books",
    "SELECT barcode, title, storage_path, is_decrypted, sync_timestamp, grin_state FROM books "
    "ORDER BY barcode LIMIT 12",
    "SELECT stage, outcome, count(*) AS n FROM events GROUP BY stage, outcome "
    "ORDER BY stage, outcome",
    "SELECT NULL AS empty, 1.5 AS x, 2.0 AS y, 7 AS i, 'a,\"b\"' AS s, 1 = 1 AS truth",
    "SELECT barcode FROM uploaded ORDER BY barcode",
};

TEST_CASE("export and sql on a PostgreSQL run answer as on the SQLite run it was moved from") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(30);
  REQUIRE(Cli({"collect", "--run-dir", env.run}).code == 0);
  auto sync = Cli(env.SyncArgs({"--queue", "converted", "--limit", "6"}));
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  {
    // Two books whose byte order ("Zeta..." first) is not en-US's.
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE, 10000);
    db.exec("INSERT INTO books (barcode, title, created_at, updated_at) VALUES "
            "('alpha_1', 'lower, first in en-US', '2026-01-01T00:00:00Z', "
            "'2026-01-01T00:00:00Z'), ('Zeta-2', 'upper', '2026-01-01T00:00:00Z', "
            "'2026-01-01T00:00:00Z')");
  }

  // On SQLite.
  const std::string csv = Export(env, env.run, "sqlite.csv");
  const std::string csv_grin =
      Export(env, env.run, "sqlite_grin.csv.gz", {"--gzip", "--date-format", "grin"});
  std::vector<std::string> answers;
  for (const auto& q : kQueries) {
    for (const char* format : {"table", "csv", "json"}) {
      auto r = Cli({"sql", "--run-dir", env.run, "--format", format, q});
      INFO(q << " " << r.err);
      REQUIRE(r.code == 0);
      answers.push_back(r.out);
    }
  }
  auto sqlite_delete = Cli({"sql", "--run-dir", env.run, "DELETE FROM jobs"});
  auto sqlite_bad = Cli({"sql", "--run-dir", env.run, "SELEC 1"});
  REQUIRE(sqlite_delete.code != 0);
  REQUIRE(sqlite_bad.code != 0);

  // Moved to PostgreSQL: the same bytes.
  const std::string uri = IcuDatabase();
  auto moved = Cli({"migrate-state", "--run-dir", env.run, "--to", uri});
  INFO(moved.out << moved.err);
  REQUIRE(moved.code == 0);
  const int64_t books = PgInt(uri, "SELECT count(*) FROM books");
  CHECK(books == 32);
  CHECK(PgInt(uri, "SELECT count(*) FROM books WHERE is_decrypted = 1") >= 1);
  const std::string pg_csv = Export(env, env.run, "pg.csv");
  CHECK(pg_csv == csv);
  CHECK(std::count(pg_csv.begin(), pg_csv.end(), '\n') == books + 1);
  CHECK(pg_csv.find(",TRUE,") != std::string::npos);
  CHECK(pg_csv.find("\nZeta-2,") < pg_csv.find("\nalpha_1,"));
  CHECK(Export(env, env.run, "pg_grin.csv.gz", {"--gzip", "--date-format", "grin"}) == csv_grin);
  size_t i = 0;
  for (const auto& q : kQueries) {
    for (const char* format : {"table", "csv", "json"}) {
      auto r = Cli({"sql", "--run-dir", env.run, "--format", format, q});
      INFO(q << " --format " << format << ": " << r.err);
      REQUIRE(r.code == 0);
      CHECK(r.out == answers[i++]);
    }
  }

  // Read-only: every write refused in one line, nothing changed.
  const int64_t jobs = PgInt(uri, "SELECT count(*) FROM jobs");
  for (const char* q : {"DELETE FROM jobs", "UPDATE books SET title = 'x'",
                        "CREATE TABLE t (a int)", "SELECT barcode FROM jobs FOR UPDATE",
                        "WITH d AS (DELETE FROM jobs RETURNING 1) SELECT count(*) FROM d"}) {
    auto r = Cli({"sql", "--run-dir", env.run, q});
    CAPTURE(q);
    CAPTURE(r.err);
    CHECK(r.code == sqlite_delete.code);
    CHECK(OneLine(r.err));
    CHECK(r.err.find("only read-only statements") != std::string::npos);
  }
  // Turning the transaction read-write from inside is refused too.
  auto escape = Cli({"sql", "--run-dir", env.run,
                     "DO $$BEGIN PERFORM set_config('transaction_read_only', 'off', true); "
                     "DELETE FROM jobs; END$$"});
  CHECK(escape.code == sqlite_delete.code);
  CHECK(OneLine(escape.err));
  auto several = Cli({"sql", "--run-dir", env.run, "SELECT 1; DELETE FROM jobs"});
  CHECK(several.code == sqlite_delete.code);
  CHECK(OneLine(several.err));
  CHECK(several.err.find("give one SQL statement") != std::string::npos);
  auto bad = Cli({"sql", "--run-dir", env.run, "SELEC 1"});
  CHECK(bad.code == sqlite_bad.code);
  CHECK(OneLine(bad.err));
  CHECK(bad.err.find("SQL error: syntax error") != std::string::npos);
  CHECK(PgInt(uri, "SELECT count(*) FROM jobs") == jobs);
  CHECK(PgInt(uri, "SELECT count(*) FROM books WHERE title = 'x'") == 0);
  CHECK(PgInt(uri, "SELECT count(*) FROM jobs WHERE status = 'leased'") == 0);
}

TEST_CASE("a sync on a PostgreSQL run leaves books_export.csv and report.html") {
  PG_SKIP_WITHOUT_POSTGRES();
  SyncEnv env(24);
  const std::string uri = grin::testing::FreshDatabase();
  const std::string run = InitPgRun(env, uri, "pgrun");
  REQUIRE(Cli({"collect", "--run-dir", run}).code == 0);
  auto sync = Cli({"sync", "--run-dir", run, "--workers", "4", "--grin-rate", "0", "--queue",
                   "converted", "--limit", "5"});
  INFO(sync.out << sync.err);
  REQUIRE(sync.code == 0);
  CHECK(!fs::exists(run + "/books.db"));
  REQUIRE(fs::exists(run + "/books_export.csv"));
  const std::string csv = grin::testing::ReadFile(run + "/books_export.csv");
  CHECK(csv == Export(env, run, "again.csv"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == PgInt(uri, "SELECT count(*) FROM books") + 1);
  CHECK(Gunzip(run + "/books_export.csv.gz") == csv);
  auto summary = nlohmann::json::parse(grin::testing::ReadFile(run + "/process_summary.json"));
  CHECK(summary["csv_rows"].get<int64_t>() == 24);
  CHECK(summary["teardown_errors"].empty());
  CHECK(summary["state"] == "postgresql");
  REQUIRE(fs::exists(run + "/report.html"));
  CHECK(grin::testing::ReadFile(run + "/report.html").find("<html") != std::string::npos);
  // Published to the meta bucket like a SQLite run's.
  bool latest_csv = false, report = false;
  for (const auto& e : fs::recursive_directory_iterator(env.storage)) {
    latest_csv = latest_csv || e.path().filename() == "books_latest.csv.gz";
    report = report || e.path().filename() == "report.html";
  }
  CHECK(latest_csv);
  CHECK(report);
}

TEST_CASE("doctor on a PostgreSQL run: passes when healthy, names a bad count and a stopped server") {
  PG_SKIP_WITHOUT_POSTGRES();
  // A cluster of its own: this test stops it.
  auto cluster = grin::testing::PgCluster::Start();
  REQUIRE_MESSAGE(cluster.ok(), cluster.status().ToString());
  auto db = (*cluster)->CreateDatabase("doctor");
  REQUIRE(db.ok());
  const std::string uri = *db;
  SyncEnv env(12, 0.6, 3, /*image_bytes=*/40'000);  // archives past the 64 KiB doctor reads
  const std::string run = InitPgRun(env, uri, "pgrun");
  REQUIRE(Cli({"collect", "--run-dir", run}).code == 0);
  // A password in the environment (trust authentication ignores it) must never be printed.
  ::setenv("PGPASSWORD", "s3cret-pw", 1);
  const std::vector<std::string> args = {"doctor", "--run-dir", run, "--staging-limit-mb", "16"};

  auto ok = Cli(args);
  INFO(ok.out << ok.err);
  CHECK(ok.code == 0);
  const std::string database = DoctorLine(ok.out, "database");
  CHECK(database.rfind("pass", 0) == 0);
  CHECK(database.find("(current)") != std::string::npos);
  CHECK(database.find("kept counts match") != std::string::npos);
  CHECK(DoctorLine(ok.out, "database file").rfind("skip", 0) == 0);
  CHECK(DoctorLine(ok.out, "database file").find("PostgreSQL") != std::string::npos);
  CHECK(DoctorLine(ok.out, "run lock").rfind("pass", 0) == 0);
  CHECK(DoctorLine(ok.out, "sync workers").rfind("pass", 0) == 0);
  CHECK(DoctorLine(ok.out, "oauth").rfind("pass", 0) == 0);
  CHECK(!fs::exists(run + "/books.db"));
  auto json = Cli({"doctor", "--run-dir", run, "--staging-limit-mb", "16", "--json"});
  REQUIRE(json.code == 0);
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["ok"] == true);
  for (const auto& c : j["checks"]) {
    CHECK_MESSAGE((c["status"] == "pass" || c["status"] == "skip"), c.dump());
  }

  // A kept count that no longer matches the rows: the database check fails saying which.
  CHECK(PgInt(uri, "WITH u AS (UPDATE book_count SET n = n + 3 RETURNING 1) SELECT count(*) "
                   "FROM u") == 1);
  auto counts = Cli(args);
  INFO(counts.out);
  CHECK(counts.code == cli::kExitFailure);
  CHECK(DoctorLine(counts.out, "database").rfind("fail", 0) == 0);
  CHECK(DoctorLine(counts.out, "database").find("book_count says 15 books, books holds 12") !=
        std::string::npos);

  // The server stopped: the database check fails naming it and the fix; the others still run.
  REQUIRE((*cluster)->Stop().ok());
  auto down = Cli(args);
  INFO(down.out << down.err);
  CHECK(down.code == cli::kExitFailure);
  const std::string line = DoctorLine(down.out, "database");
  CHECK(line.rfind("fail", 0) == 0);
  CHECK(line.find("127.0.0.1") != std::string::npos);
  CHECK(line.find("start the PostgreSQL server") != std::string::npos);
  CHECK(DoctorLine(down.out, "oauth").rfind("pass", 0) == 0);
  for (const auto* r : {&ok, &counts, &down}) {
    CHECK(r->out.find("s3cret-pw") == std::string::npos);
    CHECK(r->err.find("s3cret-pw") == std::string::npos);
  }
  ::unsetenv("PGPASSWORD");
}

}  // namespace
}  // namespace grin::pipeline::testing
