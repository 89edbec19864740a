// Benchmark (not a test) for the SQLite state store. Driver: scripts/bench-state.
//   bench_state <dir> [items=200000] [status_books=1000000]
// Measures, each in a fresh database:
//   1. bulk enqueue items/s;
//   2. claim+complete items/s with claim batches of 16/64/256, synchronous NORMAL and FULL
//      (one claimer thread: Claim(n) + CompleteMany(n) straight to uploaded);
//   3. the same with 8 claimer threads sharing the store (group commit across threads);
//   4. `status` latency (Counts + Failures on a read connection) at status_books jobs while a
//      writer thread is busy claiming and completing.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <atomic>
#include <vector>
#include <algorithm>

#include "storage/sqlite_state_store.h"

using grin::Completion;
using grin::Stage;
using grin::storage::SqliteStateStore;
using grin::storage::StateReader;
using grin::storage::StateStoreOptions;
using Clock = std::chrono::steady_clock;

static double Secs(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

static std::vector<std::string> Barcodes(int n) {
  std::vector<std::string> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v.push_back("BENCH" + std::to_string(10000000 + i));
  return v;
}

static std::unique_ptr<SqliteStateStore> Fresh(const std::string& dir, const char* name,
                                               bool durable) {
  std::string path = dir + "/" + name + ".db";
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) std::filesystem::remove(path + suffix);
  StateStoreOptions o;
  o.durable = durable;
  auto s = SqliteStateStore::Open(path, o);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

static int64_t Drain(SqliteStateStore& store, int batch) {
  int64_t n = 0;
  for (;;) {
    auto items = store.Claim(Stage::kPending, batch);
    if (!items.ok() || items->empty()) break;
    std::vector<Completion> done;
    done.reserve(items->size());
    for (auto& w : *items) done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
    n += static_cast<int64_t>(done.size());
    (void)store.CompleteMany(std::move(done));
  }
  return n;
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp/grin-bench-state";
  int items = argc > 2 ? std::atoi(argv[2]) : 200000;
  int status_books = argc > 3 ? std::atoi(argv[3]) : 1000000;
  std::filesystem::create_directories(dir);
  auto barcodes = Barcodes(std::max(items, status_books));
  std::vector<std::string> work(barcodes.begin(), barcodes.begin() + items);

  {
    auto store = Fresh(dir, "enqueue", false);
    auto t = Clock::now();
    (void)store->Enqueue(work);
    double s = Secs(t);
    std::printf("bulk_enqueue items=%d seconds=%.3f items_per_s=%.0f\n", items, s, items / s);
  }
  for (bool durable : {false, true}) {
    for (int batch : {16, 64, 256}) {
      auto store = Fresh(dir, "claim", durable);
      (void)store->Enqueue(work);
      auto t = Clock::now();
      int64_t n = Drain(*store, batch);
      double s = Secs(t);
      std::printf("claim_complete sync=%s batch=%d threads=1 items=%lld seconds=%.3f "
                  "items_per_s=%.0f commits=%lld\n",
                  durable ? "FULL" : "NORMAL", batch, static_cast<long long>(n), s, n / s,
                  static_cast<long long>(store->commits()));
    }
    {
      auto store = Fresh(dir, "claim8", durable);
      (void)store->Enqueue(work);
      std::atomic<int64_t> total{0};
      auto t = Clock::now();
      std::vector<std::thread> th;
      for (int i = 0; i < 8; ++i) th.emplace_back([&] { total += Drain(*store, 16); });
      for (auto& x : th) x.join();
      double s = Secs(t);
      std::printf("claim_complete sync=%s batch=16 threads=8 items=%lld seconds=%.3f "
                  "items_per_s=%.0f commits=%lld\n",
                  durable ? "FULL" : "NORMAL", static_cast<long long>(total.load()), s,
                  total / s, static_cast<long long>(store->commits()));
    }
  }
  {
    std::string path = dir + "/status.db";
    auto store = Fresh(dir, "status", false);
    (void)store->Enqueue(barcodes);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      while (!stop) {
        auto claimed = store->Claim(Stage::kPending, 64);
        if (!claimed.ok() || claimed->empty()) break;
        std::vector<Completion> done;
        for (auto& w : *claimed) done.push_back(Completion{w, Stage::kChecked, "completed", "", {}});
        (void)store->CompleteMany(std::move(done));
      }
    });
    auto reader = StateReader::Open(path);
    if (!reader.ok()) return 1;
    std::vector<double> ms;
    for (int i = 0; i < 20; ++i) {
      auto t = Clock::now();
      auto c = (*reader)->Counts();
      auto f = (*reader)->Failures();
      ms.push_back(Secs(t) * 1000);
      if (!c.ok() || c->total != status_books) std::printf("status count mismatch\n");
    }
    stop = true;
    writer.join();
    std::sort(ms.begin(), ms.end());
    std::printf("status books=%d writer_busy=yes median_ms=%.1f max_ms=%.1f\n", status_books,
                ms[ms.size() / 2], ms.back());
  }
  return 0;
}
