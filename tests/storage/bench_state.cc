// Benchmark (not a test) for the SQLite state store. Driver: scripts/bench-state.
//   bench_state <dir> [items=200000] [status_books=1000000]
// Measures, each in a fresh database:
//   1. bulk enqueue items/s;
//   2. claim+complete items/s with claim batches of 16/64/256/512/1024, synchronous NORMAL and
//      FULL (one claimer thread: Claim(n) + CompleteMany(n) straight to uploaded);
//   3. the same with 8 claimer threads (batches 16, 256 and 1024) sharing the store (group
//      commit across threads);
//   4. `status` latency (the status command's queries: Counts, Failures, CompletedSince over the
//      rate window, Books and ConvertFailed) at status_books jobs and books, a quarter of them
//      uploaded, on a read connection, while a writer thread is busy claiming and completing.
// Each row also prints the process CPU time per item, which the machine's load moves less.
// BENCH_ONLY=enqueue|normal|full|status runs one part (for profiling); BENCH_BATCHES="256 1024"
// and BENCH_BATCHES8="256" replace the claim batch sizes of parts 2 and 3 ("" skips the part).
#include <SQLiteCpp/Database.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "storage/sqlite_state_store.h"
#include "storage/state_reader.h"

using grin::Completion;
using grin::Stage;
using grin::storage::SqliteStateStore;
using grin::storage::StateReader;
using grin::storage::StateStoreOptions;
using Clock = std::chrono::steady_clock;

