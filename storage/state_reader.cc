#include "storage/state_reader.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include "engine/base/clock.h"
#include "storage/database.h"
#include "storage/sqlite_state_sql.h"
#include "storage/sqlite_status.h"

namespace grin::storage {

Result<StageCounts> QueryStageCounts(SQLite::Database& db, const std::string& path) {
  try {
    // One read transaction, so the three answers come from the same snapshot.
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::DEFERRED);
    StageCounts c;
    SQLite::Statement q(db, state_sql::kStageCountsSql);
    while (q.executeStep()) {
      Stage s;
      if (!ParseStage(q.getColumn(0).getString(), &s)) continue;
      int64_t n = q.getColumn(1).getInt64();
      c.at[static_cast<int>(s)] += n;
      c.total += n;
    }
    c.leased = db.execAndGet(state_sql::kLeasedCountSql).getInt64();
    SQLite::Statement f(db, state_sql::kFailedCountsSql);
    while (f.executeStep()) {
      std::string status = f.getColumn(0).getString();
      int64_t n = f.getColumn(1).getInt64();
      if (status == "retry") c.retrying += n;
      if (status == "dead") c.dead += n;
    }
    {
      SQLite::Statement a(db, state_sql::kAwaitingCountSql);
      if (a.executeStep()) {
        c.awaiting = a.getColumn(0).getInt64();
        c.awaiting_since_micros = a.getColumn(1).getInt64();
      }
    }
    return c;  // tx rolls back: nothing was written
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

Result<StageCounts> QueryScopedStageCounts(SQLite::Database& db, const std::string& path,
                                           const std::string& barcodes_json) {
  try {
    StageCounts c;
    SQLite::Statement q(db, state_sql::kScopedCountsSql);
    q.bind(1, barcodes_json);
    while (q.executeStep()) {
      Stage stage = Stage::kPending;
      if (!ParseStage(q.getColumn(0).getString(), &stage)) continue;
      std::string status = q.getColumn(1).getString();
      int64_t n = q.getColumn(2).getInt64();
      c.total += n;
      c.at[static_cast<int>(stage)] += n;
      if (status == "leased") c.leased += n;
      if (status == "retry") c.retrying += n;
      if (status == "dead") c.dead += n;
      if (status == "awaiting") {
        int64_t since = q.getColumn(3).getInt64();
        if (c.awaiting == 0 || since < c.awaiting_since_micros) c.awaiting_since_micros = since;
        c.awaiting += n;
      }
    }
    return c;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

Result<std::vector<FailureSummary>> QueryFailures(SQLite::Database& db, const std::string& path) {
  try {
    std::vector<FailureSummary> out;
    SQLite::Statement q(db, state_sql::kFailuresSql);
    while (q.executeStep()) {
      out.push_back(FailureSummary{q.getColumn(0).getString(), q.getColumn(1).getString(),
                                   q.getColumn(2).getString(), q.getColumn(3).getInt() != 0,
                                   q.getColumn(4).getInt64()});
    }
    return out;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path);
  }
}

StateReader::StateReader(std::string path, std::unique_ptr<SQLite::Database> db)
    : path_(std::move(path)), db_(std::move(db)) {}
StateReader::~StateReader() = default;

Result<std::unique_ptr<StateReader>> StateReader::Open(const std::string& db_path) {
  DatabaseOptions ropt;
  ropt.read_only = true;
  GRIN_ASSIGN_OR_RETURN(auto db, OpenDatabase(db_path, ropt));
  return std::unique_ptr<StateReader>(new StateReader(db_path, std::move(db)));
}

Result<StageCounts> StateReader::Counts() { return QueryStageCounts(*db_, path_); }
Result<std::vector<FailureSummary>> StateReader::Failures() { return QueryFailures(*db_, path_); }

Result<int64_t> StateReader::Books() { return QueryBookCount(*db_, path_); }
Result<ConvertFailedSummary> StateReader::ConvertFailed(size_t top) {
  return QueryConvertFailed(*db_, path_, top);
}

Result<StateReader::Recent> StateReader::CompletedSince(int64_t since_micros) {
  try {
    SQLite::Statement q(*db_, state_sql::kCompletedSinceSql);
    const int64_t next_second = since_micros / 1'000'000 + 1;  // since_micros is never < 0
    q.bind(1, FormatIsoUtcMillis(since_micros));
    q.bind(2, FormatIsoUtcMillis(next_second * 1'000'000));
    q.bind(3, next_second);
    q.executeStep();
    Recent r;
    r.count = q.getColumn(0).getInt64();
    r.first_micros = q.getColumn(1).getInt64() * 1'000'000 + q.getColumn(2).getInt64() * 1000;
    return r;
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
}

}  // namespace grin::storage
