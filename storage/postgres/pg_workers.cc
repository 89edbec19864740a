#include "storage/postgres/pg_workers.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "storage/postgres/pg_migrate.h"

namespace grin::storage {
namespace {

using pg::PgConnection;
using pg::PgResult;

std::string I(int64_t v) { return std::to_string(v); }

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

constexpr const char* kEnsureLimitsSql =
    "INSERT INTO grin_limits(name, download_slots, requests_per_second) "
    "VALUES ($1, $2::bigint, $3::double precision) ON CONFLICT (name) DO NOTHING";
constexpr const char* kEnsureSlotsSql =
    "INSERT INTO grin_slots(name, slot) SELECT $1, g FROM generate_series(1, "
    "(SELECT download_slots FROM grin_limits WHERE name = $1)) g ON CONFLICT DO NOTHING";
constexpr const char* kReadLimitsSql =
    "SELECT download_slots, requests_per_second FROM grin_limits WHERE name = $1";
constexpr const char* kPruneSql =
    "DELETE FROM workers WHERE coalesce(ended_at, lease_expires_at) < now() - interval '7 days'";
constexpr const char* kRegisterSql =
    "INSERT INTO workers(host, pid, run_id, lease_expires_at) "
    "VALUES ($1, $2::bigint, nullif($3::bigint, 0), now() + $4::bigint * interval '1 microsecond') "
    "RETURNING worker_id";
constexpr const char* kRenewWorkerSql =
    "UPDATE workers SET heartbeat_at = now(), "
    "lease_expires_at = now() + $2::bigint * interval '1 microsecond' "
    "WHERE worker_id = $1::bigint AND ended_at IS NULL AND lease_expires_at > now() "
    "RETURNING worker_id";
// Only rows whose lease has not run out: an expired row may already be someone else's.
constexpr const char* kRenewSlotsSql =
    "UPDATE grin_slots SET lease_expires_at = now() + $3::bigint * interval '1 microsecond' "
    "WHERE name = $1 AND worker_id = $2::bigint AND lease_expires_at > now() "
    "RETURNING slot, token";
constexpr const char* kLiveWorkersSql =
    "SELECT worker_id FROM workers WHERE ended_at IS NULL AND lease_expires_at > now() "
    "ORDER BY worker_id";
constexpr const char* kClaimSlotsSql =
    "UPDATE grin_slots s SET worker_id = $2::bigint, token = s.token + 1, "
    "lease_expires_at = now() + $3::bigint * interval '1 microsecond' "
    "FROM (SELECT name, slot FROM grin_slots WHERE name = $1 AND (worker_id IS NULL OR "
    "lease_expires_at IS NULL OR lease_expires_at <= now()) ORDER BY slot LIMIT $4::bigint "
    "FOR UPDATE SKIP LOCKED) f WHERE s.name = f.name AND s.slot = f.slot "
    // An ended worker (ReleaseForExit meanwhile) claims nothing.
    "AND EXISTS (SELECT 1 FROM workers WHERE worker_id = $2::bigint AND ended_at IS NULL) "
    "RETURNING s.slot, s.token";
constexpr const char* kReleaseSlotsSql =
    "UPDATE grin_slots SET worker_id = NULL, lease_expires_at = NULL "
    "WHERE name = $1 AND worker_id = $2::bigint AND slot = ANY($3::bigint[])";
constexpr const char* kReleaseAllSql =
    "UPDATE grin_slots SET worker_id = NULL, lease_expires_at = NULL "
    "WHERE name = $1 AND worker_id = $2::bigint AND lease_expires_at > now()";
// Every row of the worker, lease run out or not (an expired row someone claimed is theirs).
constexpr const char* kReleaseMineSql =
    "UPDATE grin_slots SET worker_id = NULL, lease_expires_at = NULL "
    "WHERE name = $1 AND worker_id = $2::bigint";
constexpr const char* kEndWorkerSql =
    "UPDATE workers SET ended_at = now(), lease_expires_at = least(lease_expires_at, now()) "
    "WHERE worker_id = $1::bigint AND ended_at IS NULL";
constexpr const char* kListLiveSql =
    "SELECT w.worker_id, w.host, w.pid, coalesce(w.run_id, 0), "
    "to_char(w.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "extract(epoch FROM now() - w.heartbeat_at)::double precision, "
    "(SELECT count(*) FROM grin_slots s WHERE s.name = $1 AND s.worker_id = w.worker_id "
    " AND s.lease_expires_at > now()) "
    "FROM workers w WHERE w.ended_at IS NULL AND w.lease_expires_at > now() ORDER BY w.worker_id";

// One transaction on c: fn, then COMMIT (ROLLBACK on any error).
Status InTx(PgConnection& c, const std::function<Status()>& fn) {
  pg::PgTransaction tx(c);
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(fn());
  return tx.Commit();
}

}  // namespace

int64_t PgWorkers::BootMicros() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);  // counts while frozen or suspended, unlike CLOCK_MONOTONIC
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

