#pragma once
// Internal to the sync pipeline, not a public header: SyncPipeline::Impl, the state its worker
// threads share. It is defined across five files:
//   sync.cc           the worker loop, bookkeeping (tallies, progress, CPU accounting), Run();
//   sync_check.cc     pending books: the storage inventory, the HEAD check, and the GET that
//                     stands for the check for books storage does not hold;
//   sync_transfer.cc  download (streamed or staged), decrypt + extract, upload, completion;
//   sync_rebuild.cc   missing OCR / MARC of a stored book rebuilt from its raw archive;
//   sync_litter.cc    what interrupted earlier runs left (staging files, temp objects).
// See sync.h for what each stage does and the state transitions.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/pipeline/archive_stream.h"
#include "engine/pipeline/chunk_buffer.h"
#include "engine/pipeline/circuit_breaker.h"
#include "engine/pipeline/checkpoint_journal.h"
#include "engine/pipeline/memory_budget.h"
#include "engine/pipeline/progress.h"
#include "engine/pipeline/shared_limits.h"
#include "engine/pipeline/sync.h"

namespace grin::pipeline {

struct SyncPipeline::Impl {
  using json = nlohmann::json;
  // Index of each worked stage in the slot table.
  enum Work { kCheck = 0, kDownload = 1, kProcess = 2 };

  // CPU time of the calling thread, seconds.
  static double ThreadCpuSeconds();

  StateStore* store;
  ObjectStore* objects;
  grin_client::GrinClient* grin;
  net::Transport* transport;
  const archive::Secret* passphrase;
  SyncOptions opt;
  Clock* clock;
  Logger* log;

  std::atomic<bool> finish{false};  // workers exit
  // The state store failed (AbandonInFlight): nothing in flight can be recorded, so transfers
  // still running are cancelled and every book failing from now on is held, not failed.
  std::atomic<bool> store_failed{false};
  std::atomic<int> slots[3] = {0, 0, 0};
  // Claim states per stage. kIdle: a claim found nothing; workers stop asking (each ask is a
  // write transaction) until the coordinator's wait (StateStore::WaitForWork, see Run()) says a
  // job there may have become claimable, which makes it kProbe, or a job completes into the
  // stage here (kOpen). kProbe: one worker asks (kProbing while it does): found one, kOpen
  // (every worker asks); none, kIdle again. So a stage that may be dry costs one empty claim, not
  // one per worker.
  enum ClaimState : int { kOpen = 0, kIdle = 1, kProbe = 2, kProbing = 3 };
  std::atomic<int> claim_state[3] = {kProbe, kProbe, kProbe};  // by Work
  // The coordinator waits at most this long at a time (then looks whether the run is done:
  // another process may finish its last book, which announces nothing), and lets the workers
  // claim again at most this often while wake-ups keep coming (other processes' completions):
  // never more often than the old fixed poll did.
  static constexpr int64_t kIdleWaitMicros = 1'000'000;
  static constexpr int64_t kMinWakeGapMicros = 200'000;
  // Bit w set: stage w is kIdle.
  int IdleStages() const {
    return (claim_state[0].load() == kIdle ? 1 : 0) | (claim_state[1].load() == kIdle ? 2 : 0) |
           (claim_state[2].load() == kIdle ? 4 : 0);
  }
  // Idle stages become kProbe, and the workers sleeping for want of work wake.
  void WakeStages();
  std::mutex wake_mu;                 // with wake_cv: workers with nothing to do
  std::condition_variable wake_cv;
  // The coordinator's idle path (Run()): waits on the state store for work at the idle stages.
  void WaitForWork(int idle, bool quiet);
  std::chrono::steady_clock::time_point last_wake;  // coordinator thread only
  std::atomic<int64_t> staging_scanned_at{INT64_MIN / 2};  // steady clock, microseconds
  std::atomic<uint64_t> staging_bytes{0};
  std::atomic<int> in_flight{0};

  // Streamed books reserve their size plus this (the download buffer, decryptor state).
  static constexpr uint64_t kStreamOverhead = kMiB / 2;
  std::unique_ptr<MemoryBudget> budget;
  // Raw keys storage held when the run started (see SyncOptions::storage_inventory); unset: HEAD
  // every book. Read-only once the workers run.
  std::optional<std::unordered_set<std::string>> inventory;
  // OCR keys the full bucket held at the start (unset: HEAD them; empty when skip_ocr).
  std::optional<std::unordered_set<std::string>> full_inventory;
  std::atomic<int64_t> last_archive_size{-1};  // of the last archive GRIN described (HEAD or GET)

