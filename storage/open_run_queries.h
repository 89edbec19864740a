#pragma once
// Opening a run's read queries (RunQueries, run_queries.h) from where its state is: the one
// place that tells the dialects apart for `status` and `report`.

#include <memory>
#include <string>
#include <string_view>

#include "engine/base/result.h"
#include "storage/run_queries.h"

namespace grin::storage {

// True for a PostgreSQL connection URI (postgresql://... or postgres://...).
bool IsPostgresLocation(std::string_view location);

// Opens read-only queries on a run's state at `location`: a PostgreSQL URI opens PgRunQueries
// (kFailedPrecondition when this build has no PostgreSQL support); anything else is the path of
// the run's SQLite database (SqliteRunQueries). "" is kInvalidArgument: the caller resolves a
// run without a "state" to its books.db. Errors as the adapter's Open; messages never hold a
// password.
Result<std::unique_ptr<RunQueries>> OpenRunQueries(const std::string& location);

}  // namespace grin::storage
