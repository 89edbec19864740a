// Download (streamed or staged), decrypt + extract, and upload in SyncPipeline (see sync.h,
// sync_impl.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/errno_status.h"
#include "engine/base/unique_fd.h"
#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {
namespace {

int64_t FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

// A failed write to staging: kNoSpace for a full disk or quota (systemic: the book is held, not
// failed), else retryable.
Status StagingWriteError(const std::string& what) {
  const int e = errno;
  std::string m = "cannot " + what + " in staging: " + std::strerror(e);
  return IsNoSpaceErrno(e) ? Status::NoSpace(m) : Status::ResourceExhausted(m);
}

// Writes the decrypted archive to a staging file.
class FileByteSink final : public archive::ByteSink {
 public:
  explicit FileByteSink(std::FILE* f) : f_(f) {}
  Status Write(const uint8_t* data, size_t n) override {
    if (std::fwrite(data, 1, n, f_) != n) return StagingWriteError("write the decrypted archive");
    return Status::Ok();
  }

 private:
  std::FILE* f_;
};

// An archive written to staging as it arrives (a new book staged from the GET that stands for
// its check): the file is created afresh (a restarted body starts it again). Close() reports a
// failed write-out; the destructor closes quietly.
class StagingFileSink final : public archive::ByteSink {
 public:
  static Result<std::unique_ptr<StagingFileSink>> Create(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return StagingWriteError("create " + path);
    return std::unique_ptr<StagingFileSink>(new StagingFileSink(path, std::move(fd)));
  }
  Status Write(const uint8_t* data, size_t n) override {
    while (n > 0) {
      ssize_t w = ::write(fd_.get(), data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return StagingWriteError("write " + path_);
      data += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  Status Close() {
    if (fd_.get() >= 0 && ::close(fd_.Release()) != 0) return StagingWriteError("close " + path_);
    return Status::Ok();
  }

 private:
  StagingFileSink(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace

Result<CheckedArchive> SyncPipeline::Impl::DownloadTo(const std::string& barcode,
                                                      const CheckedArchive& expected) {
  const std::string& etag = expected.etag;
  const int64_t expected_size = expected.size;
  std::string path = GpgPath(barcode);
  int64_t have = FileSize(path);
  if (have < 0 || etag.empty() || (expected_size >= 0 && have > expected_size)) have = 0;
  if (expected_size > 0 && have == expected_size && !etag.empty()) {
    return expected;  // finished before a crash
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
    if (have > 0 && resp.http_status == 416) {
      // The partial does not fit the archive GRIN has now (it is stale): start again from zero.
      have = 0;
      continue;
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
    return CheckedArchive{head->etag, total};
  }
  return Status::Unavailable("archive for " + barcode + " kept changing while downloading");
}

void SyncPipeline::Impl::DownloadOrStream(const WorkItem& w, const JobCheckpoint& cp,
                                          Slot& slot) {
  const int64_t size = cp.archive.size;
  if (!Streamable(size)) {
    Download(w, cp, slot);
    return;
  }
  StreamMemory mem;
  const uint64_t reserve = StreamReserve(size);
  // The memory first, without waiting: a download slot whose worker waits for memory moves no
  // bytes, and GRIN's few slots bound the run. No memory free (streamed books hold theirs
  // through their uploads): the book is staged, which needs none, if staging has room for it;
  // else the slot is given back while the worker waits for memory, and taken again after.
  if (!budget->Acquire(reserve, [] { return true; })) {
    if (StagingHasRoom(size)) {
      Download(w, cp, slot);
      return;
    }
    slot.Release();
    if (!budget->Acquire(reserve, [this] { return Stopping(); })) {
      (void)store->Release(w);  // stopping: the next run picks it up
      return;
    }
    mem.reserved = reserve;
    slot = WaitForDownloadSlot();
    if (!slot) {
      FreeStreamMemory(&mem);
      (void)store->Release(w);  // stopping: the next run picks it up
      return;
    }
  }
  mem.reserved = reserve;
  StreamBook(w, cp, slot, &mem, nullptr);
  FreeStreamMemory(&mem);
}

bool SyncPipeline::Impl::StagingHasRoom(int64_t size) {
  if (StagingFull()) return false;
  struct statvfs fs {};
  if (::statvfs(opt.staging_dir.c_str(), &fs) != 0) return false;
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  // The encrypted and the decrypted archive of this book and of one like it in every other
  // download slot (they may be deciding the same at once), and room to spare for the rest.
  const uint64_t book = static_cast<uint64_t>(std::max<int64_t>(size, 0));
  return free_bytes >= 2 * book * static_cast<uint64_t>(Limit(kDownload) + 1) + 256 * kMiB;
}

void SyncPipeline::Impl::Download(const WorkItem& w, const JobCheckpoint& cp, Slot& slot) {
  CpuScope account(this, "download");
  auto got = DownloadTo(w.barcode, cp.archive);
  slot.Release();  // the bytes are in (or not coming): the state store's write needs no slot
  if (!got.ok()) {
    bool permanent = got.status().code() == StatusCode::kNotFound;
    FailItem(w, stats.download, got.status(), permanent ? "archive_missing" : "download_failed",
             permanent, cp.archive.size);
    return;
  }
  Completion c;
  c.to = Stage::kDownloaded;
  c.carry = EncodeCheckpoint(JobCheckpoint{*got, std::nullopt});
  c.detail_json = c.carry;  // the event's detail: the same {etag, size}
  CompleteItem(w, c, stats.download, "completed", "");
}

archive::BookOptions SyncPipeline::Impl::BookOptionsFor(const std::string& barcode, int64_t size,
                                    archive::ByteSink* sink) const {
  archive::BookOptions bo;
  bo.barcode = barcode;
  bo.decrypt.backend = opt.backend;
  if (size >= 0) bo.decrypt.size_hint = static_cast<uint64_t>(size);
  bo.extract = !(opt.skip_ocr && opt.skip_marc);
  bo.extract_options.require_ocr = !opt.skip_ocr;
  bo.extract_options.require_marc = !opt.skip_marc;
  bo.archive_sink = sink;
  bo.extract_options.ocr_spill_path = OcrSpillPath(barcode);
  bo.extract_options.ocr_memory_bytes = OcrMemoryBytes();
  // Storage integrity rests on the signed SHA-256 (S3 verifies it); MD5 would cost ~1.7 ms
  // per MiB for nothing.
  bo.compute_md5 = false;
  return bo;
}

void SyncPipeline::Impl::FailProcessing(const WorkItem& w, StageTally& t, const Status& s,
                                        int64_t size) {
  if (s.code() == StatusCode::kPermissionDenied) {
    FailItem(w, t, s, "decrypt_wrong_passphrase", true, size);
  } else if (s.code() == StatusCode::kDataLoss) {
    FailItem(w, t, s, "archive_invalid", false, size);
  } else {
    FailItem(w, t, s, "process_failed", false, size);
  }
}

bool SyncPipeline::Impl::StoreBook(const WorkItem& w, const JobCheckpoint& cp,
                                   const CheckedArchive& archive, const ByteSource& plain,
                                   const archive::BookResult& r) {
  const std::string& etag = archive.etag;
  CpuScope account(this, "upload");
  // The OCR spill file, if any, goes whatever happens (PutOcr removes it too), and before a
  // failure releases the book: the spill path is the book's, and its retry may start at once.
  auto drop_spill = [&r] {
    if (r.extraction && !r.extraction->ocr_jsonl_gz_path.empty()) {
      ::unlink(r.extraction->ocr_jsonl_gz_path.c_str());
    }
  };
  auto fail = [&](const Status& s, const char* reason, bool permanent) {
    drop_spill();
    FailItem(w, stats.process, s, reason, permanent, archive.size);
    return false;
  };
  std::string now = NowIso();
  auto raw = RawArchiveLocation(opt.layout, w.barcode);
  UploadOptions uo;
  uo.put.metadata = RawArchiveMetadata(w.barcode, etag, now);
  uo.put.content_type = "application/gzip";
  uo.put.md5_hex = r.md5_hex;
  uo.put.sha256_hex = r.sha256_hex;
  uo.multipart_threshold = opt.multipart_threshold;
  if (cp.upload) uo.resume = &*cp.upload;
  CheckpointJournal journal(store, w, archive);
  uo.journal = &journal;
  auto put = objects->Upload(raw.bucket, raw.key, plain, uo);
  if (!put.ok()) {
    return fail(put.status(), "upload_failed",
                put.status().code() == StatusCode::kPermissionDenied);
  }
  if (put->size != r.archive_bytes || (!put->md5_hex.empty() && !r.md5_hex.empty() &&
                                       put->md5_hex != r.md5_hex)) {
    return fail(Status::DataLoss("storage holds " + std::to_string(put->size) +
                              " bytes / md5 " + put->md5_hex + " for " + w.barcode +
                              ", expected " + std::to_string(r.archive_bytes) + " / " + r.md5_hex),
                "upload_mismatch", false);
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
      auto fput = PutOcr(w.barcode, x, now);
      if (!fput.ok()) return fail(fput.status(), "ocr_upload_failed", false);
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
  drop_spill();
  CompleteItem(w, c, stats.process, "completed", "");
  return true;
}

void SyncPipeline::Impl::Process(const WorkItem& w, const JobCheckpoint& cp) {
  double t0 = ThreadCpuSeconds();
  CheckedArchive archive = cp.archive;
  const int64_t size = archive.size;  // as downloaded; for HoldIfSystemic
  std::string gpg = GpgPath(w.barcode), plain = PlainPath(w.barcode);
  if (FileSize(gpg) != archive.size || archive.etag.empty()) {
    // Staging lost or corrupt (e.g. removed after a failed decrypt): fetch it again.
    auto got = DownloadTo(w.barcode, archive);
    if (!got.ok()) {
      FailItem(w, stats.process, got.status(), "download_failed", false, size);
      return;
    }
    archive = *got;
  }
  std::FILE* out = std::fopen(plain.c_str(), "wb");
  if (!out) {
    FailItem(w, stats.process, StagingWriteError("create " + plain), "staging", false,
             archive.size);
    return;
  }
  FileByteSink sink(out);
  archive::BookOptions bo = BookOptionsFor(w.barcode, archive.size, &sink);
  Result<archive::BookResult> result = Status::Internal("not run");
  {
    auto book = archive::BookProcessor::Open(bo, passphrase);
    if (!book.ok()) {
      std::fclose(out);
      ::unlink(plain.c_str());
      FailItem(w, stats.process, book.status(), "decrypt_setup", false, archive.size);
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
  Status flush_error = flushed ? Status::Ok() : StagingWriteError("write " + plain);
  flushed = std::fclose(out) == 0 && flushed;
  if (flush_error.ok() && !flushed) flush_error = StagingWriteError("close " + plain);
  AddCpu("decrypt", t0);
  if (result.ok() && !flushed) result = flush_error;
  if (!result.ok()) {
    ::unlink(plain.c_str());
    // A body that does not decrypt is suspect: remove it so the retry fetches it again. Before
    // the book is released: a worker may claim the retry at once, and must not find the file
    // there when it checks and gone when it reads.
    if (result.status().code() == StatusCode::kDataLoss) ::unlink(gpg.c_str());
    FailProcessing(w, stats.process, result.status(), archive.size);
    return;
  }
  auto src = FileSource::Open(plain);
  if (!src.ok()) {
    FailItem(w, stats.process, src.status(), "staging", false, archive.size);
    return;
  }
  if (StoreBook(w, cp, archive, **src, *result)) {
    ::unlink(plain.c_str());
    ::unlink(gpg.c_str());
  }
}

void SyncPipeline::Impl::FreeStreamMemory(StreamMemory* mem) {
  budget->Release(mem->reserved, &mem->chunks);  // kept for the next books if they fit
  mem->reserved = 0;
}

SyncPipeline::Impl::StreamOutcome SyncPipeline::Impl::StreamBook(
    const WorkItem& w, const JobCheckpoint& cp, Slot& slot, StreamMemory* mem,
    grin_client::ArchiveHead* unchecked_head) {
  double t0 = ThreadCpuSeconds();
  int64_t size = cp.archive.size;
  ChunkBuffer plain(budget.get());
  struct GiveBack {  // the chunks go back to the budget with the reservation (FreeStreamMemory)
    ChunkBuffer& plain;
    StreamMemory* mem;
    ~GiveBack() { mem->chunks = plain.TakeChunks(); }
  } give_back{plain, mem};
  archive::BookOptions bo = BookOptionsFor(w.barcode, size, &plain);
  bool deferred = false;
  bool staged = false;  // unchecked, and its memory was not free: written to staging as it is
  StagingFileSink* staging_file = nullptr;  // owned by the stream's BodyTarget
  bool sized = unchecked_head == nullptr;  // unchecked: the response head has been judged
  auto open = [&](const net::Response& head) -> Result<BodyTarget> {
    if (!sized) {
      auto h = grin->CheckArchiveResponse(head);
      if (!h.ok()) return h.status();  // judged again on the whole response below
      *unchecked_head = *h;
      last_archive_size = h->size;
      size = h->size;
      sized = true;
      // Where this GET's bytes go, decided now, without waiting for anything: memory if the
      // book can be streamed and its memory is free (the caller may have reserved some for a
      // book like the last one: a larger one takes the difference); else staging, if it has
      // room (for a streamable book: StagingHasRoom, so a memory shortage never fills the
      // disk); else the GET is dropped (kDeferred) and the book checked, to wait for memory
      // without a slot.
      const uint64_t reserve = StreamReserve(h->size);
      if (Streamable(h->size) &&
          (reserve <= mem->reserved ||
           budget->Acquire(reserve - mem->reserved, [] { return true; }))) {
        mem->reserved = std::max(mem->reserved, reserve);
        bo.decrypt.size_hint = static_cast<uint64_t>(h->size);
      } else if (Streamable(h->size) ? StagingHasRoom(h->size) : !StagingFull()) {
        staged = true;
        FreeStreamMemory(mem);  // a reservation made for a book like the last one: not needed
        // The archive's ETag and size, so that a retry (or the run after a kill) continues
        // the partial file with Range + If-Range instead of starting again. Best effort: without
        // it the next attempt fetches the whole archive.
        Status saved = store->SaveCheckpoint(
            w, EncodeCheckpoint(JobCheckpoint{CheckedArchive{h->etag, h->size}, cp.upload}));
        if (!saved.ok()) {
          log->Log(LogLevel::kWarning, "sync.checkpoint_not_saved",
                   {{"barcode", w.barcode}, {"error", saved.message()}});
        }
      } else {
        deferred = true;
        return Status::Cancelled("deferred to the download stage");
      }
    }
    if (staged) {
      GRIN_ASSIGN_OR_RETURN(auto file, StagingFileSink::Create(GpgPath(w.barcode)));
      staging_file = file.get();
      return BodyTarget{nullptr, std::move(file)};
    }
    plain.Clear();
    GRIN_ASSIGN_OR_RETURN(auto processor, archive::BookProcessor::Open(bo, passphrase));
    return BodyTarget{std::move(processor), nullptr};
  };
  net::Request req = grin->ArchiveRequest(w.barcode, net::ResponseSink::Discard());
  req.label = "archive " + w.barcode;
  auto streamed = StreamArchiveTo(transport, std::move(req), open, kStreamOverhead);
  // The bytes are in (or not coming): the slot goes on to processing before anything else —
  // the checks, the decryptor's end, the upload and the state store need no download slot. A
  // staged book's slot is given back: its processing is a later claim's.
  if (staged) {
    slot.Release();
  } else {
    slot.MoveTo(kProcess);
  }
  if (streamed.ok()) {
    std::lock_guard<std::mutex> l(mu);
    stats.bytes_downloaded += streamed->response.bytes_down;
  }
  if (deferred) return StreamOutcome::kDeferred;
  if (!streamed.ok()) {
    if (!sized && !store_failed.load()) return StreamOutcome::kFallback;
    if (staged) {
      FailItem(w, stats.download, streamed.status(), "download_failed", false, size);
    } else {
      FailProcessing(w, stats.download, streamed.status(), size);
    }
    return StreamOutcome::kHandled;
  }
  auto head = grin->CheckArchiveResponse(streamed->response);
  if (!head.ok()) {
    if (staged) {  // an archive whose transfer failed: the retry continues the partial file
      bool permanent = head.status().code() == StatusCode::kNotFound;
      FailItem(w, stats.download, head.status(),
               permanent ? "archive_missing" : "download_failed", permanent, size);
      return StreamOutcome::kHandled;
    }
    if (unchecked_head != nullptr) return StreamOutcome::kFallback;
    bool permanent = head.status().code() == StatusCode::kNotFound;
    FailItem(w, stats.download, head.status(),
             permanent ? "archive_missing" : "download_failed", permanent, size);
    return StreamOutcome::kHandled;
  }
  if (unchecked_head != nullptr) Tally(stats.check, "completed", "");
  auto cl = net::FindHeader(streamed->response.headers, "Content-Length");
  if (cl && std::to_string(streamed->bytes_fed) != *cl) {
    FailItem(w, stats.download,
             Status::DataLoss("archive for " + w.barcode + " was " +
                              std::to_string(streamed->bytes_fed) + " bytes, expected " + *cl),
             "download_failed", false, size);
    return StreamOutcome::kHandled;
  }
  if (staged) {
    // As a staged download (Download): the job completes to `downloaded` with the archive's
    // ETag and size, and the process stage decrypts the file. A multipart upload an earlier
    // attempt recorded for the same archive goes on with it.
    Status closed = staging_file != nullptr ? staging_file->Close() : Status::Ok();
    if (!closed.ok()) {
      FailItem(w, stats.download, closed, "download_failed", false, size);
      return StreamOutcome::kHandled;
    }
    AddCpu("download", t0);
    const CheckedArchive got{head->etag, streamed->bytes_fed};
    Completion c;
    c.to = Stage::kDownloaded;
    c.carry = EncodeCheckpoint(
        JobCheckpoint{got, cp.archive.etag == got.etag ? cp.upload : std::nullopt});
    c.detail_json = EncodeCheckpoint(JobCheckpoint{got, std::nullopt});
    CompleteItem(w, c, stats.download, "completed", "");
    return StreamOutcome::kHandled;
  }
  Tally(stats.download, "completed", "");
  auto result = streamed->processor->Finish();
  streamed->processor.reset();
  AddCpu("download+decrypt", t0);
  if (!result.ok()) {
    FailProcessing(w, stats.process, result.status(), size);
    return StreamOutcome::kHandled;
  }
  ChunkSource src(plain);
  StoreBook(w, cp, CheckedArchive{head->etag, streamed->bytes_fed}, src, *result);
  return StreamOutcome::kHandled;
}

}  // namespace grin::pipeline