  std::mutex mu;  // guards stats, progress
  SyncStats stats;
  ProgressTracker tracker;
  int64_t last_progress_done = 0;
  int64_t start_micros = 0;

  bool Stopping() const {
    return finish.load() || (opt.stop && opt.stop->load() != 0);
  }

  // --- systemic failures (circuit_breaker.h) ---
  std::unique_ptr<CircuitBreaker> breaker;
  std::vector<WorkItem> held_items;  // guarded by mu: jobs kept leased (untouched) until Run() ends
  // Where a failure with this FailItem reason went (GRIN, storage, decrypt, staging).
  static FailureSource SourceOf(const std::string& reason);
  // If `why` is systemic, keeps the job as it is (released when the run ends, no attempt
  // counted), tells the breaker (which may stop the run) and returns true. `size`: the book's
  // archive size if known (-1: like the last archive seen), to word a full disk's space needed.
  bool HoldIfSystemic(const WorkItem& w, const Status& why, const std::string& reason,
                      int64_t size);
  // The state store failed a write or a claim: nothing can be recorded, the run stops at once.
  void StateStoreFailed(const Status& s);
  // Marks the store failed (store_failed) and cancels every request in flight (once).
  void AbandonInFlight();

  int Limit(Work w) const {
    switch (w) {
      case kCheck: return opt.check_concurrency;
      case kDownload:  // a share of the run's slots when processes share them (shared_limits.h)
        return opt.shared_limits == nullptr
                   ? opt.download_concurrency
                   : std::min(opt.download_concurrency, opt.shared_limits->DownloadLimit());
      case kProcess: return opt.workers;
    }
    return 1;
  }

  // One taken place in a stage's slot table (slots[work], bounded by Limit(work)), given back
  // when the Slot is destroyed or released, on every return path. A worker holds one for the
  // book in hand; a book moving on under the same claim (checked -> streamed, downloaded ->
  // uploading) moves its Slot to the next stage with MoveTo, or takes that stage's own Slot
  // first (TakeSlot) and then drops the old one by assignment.
  class Slot {
   public:
    Slot() = default;  // holds nothing
    Slot(Slot&& o) noexcept
        : m_(std::exchange(o.m_, nullptr)),
          work_(o.work_),
          shared_(std::exchange(o.shared_, false)) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        Release();
        m_ = std::exchange(o.m_, nullptr);
        work_ = o.work_;
        shared_ = std::exchange(o.shared_, false);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }

    explicit operator bool() const { return m_ != nullptr; }
    Work work() const { return work_; }
    // Gives this stage's place back and counts one in `to`, whatever its limit (the book in hand
    // goes on; the next claim for `to` waits for room). Holds nothing: no-op.
    void MoveTo(Work to) {
      if (m_ == nullptr || to == work_) return;
      ++m_->slots[to];
      --m_->slots[work_];
      work_ = to;
      GiveShared();  // a shared download slot is held only while in kDownload
    }
    void Release() {
      if (m_ != nullptr) --m_->slots[work_];
      GiveShared();
      m_ = nullptr;
    }

   private:
    friend struct Impl;
    Slot(Impl* m, Work w, bool shared = false) : m_(m), work_(w), shared_(shared) {}
    void GiveShared() {
      if (shared_) m_->opt.shared_limits->ReleaseDownload();
      shared_ = false;
    }
    Impl* m_ = nullptr;
    Work work_ = kCheck;
    bool shared_ = false;  // holds one of opt.shared_limits' download slots
  };

  // A place in stage `w` if one is free (below Limit(w)), else an empty Slot.
  // With shared limits a download slot is taken from them first: their check of the share (and
  // its lease) and their count are one step, so a share lowered meanwhile is never overrun.
  Slot TakeSlot(Work w) {
    if (w == kDownload && opt.shared_limits != nullptr) {
      if (slots[w].load() >= opt.download_concurrency) return Slot();
      if (!opt.shared_limits->TryAcquireDownload()) return Slot();
      int cur = slots[w].load();
      while (cur < opt.download_concurrency) {
        if (slots[w].compare_exchange_weak(cur, cur + 1)) return Slot(this, w, /*shared=*/true);
      }
      opt.shared_limits->ReleaseDownload();
      return Slot();
    }
    int cur = slots[w].load();
    while (cur < Limit(w)) {
      if (slots[w].compare_exchange_weak(cur, cur + 1)) return Slot(this, w);
    }
    return Slot();
  }

