#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "engine/net/retry.h"
#include "engine/pipeline/sync_impl.h"
#include "engine/pipeline/sync_metrics.h"

namespace grin::pipeline {
namespace {

namespace fs = std::filesystem;

double ProcessCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

}  // namespace

double SyncPipeline::Impl::ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool SyncPipeline::Impl::StagingFull() {
  if (opt.staging_limit_bytes == 0) return false;
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = staging_scanned_at.load();
  if (now - last >= 500'000 && staging_scanned_at.compare_exchange_strong(last, now)) {
    uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(opt.staging_dir, ec)) {
      if (e.is_regular_file(ec)) total += e.file_size(ec);
    }
    staging_bytes = total;
  }
  return staging_bytes.load() >= opt.staging_limit_bytes;
}

void SyncPipeline::Impl::AddCpu(const char* key, double since) {
  double now = ThreadCpuSeconds();
  std::lock_guard<std::mutex> l(mu);
  stats.cpu_s[key] += now - since;
}

void SyncPipeline::Impl::Tally(StageTally& t, const char* kind, const std::string& reason) {
  std::lock_guard<std::mutex> l(mu);
  if (std::string(kind) == "completed") ++t.completed;
  else if (std::string(kind) == "skipped") ++t.skipped;
  else ++t.failed;
  if (!reason.empty()) ++t.reasons[reason];
}

void SyncPipeline::Impl::RefreshMetrics() {
  if (opt.metrics == nullptr) return;
  SyncStats snapshot;
  {
    std::lock_guard<std::mutex> l(mu);
    snapshot = stats;
  }
  ExportSyncStats(snapshot, opt.metrics);
  PipelineGauges g;
  g.in_flight = in_flight.load();
  g.check = slots[kCheck].load();
  g.download = slots[kDownload].load();
  g.process = slots[kProcess].load();
  g.memory_in_use = budget->in_use();
  g.memory_capacity = opt.memory_limit_bytes;
  g.memory_idle = budget->idle_bytes();
  ExportPipelineGauges(g, opt.metrics);
  auto c = store->Counts();
  if (c.ok()) ExportStageCounts(*c, opt.metrics);
  auto failures = store->Failures();
  if (failures.ok()) ExportFailures(*failures, opt.metrics);
}

void SyncPipeline::Impl::Finished(bool uploaded_now) {
  std::string line;
  std::optional<ProgressSnapshot> snap;
  {
    std::lock_guard<std::mutex> l(mu);
    ++stats.done;
    if (uploaded_now) ++stats.uploaded;
    bool last = stats.done >= stats.total;
    if (opt.on_snapshot ||
        (opt.on_progress && (stats.done - last_progress_done >= opt.progress_every || last))) {
      last_progress_done = stats.done;
      double t = static_cast<double>(clock->NowMicros() - start_micros) / 1e6;
      double rate = tracker.Record(t, stats.done);
      ProgressSnapshot s;
      s.done = stats.done;
      s.total = stats.total;
      s.elapsed_s = t;
      s.active_downloads = slots[kDownload].load();
      s.download_limit = opt.download_concurrency;
      s.processing = slots[kProcess].load() + slots[kCheck].load();
      auto c = store->Counts();
      if (c.ok()) {
        s.waiting_download = std::max<int64_t>(0, c->at[1] - s.active_downloads);
        s.waiting_process = std::max<int64_t>(0, c->at[2] - slots[kProcess].load());
      }
      s.bytes = stats.bytes_downloaded;
      if (opt.on_snapshot) {
        snap = s;
      } else {
        line = FormatProgressLine(s, rate);
      }
    }
  }
  if (snap) opt.on_snapshot(*snap);
  if (!line.empty()) opt.on_progress(line);
}

