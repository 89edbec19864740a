#include "storage/postgres/pg_state_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "storage/postgres/pg_migrate.h"
#include "storage/postgres/pg_state_sql.h"

namespace grin::storage {
namespace {

namespace state_sql = pg::state_sql;
using pg::Params;
using pg::PgConnection;
using pg::PgResult;

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string I(int64_t v) { return std::to_string(v); }
std::string S(Stage s) { return std::string(StageName(s)); }
pg::Param TextOrNull(std::string_view v) {
  if (v.empty()) return std::nullopt;
  return std::string(v);
}
std::string JsonArray(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

}  // namespace

PgStateStore::PgStateStore(std::string conninfo, std::string what, PgStateStoreOptions options)
    : conninfo_(std::move(conninfo)), what_(std::move(what)), opt_(options) {
  if (!opt_.logger) opt_.logger = NullLogger::Default();
  if (opt_.pool_size < 1) opt_.pool_size = 1;
  rng_.seed(opt_.seed ? opt_.seed : std::random_device{}());
}

Result<std::unique_ptr<PgStateStore>> PgStateStore::Open(const std::string& conninfo,
                                                         const PgStateStoreOptions& options) {
  std::unique_ptr<PgStateStore> store(
      new PgStateStore(conninfo, pg::RedactConninfo(conninfo), options));
  GRIN_RETURN_IF_ERROR(store->Start());
  return store;
}

Status PgStateStore::Start() {
  GRIN_ASSIGN_OR_RETURN(auto c, Take());
  auto migrated = pg::MigratePostgres(*c);
  if (!migrated.ok()) return migrated.status();
  auto run = c->Exec(state_sql::kInsertRunSql, {I(::getpid()), HostName()});
  if (!run.ok()) return run.status();
  run_id_ = run->Int(0, 0);
  Give(std::move(c));
  if (opt_.heartbeat_interval_micros > 0) heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  return Status::Ok();
}

PgStateStore::~PgStateStore() {
  if (heartbeat_.joinable()) {
    {
      std::lock_guard<std::mutex> l(hb_mu_);
      hb_stop_ = true;
    }
    hb_cv_.notify_all();
    heartbeat_.join();
  }
  if (run_id_ != 0) {
    Status s = RunTx([this](PgConnection& c) {
      return c.Exec(state_sql::kEndRunSql, {I(run_id_)}).status();
    });
    if (!s.ok()) {
      opt_.logger->Log(LogLevel::kWarning, "state.end_run_failed", {{"error", s.ToString()}});
    }
  }
}

// ---- connections ----

Result<std::unique_ptr<PgConnection>> PgStateStore::Take() {
  {
    std::unique_lock<std::mutex> l(pool_mu_);
    pool_cv_.wait(l, [&] { return !idle_.empty() || open_ < opt_.pool_size; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
  }
  auto c = PgConnection::Connect(conninfo_, what_);
  if (!c.ok()) {
    {
      std::lock_guard<std::mutex> l(pool_mu_);
      --open_;
    }
    pool_cv_.notify_one();
  }
  return c;
}

void PgStateStore::Give(std::unique_ptr<PgConnection> c) {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    if (c->ok()) {
      idle_.push_back(std::move(c));
    } else {
      --open_;  // broken: the next Take() connects afresh
    }
  }
  pool_cv_.notify_one();
}

Status PgStateStore::RunTx(const std::function<Status(PgConnection&)>& fn) {
  return Run(fn, /*in_transaction=*/true);
}

Status PgStateStore::RunOne(const std::function<Status(PgConnection&)>& fn) {
  return Run(fn, /*in_transaction=*/false);
}

Status PgStateStore::Run(const std::function<Status(PgConnection&)>& fn, bool in_transaction) {
  Status s;
  for (int attempt = 1;; ++attempt) {
    GRIN_ASSIGN_OR_RETURN(auto c, Take());
    bool began = false;
    if (in_transaction) {
      pg::PgTransaction tx(*c);
      s = tx.Begin();
      began = s.ok();
      if (s.ok()) s = fn(*c);
      if (s.ok()) s = tx.Commit();
    } else {
      // One statement, its own transaction. Read what the server sent while the connection sat
      // idle in the pool (no round trip): a connection it closed (restart, failover, idle
      // timeout) shows as broken here, before anything was sent, and the statement runs again on
      // a fresh one, as a failed BEGIN would. Once sent, a lost connection leaves the outcome
      // unknown: the caller hears it (the statement may have committed; running it again could
      // claim twice or report a done completion as stale).
      // (Twice: the first read may end at the server's goodbye message, the second sees the
      // close.)
      for (int i = 0; i < 2 && c->ok(); ++i) PQconsumeInput(c->handle());
      began = c->ok();
      s = began ? fn(*c)
                : Status::Unavailable("PostgreSQL " + c->what() + ": connection lost while idle");
    }
    bool broken = !c->ok();
    Give(std::move(c));  // a broken connection is dropped, the next Take() connects afresh
    // Run again: after a serialization failure or deadlock (rolled back), and when the pooled
    // connection had died while idle (server restart, failover, idle timeout) so that not even
    // BEGIN went through: nothing was done. A connection lost later leaves the outcome unknown,
    // which the caller hears (kUnavailable).
    bool again = (pg::IsRetryable(s) && !broken) || (!began && broken);
    if (!again || attempt >= opt_.pool_size + 8) return s;
    if (pg::IsRetryable(s)) std::this_thread::sleep_for(std::chrono::milliseconds(attempt * 2));
  }
}

void PgStateStore::HeartbeatLoop() {
  std::unique_lock<std::mutex> l(hb_mu_);
  for (;;) {
    hb_cv_.wait_for(l, std::chrono::microseconds(opt_.heartbeat_interval_micros),
                    [&] { return hb_stop_; });
    if (hb_stop_) break;
    l.unlock();
    auto n = Heartbeat();
    if (!n.ok()) {
      opt_.logger->Log(LogLevel::kWarning, "state.heartbeat_failed",
                       {{"run", I(run_id_)}, {"error", n.status().ToString()}});
    }
    l.lock();
  }
}

// ---- helpers inside a transaction ----

Status PgStateStore::InsertEvent(PgConnection& c, std::string_view barcode,
                                 std::string_view stage, std::string_view outcome,
                                 std::string_view detail_json) {
  return c
      .Exec(state_sql::kInsertEventSql, {std::string(barcode), std::string(stage),
                                         std::string(outcome), I(run_id_),
                                         TextOrNull(detail_json)})
      .status();
}

Status PgStateStore::ApplyCounts(PgConnection& c, const int64_t (&delta)[kStageCount]) {
  static_assert(kStageCount == 4, "grin_add_job_counts (postgres 0003) takes four deltas");
  bool any = false;
  std::string array = "{";
  for (int i = 0; i < kStageCount; ++i) {
    any = any || delta[i] != 0;
    array += (i ? "," : "") + I(delta[i]);
  }
  if (!any) return Status::Ok();
  return c.Exec(state_sql::kAddCountsSql, {array + "}"}).status();
}

Status PgStateStore::UpdateBook(PgConnection& c, const std::string& barcode,
                                const BookFields& fields) {
  GRIN_RETURN_IF_ERROR(c.Exec(state_sql::kEnsureBookSql, {barcode}).status());
  // Column names come from IsWritableBookColumn's fixed list (checked by CompleteMany), never
  // from user text; every value is a parameter.
  std::string sql = "UPDATE books SET ";
  Params params{barcode};
  for (const auto& [column, value] : fields) {
    params.push_back(column == "is_decrypted"
                         ? pg::Param(value == "1" || value == "true" ? "1" : "0")
                         : TextOrNull(value));
    sql += column + " = $" + I(static_cast<int64_t>(params.size())) +
           (column == "is_decrypted" ? "::bigint, " : ", ");
  }
  sql += "updated_at = grin_now_iso() WHERE barcode = $1";
  return c.Exec(sql, params).status();
}

Status PgStateStore::Notify(PgConnection& c) {
  if (!opt_.notify) return Status::Ok();
  return c.Exec(state_sql::kNotifySql).status();
}

Status PgStateStore::StaleWrite(const WorkItem& item, const char* op, const char* what) {
  opt_.logger->Log(LogLevel::kWarning, "job.stale_write", {{"barcode", item.barcode}, {"op", op}});
  return Status::Conflict("job " + item.barcode + ": lease lost (stale token); " + what);
}

// ---- operations ----

Result<int64_t> PgStateStore::Enqueue(const std::vector<std::string>& barcodes) {
  GRIN_RETURN_IF_ERROR(CheckBarcodes(barcodes));
  int64_t added = 0;
  constexpr size_t kChunk = 10000;
  Status s = RunTx([&](PgConnection& c) {
    added = 0;
    for (size_t i = 0; i < barcodes.size(); i += kChunk) {
      std::vector<std::string> part(barcodes.begin() + static_cast<std::ptrdiff_t>(i),
                                    barcodes.begin() + static_cast<std::ptrdiff_t>(
                                                           std::min(barcodes.size(), i + kChunk)));
      GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kEnqueueSql, {JsonArray(part)}));
      added += r.Affected();
    }
    int64_t delta[kStageCount] = {added, 0, 0, 0};
    GRIN_RETURN_IF_ERROR(ApplyCounts(c, delta));
    if (added > 0) {
      GRIN_RETURN_IF_ERROR(
          InsertEvent(c, "", "pending", "enqueued", "{\"count\":" + I(added) + "}"));
      GRIN_RETURN_IF_ERROR(Notify(c));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return added;
}

Result<int64_t> PgStateStore::ReclaimExpired() {
  // Every Claim() runs this and it almost always finds nothing: one statement on its own
  // (one round trip); the notification, when it took something back, right after its commit.
  int64_t n = 0;
  Status s = RunOne([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult r,
                          c.Exec(state_sql::kReclaimExpiredSql,
                                 {I(opt_.max_recoveries), I(run_id_), I(opt_.reclaim_batch)}));
    n = r.Affected();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (n > 0 && opt_.notify) {
    Status ns = RunOne([&](PgConnection& c) { return Notify(c); });
    if (!ns.ok()) {
      opt_.logger->Log(LogLevel::kWarning, "state.notify_failed", {{"error", ns.ToString()}});
    }
  }
  if (n > 0) {
    opt_.logger->Log(LogLevel::kInfo, "state.reclaimed",
                     {{"count", I(n)}, {"run", I(run_id_)}, {"why", "lease_expired"}});
  }
  return n;
}

Result<int64_t> PgStateStore::Heartbeat() {
  int64_t n = 0;
  Status s = RunOne([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kHeartbeatSql,
                                              {I(run_id_), I(opt_.lease_ttl_micros)}));
    n = r.Affected();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return n;
}

Result<std::vector<WorkItem>> PgStateStore::Claim(Stage from, int max_items) {
  if (max_items <= 0) return std::vector<WorkItem>{};
  if (from == Stage::kUploaded) {
    return Status::InvalidArgument("nothing is claimed at 'uploaded': it is the final milestone");
  }
  pg::Param scope;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (exiting_) return std::vector<WorkItem>{};
    if (!scope_json_.empty()) scope = scope_json_;
  }
  GRIN_ASSIGN_OR_RETURN(int64_t reclaimed, ReclaimExpired());
  (void)reclaimed;
  std::vector<WorkItem> out;
  Status s = RunOne([&](PgConnection& c) {
    out.clear();
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kClaimSql,
                                              {I(run_id_), S(from), I(max_items),
                                               I(opt_.lease_ttl_micros), scope}));
    for (int i = 0; i < r.rows(); ++i) {
      WorkItem w;
      w.job_id = r.Int(i, 0);
      w.barcode = r.Text(i, 1);
      w.lease_token = r.Int(i, 2);
      w.attempts = static_cast<int>(r.Int(i, 3));
      if (!r.IsNull(i, 4)) w.checkpoint = r.Text(i, 4);
      w.stage = from;
      w.run_id = run_id_;
      out.push_back(std::move(w));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;  // in job_id order (the statement's ORDER BY)
}

Result<std::vector<Status>> PgStateStore::CompleteMany(std::vector<Completion> completions) {
  for (const auto& c : completions) GRIN_RETURN_IF_ERROR(CheckCompletion(c));
  if (completions.empty()) return std::vector<Status>{};
  nlohmann::json rows = nlohmann::json::array();
  bool books = false;
  for (size_t k = 0; k < completions.size(); ++k) {
    const Completion& cm = completions[k];
    nlohmann::json r = {{"k", k},
                        {"id", cm.item.job_id},
                        {"tok", cm.item.lease_token},
                        {"st", S(cm.to)},
                        {"from_st", S(cm.item.stage)},
                        {"o", cm.outcome}};
    r["d"] = cm.detail_json.empty() ? nlohmann::json(nullptr) : nlohmann::json(cm.detail_json);
    r["carry"] = cm.carry.empty() ? nlohmann::json(nullptr) : nlohmann::json(cm.carry);
    rows.push_back(std::move(r));
    books = books || !cm.book_fields.empty();
  }
  const std::string rows_json = rows.dump();
  std::vector<char> held;
  // The jobs, checkpoints, events, run progress, job_counts and notification are one statement
  // (kCompleteSql); book fields, when there are any, follow it in the same transaction.
  auto complete = [&](PgConnection& c) -> Status {
    held.assign(completions.size(), 0);
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kCompleteSql,
                                              {rows_json, I(run_id_),
                                               opt_.notify ? "true" : "false"}));
    for (int i = 0; i < r.rows(); ++i) {
      int64_t k = r.Int(i, 0);
      if (k >= 0 && static_cast<size_t>(k) < held.size()) held[static_cast<size_t>(k)] = 1;
    }
    if (!books) return Status::Ok();
    for (size_t k = 0; k < completions.size(); ++k) {
      if (held[k] && !completions[k].book_fields.empty()) {
        GRIN_RETURN_IF_ERROR(UpdateBook(c, completions[k].item.barcode, completions[k].book_fields));
      }
    }
    return Status::Ok();
  };
  Status s = books ? RunTx(complete) : RunOne(complete);
  if (!s.ok()) return s;
  std::vector<Status> out;
  out.reserve(completions.size());
  for (size_t k = 0; k < completions.size(); ++k) {
    out.push_back(held[k] ? Status::Ok()
                          : StaleWrite(completions[k].item, "complete", "completion ignored"));
  }
  return out;
}

Status PgStateStore::Fail(const WorkItem& item, ErrorClass error_class, std::string_view reason,
                          std::string_view detail_json) {
  GRIN_RETURN_IF_ERROR(CheckJsonField(detail_json, "failure detail"));
  int attempt = item.attempts + 1;
  bool dead = error_class == ErrorClass::kPermanent || attempt >= opt_.max_attempts;
  int64_t delay = 0;
  if (!dead) {
    std::lock_guard<std::mutex> l(mu_);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    delay = BackoffMicros(attempt, opt_.backoff_base_micros, opt_.backoff_max_micros, unit(rng_));
  }
  bool held = false;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(
        PgResult r, c.Exec(state_sql::kFailSql,
                           {I(item.job_id), I(item.lease_token), dead ? "dead" : "retry",
                            I(delay), std::string(ErrorClassName(error_class)),
                            std::string(reason), TextOrNull(detail_json)}));
    held = r.rows() == 1;
    if (!held) return Status::Ok();
    nlohmann::json d = {{"reason", std::string(reason)},
                        {"class", std::string(ErrorClassName(error_class))},
                        {"attempt", attempt}};
    if (!dead) d["retry_in_s"] = static_cast<double>(delay) / 1e6;
    if (!detail_json.empty()) d["detail"] = nlohmann::json::parse(detail_json);
    return InsertEvent(c, item.barcode, S(item.stage), dead ? "dead" : "failed", d.dump());
  });
  if (!s.ok()) return s;
  if (held && !dead) ++retry_scheduled_;  // an idle waiter reads the earliest retry anew
  return held ? Status::Ok() : StaleWrite(item, "fail", "failure ignored");
}

Status PgStateStore::Release(const WorkItem& item) {
  bool held = false;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult r,
                          c.Exec(state_sql::kReleaseSql, {I(item.job_id), I(item.lease_token)}));
    held = r.Affected() == 1;
    if (!held) return Status::Ok();
    GRIN_RETURN_IF_ERROR(Notify(c));
    return InsertEvent(c, item.barcode, S(item.stage), "released", "");
  });
  if (!s.ok()) return s;
  if (!held) return Status::Conflict("job " + item.barcode + ": lease lost; release ignored");
  return Status::Ok();
}

