#pragma once
// One throwaway PostgreSQL cluster (tests/support/pg_cluster.h) per test binary, started on first
// use; each test takes a database of its own (FreshDatabase). PG_SKIP_WITHOUT_POSTGRES() ends a
// test when the server binaries are not installed (and only then), saying why on stderr as
// "GRIN_TEST_SKIPPED: ...", which ctest reports as skipped (tests/CMakeLists.txt).

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "tests/support/pg_cluster.h"

namespace grin::testing {

inline PgCluster* SharedPgCluster() {
  static std::unique_ptr<PgCluster> cluster = [] {
    auto started = PgCluster::Start();
    REQUIRE_MESSAGE(started.ok(), started.status().ToString());
    return std::move(*started);
  }();
  return cluster.get();
}

// The URI of a new, empty database of the shared cluster.
inline std::string FreshDatabase() {
  static std::atomic<int> n{0};
  auto db = SharedPgCluster()->CreateDatabase("t" + std::to_string(++n));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return *db;
}

}  // namespace grin::testing

#define PG_SKIP_WITHOUT_POSTGRES()                                         \
  if (::grin::Status a = ::grin::testing::PgCluster::Available(); !a.ok()) { \
    MESSAGE("skipped: " << a.message());                                   \
    std::fprintf(stderr, "GRIN_TEST_SKIPPED: %s\n", a.message().c_str());  \
    return;                                                                \
  }