FailureSource SyncPipeline::Impl::SourceOf(const std::string& reason) {
  auto has = [&reason](const char* part) { return reason.find(part) != std::string::npos; };
  if (has("staging")) return FailureSource::kStaging;
  if (has("upload") || has("storage") || has("stored") || has("rebuild")) {
    return FailureSource::kStorage;
  }
  if (has("passphrase") || has("decrypt") || has("process") || has("archive_invalid") ||
      has("extract")) {
    return FailureSource::kDecrypt;
  }
  return FailureSource::kGrin;  // check_failed, download_failed, conversion_request_failed...
}

bool SyncPipeline::Impl::HoldIfSystemic(const WorkItem& w, const Status& why,
                                        const std::string& reason, int64_t size) {
  if (store_failed.load()) {  // not the book's fault: it goes back as it was at the end
    {
      std::lock_guard<std::mutex> l(mu);
      held_items.push_back(w);
    }
    log->Log(LogLevel::kInfo, "book.held_systemic",
             {{"barcode", w.barcode}, {"stage", std::string(StageName(w.stage))},
              {"reason", reason}, {"error", "the state store failed"}});
    return true;
  }
  const FailureSource source = SourceOf(reason);
  std::string bucket, path;
  int64_t needed = size;
  if (needed < 0) needed = last_archive_size.load();  // unchecked: like the last archive seen
  if (source == FailureSource::kStorage) {
    bucket = reason.find("ocr") != std::string::npos
                 ? FullTextLocation(opt.layout, w.barcode).bucket
                 : RawArchiveLocation(opt.layout, w.barcode).bucket;
  } else {
    path = opt.staging_dir;
    if (needed > 0) needed *= 2;  // a staged book: the download and its decrypted archive
  }
  SystemicFailure f = ClassifyFailure(why, source, bucket, path, needed);
  if (f.kind == SystemicKind::kNone) return false;
  {
    std::lock_guard<std::mutex> l(mu);
    held_items.push_back(w);
  }
  log->Log(LogLevel::kInfo, "book.held_systemic",
           {{"barcode", w.barcode}, {"stage", std::string(StageName(w.stage))},
            {"reason", reason}, {"error", why.message()}});
  if (breaker->RecordFailure(w.barcode, f)) finish = true;  // stop claiming, drain
  return true;
}

void SyncPipeline::Impl::StateStoreFailed(const Status& failed) {
  log->Log(LogLevel::kInfo, "sync.state_store_failed", {{"error", failed.message()}});
  Status s = failed;
  if (s.code() != StatusCode::kNoSpace && !opt.state_store_path.empty()) {
    // SQLite reports some writes into a full disk (the WAL index, a checkpoint) as an I/O error.
    struct statvfs v {};
    std::string dir = fs::path(opt.state_store_path).parent_path().string();
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &v) == 0 &&
        static_cast<uint64_t>(v.f_bavail) * v.f_frsize < kMiB) {
      s = Status::NoSpace("disk full: " + s.message());
    }
  }
  // Room for the database to grow (WAL, a checkpoint): a generous guess.
  SystemicFailure f =
      ClassifyFailure(s, FailureSource::kStateStore, "", opt.state_store_path, 64 * kMiB);
  (void)breaker->RecordFailure("", f);
  AbandonInFlight();
  finish = true;
}

void SyncPipeline::Impl::AbandonInFlight() {
  if (store_failed.exchange(true)) return;
  // Requests stalled on a dead link (a host cut off from the network) would otherwise hold their
  // workers, and the run's end, until the transport's low-speed limit and retries give up.
  transport->CancelAll();
}

