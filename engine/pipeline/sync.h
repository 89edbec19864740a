#pragma once
// SyncPipeline: the main job. Drives every unfinished job of a run through
//   pending --check--> checked --download--> downloaded --process--> uploaded
// with a fixed pool of worker threads, all HTTP through the one shared Transport, and every
// transition through the StateStore's claim / fenced-complete protocol:
//
//   check     HEAD the archive at GRIN; compare its ETag with the stored object's
//             `encrypted_etag`: equal -> done at once ("skipped_etag_match") when its OCR object
//             and MARC columns are in place too, else those are rebuilt from the stored raw
//             archive ("rebuilt_outputs", no GRIN download); 404 -> reconcile
//             from storage, record a known conversion failure, or request conversion (the
//             book then waits, StateStore::Await, until a later sync finds it in _converted;
//             the first 429 / queue full from _process stops conversion requests for the rest
//             of the run, and never slows archive downloads). Which
//             books storage holds comes from one listing of the raw bucket at the start (the
//             inventory); only those are HEADed for their metadata.
//             A book storage does not hold is not HEADed at all: its GET goes out at once and
//             the response head stands for the check (ETag, size; anything but an archive
//             falls back to the HEAD path) and decides, without waiting, whether the bytes go to
//             memory (streamed) or, as they are, to staging (the job then completes to
//             `downloaded`): one GRIN request per new book of any size. A book that needs
//             downloading and can be streamed is streamed by the worker that checked it, under
//             the same claim: the job goes
//             from `pending` straight to `uploaded` (or fails back to `pending`), saving a GRIN
//             request and two state transitions per new book.
//   download  books up to stream_max_bytes: streamed — decrypted, hashed and extracted while
//             they download, the decrypted archive held in memory (bounded by
//             memory_limit_bytes), then stored as in `process`: checked -> uploaded with no
//             staging (an interrupted book downloads again; it is small). A streamable book
//             whose memory is not free when it gets a download slot is staged instead (if the
//             staging disk has room; else the slot is given back while it waits): a download
//             slot is held only while bytes can move, and given back the moment they are in.
//             Larger books: GET into <staging>/<BARCODE>.tar.gz.gpg; a partial file left by an
//             interrupted run resumes with Range + If-Range (a changed archive restarts from zero).
//   process   (staged books) decrypt (streaming; integrity verified before anything is committed), hash and
//             extract OCR + MARC in one pass, upload the raw archive (Content-MD5 + SHA-256; a
//             multipart upload records its parts in the job's checkpoint and resumes from them)
//             and the OCR JSONL; only when storage accepted both does the job complete to
//             `uploaded`, in the same transaction as the book's storage facts and MARC fields.
//
// Stop: when *options.stop becomes non-zero the workers stop claiming, finish what they hold and
// Run() returns (stats.interrupted). Systemic failures (circuit_breaker.h) stop it the same way
// after SyncOptions::stop_after_systemic books, and never fail a book. Per-stage concurrency: check_concurrency,
// download_concurrency (polite to GRIN), and the worker count for the CPU-heavy process stage.
//
// Thread safety: Run() once per object; it blocks until the run ends.

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "engine/archive/book.h"
#include "engine/base/clock.h"
#include "engine/base/logger.h"
#include "engine/base/metrics.h"
#include "engine/grin/client.h"
#include "engine/net/transport.h"
#include "engine/pipeline/progress.h"
#include "engine/pipeline/shared_limits.h"
#include "engine/object_store.h"
#include "engine/state_store.h"