PgWorkers::PgWorkers(std::string conninfo, std::string what, PgWorkersOptions options)
    : conninfo_(std::move(conninfo)), what_(std::move(what)), opt_(std::move(options)) {
  if (!opt_.logger) opt_.logger = NullLogger::Default();
  if (opt_.host.empty()) opt_.host = HostName();
}

Result<std::unique_ptr<PgWorkers>> PgWorkers::Open(const std::string& conninfo,
                                                   const PgWorkersOptions& options) {
  if (options.download_slots < 1) {
    return Status::InvalidArgument("worker registry: download_slots must be at least 1 (got " +
                                   std::to_string(options.download_slots) + ")");
  }
  if (options.requests_per_second < 0) {
    return Status::InvalidArgument("worker registry: the GRIN request rate must not be negative");
  }
  if (options.lease_ttl_micros < 100'000 ||
      (options.heartbeat_interval_micros > 0 &&
       options.heartbeat_interval_micros * 2 > options.lease_ttl_micros)) {
    return Status::InvalidArgument(
        "worker registry: the lease must be at least 0.1 s and twice the heartbeat interval");
  }
  std::unique_ptr<PgWorkers> w(new PgWorkers(conninfo, pg::RedactConninfo(conninfo), options));
  GRIN_RETURN_IF_ERROR(w->Start());
  return w;
}

Result<PgConnection*> PgWorkers::Conn() {
  if (!conn_ || !conn_->ok()) {
    conn_.reset();
    GRIN_ASSIGN_OR_RETURN(conn_, PgConnection::Connect(conninfo_, what_));
  }
  return conn_.get();
}

Status PgWorkers::Start() {
  {
    std::lock_guard<std::mutex> cl(conn_mu_);
    GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
    auto migrated = pg::MigratePostgres(*c);
    if (!migrated.ok()) return migrated.status();
    Status made = InTx(*c, [&]() -> Status {
      GRIN_RETURN_IF_ERROR(c->Exec(kEnsureLimitsSql, {opt_.limits_name, I(opt_.download_slots),
                                                      std::to_string(opt_.requests_per_second)})
                               .status());
      GRIN_RETURN_IF_ERROR(c->Exec(kEnsureSlotsSql, {opt_.limits_name}).status());
      GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kReadLimitsSql, {opt_.limits_name}));
      n_ = static_cast<int>(r.Int(0, 0));
      rate_ = std::stod(r.Text(0, 1));
      return Status::Ok();
    });
    if (!made.ok()) return made;
    if (n_ != opt_.download_slots || rate_ != opt_.requests_per_second) {
      opt_.logger->Log(LogLevel::kInfo, "workers.run_limits",
                       {{"download_slots", I(n_)},
                        {"requests_per_second", std::to_string(rate_)},
                        {"note", "the run's limits, set by its first worker, are used"}});
    }
    cap_ = opt_.max_local_slots > 0 ? std::min(opt_.max_local_slots, n_) : n_;
    GRIN_RETURN_IF_ERROR(Register(*c));
  }
  GRIN_RETURN_IF_ERROR(Tick());
  if (opt_.heartbeat_interval_micros > 0) {
    heartbeat_ = std::thread([this] { HeartbeatLoop(); });
    watchdog_ = std::thread([this] { WatchdogLoop(); });
  }
  return Status::Ok();
}

