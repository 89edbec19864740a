// Run::Verify (include/grin_jobs/run.h): the engine's pipeline::Verify on the run's object store,
// fed from the run's state (storage/sync_reader.h: books.db or PostgreSQL), under the run lock.
#include <nlohmann/json.hpp>

#include "cli/facade/run_impl.h"
#include "cli/object_store_factory.h"
#include "engine/net/curl_transport.h"
#include "engine/pipeline/verify.h"
#include "cli/state_factory.h"
#include "storage/sync_reader.h"

namespace grin::jobs {

Result<VerifyReport> VerifyWithLogger(Run::Impl& run, const VerifyOptions& options,
                                      grin::Logger* logger) {
  run.origin = ErrorOrigin::kRun;
  // The run lock (no sync changes the run meanwhile; litter is only removed under it).
  cli::StateOptions so;
  so.logger = logger;
  GRIN_ASSIGN_OR_RETURN(auto state, cli::OpenRunState(run.run_dir, run.config, so));
  GRIN_ASSIGN_OR_RETURN(auto reader, cli::OpenRunReader(run.run_dir, run.config));

  std::unique_ptr<net::CurlTransport> transport;  // declared before the object store: outlives it
  const nlohmann::json& storage_cfg = run.config.storage;
  if (storage_cfg.value("type", "local") != "local") {
    net::TransportOptions to;
    to.ca_file = storage_cfg.value("ca_file", "");
    GRIN_ASSIGN_OR_RETURN(transport, net::CurlTransport::Create(to));
  }
  GRIN_ASSIGN_OR_RETURN(auto objects, cli::OpenObjectStore(storage_cfg, transport.get()));

  pipeline::VerifyOptions vo;
  vo.layout = objects.layout;
  vo.deep = options.deep;
  vo.requeue = options.requeue;
  vo.skip_ocr = options.skip_ocr;
  vo.skip_marc = options.skip_marc;
  vo.deep_concurrency = options.deep_concurrency;
  vo.store = state->store.get();
  vo.logger = logger;
  storage::SyncReader* r = reader.get();
  vo.for_each_book = [r](const std::function<void(pipeline::VerifyBook)>& fn) {
    return r->ForEachJob([&fn](storage::VerifyRow row) {
      pipeline::VerifyBook b;
      b.barcode = std::move(row.barcode);
      b.done = row.done;
      b.marc_recorded = row.marc_recorded;
      b.raw_size = row.raw_size;
      fn(std::move(b));
    });
  };
  vo.record = [r](const std::string& barcode) -> Result<pipeline::VerifyRecord> {
    GRIN_ASSIGN_OR_RETURN(auto u, r->Upload(barcode));
    pipeline::VerifyRecord rec;
    rec.encrypted_etag = u.encrypted_etag;
    rec.sha256_hex = u.sha256_hex;
    return rec;
  };
  vo.job_view = JobViewOf(r);
  GRIN_ASSIGN_OR_RETURN(auto rep, pipeline::Verify(*objects.store, vo));
  VerifyReport out;
  out.storage = objects.store->Describe();
  out.books = rep.books;
  out.done = rep.done;
  out.objects_listed = rep.objects_listed;
  out.deep_checked = rep.deep_checked;
  out.deep_bytes = rep.deep_bytes;
  out.deep_unrecorded = rep.deep_unrecorded;
  for (const auto& m : rep.mismatches) out.mismatches.push_back({m.barcode, m.problem, m.detail});
  out.books_mismatched = rep.books_mismatched;
  out.unknown_objects = rep.unknown_objects;
  out.unknown_sample = rep.unknown_sample;
  out.temporaries_removed = rep.temporaries_removed;
  out.uploads_aborted = rep.uploads_aborted;
  out.litter_errors = rep.litter_errors;
  out.requeue_errors = rep.requeue_errors;
  out.requeued = rep.requeued;
  out.raw_deleted = rep.raw_deleted;
  out.elapsed_s = rep.elapsed_s;
  return out;
}

Result<VerifyReport> Run::Verify(const VerifyOptions& options, Observer* observer) {
  ObserverLogger logger(observer);
  return VerifyWithLogger(*impl_, options, &logger);
}

}  // namespace grin::jobs
