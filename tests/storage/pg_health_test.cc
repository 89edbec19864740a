// ReadDatabaseHealth on a PostgreSQL run (storage/postgres/pg_health.h): the schema version and
// the kept counts checked against the rows, on a throwaway cluster.
#include <doctest/doctest.h>

#include <string>

#include "schema/migrations.h"
#include "storage/database.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "tests/storage/pg_test_cluster.h"

namespace grin::storage {
namespace {

void Exec(const std::string& uri, const std::string& sql) {
  auto c = pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  Status s = (*c)->ExecScript(sql);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

TEST_CASE("pg health: the schema version and the kept counts against the rows") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string uri = grin::testing::FreshDatabase();
  auto empty = ReadDatabaseHealth(uri);
  REQUIRE_MESSAGE(empty.ok(), empty.status().ToString());
  CHECK(empty->schema_version == 0);
  CHECK(empty->quick_check == "");
  CHECK(empty->latest_version == schema::PgLatestVersion());

  {
    PgStateStoreOptions o;
    o.heartbeat_interval_micros = 0;
    auto store = PgStateStore::Open(uri, o).value();
    REQUIRE(store->Enqueue({"H001", "H002", "H003"}).ok());
    auto items = store->Claim(Stage::kPending, 2).value();
    REQUIRE(items.size() == 2);
    REQUIRE(store->Complete(items[0], Stage::kChecked).ok());
  }
  Exec(uri, "INSERT INTO books(barcode, created_at, updated_at) VALUES ('H001', 't', 't')");
  auto sound = ReadDatabaseHealth(uri);
  REQUIRE_MESSAGE(sound.ok(), sound.status().ToString());
  CHECK(sound->quick_check == "ok");
  CHECK(sound->schema_version == schema::PgLatestVersion());

  Exec(uri, "UPDATE job_counts SET n = n + 1 WHERE stage = 'checked'");
  auto jobs_off = ReadDatabaseHealth(uri).value();
  CHECK(jobs_off.quick_check == "job_counts says 2 jobs at checked, jobs holds 1");
  Exec(uri, "UPDATE job_counts SET n = n - 1 WHERE stage = 'checked';"
            "UPDATE book_count SET n = 5");
  auto books_off = ReadDatabaseHealth(uri).value();
  CHECK(books_off.quick_check == "book_count says 5 books, books holds 1");
}

TEST_CASE("pg health: an unreachable server is kUnavailable and the password never shows") {
  PG_SKIP_WITHOUT_POSTGRES();
  const std::string uri = grin::testing::FreshDatabase();
  // The shared cluster's port, one below: nothing listens there (a loopback refusal).
  const int port = grin::testing::SharedPgCluster()->port() - 1;
  auto h = ReadDatabaseHealth("postgresql://grin:s3cret@127.0.0.1:" + std::to_string(port) +
                              "/postgres?connect_timeout=3");
  REQUIRE_FALSE(h.ok());
  CHECK(h.status().code() == StatusCode::kUnavailable);
  CHECK(h.status().message().find("s3cret") == std::string::npos);
}

}  // namespace
}  // namespace grin::storage
