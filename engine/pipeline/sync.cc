#include "engine/pipeline/sync.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/pipeline/archive_stream.h"
#include "engine/pipeline/checkpoint_journal.h"
#include "engine/pipeline/memory_budget.h"
#include "engine/pipeline/progress.h"

namespace grin::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Index of each worked stage in the slot table.
enum Work { kCheck = 0, kDownload = 1, kProcess = 2 };

int64_t FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

// Writes the decrypted archive to a staging file.
class FileByteSink final : public archive::ByteSink {
 public:
  explicit FileByteSink(std::FILE* f) : f_(f) {}
  Status Write(const uint8_t* data, size_t n) override {
    if (std::fwrite(data, 1, n, f_) != n) {
      return Status::ResourceExhausted("cannot write the decrypted archive to staging (disk full?)");
    }
    return Status::Ok();
  }

 private:
  std::FILE* f_;
};

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double ProcessCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

bool Retryable(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kBusy:
    case StatusCode::kResourceExhausted:
    case StatusCode::kCancelled:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct SyncPipeline::Impl {
  StateStore* store;
  ObjectStore* objects;
  grin_client::GrinClient* grin;
  net::Transport* transport;
  const archive::Secret* passphrase;
  SyncOptions opt;
  Clock* clock;
  Logger* log;

  std::atomic<bool> finish{false};  // workers exit
  std::atomic<int> slots[3] = {0, 0, 0};
  // A claim that found nothing for a stage stops the workers asking again (each ask is a write
  // transaction) until this time (microseconds), or until a job completes into the stage.
  static constexpr int64_t kIdleClaimMicros = 200'000;
  std::atomic<int64_t> idle_until[3] = {0, 0, 0};
  std::atomic<int64_t> staging_scanned_at{INT64_MIN / 2};  // steady clock, microseconds
  std::atomic<uint64_t> staging_bytes{0};
  std::atomic<int> in_flight{0};

  // Streamed books reserve their size plus this (the download buffer, decryptor state).
  static constexpr uint64_t kStreamOverhead = kMiB / 2;
  std::unique_ptr<MemoryBudget> budget;
  // Raw keys storage held when the run started (see SyncOptions::storage_inventory); unset: HEAD
  // every book. Read-only once the workers run.
  std::optional<std::unordered_set<std::string>> inventory;
  std::atomic<int64_t> last_archive_size{-1};  // of the last archive GRIN described (HEAD or GET)

  std::mutex mu;  // guards stats, progress
  SyncStats stats;
  ProgressTracker tracker;
  int64_t last_progress_done = 0;
  int64_t start_micros = 0;

  bool Stopping() const {
    return finish.load() || (opt.stop && opt.stop->load() != 0);
  }

  int Limit(Work w) const {
    switch (w) {
      case kCheck: return opt.check_concurrency;
      case kDownload: return opt.download_concurrency;
      case kProcess: return opt.workers;
    }
    return 1;
  }

  bool TryTake(Work w) {
    int cur = slots[w].load();
    while (cur < Limit(w)) {
      if (slots[w].compare_exchange_weak(cur, cur + 1)) return true;
    }
    return false;
  }

  std::string NowIso() const { return FormatIsoUtc(clock->NowMicros()); }
  std::string GpgPath(const std::string& b) const {
    return (fs::path(opt.staging_dir) / (b + ".tar.gz.gpg")).string();
  }
  std::string PlainPath(const std::string& b) const {
    return (fs::path(opt.staging_dir) / (b + ".tar.gz")).string();
  }

  // True while staging holds staging_limit_bytes or more. The folder is scanned at most every
  // 500 ms (workers ask before every download; most books are streamed and never staged).
  bool StagingFull() {
    if (opt.staging_limit_bytes == 0) return false;
    int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    int64_t last = staging_scanned_at.load();
    if (now - last >= 500'000 && staging_scanned_at.compare_exchange_strong(last, now)) {
      uint64_t total = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(opt.staging_dir, ec)) {
        if (e.is_regular_file(ec)) total += e.file_size(ec);
      }
      staging_bytes = total;
    }
    return staging_bytes.load() >= opt.staging_limit_bytes;
  }

  // --- bookkeeping ---

  // Adds the calling thread's CPU time since `since` (ThreadCpuSeconds()) to stats.cpu_s[key].
  void AddCpu(const char* key, double since) {
    double now = ThreadCpuSeconds();
    std::lock_guard<std::mutex> l(mu);
    stats.cpu_s[key] += now - since;
  }

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

  void Tally(StageTally& t, const char* kind, const std::string& reason) {
    std::lock_guard<std::mutex> l(mu);
    if (std::string(kind) == "completed") ++t.completed;
    else if (std::string(kind) == "skipped") ++t.skipped;
    else ++t.failed;
    if (!reason.empty()) ++t.reasons[reason];
  }

  void Finished(bool uploaded_now) {
    std::string line;
    {
      std::lock_guard<std::mutex> l(mu);
      ++stats.done;
      if (uploaded_now) ++stats.uploaded;
      bool last = stats.done >= stats.total;
      if (opt.on_progress &&
          (stats.done - last_progress_done >= opt.progress_every || last)) {
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
        line = opt.progress_bar ? FormatProgressBar(s, rate) : FormatProgressLine(s, rate);
      }
    }
    if (!line.empty()) opt.on_progress(line);
  }

  void FailItem(const WorkItem& w, StageTally& t, const Status& why, const std::string& reason,
                bool permanent) {
    bool dead = permanent || !Retryable(why);
    json d = {{"error", why.message()}};
    Status s = store->Fail(w, dead ? ErrorClass::kPermanent : ErrorClass::kRetryable, reason,
                           d.dump());
    Tally(t, "failed", reason);
    log->Log(LogLevel::kWarning, "book.failed",
             {{"barcode", w.barcode}, {"stage", std::string(StageName(w.stage))},
              {"reason", reason}, {"error", why.message()}});
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

  void CompleteItem(const WorkItem& w, Completion c, StageTally& t, const char* kind,
                    const std::string& reason) {
    c.item = w;
    auto r = store->CompleteMany({c});
    if (!r.ok() || !r->front().ok()) {
      log->Log(LogLevel::kWarning, "book.complete_refused",
               {{"barcode", w.barcode},
                {"error", r.ok() ? r->front().message() : r.status().message()}});
      return;
    }
    Tally(t, kind, reason);
    if (c.to == Stage::kChecked) idle_until[kDownload] = 0;  // work for the next stage
    if (c.to == Stage::kDownloaded) idle_until[kProcess] = 0;
    if (c.to == Stage::kUploaded) Finished(true);
  }

  // --- check ---

  // Lists the raw bucket under the layout's prefix into `inventory`. On any error the inventory
  // stays unset and every book is HEADed, as without it.
  void LoadInventory() {
    const std::string probe = "BARCODE";
    ObjectLocation loc = RawArchiveLocation(opt.layout, probe);
    std::string prefix = loc.key.substr(0, loc.key.find(probe));
    std::unordered_set<std::string> keys;
    std::string token;
    do {
      auto page = objects->List(loc.bucket, prefix, token);
      if (!page.ok()) {
        if (page.status().code() == StatusCode::kNotFound) break;  // no bucket: nothing stored
        log->Log(LogLevel::kWarning, "sync.inventory_failed",
                 {{"bucket", loc.bucket}, {"error", page.status().message()}});
        return;
      }
      for (auto& o : page->objects) keys.insert(std::move(o.key));
      token = std::move(page->next_token);
    } while (!token.empty() && !Stopping());
    inventory = std::move(keys);
  }

  // The stored raw archive's info, or kNotFound. Skips the HEAD for books the inventory lacks.
  Result<ObjectInfo> StoredRaw(const ObjectLocation& raw) {
    if (inventory && inventory->count(raw.key) == 0) {
      return Status::NotFound(raw.key + " not in storage at the start of the run");
    }
    return objects->Head(raw.bucket, raw.key);
  }

  // Returns the book's {etag, size} checkpoint when the caller should stream it at once under the
  // same claim (see StreamRightAway); the job then stays claimed in `pending`. Otherwise the job
  // has been completed, failed or released, and nullopt is returned.
  std::optional<std::string> Check(const WorkItem& w) {
    auto raw = RawArchiveLocation(opt.layout, w.barcode);
    auto head = grin->HeadArchive(w.barcode);
    if (!head.ok()) {
      const Status& s = head.status();
      if (s.code() == StatusCode::kPermissionDenied) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (stats.fatal.empty()) stats.fatal = s.message();
        }
        finish = true;
        (void)store->Release(w);
        return std::nullopt;
      }
      if (s.code() != StatusCode::kNotFound) {
        FailItem(w, stats.check, s, "check_failed", false);
        return std::nullopt;
      }
      // Not converted (or evicted). Stored already? Then the storage copy is the truth.
      auto stored = StoredRaw(raw);
      if (stored.ok()) {
        Completion c;
        c.to = Stage::kUploaded;
        c.outcome = "reconciled_from_storage";
        c.book_fields = {{"storage_path", raw.bucket + "/" + raw.key},
                         {"last_etag_check", NowIso()}};
        CompleteItem(w, c, stats.check, "skipped", "found_in_storage_not_grin");
        return std::nullopt;
      }
      auto known = opt.known_failures.find(w.barcode);
      if (known != opt.known_failures.end() && !opt.force) {
        json d = {{"grin_convert_failed_date", known->second.date},
                  {"grin_convert_failed_info", known->second.info},
                  {"grin_detailed_convert_failed_info", known->second.detail}};
        (void)store->Fail(w, ErrorClass::kPermanent, "known_conversion_failure", d.dump());
        Tally(stats.check, "failed", "known_conversion_failure");
        {
          std::lock_guard<std::mutex> l(mu);
          ++stats.dead;
        }
        Finished(false);
        return std::nullopt;
      }
      auto p = grin->Process({w.barcode});
      std::string reason;
      json d = json::object();
      if (!p.ok()) {
        FailItem(w, stats.check, p.status(), "conversion_request_failed", false);
        return std::nullopt;
      }
      if (p->queue_full) {
        reason = "conversion_queue_full";
      } else if (!p->rows.empty()) {
        reason = "conversion_" + std::string(grin_client::ProcessOutcomeName(p->rows[0].outcome));
        d["grin_status"] = p->rows[0].status;
      } else {
        reason = "conversion_unanswered";
      }
      (void)store->Fail(w, ErrorClass::kPermanent, reason, d.dump());
      Tally(stats.check, "skipped", reason);
      {
        std::lock_guard<std::mutex> l(mu);
        if (reason == "conversion_requested") ++stats.conversion_requested;
      }
      Finished(false);
      return std::nullopt;
    }
    // Converted. Compare with what storage holds.
    last_archive_size = head->size;
    auto stored = StoredRaw(raw);
    if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) {
      FailItem(w, stats.check, stored.status(), "storage_head_failed", false);
      return std::nullopt;
    }
    if (stored.ok() && !opt.force) {
      // FindMetadata also matches "encrypted-etag" (Swift's s3api returns that spelling for
      // objects that were uploaded in parts).
      const std::string* stored_etag = FindMetadata(stored->metadata, "encrypted_etag");
      if (stored_etag != nullptr && *stored_etag == head->etag) {
        Completion c;
        c.to = Stage::kUploaded;
        c.outcome = "skipped_etag_match";
        c.detail_json = json{{"etag", head->etag}}.dump();
        c.book_fields = {{"last_etag_check", NowIso()},
                         {"encrypted_etag", head->etag},
                         {"storage_path", raw.bucket + "/" + raw.key},
                         {"is_decrypted", "1"}};
        {
          std::lock_guard<std::mutex> l(mu);
          ++stats.skipped_etag;
        }
        CompleteItem(w, c, stats.check, "skipped", "etag_match");
        return std::nullopt;
      }
    }
    json carry = {{"etag", head->etag}, {"size", head->size}};
    if (StreamRightAway(head->size)) {
      Tally(stats.check, "completed", "");
      return carry.dump();
    }
    CompleteChecked(w, head->etag, head->size);
    return std::nullopt;
  }

  // Completes a pending book to `checked`, handing GRIN's ETag and size to the download stage.
  void CompleteChecked(const WorkItem& w, const std::string& etag, int64_t size) {
    json carry = {{"etag", etag}, {"size", size}};
    Completion c;
    c.to = Stage::kChecked;
    c.detail_json = carry.dump();
    c.carry = carry.dump();
    c.book_fields = {{"last_etag_check", NowIso()}};
    CompleteItem(w, c, stats.check, "completed", "");
  }

  // True if a checked book of `size` bytes can be streamed by the checking worker at once: it is
  // small enough, the memory budget has room and a download slot is free (taken for the caller).
  // That saves completing the job to `checked` and claiming it again (two write transactions
  // per book); the job goes from `pending` straight to `uploaded`, or fails back to `pending`.
  bool StreamRightAway(int64_t size) {
    if (size < 0 || static_cast<uint64_t>(size) > opt.stream_max_bytes) return false;
    if (!budget->Fits(StreamReserve(size).second)) return false;
    return TryTake(kDownload);
  }

  // --- download ---

  // Downloads (or finishes downloading) the archive into staging. Returns its ETag and size.
  Result<grin_client::ArchiveHead> DownloadTo(const std::string& barcode, const std::string& etag,
                                              int64_t expected_size) {
    std::string path = GpgPath(barcode);
    int64_t have = FileSize(path);
    if (have < 0 || etag.empty() || (expected_size >= 0 && have > expected_size)) have = 0;
    if (expected_size > 0 && have == expected_size && !etag.empty()) {
      return grin_client::ArchiveHead{etag, expected_size, ""};  // finished before a crash
    }
    for (int round = 0; round < 2; ++round) {
      net::Request req = grin->ArchiveRequest(barcode, net::ResponseSink::File(path, have));
      if (have > 0) {
        req.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
        req.headers.emplace_back("If-Range", "\"" + etag + "\"");
      }
      req.label = "archive " + barcode;
      net::Response resp = transport->SubmitFuture(std::move(req)).get();
      {
        std::lock_guard<std::mutex> l(mu);
        stats.bytes_downloaded += resp.bytes_down;
      }
      auto head = grin->CheckArchiveResponse(resp);
      if (!head.ok()) return head.status();
      if (have > 0 && resp.http_status == 200) {
        // The archive changed (If-Range failed) or Range is unsupported: the body was written
        // after the old bytes. Start again from zero.
        have = 0;
        continue;
      }
      int64_t total = FileSize(path);
      int64_t expect = resp.http_status == 206 ? have + resp.bytes_down : resp.bytes_down;
      auto cl = net::FindHeader(resp.headers, "Content-Length");
      if (cl && resp.http_status == 200) expect = std::stoll(*cl);
      if (total != expect) {
        return Status::DataLoss("archive for " + barcode + " is " + std::to_string(total) +
                                " bytes on disk, expected " + std::to_string(expect));
      }
      grin_client::ArchiveHead out = *head;
      out.size = total;
      return out;
    }
    return Status::Unavailable("archive for " + barcode + " kept changing while downloading");
  }

  // {buffer capacity, budget reservation} for streaming a book of `size` encrypted bytes. The
  // decrypted archive (no larger than the encrypted one) goes to a buffer rounded up, so that
  // kept buffers fit books of similar sizes and are reused without faulting new pages.
  static std::pair<uint64_t, uint64_t> StreamReserve(int64_t size) {
    uint64_t granule = size > 16 * static_cast<int64_t>(kMiB) ? 8 * kMiB : 64 * 1024;
    uint64_t capacity = (static_cast<uint64_t>(std::max<int64_t>(size, 1)) + granule - 1) /
                        granule * granule;
    return {capacity, capacity + kStreamOverhead};
  }

  // Streams the book if it is small enough and the memory budget allows; stages it otherwise.
  void DownloadOrStream(const WorkItem& w, Work& held) {
    int64_t size = ParseCheckpoint(w.checkpoint).value("size", int64_t{-1});
    auto [capacity, reserve] = StreamReserve(size);
    bool stream = size >= 0 && static_cast<uint64_t>(size) <= opt.stream_max_bytes &&
                  budget->Fits(reserve);
    if (!stream) {
      Download(w);
      return;
    }
    StreamMemory mem;
    if (!budget->Acquire(reserve, capacity, [this] { return Stopping(); }, &mem.buffer,
                         &mem.reserved)) {
      (void)store->Release(w);  // stopping: the next run picks it up
      return;
    }
    mem.capacity = capacity;
    StreamBook(w, held, &mem, nullptr);
    FreeStreamMemory(&mem);
  }

  void Download(const WorkItem& w) {
    CpuScope account(this, "download");
    json cp = ParseCheckpoint(w.checkpoint);
    std::string etag = cp.value("etag", "");
    int64_t size = cp.value("size", int64_t{-1});
    auto head = DownloadTo(w.barcode, etag, size);
    if (!head.ok()) {
      bool permanent = head.status().code() == StatusCode::kNotFound;
      FailItem(w, stats.download, head.status(),
               permanent ? "archive_missing" : "download_failed", permanent);
      return;
    }
    Completion c;
    c.to = Stage::kDownloaded;
    json carry = {{"etag", head->etag}, {"size", head->size}};
    c.detail_json = carry.dump();
    c.carry = carry.dump();
    CompleteItem(w, c, stats.download, "completed", "");
  }

  // --- process: decrypt + extract + upload ---

  archive::BookOptions BookOptionsFor(const std::string& barcode, int64_t size,
                                      archive::ByteSink* sink) const {
    archive::BookOptions bo;
    bo.barcode = barcode;
    bo.decrypt.backend = opt.backend;
    if (size >= 0) bo.decrypt.size_hint = static_cast<uint64_t>(size);
    bo.extract = !(opt.skip_ocr && opt.skip_marc);
    bo.extract_options.require_ocr = !opt.skip_ocr;
    bo.extract_options.require_marc = !opt.skip_marc;
    bo.archive_sink = sink;
    // Storage integrity rests on the signed SHA-256 (S3 verifies it); MD5 would cost ~1.7 ms
    // per MiB for nothing.
    bo.compute_md5 = false;
    return bo;
  }

  // Records a failed decrypt / extract. Returns true if the downloaded bytes are suspect.
  bool FailProcessing(const WorkItem& w, StageTally& t, const Status& s) {
    if (s.code() == StatusCode::kPermissionDenied) {
      FailItem(w, t, s, "decrypt_wrong_passphrase", true);
      return false;
    }
    if (s.code() == StatusCode::kDataLoss) {
      FailItem(w, t, s, "archive_invalid", false);
      return true;
    }
    FailItem(w, t, s, "process_failed", false);
    return false;
  }

  // Uploads the decrypted archive (and the OCR JSONL) and completes the job to `uploaded` in the
  // same transaction as the book's storage facts and MARC fields. Returns true when the book is
  // stored; on failure the job has been failed (retry or dead) already.
  bool StoreBook(const WorkItem& w, const json& cp, const std::string& etag, int64_t size,
                 const ByteSource& plain, const archive::BookResult& r) {
    CpuScope account(this, "upload");
    std::string now = NowIso();
    auto raw = RawArchiveLocation(opt.layout, w.barcode);
    UploadOptions uo;
    uo.put.metadata = RawArchiveMetadata(w.barcode, etag, now);
    uo.put.content_type = "application/gzip";
    uo.put.md5_hex = r.md5_hex;
    uo.put.sha256_hex = r.sha256_hex;
    uo.multipart_threshold = opt.multipart_threshold;
    auto recorded = RecordedUpload(cp);
    if (recorded) uo.resume = &*recorded;
    json base = {{"etag", etag}, {"size", size}};
    CheckpointJournal journal(store, w, base);
    uo.journal = &journal;
    auto put = objects->Upload(raw.bucket, raw.key, plain, uo);
    if (!put.ok()) {
      FailItem(w, stats.process, put.status(), "upload_failed",
               put.status().code() == StatusCode::kPermissionDenied);
      return false;
    }
    if (put->size != r.archive_bytes || (!put->md5_hex.empty() && !r.md5_hex.empty() &&
                                         put->md5_hex != r.md5_hex)) {
      FailItem(w, stats.process,
               Status::DataLoss("storage holds " + std::to_string(put->size) +
                                " bytes / md5 " + put->md5_hex + " for " + w.barcode +
                                ", expected " + std::to_string(r.archive_bytes) + " / " + r.md5_hex),
               "upload_mismatch", false);
      return false;
    }
    int64_t uploaded_bytes = static_cast<int64_t>(put->size);
    BookFields fields = {{"encrypted_etag", etag},
                         {"storage_path", raw.bucket + "/" + raw.key},
                         {"is_decrypted", "1"},
                         {"sync_timestamp", now},
                         {"last_etag_check", now}};
    json detail = {{"etag", etag},
                   {"bytes", r.archive_bytes},
                   {"sha256", r.sha256_hex},
                   {"backend", std::string(archive::BackendName(r.backend))}};
    if (r.extraction) {
      const auto& x = *r.extraction;
      detail["pages"] = x.page_count;
      if (!opt.skip_ocr) {
        auto full = FullTextLocation(opt.layout, w.barcode);
        MemorySource ocr(x.ocr_jsonl_gz);
        PutOptions po;
        po.metadata = FullTextMetadata(w.barcode, now, x.page_count);
        po.content_type = "application/gzip";
        auto fput = objects->Put(full.bucket, full.key, ocr, po);
        if (!fput.ok()) {
          FailItem(w, stats.process, fput.status(), "ocr_upload_failed", false);
          return false;
        }
        uploaded_bytes += static_cast<int64_t>(fput->size);
      }
      if (!opt.skip_marc && x.marc) {
        for (const auto& [column, value] : x.marc->Columns()) {
          fields.emplace_back(column, value.value_or(""));
        }
        fields.emplace_back("marc_extraction_timestamp", now);
      }
    }
    {
      std::lock_guard<std::mutex> l(mu);
      stats.bytes_uploaded += uploaded_bytes;
      ++stats.synced;
    }
    Completion c;
    c.to = Stage::kUploaded;
    c.detail_json = detail.dump();
    c.book_fields = std::move(fields);
    CompleteItem(w, c, stats.process, "completed", "");
    return true;
  }

  // Staging path: decrypt <staging>/<BARCODE>.tar.gz.gpg into <BARCODE>.tar.gz, then store it.
  void Process(const WorkItem& w) {
    double t0 = ThreadCpuSeconds();
    json cp = ParseCheckpoint(w.checkpoint);
    std::string etag = cp.value("etag", "");
    int64_t size = cp.value("size", int64_t{-1});
    std::string gpg = GpgPath(w.barcode), plain = PlainPath(w.barcode);
    if (FileSize(gpg) != size || etag.empty()) {
      // Staging lost or corrupt (e.g. removed after a failed decrypt): fetch it again.
      auto head = DownloadTo(w.barcode, etag, size);
      if (!head.ok()) {
        FailItem(w, stats.process, head.status(), "download_failed", false);
        return;
      }
      etag = head->etag;
      size = head->size;
    }
    std::FILE* out = std::fopen(plain.c_str(), "wb");
    if (!out) {
      FailItem(w, stats.process, Status::ResourceExhausted("cannot create " + plain), "staging",
               false);
      return;
    }
    FileByteSink sink(out);
    archive::BookOptions bo = BookOptionsFor(w.barcode, size, &sink);
    Result<archive::BookResult> result = Status::Internal("not run");
    {
      auto book = archive::BookProcessor::Open(bo, passphrase);
      if (!book.ok()) {
        std::fclose(out);
        ::unlink(plain.c_str());
        FailItem(w, stats.process, book.status(), "decrypt_setup", false);
        return;
      }
      std::FILE* in = std::fopen(gpg.c_str(), "rb");
      Status feed = in ? Status::Ok() : Status::NotFound("staging file " + gpg + " vanished");
      std::vector<uint8_t> buf(1 << 20);
      while (feed.ok() && in) {
        size_t n = std::fread(buf.data(), 1, buf.size(), in);
        if (n == 0) break;
        feed = (*book)->Write(buf.data(), n);
      }
      if (in) std::fclose(in);
      result = (*book)->Finish();
      if (result.ok() && !feed.ok()) result = feed;
    }
    bool flushed = std::fflush(out) == 0;
    std::fclose(out);
    AddCpu("decrypt", t0);
    if (result.ok() && !flushed) result = Status::ResourceExhausted("staging disk full");
    if (!result.ok()) {
      ::unlink(plain.c_str());
      // Suspect download: remove it so the retry fetches it again.
      if (FailProcessing(w, stats.process, result.status())) ::unlink(gpg.c_str());
      return;
    }
    auto src = FileSource::Open(plain);
    if (!src.ok()) {
      FailItem(w, stats.process, src.status(), "staging", false);
      return;
    }
    if (StoreBook(w, cp, etag, size, **src, *result)) {
      ::unlink(plain.c_str());
      ::unlink(gpg.c_str());
    }
  }

  // The memory budget's share of one streamed book: its reservation and the buffer that holds
  // the decrypted archive (kept by the budget between books, so its pages are not faulted in
  // afresh for every book).
  struct StreamMemory {
    uint64_t capacity = 0;
    uint64_t reserved = 0;  // 0: nothing acquired
    std::string buffer;
  };
  void FreeStreamMemory(StreamMemory* mem) {
    if (mem->reserved == 0) return;
    budget->Release(mem->reserved);
    mem->reserved = 0;
    budget->ReturnBuffer(std::move(mem->buffer));  // kept for the next book if there is room
  }

  enum class StreamOutcome {
    kHandled,   // stored, or failed through the state store
    kDeferred,  // unchecked: too large to stream or no memory free; `*head_out` says what GRIN has
    kFallback,  // unchecked: GRIN answered something other than an archive; check with a HEAD
  };

  // Streaming path (no staging): the archive is decrypted (and extracted) while it downloads;
  // the decrypted archive waits in memory (`mem`) for its upload. `held` is the slot the caller
  // took; it is switched from download to process once the download is over, so the next
  // download can start during this book's upload.
  // Checked books (unchecked_head == nullptr) come with `mem` acquired for the size their check
  // saw. An unchecked book (pending, not in storage, never HEADed) is sized from the GET's own
  // response head: memory is taken then without waiting, or the transfer is dropped at once
  // (kDeferred, with the head in *unchecked_head); any answer but an archive is kFallback.
  StreamOutcome StreamBook(const WorkItem& w, Work& held, StreamMemory* mem,
                           grin_client::ArchiveHead* unchecked_head) {
    double t0 = ThreadCpuSeconds();
    json cp = ParseCheckpoint(w.checkpoint);
    int64_t size = cp.value("size", int64_t{-1});
    archive::StringSink plain;
    plain.data().swap(mem->buffer);
    struct GiveBack {
      archive::StringSink& plain;
      std::string* buffer;
      ~GiveBack() { buffer->swap(plain.data()); }
    } give_back{plain, &mem->buffer};
    if (mem->reserved != 0) plain.data().reserve(static_cast<size_t>(mem->capacity));
    archive::BookOptions bo = BookOptionsFor(w.barcode, size, &plain);
    bool deferred = false;
    auto open = [&](const net::Response& head) -> Result<std::unique_ptr<archive::BookProcessor>> {
      if (mem->reserved == 0) {
        auto h = grin->CheckArchiveResponse(head);
        if (!h.ok()) return h.status();  // judged again on the whole response below
        *unchecked_head = *h;
        last_archive_size = h->size;
        auto [capacity, reserve] = StreamReserve(h->size);
        std::string buffer;
        if (h->size < 0 || static_cast<uint64_t>(h->size) > opt.stream_max_bytes ||
            !budget->Acquire(reserve, capacity, [] { return true; }, &buffer, &mem->reserved)) {
          deferred = true;
          return Status::Cancelled("deferred to the download stage");
        }
        mem->capacity = capacity;
        plain.data().swap(buffer);  // empty before: GiveBack hands it to mem->buffer
        plain.data().reserve(static_cast<size_t>(capacity));
        bo.decrypt.size_hint = static_cast<uint64_t>(h->size);
      }
      plain.data().clear();
      return archive::BookProcessor::Open(bo, passphrase);
    };
    net::Request req = grin->ArchiveRequest(w.barcode, net::ResponseSink::Discard());
    req.label = "archive " + w.barcode;
    auto streamed = StreamArchive(transport, std::move(req), open, kStreamOverhead);
    if (streamed.ok()) {
      std::lock_guard<std::mutex> l(mu);
      stats.bytes_downloaded += streamed->response.bytes_down;
    }
    if (deferred) return StreamOutcome::kDeferred;
    if (!streamed.ok()) {
      if (unchecked_head != nullptr && mem->reserved == 0) return StreamOutcome::kFallback;
      FailProcessing(w, stats.download, streamed.status());
      return StreamOutcome::kHandled;
    }
    auto head = grin->CheckArchiveResponse(streamed->response);
    if (!head.ok()) {
      if (unchecked_head != nullptr) return StreamOutcome::kFallback;
      bool permanent = head.status().code() == StatusCode::kNotFound;
      FailItem(w, stats.download, head.status(),
               permanent ? "archive_missing" : "download_failed", permanent);
      return StreamOutcome::kHandled;
    }
    if (unchecked_head != nullptr) Tally(stats.check, "completed", "");
    auto cl = net::FindHeader(streamed->response.headers, "Content-Length");
    if (cl && std::to_string(streamed->bytes_fed) != *cl) {
      FailItem(w, stats.download,
               Status::DataLoss("archive for " + w.barcode + " was " +
                                std::to_string(streamed->bytes_fed) + " bytes, expected " + *cl),
               "download_failed", false);
      return StreamOutcome::kHandled;
    }
    Tally(stats.download, "completed", "");
    --slots[kDownload];
    ++slots[kProcess];
    held = kProcess;
    auto result = streamed->processor->Finish();
    streamed->processor.reset();
    AddCpu("download+decrypt", t0);
    if (!result.ok()) {
      FailProcessing(w, stats.process, result.status());
      return StreamOutcome::kHandled;
    }
    MemorySource src(plain.data());
    StoreBook(w, cp, head->etag, streamed->bytes_fed, src, *result);
    return StreamOutcome::kHandled;
  }

  // --- pending books ---

  // A pending book that storage did not hold at the start is fetched with a GET at once, without
  // a HEAD first: comparing ETags would be pointless, and the GET's response says whether GRIN
  // has the archive and how large it is. Saves one GRIN request and two state transitions per
  // new book. Needs the inventory (else storage might hold it) and streaming.
  // So that GETs are not started only to be dropped, the archive last seen must have been
  // streamable and the budget must have room for one like it now; else the HEAD path (which
  // waits for memory before its GET) is taken.
  bool GetWithoutHead(const WorkItem& w) const {
    if (!inventory || opt.stream_max_bytes == 0) return false;
    int64_t last = last_archive_size.load();
    if (last > static_cast<int64_t>(opt.stream_max_bytes)) return false;
    if (last >= 0 && budget->available() < StreamReserve(last).second) return false;
    return inventory->count(RawArchiveLocation(opt.layout, w.barcode).key) == 0;
  }

  void CheckBook(const WorkItem& w, Work& held) {
    if (GetWithoutHead(w) && TryTake(kDownload)) {
      --slots[kCheck];
      held = kDownload;
      StreamMemory mem;
      grin_client::ArchiveHead head;
      StreamOutcome r = StreamBook(w, held, &mem, &head);
      FreeStreamMemory(&mem);
      if (r == StreamOutcome::kHandled) return;
      if (r == StreamOutcome::kDeferred) {
        CompleteChecked(w, head.etag, head.size);
        return;
      }
      // GRIN did not send an archive (not converted, auth, an error): the HEAD path decides.
      --slots[held];
      ++slots[kCheck];
      held = kCheck;
    }
    std::optional<std::string> carry;
    {
      CpuScope account(this, "check");
      carry = Check(w);
    }
    if (carry) {  // Check took a download slot for us: stream it under the same claim
      --slots[kCheck];
      held = kDownload;
      WorkItem fused = w;
      fused.checkpoint = std::move(*carry);
      DownloadOrStream(fused, held);
    }
  }

  // --- the worker loop ---

  bool RunOne() {
    static constexpr Work kOrder[] = {kProcess, kDownload, kCheck};
    for (Work work : kOrder) {
      if (Stopping()) return false;
      if (work == kDownload && StagingFull()) {
        continue;  // staging is full: let processing drain it first
      }
      if (clock->NowMicros() < idle_until[work].load()) continue;
      if (!TryTake(work)) continue;
      Stage from = work == kCheck ? Stage::kPending
                                  : (work == kDownload ? Stage::kChecked : Stage::kDownloaded);
      auto items = store->Claim(from, 1);
      if (!items.ok() || items->empty()) {
        if (items.ok()) idle_until[work] = clock->NowMicros() + kIdleClaimMicros;
        --slots[work];
        if (!items.ok()) {
          log->Log(LogLevel::kError, "sync.claim_failed", {{"error", items.status().message()}});
        }
        continue;
      }
      ++in_flight;
      const WorkItem& w = items->front();
      Work held = work;
      if (work == kCheck) {
        CheckBook(w, held);
      } else if (work == kDownload) {
        DownloadOrStream(w, held);
      } else {
        Process(w);
      }
      --in_flight;
      --slots[held];
      return true;
    }
    return false;
  }

  void Worker() {
    while (!Stopping()) {
      if (!RunOne()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
};

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
}

SyncPipeline::~SyncPipeline() = default;

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
  m.stats.total = start.total - start.at[static_cast<int>(Stage::kUploaded)] - start.dead;
  m.start_micros = m.clock->NowMicros();
  double cpu0 = ProcessCpuSeconds();
  if (m.opt.storage_inventory) m.LoadInventory();
  std::vector<std::thread> workers;
  for (int i = 0; i < m.opt.workers; ++i) workers.emplace_back([&m] { m.Worker(); });
  // Coordinator: end the run when nothing is left (or on stop / fatal error).
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (m.Stopping()) break;
    if (m.in_flight.load() > 0) continue;
    auto c = m.store->Counts();
    if (!c.ok()) {
      std::lock_guard<std::mutex> l(m.mu);
      m.stats.fatal = c.status().message();
      break;
    }
    int64_t open = c->total - c->at[static_cast<int>(Stage::kUploaded)] - c->dead;
    if (open == 0 && m.in_flight.load() == 0) break;
  }
  bool stop_requested = m.opt.stop && m.opt.stop->load() != 0;
  m.finish = true;
  for (auto& t : workers) t.join();
  std::lock_guard<std::mutex> l(m.mu);
  m.stats.interrupted = stop_requested;
  m.stats.elapsed_s = static_cast<double>(m.clock->NowMicros() - m.start_micros) / 1e6;
  double workers_cpu = 0;
  for (const auto& [key, seconds] : m.stats.cpu_s) workers_cpu += seconds;
  m.stats.cpu_s["process"] = ProcessCpuSeconds() - cpu0;
  m.stats.cpu_s["other_threads"] = m.stats.cpu_s["process"] - workers_cpu;
  return m.stats;
}

}  // namespace grin::pipeline