  std::string NowIso() const { return FormatIsoUtc(clock->NowMicros()); }
  std::string GpgPath(const std::string& b) const {
    return (std::filesystem::path(opt.staging_dir) / (b + ".tar.gz.gpg")).string();
  }
  std::string PlainPath(const std::string& b) const {
    return (std::filesystem::path(opt.staging_dir) / (b + ".tar.gz")).string();
  }

  // True while staging holds staging_limit_bytes or more. The folder is scanned at most every
  // 500 ms (workers ask before every download; most books are streamed and never staged).
  bool StagingFull();

  // --- bookkeeping ---

  // Adds the calling thread's CPU time since `since` (ThreadCpuSeconds()) to stats.cpu_s[key].
  void AddCpu(const char* key, double since);

  // Adds the thread CPU time of its scope to stats.cpu_s[key].
  struct CpuScope {
    CpuScope(Impl* impl, const char* k) : m(impl), key(k), t0(ThreadCpuSeconds()) {}
    ~CpuScope() { m->AddCpu(key, t0); }
    CpuScope(const CpuScope&) = delete;
    CpuScope& operator=(const CpuScope&) = delete;
    Impl* m;
    const char* key;
    double t0;
  };

  void Tally(StageTally& t, const char* kind, const std::string& reason);

  // --- metrics (opt.metrics; sync_metrics.h) ---
  Metrics::Histogram* stage_seconds[3] = {nullptr, nullptr, nullptr};  // by Work
  int64_t metrics_refreshed_micros = 0;  // coordinator thread only
  // Copies the tallies, gauges and the store's job counts into opt.metrics (no-op without).
  void RefreshMetrics();

  void Finished(bool uploaded_now);

  // A stage failed for the book. In this order: a systemic failure holds it (HoldIfSystemic);
  // an archive GRIN no longer has (archive_missing, kNotFound) waits for conversion; otherwise
  // the job is failed, dead if `permanent` or net::ClassifyBookFailure(why) says kPermanent,
  // else retryable (see engine/net/retry.h for the three retry levels). `size`: the archive's
  // size if the stage knows it (-1 otherwise).
  void FailItem(const WorkItem& w, StageTally& t, const Status& why, const std::string& reason,
                bool permanent, int64_t size = -1);

  void CompleteItem(const WorkItem& w, Completion c, StageTally& t, const char* kind,
                    const std::string& reason);

  // --- check ---

  // Lists the raw bucket under the layout's prefix into `inventory`, and the full bucket's OCR
  // objects into `full_inventory`. On any error the set stays unset and every book is HEADed,
  // as without it.
  void LoadInventory();
  // Every key in probe_loc's bucket under the key's part before `probe`; nullopt on error.
  std::optional<std::unordered_set<std::string>> ListKeys(const ObjectLocation& probe_loc,
                                                          const std::string& probe);

  // The stored raw archive's info, or kNotFound. Skips the HEAD for books the inventory lacks.
  Result<ObjectInfo> StoredRaw(const ObjectLocation& raw);

  // A checked book the checking worker streams at once, under the same claim (StreamRightAway):
  // the check's result and the download slot taken for it.
  struct StreamNow {
    CheckedArchive archive;
    Slot download;
  };
  // Returns the book to stream at once (the job then stays claimed in `pending`). Otherwise the
  // job has been completed, failed or released, and nullopt is returned.
  std::optional<StreamNow> Check(const WorkItem& w);

  // --- conversion (GRIN has no archive for the book) ---

  // Serialises _process requests, so the first 429 / queue full stops all the later ones.
  std::mutex convert_mu;
  bool conversion_stopped = false;  // guarded by convert_mu
  // Asks GRIN to convert the book (unless requests stopped) and makes it wait (Await); a
  // refusal that cannot change (not allowed, unknown) makes it dead, skipped by rule.
  void RequestConversion(const WorkItem& w);
  // The job waits for GRIN's conversion (StateStore::Await) with `reason`; counted, finished
  // for this run.
  void AwaitConversion(const WorkItem& w, const std::string& reason, const json& detail);

  // Completes a pending book to `checked`, handing GRIN's ETag and size to the download stage
  // (stored as the job's checkpoint).
  void CompleteChecked(const WorkItem& w, const CheckedArchive& archive);