void SyncPipeline::Impl::FailItem(const WorkItem& w, StageTally& t, const Status& why,
                                  const std::string& reason, bool permanent, int64_t size) {
  if (HoldIfSystemic(w, why, reason, size)) return;
  if (reason == "archive_missing" && why.code() == StatusCode::kNotFound) {
    // GRIN listed or HEADed the archive, then had none for the GET (expired, evicted): the book
    // waits for GRIN to convert it again, with the reason, rather than dying on the first try.
    AwaitConversion(w, "archive_expired", json{{"error", why.message()}});
    return;
  }
  bool dead = permanent || net::ClassifyBookFailure(why) == net::RetryClass::kPermanent;
  json d = {{"error", why.message()}};
  Status s = store->Fail(w, dead ? ErrorClass::kPermanent : ErrorClass::kRetryable, reason,
                         d.dump());
  Tally(t, "failed", reason);
  log->Log(LogLevel::kWarning, "book.failed",
           {{"barcode", w.barcode}, {"stage", std::string(StageName(w.stage))},
            {"reason", reason}, {"error", why.message()}});
  if (!s.ok() && s.code() != StatusCode::kConflict) StateStoreFailed(s);
  if (!s.ok()) return;  // lease lost: someone else owns the book now
  if (dead) {
    std::lock_guard<std::mutex> l(mu);
    ++stats.dead;
  } else {
    std::lock_guard<std::mutex> l(mu);
    ++stats.retried;
  }
  if (dead) Finished(false);
}

void SyncPipeline::Impl::CompleteItem(const WorkItem& w, Completion c, StageTally& t, const char* kind,
                  const std::string& reason) {
  c.item = w;
  auto r = store->CompleteMany({c});
  if (!r.ok()) StateStoreFailed(r.status());
  if (!r.ok() || !r->front().ok()) {
    log->Log(LogLevel::kWarning, "book.complete_refused",
             {{"barcode", w.barcode},
              {"error", r.ok() ? r->front().message() : r.status().message()}});
    return;
  }
  Tally(t, kind, reason);
  if (c.to == Stage::kChecked) claim_state[kDownload] = kOpen;  // work for the next stage
  if (c.to == Stage::kDownloaded) claim_state[kProcess] = kOpen;
  if (c.to == Stage::kUploaded) {
    breaker->RecordSuccess();
    ::unlink(GpgPath(w.barcode).c_str());  // a partial download no run will resume now
    Finished(true);
  }
}

bool SyncPipeline::Impl::RunOne() {
  static constexpr Work kOrder[] = {kProcess, kDownload, kCheck};
  for (Work work : kOrder) {
    if (Stopping()) return false;
    if (work == kDownload && StagingFull()) {
      continue;  // staging is full: let processing drain it first
    }
    int state = claim_state[work].load();
    if (state == kIdle || state == kProbing) continue;
    Slot slot = TakeSlot(work);  // given back when this iteration ends, whatever the stage did
    if (!slot) continue;
    const bool probe = state == kProbe;  // the one claim of a stage that may be dry
    if (probe && !claim_state[work].compare_exchange_strong(state, kProbing)) continue;
    Stage from = work == kCheck ? Stage::kPending
                                : (work == kDownload ? Stage::kChecked : Stage::kDownloaded);
    auto items = store->Claim(from, 1);
    if (!items.ok() || items->empty()) {
      if (items.ok()) claim_state[work] = kIdle;  // until WaitForWork or a completion into it
      if (!items.ok()) {
        if (probe) claim_state[work] = kProbe;
        StateStoreFailed(items.status());  // e.g. its disk is full: stop
      }
      continue;
    }
    if (probe) {
      claim_state[work] = kOpen;  // work there: every worker may ask
      wake_cv.notify_all();
    }
    ++in_flight;
    const WorkItem& w = items->front();
    const int64_t began = clock->NowMicros();
    if (work == kCheck) {
      CheckBook(w, slot);
    } else {
      // The previous stage's result, decoded once (checkpoint_journal.h).
      const JobCheckpoint cp = DecodeCheckpoint(w.checkpoint);
      if (work == kDownload) {
        DownloadOrStream(w, cp, slot);
      } else {
        Process(w, cp);
      }
    }
    if (stage_seconds[work] != nullptr) {
      stage_seconds[work]->Observe(static_cast<double>(clock->NowMicros() - began) / 1e6);
    }
    --in_flight;
    return true;
  }
  return false;
}