Status PgStateStore::SaveCheckpoint(const WorkItem& item, std::string_view json) {
  if (json.empty() || !nlohmann::json::accept(json)) {
    return Status::InvalidArgument("checkpoint for " + item.barcode + " is not valid JSON");
  }
  bool held = false;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult f, c.Exec(state_sql::kFencedLeaseSql,
                                              {I(item.job_id), I(item.lease_token)}));
    held = f.rows() == 1;
    if (!held) return Status::Ok();
    return c.Exec(state_sql::kSaveCheckpointSql, {item.barcode, S(item.stage), std::string(json)})
        .status();
  });
  if (!s.ok()) return s;
  if (!held) return Status::Conflict("job " + item.barcode + ": lease lost; checkpoint ignored");
  return Status::Ok();
}

Result<int64_t> PgStateStore::Requeue(const RequeueFilter& filter) {
  int64_t n = 0;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec(state_sql::kRequeueSql,
               {filter.stage ? pg::Param(S(*filter.stage)) : std::nullopt,
                TextOrNull(filter.reason_like), filter.dead_only ? "true" : "false"}));
    n = r.rows();
    nlohmann::json events = nlohmann::json::array();
    std::vector<std::pair<int64_t, int>> order;
    for (int i = 0; i < r.rows(); ++i) order.emplace_back(r.Int(i, 0), i);
    std::sort(order.begin(), order.end());
    for (const auto& [job, i] : order) {
      events.push_back({{"b", r.Text(i, 1)}, {"st", r.Text(i, 2)}, {"o", "requeued"},
                        {"d", nullptr}});
    }
    if (n == 0) return Status::Ok();
    GRIN_RETURN_IF_ERROR(Notify(c));
    return c.Exec(state_sql::kInsertEventsSql, {I(run_id_), events.dump()}).status();
  });
  if (!s.ok()) return s;
  return n;
}