  // A download slot (for the caller) if a checked book of `size` bytes can be streamed by the
  // checking worker at once: it is Streamable and a download slot is free (DownloadOrStream then
  // streams or stages it, never waiting for memory with the slot). That saves completing the
  // job to `checked` and claiming it again (two write transactions per book); the job goes from
  // `pending` straight to `uploaded`, or fails back to `pending`. Else an empty Slot.
  Slot StreamRightAway(int64_t size);

  // --- download ---

  // Downloads (or finishes downloading) the archive `expected` (the check's ETag and size; a
  // partial download resumes only for its ETag) into staging. Returns its ETag and size.
  Result<CheckedArchive> DownloadTo(const std::string& barcode, const CheckedArchive& expected);

  // The budget reservation for streaming a book of `size` encrypted bytes: the decrypted
  // archive (no larger than the encrypted one) fills whole budget chunks.
  static uint64_t StreamReserve(int64_t size) {
    const uint64_t chunk = MemoryBudget::kChunkBytes;
    return (static_cast<uint64_t>(std::max<int64_t>(size, 1)) + chunk - 1) / chunk * chunk +
           kStreamOverhead;
  }
  // True if a book of `size` bytes is streamed rather than staged: its size is known, at most
  // stream_max_bytes, and its reservation could ever fit the budget.
  bool Streamable(int64_t size) const {
    return size >= 0 && static_cast<uint64_t>(size) <= opt.stream_max_bytes &&
           budget->Fits(StreamReserve(size));
  }

  // Streams the book if it is Streamable and its memory is free now; stages it otherwise (a
  // streamable book only if StagingHasRoom; else the worker gives `slot` back, waits for the
  // memory and takes a download slot again). A download slot is never held while waiting for
  // memory. `slot` is the download slot the caller holds (StreamBook moves it on to
  // processing, Download gives it back, each the moment the bytes are in).
  void DownloadOrStream(const WorkItem& w, const JobCheckpoint& cp, Slot& slot);
  // True if a streamable book of `size` bytes may be staged instead: staging is not full and
  // its file system has room for the encrypted and decrypted archive of such a book in every
  // download slot and one more, and 256 MiB to spare (a memory shortage must not become a full
  // disk, which stops the run).
  bool StagingHasRoom(int64_t size);

  // Staging path: downloads the archive the check described and completes the job to
  // `downloaded`, with the archive's ETag and size as its checkpoint. `slot` (the download
  // slot) is given back as soon as the download ends, before the state store's write.
  void Download(const WorkItem& w, const JobCheckpoint& cp, Slot& slot);

  // --- process: decrypt + extract + upload ---

  archive::BookOptions BookOptionsFor(const std::string& barcode, int64_t size,
                                      archive::ByteSink* sink) const;

  // Records a failed decrypt / extract (the reason follows the status code). Releases the book:
  // remove its per-book files before calling. `size`: the archive's, for HoldIfSystemic.
  void FailProcessing(const WorkItem& w, StageTally& t, const Status& s, int64_t size);

  // Uploads the decrypted archive (and the OCR JSONL) of GRIN's `archive` and completes the job
  // to `uploaded` in the same transaction as the book's storage facts and MARC fields; an
  // unfinished upload recorded in `cp` is resumed. Returns true when the book is stored; on
  // failure the job has been failed (retry or dead) already.
  bool StoreBook(const WorkItem& w, const JobCheckpoint& cp, const CheckedArchive& archive,
                 const ByteSource& plain, const archive::BookResult& r);

  // Staging path: decrypt <staging>/<BARCODE>.tar.gz.gpg into <BARCODE>.tar.gz, then store it.
  void Process(const WorkItem& w, const JobCheckpoint& cp);

  // The memory budget's share of one streamed book: its reservation, and the chunks that held
  // the decrypted archive (kept by the budget for the next books, so their pages are not
  // faulted in afresh for every book).
  struct StreamMemory {
    uint64_t reserved = 0;  // 0: nothing acquired
    std::vector<MemoryBudget::Chunk> chunks;  // the decrypted archive's, once StreamBook is done
  };
  void FreeStreamMemory(StreamMemory* mem);

  enum class StreamOutcome {
    kHandled,   // stored, staged (completed to `downloaded`), or failed through the state store
    kDeferred,  // unchecked: neither memory nor staging room (*unchecked_head: GRIN's head)
    kFallback,  // unchecked: GRIN answered something other than an archive; check with a HEAD
  };

