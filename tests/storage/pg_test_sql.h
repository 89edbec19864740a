#pragma once
// Test helpers over a PostgreSQL test database (tests/storage/pg_test_cluster.h): a connection
// that must open, and a one-row, one-column integer query that must succeed.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "storage/postgres/pg_connection.h"

namespace grin::testing {

inline std::unique_ptr<storage::pg::PgConnection> PgConnect(const std::string& uri) {
  auto c = storage::pg::PgConnection::Connect(uri, "test");
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return std::move(*c);
}

inline int64_t PgQueryInt(storage::pg::PgConnection& c, const std::string& sql,
                          const storage::pg::Params& p = {}) {
  auto r = c.Exec(sql, p);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE(r->rows() == 1);
  return r->Int(0, 0);
}

}  // namespace grin::testing
