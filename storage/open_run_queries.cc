#include "storage/open_run_queries.h"

#include "storage/sqlite_run_queries.h"
#ifdef GRIN_HAVE_POSTGRES
#include "storage/postgres/pg_run_queries.h"
#endif

namespace grin::storage {

bool IsPostgresLocation(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

Result<std::unique_ptr<RunQueries>> OpenRunQueries(const std::string& location) {
  if (location.empty()) {
    return Status::InvalidArgument("no state location given (a books.db path or postgresql://...)");
  }
  if (IsPostgresLocation(location)) {
#ifdef GRIN_HAVE_POSTGRES
    GRIN_ASSIGN_OR_RETURN(auto q, PgRunQueries::Open(location));
    return std::unique_ptr<RunQueries>(std::move(q));
#else
    return Status::FailedPrecondition(
        "the run's state is on PostgreSQL, but this grin-jobs was built without PostgreSQL "
        "support: install libpq-dev and rebuild (GRIN_POSTGRES=ON)");
#endif
  }
  GRIN_ASSIGN_OR_RETURN(auto q, SqliteRunQueries::Open(location));
  return std::unique_ptr<RunQueries>(std::move(q));
}

}  // namespace grin::storage