  // Streaming path (no staging): the archive is decrypted (and extracted) while it downloads;
  // the decrypted archive waits in memory (`mem`) for its upload. `slot` is the download slot
  // the caller holds; it is moved on to processing the moment the transfer ends (whatever its
  // outcome), so the next download can start during this book's decryption end and upload.
  // Checked books (unchecked_head == nullptr) come with `mem` acquired for the size their check
  // saw. An unchecked book (pending, not in storage, never HEADed) comes with no memory and is
  // sized from the GET's own response head, where its bytes' destination is decided without
  // waiting: memory if it is Streamable and its memory is free; else staging if it has room
  // (StagingHasRoom; for a book too large to stream: staging not full), the same GET written to
  // <staging>/<BARCODE>.tar.gz.gpg, its ETag and size saved as the job's checkpoint (a retry
  // continues the file), the slot given back when the bytes are in and the job completed to
  // `downloaded`; else the transfer is dropped at once (kDeferred, with the head in
  // *unchecked_head). Any answer but an archive is kFallback.
  StreamOutcome StreamBook(const WorkItem& w, const JobCheckpoint& cp, Slot& slot,
                           StreamMemory* mem, grin_client::ArchiveHead* unchecked_head);

  // --- pending books ---

  // A pending book that storage did not hold at the start is fetched with a GET at once, without
  // a HEAD first: comparing ETags would be pointless, and the GET's response says whether GRIN
  // has the archive, which ETag and how large it is. One GRIN request per new book of any size
  // (memory or staging is chosen from the response head, StreamBook), and two state transitions
  // saved for streamed books. Needs the inventory (else storage might hold it). While staging is
  // full the GET's bytes can only go to memory: CheckBook then reserves memory for a book like
  // the last one before the GET, without waiting, and HEADs the book if none is free (the HEAD
  // path waits for memory without a slot).
  bool GetWithoutHead(const WorkItem& w) const;
  // Takes a download slot, waiting while all are busy; empty if the run stops first.
  Slot WaitForDownloadSlot();

  // The check stage of a pending book; `slot` is the caller's check slot, moved on (or replaced
  // by a download slot) when the book is streamed under the same claim.
  void CheckBook(const WorkItem& w, Slot& slot);

  // --- outputs of a stored book (sync_rebuild.cc) ---

  struct MissingOutputs {
    bool ocr = false;   // no OCR object in the full bucket (and OCR not skipped)
    bool marc = false;  // no MARC columns recorded (and MARC not skipped)
    bool any() const { return ocr || marc; }
  };
  // Which derived outputs of a book whose raw archive is stored are missing.
  Result<MissingOutputs> FindMissingOutputs(const std::string& barcode);

  enum class RebuildOutcome {
    kHandled,      // completed to `uploaded` ("rebuilt_outputs"), or failed through the store
    kRawUnusable,  // the stored raw archive cannot be read as a book: fetch it from GRIN again
  };
  // Reads the stored raw archive back (it is the decrypted tar.gz), extracts OCR + MARC, uploads
  // the missing OCR object and completes `c` (to uploaded; its book_fields are kept) with the
  // missing MARC columns, in one transaction. No GRIN request.
  RebuildOutcome RebuildOutputs(const WorkItem& w, const MissingOutputs& missing, Completion c);

  // Where a book's OCR JSONL gzip spills, and how much of it stays in memory: 1/256 of the
  // memory limit (256 KiB to 4 MiB; a typical book's is well under 1 MiB), so the books in
  // flight (workers + downloads) hold a few per cent of the limit for OCR at most.
  std::string OcrSpillPath(const std::string& b) const {
    return (std::filesystem::path(opt.staging_dir) / (b + "_ocr.jsonl.gz")).string();
  }
  uint64_t OcrMemoryBytes() const {
    return std::clamp<uint64_t>(opt.memory_limit_bytes / 256, kMiB / 4, 4 * kMiB);
  }
  // Uploads the book's OCR JSONL gzip (from memory or its spill file, which is removed).
  Result<PutResult> PutOcr(const std::string& barcode, const archive::Extraction& x,
                           const std::string& now);

  // --- litter of interrupted runs (sync_litter.cc) ---

  // At the start: removes staging files no job will resume (see SyncOptions::job_view), OCR
  // spill files, and abandoned temporary objects in the raw and full buckets.
  void RemoveLitter();

  // --- the worker loop ---

  bool RunOne();

  void Worker();
};

}  // namespace grin::pipeline
