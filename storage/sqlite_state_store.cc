#include "storage/sqlite_state_store.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "storage/database.h"
#include "storage/sqlite_state_sql.h"
#include "storage/sqlite_status.h"
#include "storage/state_reader.h"

namespace grin::storage {
namespace {

// Statement slots in stmts_.
enum StmtId {
  kSEnqueue1, kSEnqueue16, kSEnqueueChunk, kSClaim, kSAnyCheckpoint, kSGetCheckpoint,
  kSComplete1, kSComplete16, kSCompleteChunk, kSDeleteCheckpoint, kSFail, kSRelease,
  kSFencedLease, kSSaveCheckpoint, kSInsertEvent, kSEvents16, kSEventsChunk, kSAddCount,
  kSEnsureBook, kSClaimScoped, kSProgress, kSCount
};

// The statement slot and text for a chunk of `rows` (1, 16 or state_sql::kChunk) enqueues,
// completions or completion events (single events go through InsertEvent).
std::pair<int, const char*> EnqueueStmt(int rows) {
  static const std::string s1 = state_sql::EnqueueSql(1), s16 = state_sql::EnqueueSql(16),
                           sc = state_sql::EnqueueSql(state_sql::kChunk);
  if (rows == state_sql::kChunk) return {kSEnqueueChunk, sc.c_str()};
  return rows == 16 ? std::pair{int{kSEnqueue16}, s16.c_str()}
                    : std::pair{int{kSEnqueue1}, s1.c_str()};
}
std::pair<int, const char*> EventsStmt(int rows) {
  static const std::string s16 = state_sql::InsertEventsSql(16),
                           sc = state_sql::InsertEventsSql(state_sql::kChunk);
  if (rows == state_sql::kChunk) return {kSEventsChunk, sc.c_str()};
  return {kSEvents16, s16.c_str()};
}
std::pair<int, const char*> CompleteStmt(int rows) {
  static const std::string s1 = state_sql::CompleteSql(1), s16 = state_sql::CompleteSql(16),
                           sc = state_sql::CompleteSql(state_sql::kChunk);
  if (rows == state_sql::kChunk) return {kSCompleteChunk, sc.c_str()};
  return rows == 16 ? std::pair{int{kSComplete16}, s16.c_str()}
                    : std::pair{int{kSComplete1}, s1.c_str()};
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

void BindText(SQLite::Statement& s, int i, std::string_view v) {
  s.bind(i, std::string(v));  // text, copied (SQLITE_TRANSIENT)
}

// Binds without copying: v must outlive the statement's next step (the hot paths bind, step and
// reset before the bound string can change). Stmt() clears bindings before every reuse.
void BindView(SQLite::Statement& s, int i, const std::string& v) { s.bindNoCopy(i, v); }

// Milestone names as static C strings, bound without a copy.
void BindStage(SQLite::Statement& s, int i, Stage stage) {
  static constexpr const char* kNames[kStageCount] = {"pending", "checked", "downloaded",
                                                      "uploaded"};
  s.bindNoCopy(i, kNames[static_cast<int>(stage)]);
}

void BindTextOrNull(SQLite::Statement& s, int i, std::string_view v) {
  if (v.empty()) s.bind(i); else BindText(s, i, v);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

SqliteStateStore::SqliteStateStore(std::string path, StateStoreOptions options, RunLock lock)
    : path_(std::move(path)), opt_(options), lock_(std::move(lock)) {
  if (!opt_.clock) opt_.clock = SystemClock::Default();
  if (!opt_.logger) opt_.logger = NullLogger::Default();
  rng_.seed(opt_.seed ? opt_.seed : std::random_device{}());
  stmts_.resize(kSCount);
}

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(
    const std::string& db_path, const StateStoreOptions& options) {
  GRIN_ASSIGN_OR_RETURN(RunLock lock, RunLock::Acquire(db_path));
  std::unique_ptr<SqliteStateStore> store(
      new SqliteStateStore(db_path, options, std::move(lock)));
  GRIN_RETURN_IF_ERROR(store->Start());
  return store;
}

Status SqliteStateStore::Start() {
  DatabaseOptions wopt;
  wopt.durable = opt_.durable;
  wopt.create = opt_.create_if_missing;
  GRIN_ASSIGN_OR_RETURN(wdb_, OpenDatabase(path_, wopt));
  DatabaseOptions ropt;
  ropt.read_only = true;
  GRIN_ASSIGN_OR_RETURN(rdb_, OpenDatabase(path_, ropt));
  if (opt_.max_pages > 0) {
    try {
      wdb_->exec("PRAGMA max_page_count = " + std::to_string(opt_.max_pages));
    } catch (const SQLite::Exception& e) {
      return FromSqliteException(e, path_);
    }
  }
  // Register this run and take back stale leases before any claim can happen.
  try {
    SQLite::Transaction tx(*wdb_, SQLite::TransactionBehavior::IMMEDIATE);
    int64_t now = opt_.clock->NowMicros();
    SQLite::Statement ins(*wdb_, state_sql::kInsertRunSql);
    BindText(ins, 1, FormatIsoUtcMillis(now));
    ins.bind(2, static_cast<int64_t>(::getpid()));
    BindText(ins, 3, HostName());
    ins.executeStep();
    run_id_ = ins.getColumn(0).getInt64();
    ins.reset();
    struct Reclaim {
      int64_t job_id, attempts, old_run, streak;
      std::string barcode, stage;
    };
    std::vector<Reclaim> rows;
    {
      SQLite::Statement find(*wdb_, state_sql::kReclaimFindSql);
      find.bind(1, run_id_);
      while (find.executeStep()) {
        rows.push_back(Reclaim{find.getColumn(0).getInt64(), find.getColumn(3).getInt64(),
                               find.getColumn(4).getInt64(), find.getColumn(5).getInt64(),
                               find.getColumn(1).getString(), find.getColumn(2).getString()});
      }
    }
    SQLite::Statement rec(*wdb_, state_sql::kReclaimSql);
    for (const auto& r : rows) {
      bool dead = r.streak > opt_.max_recoveries;
      std::string status = dead ? "dead" : r.attempts > 0 ? "retry" : "ready";
      rec.reset();
      rec.bind(1, r.job_id);
      BindText(rec, 2, status);
      rec.bind(3, r.streak);
      rec.bind(4, now);
      rec.exec();
      nlohmann::json d = {{"from_run", r.old_run}, {"now", status}, {"crash_streak", r.streak}};
      InsertEvent(*wdb_, r.barcode, r.stage, dead ? "dead_crash_loop" : "reclaimed", d.dump());
    }
    reclaimed_at_open_ = static_cast<int64_t>(rows.size());
    tx.commit();
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path_);
  }
  if (reclaimed_at_open_ > 0) {
    opt_.logger->Log(LogLevel::kInfo, "state.reclaimed",
                     {{"count", std::to_string(reclaimed_at_open_)},
                      {"run", std::to_string(run_id_)}});
  }
  GRIN_ASSIGN_OR_RETURN(cdb_, OpenCheckpointer(path_, opt_.durable));
  writer_ = std::thread([this] { WriterLoop(); });
  checkpointer_ = std::thread([this] { CheckpointerLoop(); });
  return Status::Ok();
}

SqliteStateStore::~SqliteStateStore() {
  if (checkpointer_.joinable()) {
    {
      std::lock_guard<std::mutex> l(cmu_);
      cstop_ = true;
    }
    ccv_.notify_all();
    checkpointer_.join();
  }
  cdb_.reset();
  if (writer_.joinable()) {
    int64_t now = opt_.clock->NowMicros();
    int64_t run = run_id_;
    (void)Submit([now, run](SQLite::Database& db) {
      SQLite::Statement s(db, state_sql::kEndRunSql);
      s.bind(1, run);
      BindText(s, 2, FormatIsoUtcMillis(now));
      s.exec();
    });
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    writer_.join();
  }
  stmts_.clear();
  book_updates_.clear();
}

int64_t SqliteStateStore::commits() const {
  std::lock_guard<std::mutex> l(mu_);
  return commits_;
}

SQLite::Statement& SqliteStateStore::Stmt(SQLite::Database& db, int id, const char* sql) {
  auto& s = stmts_[static_cast<size_t>(id)];
  if (!s) s = std::make_unique<SQLite::Statement>(db, sql);
  s->reset();
  s->clearBindings();
  return *s;
}

void SqliteStateStore::InsertEvent(SQLite::Database& db, std::string_view barcode,
                                   std::string_view stage, std::string_view outcome,
                                   std::string_view detail_json) {
  // Events of one batch mostly share a millisecond: format the time once per millisecond.
  int64_t ms = opt_.clock->NowMicros() / 1000;
  if (ms != event_at_ms_) {
    event_at_ms_ = ms;
    event_at_ = FormatIsoUtcMillis(ms * 1000);
  }
  auto& s = Stmt(db, kSInsertEvent, state_sql::kInsertEventSql);
  BindView(s, 1, event_at_);
  BindTextOrNull(s, 2, barcode);
  BindText(s, 3, stage);
  BindText(s, 4, outcome);
  s.bind(5, run_id_);
  BindTextOrNull(s, 6, detail_json);
  s.exec();
}

void SqliteStateStore::InsertCompletionEvents(SQLite::Database& db,
                                              const std::vector<Completion>& completions,
                                              const std::vector<char>& held) {
  std::vector<const Completion*> rows;
  rows.reserve(completions.size());
  for (size_t k = 0; k < completions.size(); ++k) {
    if (held[k]) rows.push_back(&completions[k]);
  }
  int64_t ms = opt_.clock->NowMicros() / 1000;
  if (ms != event_at_ms_) {
    event_at_ms_ = ms;
    event_at_ = FormatIsoUtcMillis(ms * 1000);
  }
  for (size_t i = 0; i < rows.size();) {
    int n = state_sql::ChunkFor(rows.size() - i);
    if (n == 1) {
      const Completion& c = *rows[i++];
      InsertEvent(db, c.item.barcode, StageName(c.to), c.outcome, c.detail_json);
      continue;
    }
    auto [id, sql] = EventsStmt(n);
    auto& s = Stmt(db, id, sql);
    BindView(s, 1, event_at_);
    s.bind(2, run_id_);
    for (int r = 0; r < n; ++r) {
      const Completion& c = *rows[i + static_cast<size_t>(r)];
      BindView(s, 3 + 4 * r, c.item.barcode);
      BindStage(s, 4 + 4 * r, c.to);
      BindView(s, 5 + 4 * r, c.outcome);
      if (c.detail_json.empty()) s.bind(6 + 4 * r); else BindView(s, 6 + 4 * r, c.detail_json);
    }
    s.exec();
    i += static_cast<size_t>(n);
  }
}

// ---- writer thread ----

void SqliteStateStore::CountMove(int from_stage, int to_stage, int64_t n) {
  if (from_stage >= 0) stage_delta_[from_stage] -= n;
  if (to_stage >= 0) stage_delta_[to_stage] += n;
}

void SqliteStateStore::ApplyCountDeltas(SQLite::Database& db) {
  for (int i = 0; i < kStageCount; ++i) {
    if (stage_delta_[i] == 0) continue;
    auto& u = Stmt(db, kSAddCount, state_sql::kAddCountSql);
    BindStage(u, 1, static_cast<Stage>(i));
    u.bind(2, stage_delta_[i]);
    u.exec();
    stage_delta_[i] = 0;
  }
}

Status SqliteStateStore::Submit(std::function<void(SQLite::Database&)> exec, Sync sync) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return Status::Cancelled(path_ + ": state store is closing");
    queue_.push_back(Op{std::move(exec), [promise](const Status& s) { promise->set_value(s); },
                        sync});
  }
  cv_.notify_one();
  return future.get();
}

void SqliteStateStore::WriterLoop() {
  for (;;) {
    std::deque<Op> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::microseconds(opt_.checkpoint_interval_micros),
                   [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) break;
      size_t n = std::min(queue_.size(), opt_.max_batch_ops);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) RunBatch(batch);
  }
  // The checkpointer has stopped (the destructor joins it first): leave an empty WAL behind.
  Checkpoint(*wdb_, true);
}

