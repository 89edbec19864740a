// SqliteStateStore::Await and Wake: books waiting for GRIN to convert them (migration 0008,
// engine/state_store.h). Kept apart from sqlite_state_store.cc; same writer, same fencing.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/sqlite_state_sql.h"
#include "storage/sqlite_state_store.h"

namespace grin::storage {

Status SqliteStateStore::Await(const WorkItem& item, std::string_view reason,
                               std::string_view detail_json) {
  if (!detail_json.empty() && !nlohmann::json::accept(detail_json)) {
    return Status::InvalidArgument("awaiting detail is not valid JSON");
  }
  auto result = std::make_shared<Status>();
  std::string reason_s(reason), detail_s(detail_json);
  Status s = Submit([this, &item, reason_s, detail_s, result](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    SQLite::Statement u(db, state_sql::kAwaitSql);
    u.bind(1, item.job_id);
    u.bind(2, item.lease_token);
    u.bind(3, std::string(StageName(item.stage)));
    u.bind(4, reason_s);
    if (detail_s.empty()) {
      u.bind(5);
    } else {
      u.bind(5, detail_s);
    }
    u.bind(6, now);
    if (u.exec() != 1) {
      *result = Status::Conflict("job " + item.barcode + ": lease lost (stale token); not "
                                 "marked awaiting");
      opt_.logger->Log(LogLevel::kWarning, "job.stale_write",
                       {{"barcode", item.barcode}, {"op", "await"}});
      return;
    }
    CountMove(static_cast<int>(item.stage), static_cast<int>(Stage::kPending), 1);
    SQLite::Statement del(db, state_sql::kDeleteCheckpointSql);
    del.bind(1, item.barcode);
    del.exec();
    nlohmann::json d = {{"reason", reason_s}};
    if (!detail_s.empty()) d["detail"] = nlohmann::json::parse(detail_s);
    InsertEvent(db, item.barcode, StageName(item.stage), "awaiting_conversion", d.dump());
    *result = Status::Ok();
  });
  if (!s.ok()) return s;
  return *result;
}

Result<int64_t> SqliteStateStore::Wake(const std::vector<std::string>& barcodes) {
  auto count = std::make_shared<int64_t>(0);
  Status s = Submit([this, &barcodes, count](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    int64_t n = 0;
    SQLite::Statement u(db, state_sql::kWakeSql);
    for (const auto& b : barcodes) {
      u.reset();
      u.bind(1, b);
      u.bind(2, now);
      if (u.exec() != 1) continue;
      ++n;
      InsertEvent(db, b, "pending", "conversion_ready", "");
    }
    *count = n;
  });
  if (!s.ok()) return s;
  if (*count > 0) WorkChanged();
  return *count;
}

}  // namespace grin::storage
