// A worker process for tests/storage/pg_workers_test.cc: one PgStateStore (its own run, lease
// ttl 3 s, heartbeat every 300 ms) on a shared PostgreSQL database.
//   pg_worker_child <conninfo> drain <total> <batch>
//     claims at pending and completes to uploaded until all <total> jobs are uploaded (polling
//     while other workers' leases are out), then prints "done <completed> <refused>" and exits 0;
//     exit 3 if not all are uploaded within 120 s.
//   pg_worker_child <conninfo> hold <batch>
//     claims one batch, prints "claimed <n> <run_id>" and waits to be killed (its heartbeats
//     keep the leases while it lives).
//   pg_worker_child <conninfo> late <batch>
//     claims one batch, prints "claimed <n> <run_id>", waits for a line on stdin (the parent
//     stops it with SIGSTOP or cuts its network meanwhile: it heartbeats no more), then completes
//     the batch (trying again for up to 20 s while the call fails) and prints
//     "late <completed> <refused>".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "storage/postgres/pg_state_store.h"

namespace {

using grin::Completion;
using grin::Stage;

int Drain(grin::storage::PgStateStore& s, int64_t total, int batch) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int64_t completed = 0, refused = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto items = s.Claim(Stage::kPending, batch);
    if (!items.ok()) {
      std::fprintf(stderr, "claim: %s\n", items.status().ToString().c_str());
      return 1;
    }
    if (items->empty()) {
      auto c = s.Counts();
      if (!c.ok()) {
        std::fprintf(stderr, "counts: %s\n", c.status().ToString().c_str());
        return 1;
      }
      if (c->at[static_cast<int>(Stage::kUploaded)] == total) {
        std::printf("done %lld %lld\n", static_cast<long long>(completed),
                    static_cast<long long>(refused));
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    std::vector<Completion> done;
    for (auto& w : *items) done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
    auto st = s.CompleteMany(std::move(done));
    if (!st.ok()) {
      std::fprintf(stderr, "complete: %s\n", st.status().ToString().c_str());
      return 1;
    }
    for (const auto& one : *st) (one.ok() ? completed : refused)++;
  }
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 4) {
    std::fprintf(stderr, "usage: pg_worker_child <conninfo> drain <total> <batch> | "
                         "<conninfo> hold <batch>\n");
    return 2;
  }
  grin::storage::PgStateStoreOptions o;
  o.lease_ttl_micros = 3'000'000;
  o.heartbeat_interval_micros = 300'000;
  o.pool_size = 2;
  auto store = grin::storage::PgStateStore::Open(argv[1], o);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::string mode = argv[2];
  if (mode == "drain" && argc == 5) return Drain(**store, std::atoll(argv[3]), std::atoi(argv[4]));
  if (mode == "hold") {
    auto items = (*store)->Claim(Stage::kPending, std::atoi(argv[3]));
    if (!items.ok()) {
      std::fprintf(stderr, "claim: %s\n", items.status().ToString().c_str());
      return 1;
    }
    std::printf("claimed %zu %lld\n", items->size(), static_cast<long long>((*store)->run_id()));
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (mode == "late") {
    auto items = (*store)->Claim(Stage::kPending, std::atoi(argv[3]));
    if (!items.ok()) {
      std::fprintf(stderr, "claim: %s\n", items.status().ToString().c_str());
      return 1;
    }
    std::printf("claimed %zu %lld\n", items->size(), static_cast<long long>((*store)->run_id()));
    char line[64];
    if (std::fgets(line, sizeof line, stdin) == nullptr) return 1;
    std::vector<Completion> done;
    for (auto& w : *items) done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
    // A connection the partition broke fails the call (kUnavailable): try again for a while, as
    // a worker whose link came back would.
    auto st = (*store)->CompleteMany(done);
    for (int i = 0; i < 40 && !st.ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      st = (*store)->CompleteMany(done);
    }
    if (!st.ok()) {
      std::fprintf(stderr, "complete: %s\n", st.status().ToString().c_str());
      return 1;
    }
    int64_t completed = 0, refused = 0;
    for (const auto& one : *st) (one.ok() ? completed : refused)++;
    std::printf("late %lld %lld\n", static_cast<long long>(completed),
                static_cast<long long>(refused));
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
