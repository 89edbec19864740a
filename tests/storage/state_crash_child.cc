// Child process for the crash test: drives every job of a run from pending to uploaded with
// random retryable failures, as fast as it can, until all are uploaded (exit 0). The parent
// SIGKILLs it at random moments and restarts it.
//   state_crash_child <db> <items> <normal|durable> <seed>
// Hold mode, for crash streaks: claims POISON001 (the run's first job), then with "progress"
// claims and completes one more job, with "forced" gives its leases back as a forced exit does,
// with "still" does nothing more; says 'R' and waits to be killed.
//   state_crash_child <db> hold <still|progress|forced> <seed>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "storage/sqlite_state_store.h"

namespace {

int Hold(const std::string& db, const std::string& mode, const std::string& seed) {
  auto store = grin::storage::SqliteStateStore::Open(db, grin::storage::StateStoreOptions{});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  if (!(*store)->Enqueue({"POISON001"}).ok()) return 1;
  if (!(*store)->Enqueue({"OTHER" + seed}).ok()) return 1;
  auto poison = (*store)->Claim(grin::Stage::kPending, 1);
  if (!poison.ok() || poison->size() != 1 || poison->front().barcode != "POISON001") {
    std::fprintf(stderr, "POISON001 not claimable\n");
    return 4;
  }
  if (mode == "progress") {
    auto other = (*store)->Claim(grin::Stage::kPending, 1);
    if (!other.ok() || other->size() != 1) return 1;
    if (!(*store)->Complete(other->front(), grin::Stage::kUploaded).ok()) return 1;
  } else if (mode == "forced") {
    auto n = (*store)->ReleaseForExit();
    if (!n.ok() || *n != 1) return 1;
  }
  std::fputc('R', stdout);
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: state_crash_child <db> <items> <normal|durable> <seed>\n");
    return 2;
  }
  if (std::string(argv[2]) == "hold") return Hold(argv[1], argv[3], argv[4]);
  std::string db = argv[1];
  int items = std::atoi(argv[2]);
  grin::storage::StateStoreOptions o;
  o.durable = std::string(argv[3]) == "durable";
  o.seed = std::strtoull(argv[4], nullptr, 10);
  o.max_attempts = 1'000'000;
  o.max_recoveries = 1'000'000;
  o.backoff_base_micros = 1000;
  o.backoff_max_micros = 4000;
  auto store = grin::storage::SqliteStateStore::Open(db, o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> barcodes;
  for (int i = 0; i < items; ++i) barcodes.push_back("CRASH" + std::to_string(100000 + i));
  auto counts = (*store)->Counts();
  if (!counts.ok()) return 1;
  if (counts->total < items && !(*store)->Enqueue(barcodes).ok()) return 1;
  // Tell the parent we are working (it kills us at a random moment after this).
  std::fputc('R', stdout);
  std::fflush(stdout);
  std::mt19937_64 rng(o.seed);
  for (;;) {
    for (int s = 0; s < 3; ++s) {
      auto from = static_cast<grin::Stage>(s);
      auto claimed = (*store)->Claim(from, 32);
      if (!claimed.ok()) return 1;
      std::vector<grin::Completion> done;
      for (auto& w : *claimed) {
        if (rng() % 10 == 0) {
          if (!(*store)->Fail(w, grin::ErrorClass::kRetryable, "injected", "").ok()) return 1;
        } else {
          done.push_back(grin::Completion{w, static_cast<grin::Stage>(s + 1), "completed", "", {}});
        }
      }
      auto r = (*store)->CompleteMany(std::move(done));
      if (!r.ok()) return 1;
      for (auto& st : *r) {
        if (!st.ok()) {
          std::fprintf(stderr, "unexpected conflict: %s\n", st.ToString().c_str());
          return 3;
        }
      }
    }
    auto c = (*store)->Counts();
    if (!c.ok()) return 1;
    if (c->at[3] == items) return 0;
  }
}