void SqliteStateStore::CheckpointerLoop() {
  std::unique_lock<std::mutex> l(cmu_);
  for (;;) {
    ccv_.wait_for(l, std::chrono::microseconds(opt_.checkpoint_interval_micros),
                  [&] { return cstop_; });
    if (cstop_) break;
    l.unlock();
    Checkpoint(*cdb_, false);
    l.lock();
  }
}

void SqliteStateStore::SetRelaxedSync(bool relaxed) {
  if (!opt_.durable || relaxed == relaxed_sync_) return;
  wdb_->exec(relaxed ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
  relaxed_sync_ = relaxed;
}

void SqliteStateStore::RunBatch(std::deque<Op>& batch) {
  // A batch of claims only needs no fsync of its own under --durable (see the header).
  bool relaxed = std::all_of(batch.begin(), batch.end(),
                             [](const Op& op) { return op.sync == Sync::kRelaxed; });
  try {
    SetRelaxedSync(relaxed);
    SQLite::Transaction tx(*wdb_, SQLite::TransactionBehavior::IMMEDIATE);
    std::fill(std::begin(stage_delta_), std::end(stage_delta_), 0);
    for (auto& op : batch) op.exec(*wdb_);
    ApplyCountDeltas(*wdb_);
    tx.commit();
    {
      std::lock_guard<std::mutex> l(mu_);
      ++commits_;
    }
    for (auto& op : batch) op.done(Status::Ok());
    return;
  } catch (const SQLite::Exception& e) {
    if (batch.size() == 1) {
      batch.front().done(FromSqliteException(e, path_));
      return;
    }
  }
  // The batch was rolled back: run each operation alone so one failure stays its own.
  for (auto& op : batch) {
    try {
      SQLite::Transaction tx(*wdb_, SQLite::TransactionBehavior::IMMEDIATE);
      std::fill(std::begin(stage_delta_), std::end(stage_delta_), 0);
      op.exec(*wdb_);
      ApplyCountDeltas(*wdb_);
      tx.commit();
      {
        std::lock_guard<std::mutex> l(mu_);
        ++commits_;
      }
      op.done(Status::Ok());
    } catch (const SQLite::Exception& e) {
      op.done(FromSqliteException(e, path_));
    }
  }
}

void SqliteStateStore::Checkpoint(SQLite::Database& db, bool truncate) {
  int log_frames = 0, ckpt = 0;
  int mode = truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
  sqlite3_wal_checkpoint_v2(db.getHandle(), nullptr, mode, &log_frames, &ckpt);
  int64_t wal_bytes = static_cast<int64_t>(log_frames) * 4096;
  if (!truncate && wal_bytes > opt_.wal_limit_bytes) {
    // Readers may hold the WAL back; TRUNCATE waits for them and for the writer's current
    // transaction (busy handler) and resets it.
    sqlite3_wal_checkpoint_v2(db.getHandle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                              &ckpt);
    opt_.logger->Log(LogLevel::kInfo, "state.wal_truncated",
                     {{"wal_bytes_before", std::to_string(wal_bytes)}});
  }
}

// ---- operations ----

Result<int64_t> SqliteStateStore::Enqueue(const std::vector<std::string>& barcodes) {
  GRIN_RETURN_IF_ERROR(CheckBarcodes(barcodes));
  auto added = std::make_shared<int64_t>(0);
  Status s = Submit([this, &barcodes, added](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    int64_t n = 0;
    for (size_t i = 0; i < barcodes.size();) {
      int rows = state_sql::ChunkFor(barcodes.size() - i);
      auto [id, sql] = EnqueueStmt(rows);
      auto& st = Stmt(db, id, sql);
      st.bind(1, now);
      for (int r = 0; r < rows; ++r) BindView(st, r + 2, barcodes[i + static_cast<size_t>(r)]);
      n += st.exec();
      i += static_cast<size_t>(rows);
    }
    CountMove(-1, static_cast<int>(Stage::kPending), n);
    if (n > 0) {
      InsertEvent(db, "", "pending", "enqueued", "{\"count\":" + std::to_string(n) + "}");
    }
    *added = n;
  });
  if (!s.ok()) return s;
  if (*added > 0) WorkChanged();
  return *added;
}

Result<std::vector<WorkItem>> SqliteStateStore::Claim(Stage from, int max_items) {
  if (max_items <= 0) return std::vector<WorkItem>{};
  if (from == Stage::kUploaded) {
    return Status::InvalidArgument("nothing is claimed at 'uploaded': it is the final milestone");
  }
  auto items = std::make_shared<std::vector<WorkItem>>();
  Status s = Submit([this, from, max_items, items](SQLite::Database& db) {
    if (exiting_) return;  // ReleaseForExit: nothing more is leased
    std::vector<WorkItem> out;
    out.reserve(static_cast<size_t>(std::min(max_items, 4096)));
    int64_t now = opt_.clock->NowMicros();
    auto& q = scoped_ ? Stmt(db, kSClaimScoped, state_sql::kClaimScopedSql)
                      : Stmt(db, kSClaim, state_sql::kClaimSql);
    q.bind(1, run_id_);
    q.bind(2, now);
    BindStage(q, 3, from);
    q.bind(4, max_items);
    while (q.executeStep()) {
      WorkItem w;
      w.job_id = q.getColumn(0).getInt64();
      w.barcode = q.getColumn(1).getString();
      w.lease_token = q.getColumn(2).getInt64();
      w.attempts = q.getColumn(3).getInt();
      w.stage = from;
      w.run_id = run_id_;
      out.push_back(std::move(w));
    }
    q.reset();
    auto& cc = Stmt(db, kSAnyCheckpoint, state_sql::kAnyCheckpointSql);
    bool any_checkpoints = cc.executeStep() && cc.getColumn(0).getInt64() > 0;
    cc.reset();
    if (any_checkpoints) {
      for (auto& w : out) {
        auto& g = Stmt(db, kSGetCheckpoint, state_sql::kGetCheckpointSql);
        BindView(g, 1, w.barcode);
        BindStage(g, 2, from);
        if (g.executeStep()) w.checkpoint = g.getColumn(0).getString();
        g.reset();
      }
    }
    std::sort(out.begin(), out.end(),
              [](const WorkItem& a, const WorkItem& b) { return a.job_id < b.job_id; });
    *items = std::move(out);
  }, Sync::kRelaxed);
  if (!s.ok()) return s;
  return std::move(*items);
}

Result<std::vector<Status>> SqliteStateStore::CompleteMany(std::vector<Completion> completions) {
  for (const auto& c : completions) GRIN_RETURN_IF_ERROR(CheckCompletion(c));
  auto results = std::make_shared<std::vector<Status>>();
  Status s = Submit([this, &completions, results](SQLite::Database& db) {
    std::vector<Status> out;
    out.reserve(completions.size());
    int64_t now = opt_.clock->NowMicros();
    // Most completions have no checkpoint to clear; one cheap EXISTS spares a DELETE per item.
    auto& cc = Stmt(db, kSAnyCheckpoint, state_sql::kAnyCheckpointSql);
    bool any_checkpoints = cc.executeStep() && cc.getColumn(0).getInt64() > 0;
    cc.reset();
    // The fenced UPDATEs, a chunk at a time; held[i] = completion i's fence held.
    std::vector<char> held(completions.size(), 0);
    for (size_t i = 0; i < completions.size();) {
      int rows = state_sql::ChunkFor(completions.size() - i);
      auto [id, sql] = CompleteStmt(rows);
      auto& u = Stmt(db, id, sql);
      u.bind(1, now);
      for (int r = 0; r < rows; ++r) {
        const Completion& c = completions[i + static_cast<size_t>(r)];
        u.bind(2 + 4 * r, c.item.job_id);
        u.bind(3 + 4 * r, c.item.lease_token);
        BindStage(u, 4 + 4 * r, c.to);
        BindStage(u, 5 + 4 * r, c.item.stage);
      }
      while (u.executeStep()) {
        int64_t job = u.getColumn(0).getInt64(), token = u.getColumn(1).getInt64();
        for (size_t k = i; k < i + static_cast<size_t>(rows); ++k) {
          const WorkItem& w = completions[k].item;
          if (!held[k] && w.job_id == job && w.lease_token == token) {
            held[k] = 1;
            break;  // a job named twice in one call completes once; the other is a conflict
          }
        }
      }
      u.reset();
      i += static_cast<size_t>(rows);
    }
    for (size_t k = 0; k < completions.size(); ++k) {
      const Completion& c = completions[k];
      if (!held[k]) {
        out.push_back(Status::Conflict("job " + c.item.barcode +
                                       ": lease lost (stale token); completion ignored"));
        opt_.logger->Log(LogLevel::kWarning, "job.stale_write",
                         {{"barcode", c.item.barcode}, {"op", "complete"}});
        continue;
      }
      // The fence (token and claimed stage) held: the job moved from c.item.stage to c.to.
      CountMove(static_cast<int>(c.item.stage), static_cast<int>(c.to), 1);
      if (any_checkpoints) {
        auto& d = Stmt(db, kSDeleteCheckpoint, state_sql::kDeleteCheckpointSql);
        BindView(d, 1, c.item.barcode);
        d.exec();
      }
      if (!c.carry.empty()) {
        auto& cp = Stmt(db, kSSaveCheckpoint, state_sql::kSaveCheckpointSql);
        BindText(cp, 1, c.item.barcode);
        BindText(cp, 2, StageName(c.to));
        BindText(cp, 3, c.carry);
        cp.bind(4, now);
        cp.exec();
      }
      if (!c.book_fields.empty()) UpdateBook(db, c.item.barcode, c.book_fields, now);
      out.push_back(Status::Ok());
    }
    // One event per completion, in completion order, written as multi-row inserts.
    InsertCompletionEvents(db, completions, held);
    // The run made progress (crash streaks: see the header).
    if (std::find(held.begin(), held.end(), 1) != held.end()) {
      auto& pr = Stmt(db, kSProgress, state_sql::kRunProgressSql);
      pr.bind(1, run_id_);
      pr.bind(2, now);
      pr.exec();
    }
    *results = std::move(out);
  });
  if (!s.ok()) return s;
  bool more_work = false;  // a job moved into a milestone where it can be claimed
  for (size_t k = 0; k < results->size() && k < completions.size(); ++k) {
    more_work = more_work || ((*results)[k].ok() && completions[k].to != Stage::kUploaded);
  }
  if (more_work) WorkChanged();
  return std::move(*results);
}

Status SqliteStateStore::Fail(const WorkItem& item, ErrorClass error_class,
                              std::string_view reason, std::string_view detail_json) {
  GRIN_RETURN_IF_ERROR(CheckJsonField(detail_json, "failure detail"));
  auto result = std::make_shared<Status>();
  std::string reason_s(reason), detail_s(detail_json);
  Status s = Submit([this, &item, error_class, reason_s, detail_s, result](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    int attempt = item.attempts + 1;
    bool dead = error_class == ErrorClass::kPermanent || attempt >= opt_.max_attempts;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    int64_t delay = dead ? 0
                         : BackoffMicros(attempt, opt_.backoff_base_micros,
                                         opt_.backoff_max_micros, unit(rng_));
    auto& u = Stmt(db, kSFail, state_sql::kFailSql);
    u.bind(1, item.job_id);
    u.bind(2, item.lease_token);
    BindText(u, 3, dead ? "dead" : "retry");
    u.bind(4, now + delay);
    BindText(u, 5, ErrorClassName(error_class));
    BindText(u, 6, reason_s);
    BindTextOrNull(u, 7, detail_s);
    u.bind(8, now);
    if (!u.executeStep()) {
      u.reset();
      *result = Status::Conflict("job " + item.barcode + ": lease lost (stale token); failure "
                                 "ignored");
      opt_.logger->Log(LogLevel::kWarning, "job.stale_write",
                       {{"barcode", item.barcode}, {"op", "fail"}});
      return;
    }
    u.reset();
    nlohmann::json d = {{"reason", reason_s},
                        {"class", std::string(ErrorClassName(error_class))},
                        {"attempt", attempt}};
    if (!dead) d["retry_in_s"] = static_cast<double>(delay) / 1e6;
    if (!detail_s.empty()) d["detail"] = nlohmann::json::parse(detail_s);
    InsertEvent(db, item.barcode, StageName(item.stage), dead ? "dead" : "failed", d.dump());
    *result = Status::Ok();
  });
  if (!s.ok()) return s;
  if (result->ok()) WorkChanged();  // a retry: an idle waiter reads the earliest time anew
  return *result;
}

Status SqliteStateStore::Release(const WorkItem& item) {
  auto result = std::make_shared<Status>();
  Status s = Submit([this, &item, result](SQLite::Database& db) {
    auto& u = Stmt(db, kSRelease, state_sql::kReleaseSql);
    u.bind(1, item.job_id);
    u.bind(2, item.lease_token);
    u.bind(3, opt_.clock->NowMicros());
    if (u.exec() != 1) {
      *result = Status::Conflict("job " + item.barcode + ": lease lost; release ignored");
      return;
    }
    InsertEvent(db, item.barcode, StageName(item.stage), "released", "");
    *result = Status::Ok();
  });
  if (!s.ok()) return s;
  if (result->ok()) WorkChanged();
  return *result;
}

Status SqliteStateStore::SaveCheckpoint(const WorkItem& item, std::string_view json) {
  if (json.empty() || !nlohmann::json::accept(json)) {
    return Status::InvalidArgument("checkpoint for " + item.barcode + " is not valid JSON");
  }
  auto result = std::make_shared<Status>();
  std::string data(json);
  Status s = Submit([this, &item, data, result](SQLite::Database& db) {
    auto& f = Stmt(db, kSFencedLease, state_sql::kFencedLeaseSql);
    f.bind(1, item.job_id);
    f.bind(2, item.lease_token);
    bool held = f.executeStep();
    f.reset();
    if (!held) {
      *result = Status::Conflict("job " + item.barcode + ": lease lost; checkpoint ignored");
      return;
    }
    auto& u = Stmt(db, kSSaveCheckpoint, state_sql::kSaveCheckpointSql);
    BindText(u, 1, item.barcode);
    BindText(u, 2, StageName(item.stage));
    BindText(u, 3, data);
    u.bind(4, opt_.clock->NowMicros());
    u.exec();
    *result = Status::Ok();
  });
  if (!s.ok()) return s;
  return *result;
}

Result<int64_t> SqliteStateStore::Requeue(const RequeueFilter& filter) {
  std::string sql =
      "UPDATE jobs SET status = 'ready', attempts = 0, next_attempt_at = 0, recoveries = 0, "
      "error_class = NULL, error_reason = NULL, error_detail = NULL, failed_at = NULL, "
      "updated_at = ?1 WHERE status IN ('retry', 'dead')";
  if (filter.dead_only) sql += " AND status = 'dead'";
  if (filter.stage) sql += " AND stage = ?2";
  if (!filter.reason_like.empty()) sql += " AND error_reason LIKE ?3";
  sql += " RETURNING barcode, stage";
  auto count = std::make_shared<int64_t>(0);
  Status s = Submit([this, sql, filter, count](SQLite::Database& db) {
    SQLite::Statement u(db, sql);
    u.bind(1, opt_.clock->NowMicros());
    if (filter.stage) BindText(u, 2, StageName(*filter.stage));
    if (!filter.reason_like.empty()) BindText(u, 3, filter.reason_like);
    std::vector<std::pair<std::string, std::string>> rows;
    while (u.executeStep()) rows.emplace_back(u.getColumn(0).getString(), u.getColumn(1).getString());
    u.reset();
    for (const auto& [b, st] : rows) InsertEvent(db, b, st, "requeued", "");
    *count = static_cast<int64_t>(rows.size());
  });
  if (!s.ok()) return s;
  if (*count > 0) WorkChanged();
  return *count;
}

Status SqliteStateStore::AppendEvent(std::string_view barcode, std::string_view stage,
                                     std::string_view outcome, std::string_view detail_json) {
  GRIN_RETURN_IF_ERROR(CheckJsonField(detail_json, "event detail"));
  std::string b(barcode), st(stage), o(outcome), d(detail_json);
  return Submit([this, b, st, o, d](SQLite::Database& db) { InsertEvent(db, b, st, o, d); });
}

void SqliteStateStore::UpdateBook(SQLite::Database& db, const std::string& barcode,
                                  const BookFields& fields, int64_t now) {
  std::string iso = FormatIsoUtc(now);
  auto& ensure = Stmt(db, kSEnsureBook, state_sql::kEnsureBookSql);
  BindText(ensure, 1, barcode);
  BindText(ensure, 2, iso);
  ensure.exec();
  // Column names come from IsWritableBookColumn's fixed list (checked by the caller), never
  // from user text, so building the statement is safe. The pipeline writes a handful of column
  // sets over and over: each set's statement is prepared once and kept.
  std::string sql = "UPDATE books SET ";
  int i = 3;
  for (const auto& f : fields) {
    sql += f.first + " = ?" + std::to_string(i++) + ", ";
  }
  sql += "updated_at = ?2 WHERE barcode = ?1";
  auto it = book_updates_.find(sql);
  if (it == book_updates_.end()) {
    if (book_updates_.size() >= kMaxBookUpdateStatements) book_updates_.clear();
    auto stmt = std::make_unique<SQLite::Statement>(db, sql);
    it = book_updates_.emplace(std::move(sql), std::move(stmt)).first;
  }
  SQLite::Statement& u = *it->second;
  u.reset();
  u.clearBindings();
  BindText(u, 1, barcode);
  BindText(u, 2, iso);
  i = 3;
  for (const auto& [column, value] : fields) {
    if (column == "is_decrypted") {
      u.bind(i++, value == "1" || value == "true" ? 1 : 0);
    } else {
      BindTextOrNull(u, i++, value);
    }
  }
  u.exec();
}

Result<int64_t> SqliteStateStore::Reset(const ResetRequest& request) {
  auto count = std::make_shared<int64_t>(0);
  Status s = Submit([this, &request, count](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    int64_t n = 0;
    SQLite::Statement find(db, state_sql::kResetFindSql);
    SQLite::Statement u(db, state_sql::kResetSql);
    SQLite::Statement del(db, state_sql::kDeleteCheckpointSql);
    for (const auto& b : request.barcodes) {
      find.reset();
      BindText(find, 1, b);
      find.bind(2, request.include_done ? 1 : 0);
      if (!find.executeStep()) continue;
      int64_t job_id = find.getColumn(0).getInt64();
      Stage from = Stage::kPending;
      ParseStage(find.getColumn(1).getString(), &from);
      find.reset();
      u.reset();
      u.bind(1, job_id);
      u.bind(2, now);
      u.exec();
      CountMove(static_cast<int>(from), static_cast<int>(Stage::kPending), 1);
      ++n;
      del.reset();
      BindText(del, 1, b);
      del.exec();
      InsertEvent(db, b, "pending", "reset", "");
    }
    *count = n;
  });
  if (!s.ok()) return s;
  if (*count > 0) WorkChanged();
  return *count;
}

Status SqliteStateStore::Flush() {
  return Submit([](SQLite::Database&) {});
}

Result<StageCounts> SqliteStateStore::Counts() {
  std::lock_guard<std::mutex> l(rmu_);
  if (scope_json_.empty()) return QueryStageCounts(*rdb_, path_);
  return QueryScopedStageCounts(*rdb_, path_, scope_json_);
}

Status SqliteStateStore::SetScope(const std::vector<std::string>& barcodes) {
  GRIN_RETURN_IF_ERROR(CheckBarcodes(barcodes));
  Status s = Submit([this, &barcodes](SQLite::Database& db) {
    db.exec(state_sql::kCreateScopeSql);
    db.exec(state_sql::kClearScopeSql);
    SQLite::Statement add(db, state_sql::kAddScopeSql);
    for (const auto& b : barcodes) {
      add.reset();
      BindView(add, 1, b);
      add.exec();
    }
    scoped_ = !barcodes.empty();
  });
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(rmu_);
  scope_json_ = barcodes.empty() ? "" : nlohmann::json(barcodes).dump();
  return Status::Ok();
}

Result<int64_t> SqliteStateStore::ReleaseForExit() {
  auto count = std::make_shared<int64_t>(0);
  Status s = Submit([this, count](SQLite::Database& db) {
    int64_t now = opt_.clock->NowMicros();
    std::vector<std::pair<std::string, std::string>> rows;
    {
      SQLite::Statement u(db, state_sql::kReleaseRunSql);
      u.bind(1, run_id_);
      u.bind(2, now);
      while (u.executeStep()) rows.emplace_back(u.getColumn(0).getString(), u.getColumn(1).getString());
    }
    for (const auto& [barcode, stage] : rows) {
      InsertEvent(db, barcode, stage, "released", "{\"forced_exit\":true}");
    }
    SQLite::Statement end(db, state_sql::kForcedEndRunSql);
    end.bind(1, run_id_);
    BindText(end, 2, FormatIsoUtcMillis(now));
    end.exec();
    exiting_ = true;
    *count = static_cast<int64_t>(rows.size());
  });
  if (!s.ok()) return s;
  return *count;
}

Result<std::vector<FailureSummary>> SqliteStateStore::Failures() {
  std::lock_guard<std::mutex> l(rmu_);
  return QueryFailures(*rdb_, path_);
}

}  // namespace grin::storage