Status PgWorkers::Register(PgConnection& c) {
  (void)c.Exec(kPruneSql);  // old history only; failing to prune changes nothing
  GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(kRegisterSql, {opt_.host, I(::getpid()), I(opt_.run_id),
                                                          I(opt_.lease_ttl_micros)}));
  std::lock_guard<std::mutex> l(mu_);
  worker_id_ = r.Int(0, 0);
  opt_.logger->Log(LogLevel::kInfo, "workers.registered",
                   {{"worker", I(worker_id_)}, {"host", opt_.host}});
  return Status::Ok();
}

PgWorkers::~PgWorkers() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (watchdog_.joinable()) watchdog_.join();
  Status s = Deregister();
  if (!s.ok()) {
    opt_.logger->Log(LogLevel::kWarning, "workers.deregister_failed", {{"error", s.ToString()}});
  }
}

double PgWorkers::RateFor(int limit) const {
  if (limit <= 0) return 0;
  if (rate_ <= 0) return kUnlimitedRate;
  return rate_ * limit / n_;
}

void PgWorkers::SetLimit(int limit) {
  // listener_mu_ first: the listener hears the changes in the order they were made.
  std::lock_guard<std::mutex> ll(listener_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    limit_ = std::max(0, std::min<int>(limit, static_cast<int>(rows_.size())));
    limit = limit_;
  }
  cv_.notify_all();
  double rate = RateFor(limit);
  if (listener_ && rate != told_rate_) listener_(rate);
  told_rate_ = rate;
}

Status PgWorkers::Tick() {
  std::lock_guard<std::mutex> tl(tick_mu_);
  std::lock_guard<std::mutex> cl(conn_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ended_) return Status::FailedPrecondition("worker registry: this worker has deregistered");
  }
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  const std::string ttl = I(opt_.lease_ttl_micros);
  const int64_t margin = std::max<int64_t>(opt_.lease_ttl_micros / 10, 50'000);

  // 1. Renew the registration and the rows still held; count the live workers.
  const int64_t t0 = BootMicros();  // before the transaction's now(): the lease ends later
  int64_t me = worker_id();
  bool lapsed = false;
  std::vector<Row> kept;
  std::vector<int64_t> live;
  Status renewed = InTx(*c, [&]() -> Status {
    kept.clear();
    live.clear();
    GRIN_ASSIGN_OR_RETURN(PgResult w, c->Exec(kRenewWorkerSql, {I(me), ttl}));
    lapsed = w.rows() == 0;
    if (lapsed) return Status::Ok();
    GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kRenewSlotsSql, {opt_.limits_name, I(me), ttl}));
    for (int i = 0; i < r.rows(); ++i) kept.push_back(Row{r.Int(i, 0), r.Int(i, 1)});
    GRIN_ASSIGN_OR_RETURN(PgResult l, c->Exec(kLiveWorkersSql));
    for (int i = 0; i < l.rows(); ++i) live.push_back(l.Int(i, 0));
    return Status::Ok();
  });
  if (!renewed.ok()) return renewed;
  if (lapsed) {
    // Our registration ran out (frozen, or cut off for a lease time): so did every row we held,
    // and others may have them now. Use none, and join again as a new worker.
    SetLimit(0);
    {
      std::lock_guard<std::mutex> l(mu_);
      rows_.clear();
      if (ended_) return Status::Ok();  // released for exit meanwhile: never again
    }
    opt_.logger->Log(LogLevel::kWarning, "workers.lease_lost", {{"worker", I(me)}});
    GRIN_RETURN_IF_ERROR(Register(*c));
    return Status::Ok();  // the next Tick takes the new worker's share
  }
  {
    // Rows not renewed are void (their lease ran out: someone may hold them now). The rows, the
    // limit and the deadline change in one step, so no acquire sees a mix.
    std::lock_guard<std::mutex> ll(listener_mu_);
    double rate;
    {
      std::lock_guard<std::mutex> l(mu_);
      rows_ = kept;
      limit_ = std::min<int>(limit_, static_cast<int>(rows_.size()));
      deadline_us_ = t0 + opt_.lease_ttl_micros - margin;
      rate = RateFor(limit_);
    }
    if (listener_ && rate != told_rate_) listener_(rate);
    told_rate_ = rate;
  }
  cv_.notify_all();

  // 2. The fair share: the first N mod W live workers (by id) get ceil(N/W), the rest floor.
  const int w_count = std::max<int>(1, static_cast<int>(live.size()));
  const int rank = static_cast<int>(std::find(live.begin(), live.end(), me) - live.begin());
  int target = n_ / w_count + (rank < n_ % w_count ? 1 : 0);
  target = std::min(target, cap_);

  // 3. Over it: lower the limit first; give rows back only once the downloads in use fit.
  int held_now;
  {
    std::lock_guard<std::mutex> l(mu_);
    held_now = static_cast<int>(rows_.size());
  }
  if (held_now > target) {
    SetLimit(target);  // the listener hears the lower rate before any row goes
    std::vector<int64_t> give;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (in_use_ <= target) {
        // TryAcquireDownload keeps in_use_ <= limit_ <= target from here on.
        while (static_cast<int>(rows_.size()) > target) {
          give.push_back(rows_.back().slot);
          rows_.pop_back();
        }
      }
    }
    if (!give.empty()) {
      std::string arr = "{";
      for (size_t i = 0; i < give.size(); ++i) arr += (i ? "," : "") + I(give[i]);
      arr += "}";
      Status s = c->Exec(kReleaseSlotsSql, {opt_.limits_name, I(me), arr}).status();
      // Not given back (the call failed): the rows expire by themselves; we use them no more.
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  // 4. Under it: claim free or expired rows, then raise the limit (and the rate).
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ended_) return Status::Ok();  // released for exit meanwhile: claim nothing
  }
  if (held_now < target) {
    GRIN_ASSIGN_OR_RETURN(
        PgResult r, c->Exec(kClaimSlotsSql, {opt_.limits_name, I(me), ttl, I(target - held_now)}));
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < r.rows(); ++i) rows_.push_back(Row{r.Int(i, 0), r.Int(i, 1)});
    held_now = static_cast<int>(rows_.size());
  }
  SetLimit(std::min(held_now, target));
  return Status::Ok();
}

