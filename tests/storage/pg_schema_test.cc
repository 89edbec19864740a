// Both dialects from one place: a SQLite database migrated through schema/migrations and a
// PostgreSQL database migrated through schema/postgres end at the same tables, views and columns
// (same names, same order, same types: SQLite TEXT = text, INTEGER = bigint). What only
// PostgreSQL has is listed here, and nothing else may differ.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "schema/migrations.h"
#include "storage/database.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_migrate.h"
#include "tests/storage/pg_test_cluster.h"
#include "tests/support/temp_dir.h"

namespace grin::storage {
namespace {

// name -> "table"/"view" and its columns ("name type", type only for tables).
struct Relation {
  std::string kind;
  std::vector<std::string> columns;
};
using Schema = std::map<std::string, Relation>;

// PostgreSQL only: the migrations' bookkeeping (SQLite's PRAGMA user_version), a lease's
// expiry (shared runs: leases expire by the database's clock; see schema/postgres/0001), and the
// worker registry with the GRIN limits its processes share (schema/postgres/0004: a SQLite run
// has one process, behind its per-run lock, so it has no workers to register and nothing to
// share; a twin there would be tables nothing reads or writes).
const std::set<std::string> kPgOnlyTables = {"grin_schema_migrations", "workers", "grin_limits",
                                             "grin_slots"};
const std::set<std::string> kPgOnlyColumns = {"jobs.lease_expires_at"};

std::string NormalType(std::string t) {
  for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (t == "integer" || t == "bigint") return "integer";
  if (t == "text") return "text";
  return t;
}

Schema SqliteSchema(const std::string& path) {
  auto db = OpenDatabase(path, {});
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  Schema out;
  SQLite::Statement q(**db,
                      "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                      "AND name NOT LIKE 'sqlite_%'");
  while (q.executeStep()) out[q.getColumn(0).getString()].kind = q.getColumn(1).getString();
  for (auto& [name, rel] : out) {
    SQLite::Statement cols(**db, "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid");
    cols.bind(1, name);
    while (cols.executeStep()) {
      std::string col = cols.getColumn(0).getString();
      if (rel.kind == "table") col += " " + NormalType(cols.getColumn(1).getString());
      rel.columns.push_back(col);
    }
  }
  return out;
}

Schema PostgresSchema(pg::PgConnection& c) {
  Schema out;
  auto t = c.Exec(
      "SELECT table_name, CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END "
      "FROM information_schema.tables WHERE table_schema = 'public'");
  REQUIRE(t.ok());
  for (int i = 0; i < t->rows(); ++i) {
    if (kPgOnlyTables.count(t->Text(i, 0))) continue;
    out[t->Text(i, 0)].kind = t->Text(i, 1);
  }
  auto cols = c.Exec(
      "SELECT table_name, column_name, data_type FROM information_schema.columns "
      "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position");
  REQUIRE(cols.ok());
  for (int i = 0; i < cols->rows(); ++i) {
    std::string table = cols->Text(i, 0), col = cols->Text(i, 1);
    auto it = out.find(table);
    if (it == out.end() || kPgOnlyColumns.count(table + "." + col)) continue;
    if (it->second.kind == "table") col += " " + NormalType(cols->Text(i, 2));
    it->second.columns.push_back(col);
  }
  return out;
}

TEST_CASE("SQLite and PostgreSQL migrations end at the same tables, views and columns") {
  PG_SKIP_WITHOUT_POSTGRES();
  grin::testing::TempDir dir;
  Schema lite = SqliteSchema(dir.file("books.db"));
  auto c = pg::PgConnection::Connect(grin::testing::FreshDatabase(), "schema test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  auto from = pg::MigratePostgres(**c);
  REQUIRE_MESSAGE(from.ok(), from.status().ToString());
  CHECK(*from == 0);
  CHECK(pg::PostgresSchemaVersion(**c).value() == schema::PgLatestVersion());
  Schema post = PostgresSchema(**c);

  // The relations the tool and its operators read, present in both.
  for (const char* name : {"books", "jobs", "events", "runs", "job_checkpoints", "job_counts",
                           "pending", "checked", "downloaded", "uploaded", "failed",
                           "awaiting_conversion"}) {
    CAPTURE(name);
    CHECK(lite.count(name) == 1);
    CHECK(post.count(name) == 1);
  }
  std::set<std::string> names;
  for (const auto& [n, r] : lite) names.insert(n);
  for (const auto& [n, r] : post) names.insert(n);
  for (const auto& n : names) {
    CAPTURE(n);
    REQUIRE_MESSAGE(lite.count(n) == 1, "only in PostgreSQL: " << n);
    REQUIRE_MESSAGE(post.count(n) == 1, "only in SQLite: " << n);
    CHECK(lite[n].kind == post[n].kind);
    CHECK(lite[n].columns == post[n].columns);
  }
  // The PostgreSQL-only columns exist (the list above is not stale).
  auto extra = (*c)->Exec("SELECT count(*) FROM information_schema.columns WHERE "
                          "table_name = 'jobs' AND column_name = 'lease_expires_at'");
  REQUIRE(extra.ok());
  CHECK(extra->Int(0, 0) == 1);
  for (const auto& t : kPgOnlyTables) {
    CAPTURE(t);
    auto there = (*c)->Exec("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = 'public' AND table_name = $1",
                            {t});
    REQUIRE(there.ok());
    CHECK(there->Int(0, 0) == 1);
  }

  // Migrating again is a no-op.
  CHECK(pg::MigratePostgres(**c).value() == schema::PgLatestVersion());
}

TEST_CASE("PostgreSQL migrations run once when several processes start at once") {
  PG_SKIP_WITHOUT_POSTGRES();
  std::string uri = grin::testing::FreshDatabase();
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = pg::PgConnection::Connect(uri, "migrate");
      if (!c.ok()) {
        results[i] = c.status();
        return;
      }
      results[i] = pg::MigratePostgres(**c).status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) CHECK_MESSAGE(s.ok(), s.ToString());
  auto c = pg::PgConnection::Connect(uri, "check");
  REQUIRE(c.ok());
  auto n = (*c)->Exec("SELECT count(*) FROM grin_schema_migrations");
  REQUIRE(n.ok());
  CHECK(n->Int(0, 0) == schema::kPgMigrationCount);

  // A database from a newer grin-jobs is refused, not downgraded.
  REQUIRE((*c)->Exec("INSERT INTO grin_schema_migrations(version, name) VALUES ($1::int, 'x')",
                     {std::to_string(schema::PgLatestVersion() + 1)})
              .ok());
  CHECK(pg::MigratePostgres(**c).status().code() == StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace grin::storage