namespace grin::pipeline {

struct KnownFailure {
  std::string date;
  std::string info;
  std::string detail;
};

struct SyncOptions {
  int workers = 8;
  int check_concurrency = 4;
  int download_concurrency = 4;
  std::string staging_dir;             // required
  uint64_t staging_limit_bytes = 0;    // pause downloads while staging holds more (0 = no limit)
  bool force = false;                  // re-download even when ETags match
  bool skip_ocr = false;
  bool skip_marc = false;
  archive::DecryptBackend backend = archive::DecryptBackend::kAuto;
  StorageLayout layout;
  uint64_t multipart_threshold = 64 * kMiB;
  // Books up to this size are streamed: decrypted while they download, held in memory until
  // uploaded, never staged (0 = stage every book). Larger books, or books that do not fit in
  // memory_limit_bytes, go through the staging directory (resumable downloads).
  uint64_t stream_max_bytes = 128 * kMiB;
  uint64_t memory_limit_bytes = 512 * kMiB;  // streamed books in flight hold at most this
  // List the raw bucket once at the start (1,000 keys per request) and HEAD only the books
  // found there, instead of one storage HEAD per book. false: HEAD every book.
  bool storage_inventory = true;
  std::map<std::string, KnownFailure> known_failures;  // from GRIN's _failed list
  // Outputs (sync_rebuild.cc): whether a book's MARC columns are recorded
  // (books.marc_extraction_timestamp). A book whose raw archive is stored is done only when its
  // OCR object (full bucket; listed once at the start with the inventory) and MARC columns are
  // in place too; missing ones are rebuilt from the stored raw archive, without GRIN. Unset:
  // MARC columns are taken to be in place. Called from worker threads.
  std::function<Result<bool>(const std::string& barcode)> marc_recorded;
  // Litter (sync_litter.cc): a book's job as the sweep at the start of Run() needs it, nullopt
  // if the run has no job for the book. A staged archive is kept only for a job that may still
  // resume it (pending, checked or downloaded, not dead); a multipart upload of a raw archive
  // only when it is the one the job's checkpoint records (uploads of books that are not jobs of
  // this run are left alone). Unset: staged archives and uploads are left alone (the other
  // leftovers are still removed).
  struct JobView {
    Stage stage = Stage::kPending;
    bool dead = false;
    std::string checkpoint;  // the job's checkpoint JSON, "" if none
  };
  std::function<Result<std::optional<JobView>>(const std::string& barcode)> job_view;
  int progress_every = 20;                             // books between progress lines
  std::function<void(const std::string& line)> on_progress;  // may be empty
  // A live display (the CLI's terminal bar): when set, gets the snapshot of every finished book
  // instead of on_progress getting lines.
  std::function<void(const ProgressSnapshot&)> on_snapshot;
  const std::atomic<int>* stop = nullptr;              // non-zero: drain and return
  // Systemic failures (not the book's fault: GRIN auth, wrong passphrase, TLS trust, storage
  // access or bucket, a full disk; see circuit_breaker.h) never fail a book: its job is kept as
  // it was. After this many consecutive distinct books failed so, the run stops claiming, drains
  // and returns with stats.fatal naming the cause (a wrong passphrase or an unwritable state
  // store: at once).
  int stop_after_systemic = 3;
  std::string state_store_path;  // named in messages about the state store ("" = not named)
  Clock* clock = nullptr;
  Logger* logger = nullptr;
  // Prometheus metrics (sync_metrics.h): the tallies, books in flight, memory budget and the
  // run's job counts, refreshed about every second and once more when Run() returns, and the
  // per-stage latency histograms. nullptr: none. Must outlive Run().
  Metrics* metrics = nullptr;
  // Several processes sharing one run's GRIN limits (shared_limits.h): downloads run at most
  // min(download_concurrency, shared_limits->DownloadLimit()) at a time, each slot taken through
  // it. The GRIN request rate share reaches the transport through the caller (its rate
  // listener). nullptr: this process alone, the configured numbers. Must outlive Run().
  SharedLimits* shared_limits = nullptr;
};

struct StageTally {
  int64_t completed = 0;
  int64_t skipped = 0;
  int64_t failed = 0;
  std::map<std::string, int64_t> reasons;  // failure / skip reasons
};

struct SyncStats {
  int64_t total = 0;        // jobs unfinished at the start
  int64_t done = 0;         // reached uploaded or failed for good during this run
  int64_t uploaded = 0;     // reached uploaded during this run (synced + skipped)
  int64_t synced = 0;       // downloaded and uploaded
  int64_t skipped_etag = 0; // ETag matched the stored object
  int64_t rebuilt = 0;      // stored raw archive kept; missing OCR / MARC rebuilt from it
  int64_t litter_removed = 0;  // leftovers of interrupted earlier runs removed at the start
  int64_t conversion_requested = 0;
  // Books that went to wait for GRIN's conversion during this run (StateStore::Await): asked
  // for, already in process, refused for a full queue, not asked (conversion_requests_stopped),
  // or listed as converted but without an archive (archive_expired). Neither done nor dead.
  int64_t awaiting_conversion = 0;
  // GRIN's conversion queue was full (a 429 from _process): no more _process requests were
  // sent in this run; the remaining unconverted books wait as conversion_not_requested.
  bool conversion_requests_stopped = false;
  int64_t dead = 0;
  int64_t retried = 0;
  int64_t bytes_downloaded = 0;
  int64_t bytes_uploaded = 0;
  double elapsed_s = 0;
  bool interrupted = false;
  // A run-wide error, one line with the cause and the fix (e.g. GRIN refused access, a disk is
  // full); "" if none. Set whenever a book was held back for a systemic failure.
  std::string fatal;
  int64_t held_back = 0;    // books whose jobs were kept as they were for a systemic failure
  StageTally check, download, process;
  // CPU seconds by where they were spent: "check", "download" (staged), "download+decrypt"
  // (streamed: download, decrypt, hash and extract on the worker), "decrypt" (staged),
  // "upload" (worker threads, per stage, measured with the thread CPU clock); "process" (the
  // whole process during Run) and "other_threads" (process minus the worker stages: the transport's
  // event thread with TLS, the state store's writer, decryptor helper threads).
  std::map<std::string, double> cpu_s;
};

class SyncPipeline {
 public:
  // None of the pointers is owned; all must outlive Run().
  SyncPipeline(StateStore* store, ObjectStore* objects, grin_client::GrinClient* grin,
               net::Transport* transport, const archive::Secret* passphrase, SyncOptions options);
  ~SyncPipeline();
  SyncPipeline(const SyncPipeline&) = delete;
  SyncPipeline& operator=(const SyncPipeline&) = delete;

  // Runs until every job is uploaded or dead, the stop flag is raised, or a fatal error.
  // Removes what interrupted earlier runs left first (see sync_litter.cc).
  Result<SyncStats> Run();

  // For a run with nothing to do: only removes what interrupted earlier runs left (a run
  // killed in its teardown leaves temporary objects in the meta bucket). Not with Run().
  SyncStats RemoveLitterOnly();

 private:
  friend struct SyncSlotsTestPeer;  // tests/pipeline/shared_limits_test.cc: the slot table
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grin::pipeline