// Process CPU seconds (user + system, all threads): on a shared machine, items per CPU second
// moves much less with the load than items per wall second.
static double CpuSecs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

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
  const char* only_env = std::getenv("BENCH_ONLY");
  std::string only = only_env ? only_env : "";
  auto want = [&](const char* part) { return only.empty() || only == part; };
  auto barcodes = Barcodes(std::max(items, status_books));
  std::vector<std::string> work(barcodes.begin(), barcodes.begin() + items);
  auto sizes = [](const char* env, std::vector<int> dflt) {
    const char* v = std::getenv(env);
    if (!v) return dflt;
    std::vector<int> out;
    for (const char* p = v; *p;) {
      char* end = nullptr;
      long n = std::strtol(p, &end, 10);
      if (end == p) break;
      if (n > 0) out.push_back(static_cast<int>(n));
      p = end;
    }
    return out;
  };
  const std::vector<int> batches1 = sizes("BENCH_BATCHES", {16, 64, 256, 512, 1024});
  const std::vector<int> batches8 = sizes("BENCH_BATCHES8", {16, 256, 1024});

  if (want("enqueue")) {
    auto store = Fresh(dir, "enqueue", false);
    auto t = Clock::now();
    double cpu = CpuSecs();
    (void)store->Enqueue(work);
    double s = Secs(t);
    cpu = CpuSecs() - cpu;
    std::printf("bulk_enqueue items=%d seconds=%.3f items_per_s=%.0f cpu_us_per_item=%.2f\n",
                items, s, items / s, cpu * 1e6 / items);
  }
  for (bool durable : {false, true}) {
    if (!want(durable ? "full" : "normal")) continue;
    for (int batch : batches1) {
      auto store = Fresh(dir, "claim", durable);
      (void)store->Enqueue(work);
      auto t = Clock::now();
      double cpu = CpuSecs();
      int64_t n = Drain(*store, batch);
      double s = Secs(t);
      cpu = CpuSecs() - cpu;
      std::printf("claim_complete sync=%s batch=%d threads=1 items=%lld seconds=%.3f "
                  "items_per_s=%.0f cpu_us_per_item=%.1f commits=%lld\n",
                  durable ? "FULL" : "NORMAL", batch, static_cast<long long>(n), s, n / s,
                  cpu * 1e6 / static_cast<double>(n), static_cast<long long>(store->commits()));
    }
    for (int batch : batches8) {
      auto store = Fresh(dir, "claim8", durable);
      (void)store->Enqueue(work);
      std::atomic<int64_t> total{0};
      auto t = Clock::now();
      double cpu = CpuSecs();
      std::vector<std::thread> th;
      for (int i = 0; i < 8; ++i) th.emplace_back([&] { total += Drain(*store, batch); });
      for (auto& x : th) x.join();
      double s = Secs(t);
      cpu = CpuSecs() - cpu;
      std::printf("claim_complete sync=%s batch=%d threads=8 items=%lld seconds=%.3f "
                  "items_per_s=%.0f cpu_us_per_item=%.1f commits=%lld\n",
                  durable ? "FULL" : "NORMAL", batch, static_cast<long long>(total.load()), s,
                  total / s, cpu * 1e6 / static_cast<double>(total.load()),
                  static_cast<long long>(store->commits()));
    }
  }
  if (want("status")) {
    // The whole `grin-jobs status` query set (cli/commands/status.cc Take()): Counts, Failures,
    // CompletedSince, Books and ConvertFailed, at status_books jobs and books, while a writer
    // claims and completes as fast as it can.
    std::string path = dir + "/status.db";
    {
      // A quarter of the books uploaded an hour earlier (a fake clock dates their events), so
      // the rate query has history to skip; the busy writer below adds the recent ones.
      for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
        std::filesystem::remove(path + suffix);
      }
      grin::FakeClock earlier(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count() - 3'600'000'000LL);
      StateStoreOptions o;
      o.clock = &earlier;
      auto opened_setup = SqliteStateStore::Open(path, o);
      if (!opened_setup.ok()) return 1;
      auto setup = std::move(opened_setup).value();
      (void)setup->Enqueue(barcodes);
      for (int done = 0; done < status_books / 4;) {
        auto claimed = setup->Claim(Stage::kPending, 256);
        if (!claimed.ok() || claimed->empty()) break;
        std::vector<Completion> up;
        for (auto& w : *claimed) up.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
        done += static_cast<int>(up.size());
        (void)setup->CompleteMany(std::move(up));
      }
    }
    {
      SQLite::Database side(path, SQLite::OPEN_READWRITE, 60000);
      side.exec("INSERT INTO books(barcode, created_at, updated_at) "
                "SELECT barcode, '2026-11-29T00:00:00Z', '2026-11-29T00:00:00Z' FROM jobs");
      side.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    auto opened = SqliteStateStore::Open(path, StateStoreOptions{});
    if (!opened.ok()) return 1;
    auto store = std::move(opened).value();
    std::atomic<bool> stop{false};
    std::atomic<int64_t> written{0};
    std::thread writer([&] {
      while (!stop) {
        auto claimed = store->Claim(Stage::kPending, 64);
        if (!claimed.ok()) std::printf("writer: %s\n", claimed.status().ToString().c_str());
        if (!claimed.ok() || claimed->empty()) break;
        std::vector<Completion> done;
        for (auto& w : *claimed) {
          done.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
        }
        written += static_cast<int64_t>(done.size());
        (void)store->CompleteMany(std::move(done));
      }
    });
    auto reader = StateReader::Open(path);
    if (!reader.ok()) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the writer get going
    // Per query and in all: Counts, Failures, CompletedSince, Books + ConvertFailed.
    std::vector<double> ms, part_ms[4];
    int64_t written_before = written;
    auto t_all = Clock::now();
    for (int i = 0; i < 20; ++i) {
      auto t = Clock::now();
      auto c = (*reader)->Counts();
      part_ms[0].push_back(Secs(t) * 1000);
      auto t1 = Clock::now();
      auto f = (*reader)->Failures();
      part_ms[1].push_back(Secs(t1) * 1000);
      auto t2 = Clock::now();
      int64_t window_start = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count() - 300'000'000;  // status's rate window
      auto r = (*reader)->CompletedSince(window_start);
      part_ms[2].push_back(Secs(t2) * 1000);
      auto t3 = Clock::now();
      auto books = (*reader)->Books();
      auto failed = (*reader)->ConvertFailed(10);
      part_ms[3].push_back(Secs(t3) * 1000);
      ms.push_back(Secs(t) * 1000);
      if (!c.ok() || c->total != status_books || !f.ok() || !r.ok() || !books.ok() ||
          *books != status_books || !failed.ok()) {
        std::printf("status answer wrong\n");
      }
    }
    double writer_rate = static_cast<double>(written - written_before) / Secs(t_all);
    stop = true;
    writer.join();
    auto median = [](std::vector<double>& v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    double med = median(ms);
    std::printf("status books=%d writer_busy=yes writer_items_per_s=%.0f median_ms=%.1f "
                "max_ms=%.1f (medians: counts %.2f, failures %.2f, completed_since %.2f, "
                "books + convert_failed %.2f)\n",
                status_books, writer_rate, med, ms.back(), median(part_ms[0]),
                median(part_ms[1]), median(part_ms[2]), median(part_ms[3]));
  }
  return 0;
}