Status PgWorkers::Deregister() {
  std::lock_guard<std::mutex> tl(tick_mu_);
  int64_t me;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ended_) return Status::Ok();
    me = worker_id_;
  }
  SetLimit(0);
  bool idle;
  {
    std::unique_lock<std::mutex> l(mu_);
    ended_ = true;
    idle = cv_.wait_for(l, std::chrono::microseconds(opt_.lease_ttl_micros),
                        [&] { return in_use_ == 0; });
    rows_.clear();
  }
  std::lock_guard<std::mutex> cl(conn_mu_);
  GRIN_ASSIGN_OR_RETURN(PgConnection * c, Conn());
  return InTx(*c, [&]() -> Status {
    // Rows still in use (a download that would not end) are left to expire, not handed on.
    if (idle) GRIN_RETURN_IF_ERROR(c->Exec(kReleaseAllSql, {opt_.limits_name, I(me)}).status());
    return c->Exec(kEndWorkerSql, {I(me)}).status();
  });
}

Result<int64_t> PgWorkers::ReleaseForExit() {
  int64_t me;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ended_) return int64_t{0};
    ended_ = true;  // TryAcquireDownload refuses; a Tick in flight claims and registers nothing
    stop_ = true;   // the heartbeat and watchdog threads end at their next wait
    me = worker_id_;
  }
  cv_.notify_all();
  SetLimit(0);
  {
    std::lock_guard<std::mutex> l(mu_);
    rows_.clear();
  }
  // The heartbeat's connection when no Tick is using it; else one of our own (a Tick may be
  // waiting on a server that does not answer).
  std::unique_lock<std::mutex> cl(conn_mu_, std::try_to_lock);
  std::unique_ptr<PgConnection> own;
  PgConnection* c = nullptr;
  if (cl.owns_lock() && conn_ && conn_->ok()) {
    c = conn_.get();
  } else {
    GRIN_ASSIGN_OR_RETURN(own, PgConnection::Connect(conninfo_, what_));
    c = own.get();
  }
  int64_t given = 0;
  Status done = InTx(*c, [&]() -> Status {
    GRIN_RETURN_IF_ERROR(c->Exec(kEndWorkerSql, {I(me)}).status());
    GRIN_ASSIGN_OR_RETURN(PgResult r, c->Exec(kReleaseMineSql, {opt_.limits_name, I(me)}));
    given = r.Affected();
    return Status::Ok();
  });
  if (!done.ok()) return done;
  opt_.logger->Log(LogLevel::kInfo, "workers.released_for_exit",
                   {{"worker", I(me)}, {"slots", I(given)}});
  return given;
}