void SyncPipeline::Impl::Worker() {
  while (!Stopping()) {
    if (RunOne()) continue;
    // Nothing to claim, or no slot free: sleep until the coordinator wakes the stages, or a
    // moment (a slot comes free, staging drains, a completion here un-idles a stage).
    std::unique_lock<std::mutex> l(wake_mu);
    wake_cv.wait_for(l, std::chrono::milliseconds(20));
  }
}

void SyncPipeline::Impl::WakeStages() {
  for (auto& state : claim_state) {
    int idle = kIdle;
    state.compare_exchange_strong(idle, kProbe);
  }
  wake_cv.notify_all();
}

void SyncPipeline::Impl::WaitForWork(int idle, bool quiet) {
  using Steady = std::chrono::steady_clock;
  // The wait ends early when another stage goes idle (wait for it too) or the last book in
  // hand here is done (the run may be over); a stage un-idled meanwhile needs nothing.
  auto stop_waiting = [&] {
    return Stopping() || (IdleStages() & ~idle) != 0 || (!quiet && in_flight.load() == 0);
  };
  std::vector<Stage> stages;
  static constexpr Stage kClaimedAt[] = {Stage::kPending, Stage::kChecked, Stage::kDownloaded};
  for (int w = 0; w < 3; ++w) {
    if (idle & (1 << w)) stages.push_back(kClaimedAt[w]);
  }
  auto woken = store->WaitForWork(stages, kIdleWaitMicros, stop_waiting);
  if (!woken.ok()) {
    log->Log(LogLevel::kWarning, "sync.wait_failed", {{"error", woken.status().message()}});
  } else if (!*woken) {
    return;  // timed out (the caller looks whether the run is done), or something changed here
  }
  // Woken (or the wait failed: claim, which reports a failing store as such). Wake-ups in a
  // burst (other processes completing one book after another) let the workers claim at most
  // every kMinWakeGapMicros.
  const auto next = last_wake + std::chrono::microseconds(kMinWakeGapMicros);
  while (Steady::now() < next && !Stopping()) {
    std::this_thread::sleep_for(
        std::min<Steady::duration>(next - Steady::now(), std::chrono::milliseconds(20)));
  }
  last_wake = Steady::now();
  WakeStages();
}

SyncPipeline::SyncPipeline(StateStore* store, ObjectStore* objects,
                           grin_client::GrinClient* grin, net::Transport* transport,
                           const archive::Secret* passphrase, SyncOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->objects = objects;
  impl_->grin = grin;
  impl_->transport = transport;
  impl_->passphrase = passphrase;
  impl_->opt = std::move(options);
  impl_->clock = impl_->opt.clock ? impl_->opt.clock : SystemClock::Default();
  impl_->log = impl_->opt.logger ? impl_->opt.logger : NullLogger::Default();
  impl_->budget = std::make_unique<MemoryBudget>(impl_->opt.memory_limit_bytes);
  impl_->breaker = std::make_unique<CircuitBreaker>(impl_->opt.stop_after_systemic);
  if (Metrics* m = impl_->opt.metrics) {
    impl_->stage_seconds[Impl::kCheck] = StageDurationHistogram(m, "check");
    impl_->stage_seconds[Impl::kDownload] = StageDurationHistogram(m, "download");
    impl_->stage_seconds[Impl::kProcess] = StageDurationHistogram(m, "process");
  }
}

SyncPipeline::~SyncPipeline() = default;

SyncStats SyncPipeline::RemoveLitterOnly() {
  impl_->RemoveLitter();
  impl_->RefreshMetrics();
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->stats;
}