Result<int64_t> PgStateStore::Reset(const ResetRequest& request) {
  int64_t n = 0;
  Status s = RunTx([&](PgConnection& c) {
    n = 0;
    int64_t delta[kStageCount] = {0, 0, 0, 0};
    for (const auto& b : request.barcodes) {
      GRIN_ASSIGN_OR_RETURN(
          PgResult r, c.Exec(state_sql::kResetSql, {b, request.include_done ? "true" : "false"}));
      if (r.rows() != 1) continue;
      Stage from = Stage::kPending;
      ParseStage(r.Text(0, 0), &from);
      --delta[static_cast<int>(from)];
      ++delta[static_cast<int>(Stage::kPending)];
      ++n;
      GRIN_RETURN_IF_ERROR(c.Exec(state_sql::kDeleteCheckpointSql, {b}).status());
      GRIN_RETURN_IF_ERROR(InsertEvent(c, b, "pending", "reset", ""));
    }
    if (n > 0) GRIN_RETURN_IF_ERROR(Notify(c));
    return ApplyCounts(c, delta);
  });
  if (!s.ok()) return s;
  return n;
}

Status PgStateStore::Await(const WorkItem& item, std::string_view reason,
                           std::string_view detail_json) {
  if (!detail_json.empty() && !nlohmann::json::accept(detail_json)) {
    return Status::InvalidArgument("awaiting detail is not valid JSON");
  }
  bool held = false;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(
        PgResult r, c.Exec(state_sql::kAwaitSql, {I(item.job_id), I(item.lease_token),
                                                  S(item.stage), std::string(reason),
                                                  TextOrNull(detail_json)}));
    held = r.Affected() == 1;
    if (!held) return Status::Ok();
    int64_t delta[kStageCount] = {0, 0, 0, 0};
    --delta[static_cast<int>(item.stage)];
    ++delta[static_cast<int>(Stage::kPending)];
    GRIN_RETURN_IF_ERROR(c.Exec(state_sql::kDeleteCheckpointSql, {item.barcode}).status());
    nlohmann::json d = {{"reason", std::string(reason)}};
    if (!detail_json.empty()) d["detail"] = nlohmann::json::parse(detail_json);
    GRIN_RETURN_IF_ERROR(
        InsertEvent(c, item.barcode, S(item.stage), "awaiting_conversion", d.dump()));
    return ApplyCounts(c, delta);
  });
  if (!s.ok()) return s;
  return held ? Status::Ok() : StaleWrite(item, "await", "not marked awaiting");
}

