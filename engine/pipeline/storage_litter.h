#pragma once
// SweepStorageLitter: removes what interrupted writes left in a run's storage, for sync (at the
// start of every run, sync_litter.cc) and verify (which reports it):
//   - temporary objects of interrupted writes under the raw, full and meta prefixes, which the
//     store removes only when their writer is clearly gone (ObjectStore::
//     RemoveAbandonedTemporaries; storage may be shared with other processes);
//   - multipart uploads of raw archives of this run's books that no job will resume: a job at
//     `uploaded` or dead, or one whose checkpoint records another upload (a recorded one is
//     resumed by its job). Uploads of books that are not jobs of this run, or of keys that are
//     not a book's raw key, may be another run's and are left alone; without a job view no
//     upload is touched.
// The caller holds the run lock, so no process of this run is writing meanwhile.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/logger.h"
#include "engine/object_store.h"
#include "engine/pipeline/sync.h"

namespace grin::pipeline {

struct StorageLitter {
  int64_t temporaries_removed = 0;
  std::vector<std::string> uploads_aborted;  // "bucket/key" of each aborted multipart upload
  // One line per bucket that could not be scanned or upload the store refused to abort.
  std::vector<std::string> errors;
  int64_t removed() const {
    return temporaries_removed + static_cast<int64_t>(uploads_aborted.size());
  }
};

// Sweeps the storage of `layout`. job_view: as SyncOptions::job_view (may be empty). Logs
// "<log_prefix>.litter_removed" for each removal and "<log_prefix>.litter_scan_failed" /
// "<log_prefix>.litter_abort_failed" for each error.
StorageLitter SweepStorageLitter(ObjectStore& objects, const StorageLayout& layout,
                                 const decltype(SyncOptions::job_view)& job_view, Logger& log,
                                 const std::string& log_prefix);

}  // namespace grin::pipeline