void PgWorkers::HeartbeatLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    // Wake early when a lowered limit now fits the downloads in use: the surplus can go.
    cv_.wait_for(l, std::chrono::microseconds(opt_.heartbeat_interval_micros), [&] {
      return stop_ || (static_cast<int>(rows_.size()) > limit_ && in_use_ <= limit_);
    });
    if (stop_) break;
    l.unlock();
    Status s = Tick();
    if (!s.ok()) {
      opt_.logger->Log(LogLevel::kWarning, "workers.heartbeat_failed", {{"error", s.ToString()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    l.lock();
    if (!s.ok()) continue;
    // Woken for a surplus that could not go yet: do not spin until the next interval.
    if (static_cast<int>(rows_.size()) > limit_ && in_use_ <= limit_) {
      cv_.wait_for(l, std::chrono::microseconds(opt_.heartbeat_interval_micros / 4),
                   [&] { return stop_; });
    }
  }
}

void PgWorkers::WatchdogLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    int64_t left = deadline_us_ - BootMicros();
    if (left > 0 || limit_ == 0) {
      // Tick notifies when it moves the deadline or the limit.
      cv_.wait_for(
          l, std::chrono::microseconds(left > 0 ? std::min<int64_t>(left, 1'000'000) : 1'000'000));
      continue;
    }
    // The lease may have run out in the database: stop using the rows (and GRIN) until renewed.
    l.unlock();
    opt_.logger->Log(LogLevel::kWarning, "workers.lease_lapsed", {{"worker", I(worker_id())}});
    SetLimit(0);
    l.lock();
  }
}

int64_t PgWorkers::worker_id() const {
  std::lock_guard<std::mutex> l(mu_);
  return worker_id_;
}

int PgWorkers::held() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(rows_.size());
}

int PgWorkers::in_use() const {
  std::lock_guard<std::mutex> l(mu_);
  return in_use_;
}

bool PgWorkers::TryAcquireDownload() {
  std::lock_guard<std::mutex> l(mu_);
  // The lease is checked before every use: past the local deadline the rows may be another's.
  if (ended_ || in_use_ >= limit_ || BootMicros() >= deadline_us_) return false;
  ++in_use_;
  return true;
}

void PgWorkers::ReleaseDownload() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (in_use_ > 0) --in_use_;
  }
  cv_.notify_all();
}

int PgWorkers::DownloadLimit() const {
  std::lock_guard<std::mutex> l(mu_);
  return BootMicros() >= deadline_us_ ? 0 : limit_;
}

double PgWorkers::GrinRequestRate() const {
  std::lock_guard<std::mutex> l(mu_);
  return BootMicros() >= deadline_us_ ? 0 : RateFor(limit_);
}

void PgWorkers::SetRateListener(RateListener listener) {
  std::lock_guard<std::mutex> ll(listener_mu_);
  listener_ = std::move(listener);
  double rate = GrinRequestRate();
  if (listener_) listener_(rate);
  told_rate_ = rate;
}

Result<std::vector<WorkerInfo>> ListLiveWorkers(PgConnection& c, const std::string& limits_name) {
  GRIN_ASSIGN_OR_RETURN(PgResult r, c.Exec(kListLiveSql, {limits_name}));
  std::vector<WorkerInfo> out;
  for (int i = 0; i < r.rows(); ++i) {
    WorkerInfo w;
    w.worker_id = r.Int(i, 0);
    w.host = r.Text(i, 1);
    w.pid = r.Int(i, 2);
    w.run_id = r.Int(i, 3);
    w.started_at = r.Text(i, 4);
    w.heartbeat_age_s = std::max(0.0, std::stod(r.Text(i, 5)));
    w.slots_held = static_cast<int>(r.Int(i, 6));
    out.push_back(std::move(w));
  }
  return out;
}

Result<std::vector<WorkerInfo>> ListLiveWorkers(const std::string& conninfo,
                                                const std::string& limits_name) {
  GRIN_ASSIGN_OR_RETURN(auto c, PgConnection::Connect(conninfo, pg::RedactConninfo(conninfo)));
  return ListLiveWorkers(*c, limits_name);
}

}  // namespace grin::storage