Result<int64_t> PgStateStore::Wake(const std::vector<std::string>& barcodes) {
  if (barcodes.empty()) return 0;
  int64_t n = 0;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kWakeSql, {JsonArray(barcodes)}));
    n = r.rows();
    nlohmann::json events = nlohmann::json::array();
    for (int i = 0; i < r.rows(); ++i) {
      events.push_back({{"b", r.Text(i, 0)}, {"st", "pending"}, {"o", "conversion_ready"},
                        {"d", nullptr}});
    }
    if (n == 0) return Status::Ok();
    GRIN_RETURN_IF_ERROR(Notify(c));
    return c.Exec(state_sql::kInsertEventsSql, {I(run_id_), events.dump()}).status();
  });
  if (!s.ok()) return s;
  return n;
}

Status PgStateStore::AppendEvent(std::string_view barcode, std::string_view stage,
                                 std::string_view outcome, std::string_view detail_json) {
  GRIN_RETURN_IF_ERROR(CheckJsonField(detail_json, "event detail"));
  return RunTx([&](PgConnection& c) { return InsertEvent(c, barcode, stage, outcome, detail_json); });
}

Result<StageCounts> PgStateStore::Counts() {
  std::string scope;
  {
    std::lock_guard<std::mutex> l(mu_);
    scope = scope_json_;
  }
  StageCounts out;
  // One transaction (REPEATABLE READ: one snapshot for every answer).
  Status s = RunTx([&](PgConnection& c) {
    StageCounts n;
    GRIN_RETURN_IF_ERROR(
        c.Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").status());
    if (!scope.empty()) {
      GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kScopedCountsSql, {scope}));
      for (int i = 0; i < r.rows(); ++i) {
        Stage st = Stage::kPending;
        if (!ParseStage(r.Text(i, 0), &st)) continue;
        std::string status = r.Text(i, 1);
        int64_t k = r.Int(i, 2);
        n.total += k;
        n.at[static_cast<int>(st)] += k;
        if (status == "leased") n.leased += k;
        if (status == "retry") n.retrying += k;
        if (status == "dead") n.dead += k;
        if (status == "awaiting") {
          n.awaiting += k;
          int64_t since = r.Int(i, 3);
          if (n.awaiting_since_micros == 0 || since < n.awaiting_since_micros) {
            n.awaiting_since_micros = since;
          }
        }
      }
      out = n;
      return Status::Ok();
    }
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kStageCountsSql));
    for (int i = 0; i < r.rows(); ++i) {
      Stage st;
      if (!ParseStage(r.Text(i, 0), &st)) continue;
      n.at[static_cast<int>(st)] += r.Int(i, 1);
      n.total += r.Int(i, 1);
    }
    GRIN_ASSIGN_OR_RETURN(PgResult l, c.Exec(state_sql::kLeasedCountSql));
    n.leased = l.Int(0, 0);
    GRIN_ASSIGN_OR_RETURN(PgResult f, c.Exec(state_sql::kFailedCountsSql));
    for (int i = 0; i < f.rows(); ++i) {
      if (f.Text(i, 0) == "retry") n.retrying += f.Int(i, 1);
      if (f.Text(i, 0) == "dead") n.dead += f.Int(i, 1);
    }
    GRIN_ASSIGN_OR_RETURN(PgResult a, c.Exec(state_sql::kAwaitingCountSql));
    n.awaiting = a.Int(0, 0);
    n.awaiting_since_micros = a.Int(0, 1);
    out = n;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<FailureSummary>> PgStateStore::Failures() {
  std::vector<FailureSummary> out;
  Status s = RunTx([&](PgConnection& c) {
    out.clear();
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kFailuresSql));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(FailureSummary{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Int(i, 3) != 0,
                                   r.Int(i, 4)});
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status PgStateStore::SetScope(const std::vector<std::string>& barcodes) {
  GRIN_RETURN_IF_ERROR(CheckBarcodes(barcodes));
  std::lock_guard<std::mutex> l(mu_);
  scope_json_ = barcodes.empty() ? "" : JsonArray(barcodes);
  return Status::Ok();
}

Status PgStateStore::ListenLocked() {
  if (listener_ && listener_->ok()) return Status::Ok();
  listener_.reset();
  GRIN_ASSIGN_OR_RETURN(auto c, PgConnection::Connect(conninfo_, what_));
  GRIN_RETURN_IF_ERROR(c->Exec(state_sql::kListenSql).status());
  listener_ = std::move(c);
  return Status::Ok();
}

Result<bool> PgStateStore::WaitForWork(int64_t timeout_micros) {
  std::lock_guard<std::mutex> l(listen_mu_);
  GRIN_RETURN_IF_ERROR(ListenLocked());
  GRIN_ASSIGN_OR_RETURN(bool woken, listener_->WaitForNotification(timeout_micros));
  return woken;
}

Result<bool> PgStateStore::WaitForWork(const std::vector<Stage>& stages, int64_t timeout_micros,
                                       const std::function<bool()>& cancelled) {
  using Steady = std::chrono::steady_clock;
  const auto deadline =
      Steady::now() + std::chrono::microseconds(std::max<int64_t>(0, timeout_micros));
  auto stop = [&] { return cancelled && cancelled(); };
  std::unique_lock<std::mutex> l(listen_mu_, std::defer_lock);
  while (!l.try_lock()) {  // another waiter: queue, still cancellable
    if (stop() || Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const uint64_t retries = retry_scheduled_.load();
  GRIN_RETURN_IF_ERROR(ListenLocked());
  // LISTEN is in place: whatever commits from now on notifies this connection, and whatever
  // committed before is in the times read next, so nothing falls between.
  std::string array = "{";
  for (Stage st : stages) array += (array.size() > 1 ? "," : "") + S(st);
  array += "}";
  pg::Param scope;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!scope_json_.empty()) scope = scope_json_;
  }
  auto times = listener_->Exec(state_sql::kWaitTimesSql, {array, I(run_id_), scope});
  if (!times.ok()) return times.status();
  int64_t due = INT64_MAX;  // micros from now until the clock makes a job claimable
  if (!times->IsNull(0, 0)) due = std::min(due, times->Int(0, 0));
  if (!times->IsNull(0, 1)) due = std::min(due, times->Int(0, 1) + 1000);
  if (due <= 0) return true;
  const auto clock_due = due == INT64_MAX ? Steady::time_point::max()
                                          : Steady::now() + std::chrono::microseconds(due);
  for (;;) {
    if (stop()) return false;
    if (retry_scheduled_.load() != retries) return true;
    const auto now = Steady::now();
    if (now >= clock_due) return true;
    if (now >= deadline) return false;
    auto slice = std::min(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::min(clock_due, deadline) - now),
                          std::chrono::microseconds(50'000));
    GRIN_ASSIGN_OR_RETURN(bool woken, listener_->WaitForNotification(slice.count()));
    if (woken) return true;
  }
}

Result<int64_t> PgStateStore::ReleaseForExit() {
  {
    std::lock_guard<std::mutex> l(mu_);
    exiting_ = true;
  }
  int64_t n = 0;
  Status s = RunTx([&](PgConnection& c) {
    GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(state_sql::kReleaseRunSql, {I(run_id_)}));
    n = r.Affected();
    if (n > 0) GRIN_RETURN_IF_ERROR(Notify(c));
    return c.Exec(state_sql::kForcedEndRunSql, {I(run_id_)}).status();
  });
  if (!s.ok()) return s;
  return n;
}

}  // namespace grin::storage