Result<SyncStats> SyncPipeline::Run() {
  Impl& m = *impl_;
  if (m.opt.staging_dir.empty()) return Status::InvalidArgument("sync needs a staging directory");
  std::error_code ec;
  fs::create_directories(m.opt.staging_dir, ec);
  if (ec) {
    return Status::PermissionDenied(m.opt.staging_dir + ": cannot create the staging directory (" +
                                    ec.message() + ")");
  }
  if (m.opt.workers < 1 || m.opt.check_concurrency < 1 || m.opt.download_concurrency < 1) {
    return Status::InvalidArgument("workers and per-stage concurrency must be at least 1");
  }
  GRIN_ASSIGN_OR_RETURN(StageCounts start, m.store->Counts());
  m.stats.total =
      start.total - start.at[static_cast<int>(Stage::kUploaded)] - start.dead - start.awaiting;
  m.start_micros = m.clock->NowMicros();
  double cpu0 = ProcessCpuSeconds();
  m.RemoveLitter();
  if (m.opt.storage_inventory) m.LoadInventory();
  std::vector<std::thread> workers;
  for (int i = 0; i < m.opt.workers; ++i) workers.emplace_back([&m] { m.Worker(); });
  // Coordinator: end the run when nothing is left (or on stop / fatal error). While stages are
  // idle (their claims found nothing: the jobs left are leased by other processes, wait for
  // their retry time, or are in this process's hands) it waits on the state store for work
  // there (StateStore::WaitForWork: new work announced, a retry falling due, another holder's
  // lease lapsing) instead of polling, and looks whether the run is done when no book is in
  // hand here.
  m.RefreshMetrics();
  m.last_wake = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  for (;;) {
    if (const int idle = m.IdleStages(); idle == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } else {
      m.WaitForWork(idle, m.in_flight.load() == 0);
    }
    if (m.opt.metrics && m.clock->NowMicros() - m.metrics_refreshed_micros >= 1'000'000) {
      m.metrics_refreshed_micros = m.clock->NowMicros();
      m.RefreshMetrics();
    }
    if (m.Stopping()) break;
    if (m.in_flight.load() > 0) continue;
    auto c = m.store->Counts();
    if (!c.ok()) {
      m.AbandonInFlight();  // what is still in flight cannot be recorded
      std::lock_guard<std::mutex> l(m.mu);
      m.stats.fatal = c.status().message();
      break;
    }
    int64_t open =
        c->total - c->at[static_cast<int>(Stage::kUploaded)] - c->dead - c->awaiting;
    int64_t n_held;
    {
      std::lock_guard<std::mutex> l(m.mu);
      n_held = static_cast<int64_t>(m.held_items.size());
    }
    if (open <= n_held && m.in_flight.load() == 0) break;  // all that is left is held back
  }
  bool stop_requested = m.opt.stop && m.opt.stop->load() != 0;
  m.finish = true;
  // A failed store: requests the workers still send for the books in their hands (a HEAD right
  // after a claim) are cancelled too, until every worker has put its book down.
  while (m.store_failed.load() && m.in_flight.load() > 0) {
    m.transport->CancelAll();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : workers) t.join();
  SyncStats result;
  {
    std::lock_guard<std::mutex> l(m.mu);
    // Jobs held back for a systemic failure go back as they were: no attempt counted.
    for (const WorkItem& w : m.held_items) (void)m.store->Release(w);
    m.stats.held_back = static_cast<int64_t>(m.held_items.size());
    std::string cause = m.breaker->cause();
    if (m.stats.fatal.empty() && (m.breaker->tripped() || !m.held_items.empty())) {
      m.stats.fatal = cause;
    }
    m.stats.interrupted = stop_requested;
    m.stats.elapsed_s = static_cast<double>(m.clock->NowMicros() - m.start_micros) / 1e6;
    double workers_cpu = 0;
    for (const auto& [key, seconds] : m.stats.cpu_s) workers_cpu += seconds;
    m.stats.cpu_s["process"] = ProcessCpuSeconds() - cpu0;
    m.stats.cpu_s["other_threads"] = m.stats.cpu_s["process"] - workers_cpu;
    result = m.stats;
  }
  m.RefreshMetrics();  // the final values, after the held books went back
  return result;
}

}  // namespace grin::pipeline
