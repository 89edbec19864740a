// Child process for the crash test: drives every job of a run from pending to uploaded with
// random retryable failures, as fast as it can, until all are uploaded (exit 0). The parent
// SIGKILLs it at random moments and restarts it.
//   state_crash_child <db> <items> <normal|durable> <seed>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "storage/sqlite_state_store.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: state_crash_child <db> <items> <normal|durable> <seed>\n");
    return 2;
  }
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
