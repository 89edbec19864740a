// Benchmark (not a test): claim + complete throughput of the SQLite and the PostgreSQL state
// stores side by side, for 1 / 2 / 4 / 8 workers. Driver: scripts/bench-state-pg.
//   bench_state_pg [items=20000] [batch=256] [max_seconds_per_cell=60] [status_jobs=0]
// Each cell starts from fresh state holding `items` jobs at pending and drains them: every
// worker loops Claim(pending, batch) + CompleteMany(to uploaded) until nothing is left (or the
// cell's time cap passes), and the cell reports items per second and process CPU per item.
//   SQLite: one file; the workers are threads sharing one store (one run holds a SQLite file).
//   PostgreSQL: a throwaway cluster (tests/support/pg_cluster.h) on loopback, one database per
//   cell; each worker is its own PgStateStore (its own run and connections), as workers on
//   several hosts would be.
// status_jobs > 0 adds a row: the port's side of `status` (Counts() + Failures()) at that many
// jobs, a quarter of them uploaded, while a writer claims and completes.
// Durability: BENCH_DURABLE=1 compares SQLite synchronous=FULL with PostgreSQL's durable
// defaults; by default SQLite synchronous=NORMAL (WAL) and PostgreSQL synchronous_commit=off
// (fsync on), the two "a crash may lose the last commits, never corrupts" settings.
// BENCH_WORKERS="4" or "2,4" runs only those worker counts; BENCH_PG_PROFILE=1 prints where the
// server's time went after each PostgreSQL row (wait events sampled, pg_stat_statements).
// The PostgreSQL column is there when the binary was built with the PostgreSQL store
// (GRIN_BENCH_POSTGRES: libpq and storage/postgres found) and initdb/pg_ctl are installed;
// otherwise it says why not.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/state_store.h"
#include "storage/sqlite_state_store.h"
#if GRIN_BENCH_POSTGRES
#include <map>
#include <mutex>

#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_state_store.h"
#include "tests/support/pg_cluster.h"
#endif

namespace {

using grin::Completion;
using grin::Stage;
using grin::StateStore;
using SteadyClock = std::chrono::steady_clock;

double CpuSecs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A scratch directory, removed with its contents.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/grin-bench-state-pg-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

std::vector<std::string> Barcodes(int n) {
  std::vector<std::string> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v.push_back("BENCH" + std::to_string(10000000 + i));
  return v;
}

struct Cell {
  bool ran = false;
  std::string why_not;  // when !ran
  int64_t items = 0;
  double seconds = 0;
  double cpu_us_per_item = 0;
  int64_t errors = 0;   // failed calls and refused completions (should be 0)
  bool drained = false;  // every job at uploaded afterwards
};

// Drains pending with one thread per store in `workers` (the same store may appear repeatedly).
Cell Drain(const std::vector<StateStore*>& workers, StateStore& observer, int batch,
           int64_t expected, double max_seconds) {
  Cell cell;
  std::atomic<int64_t> done{0}, errors{0};
  auto start = SteadyClock::now();
  auto deadline = start + std::chrono::duration_cast<SteadyClock::duration>(
                              std::chrono::duration<double>(max_seconds));
  double cpu = CpuSecs();
  std::vector<std::thread> threads;
  for (StateStore* s : workers) {
    threads.emplace_back([&, s] {
      while (SteadyClock::now() < deadline) {
        auto items = s->Claim(Stage::kPending, batch);
        if (!items.ok()) {
          ++errors;
          return;
        }
        if (items->empty()) return;
        std::vector<Completion> c;
        c.reserve(items->size());
        for (auto& w : *items) c.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
        auto st = s->CompleteMany(std::move(c));
        if (!st.ok()) {
          ++errors;
          return;
        }
        for (const auto& one : *st) {
          if (one.ok()) {
            ++done;
          } else {
            ++errors;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  cell.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  cell.items = done.load();
  cell.errors = errors.load();
  cell.cpu_us_per_item =
      cell.items > 0 ? (CpuSecs() - cpu) * 1e6 / static_cast<double>(cell.items) : 0;
  auto counts = observer.Counts();
  cell.drained = counts.ok() && counts->at[static_cast<int>(Stage::kUploaded)] == expected &&
                 counts->leased == 0;
  cell.ran = true;
  return cell;
}

Cell SqliteCell(const std::vector<std::string>& work, int workers, int batch, bool durable,
                double max_seconds) {
  ScratchDir dir;
  if (dir.path.empty()) return Cell{false, "mkdtemp failed"};
  grin::storage::StateStoreOptions o;
  o.durable = durable;
  auto opened = grin::storage::SqliteStateStore::Open((dir.path / "bench.db").string(), o);
  if (!opened.ok()) return Cell{false, opened.status().ToString()};
  auto store = std::move(opened).value();
  if (auto n = store->Enqueue(work); !n.ok()) return Cell{false, n.status().ToString()};
  std::vector<StateStore*> ws(static_cast<size_t>(workers), store.get());
  return Drain(ws, *store, batch, static_cast<int64_t>(work.size()), max_seconds);
}

#if GRIN_BENCH_POSTGRES
// BENCH_PG_PROFILE=1: where the server's time goes in each PostgreSQL cell. A sampler samples
// pg_stat_activity every 5 ms (the bench's backends: active ones by wait event, "CPU" when
// active and not waiting), and pg_stat_statements (track = all: statements inside triggers too)
// gives the top statements by total time. Printed after the cell's row.
class PgProfile {
 public:
  explicit PgProfile(const std::string& db) {
    auto c = grin::storage::pg::PgConnection::Connect(db, "bench");
    if (!c.ok()) return;
    conn_ = std::move(c).value();
    if (!conn_->Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").ok() ||
        !conn_->Exec("SELECT pg_stat_statements_reset()").ok()) {
      conn_.reset();
      return;
    }
    sampler_ = std::thread([this, db] {
      auto sc = grin::storage::pg::PgConnection::Connect(db, "bench");
      if (!sc.ok()) return;
      while (!stop_) {
        auto r = (*sc)->Exec(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*) "
            "FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%' "
            "AND backend_type = 'client backend' GROUP BY 1");
        if (r.ok()) {
          std::lock_guard<std::mutex> l(mu_);
          ++samples_;
          for (int i = 0; i < r->rows(); ++i) waits_[r->Text(i, 0)] += r->Int(i, 1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  ~PgProfile() { Stop(); }
  void Stop() {
    stop_ = true;
    if (sampler_.joinable()) sampler_.join();
  }
  void Print() {
    Stop();
    if (!conn_) {
      std::printf("  profile: n/a (pg_stat_statements not loadable)\n");
      return;
    }
    std::printf("  wait events (active backends, %lld samples, mean per sample):",
                static_cast<long long>(samples_));
    std::vector<std::pair<int64_t, std::string>> w;
    for (auto& [k, v] : waits_) w.emplace_back(v, k);
    std::sort(w.rbegin(), w.rend());
    for (auto& [v, k] : w) {
      std::printf(" %s %.2f", k.c_str(),
                  samples_ ? static_cast<double>(v) / static_cast<double>(samples_) : 0);
    }
    std::printf("\n");
    auto r = conn_->Exec(
        "SELECT calls, round(total_exec_time::numeric, 0), round(mean_exec_time::numeric, 3), "
        "rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements "
        "WHERE query NOT LIKE '%pg_stat%' ORDER BY total_exec_time DESC LIMIT 10");
    if (!r.ok()) return;
    std::printf("  %8s %8s %9s %9s  %s\n", "calls", "total_ms", "mean_ms", "rows", "statement");
    for (int i = 0; i < r->rows(); ++i) {
      std::printf("  %8s %8s %9s %9s  %s\n", r->Text(i, 0).c_str(), r->Text(i, 1).c_str(),
                  r->Text(i, 2).c_str(), r->Text(i, 3).c_str(), r->Text(i, 4).c_str());
    }
  }

 private:
  std::unique_ptr<grin::storage::pg::PgConnection> conn_;
  std::thread sampler_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int64_t samples_ = 0;
  std::map<std::string, int64_t> waits_;
};

bool ProfileOn() {
  const char* p = std::getenv("BENCH_PG_PROFILE");
  return p != nullptr && std::string(p) == "1";
}

Cell PgCell(grin::testing::PgCluster& cluster, const std::vector<std::string>& work, int workers,
            int batch, double max_seconds, std::unique_ptr<PgProfile>* profile) {
  auto db = cluster.CreateDatabase("bench_w" + std::to_string(workers));
  if (!db.ok()) return Cell{false, db.status().ToString()};
  grin::storage::PgStateStoreOptions o;
  o.pool_size = 2;  // one worker thread per store: its connection, and one spare
  std::vector<std::unique_ptr<grin::storage::PgStateStore>> stores;
  for (int i = 0; i < workers; ++i) {
    auto s = grin::storage::PgStateStore::Open(*db, o);
    if (!s.ok()) return Cell{false, s.status().ToString()};
    stores.push_back(std::move(s).value());
  }
  if (auto n = stores[0]->Enqueue(work); !n.ok()) return Cell{false, n.status().ToString()};
  std::vector<StateStore*> ws;
  for (auto& s : stores) ws.push_back(s.get());
  if (ProfileOn()) *profile = std::make_unique<PgProfile>(*db);
  return Drain(ws, *stores[0], batch, static_cast<int64_t>(work.size()), max_seconds);
}
#endif

// The port's side of `status` (Counts() + Failures(), 20 times) at `jobs` jobs, a quarter of
// them uploaded, while the writer store claims and completes 64 at a time. reader is the store
// `status` would use: the writer itself for SQLite (its own read connection), a second store
// (another process's) for PostgreSQL.
std::string StatusLatency(StateStore& writer, StateStore& reader, int64_t jobs) {
  auto all = Barcodes(static_cast<int>(jobs));
  for (size_t i = 0; i < all.size(); i += 10000) {
    std::vector<std::string> chunk(all.begin() + static_cast<std::ptrdiff_t>(i),
                                   all.begin() + static_cast<std::ptrdiff_t>(
                                                     std::min(all.size(), i + 10000)));
    if (auto n = writer.Enqueue(chunk); !n.ok()) return "n/a: " + n.status().ToString();
  }
  auto drain_some = [&](int batch) -> int64_t {
    auto items = writer.Claim(Stage::kPending, batch);
    if (!items.ok() || items->empty()) return 0;
    std::vector<Completion> c;
    for (auto& w : *items) c.push_back(Completion{w, Stage::kUploaded, "completed", "", {}});
    auto st = writer.CompleteMany(std::move(c));
    return st.ok() ? static_cast<int64_t>(st->size()) : 0;
  };
  for (int64_t done = 0; done < jobs / 4;) {
    int64_t n = drain_some(1000);
    if (n == 0) break;
    done += n;
  }
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop && drain_some(64) > 0) {
    }
  });
  std::vector<double> ms;
  bool right = true;
  for (int i = 0; i < 20; ++i) {
    auto t = SteadyClock::now();
    auto c = reader.Counts();
    auto f = reader.Failures();
    ms.push_back(std::chrono::duration<double>(SteadyClock::now() - t).count() * 1000);
    right = right && c.ok() && f.ok() && c->total == jobs;
  }
  stop = true;
  busy.join();
  std::sort(ms.begin(), ms.end());
  char buf[120];
  std::snprintf(buf, sizeof buf, "median %.1f ms, max %.1f ms%s", ms[ms.size() / 2], ms.back(),
                right ? "" : " (WRONG ANSWER)");
  return buf;
}

std::string Show(const Cell& c) {
  if (!c.ran) return "n/a";
  char buf[160];
  std::snprintf(buf, sizeof buf, "%9.0f items/s %6.1f us/item%s", c.items / c.seconds,
                c.cpu_us_per_item,
                c.errors > 0 ? " ERRORS" : c.drained ? "" : " (time cap: not drained)");
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int items = argc > 1 ? std::atoi(argv[1]) : 20000;
  int batch = argc > 2 ? std::atoi(argv[2]) : 256;
  double max_seconds = argc > 3 ? std::atof(argv[3]) : 60;
  int64_t status_jobs = argc > 4 ? std::atoll(argv[4]) : 0;
  if (items <= 0 || batch <= 0 || max_seconds <= 0 || status_jobs < 0) {
    std::fprintf(stderr, "usage: bench_state_pg [items>0] [batch>0] [max_seconds_per_cell>0] "
                         "[status_jobs>=0]\n");
    return 2;
  }
  const char* d = std::getenv("BENCH_DURABLE");
  bool durable = d != nullptr && std::string(d) == "1";
  std::vector<int> worker_counts = {1, 2, 4, 8};
  if (const char* wl = std::getenv("BENCH_WORKERS"); wl != nullptr && *wl) {  // "4" or "2,4"
    worker_counts.clear();
    for (const char* p = wl; *p;) {
      char* end = nullptr;
      long v = std::strtol(p, &end, 10);
      if (end == p || v <= 0 || v > 64) {
        std::fprintf(stderr, "BENCH_WORKERS: a comma-separated list of 1..64\n");
        return 2;
      }
      worker_counts.push_back(static_cast<int>(v));
      p = *end == ',' ? end + 1 : end;
    }
  }
  auto work = Barcodes(items);

  std::string pg_note;
#if GRIN_BENCH_POSTGRES
  std::unique_ptr<grin::testing::PgCluster> cluster;
  if (grin::Status a = grin::testing::PgCluster::Available(); !a.ok()) {
    pg_note = a.message();
  } else {
    grin::testing::PgClusterOptions co;
    co.durable = true;  // fsync on; synchronous_commit off unless BENCH_DURABLE=1
    if (!durable) co.settings.push_back("synchronous_commit = off");
    if (ProfileOn()) {
      co.settings.push_back("shared_preload_libraries = 'pg_stat_statements'");
      co.settings.push_back("pg_stat_statements.track = all");
    }
    co.max_connections = 100;
    auto started = grin::testing::PgCluster::Start(co);
    if (started.ok()) {
      cluster = std::move(started).value();
    } else {
      pg_note = started.status().ToString();
    }
  }
#else
  pg_note = "this binary was built without the PostgreSQL store (libpq-dev missing or "
            "GRIN_POSTGRES=OFF)";
#endif

  std::printf("claim+complete: items=%d batch=%d cap=%.0fs/cell; %s\n", items, batch, max_seconds,
              durable ? "SQLite synchronous=FULL vs PostgreSQL fsync+synchronous_commit on"
                      : "SQLite synchronous=NORMAL vs PostgreSQL synchronous_commit=off");
  std::printf("%-8s %-44s %s\n", "workers", "sqlite (threads on one store)",
              "postgresql (a store per worker)");
  int exit_code = 0;
  for (int w : worker_counts) {
    Cell sqlite = SqliteCell(work, w, batch, durable, max_seconds);
    Cell pg{false, pg_note};
#if GRIN_BENCH_POSTGRES
    std::unique_ptr<PgProfile> profile;
    if (cluster) pg = PgCell(*cluster, work, w, batch, max_seconds, &profile);
#endif
    std::printf("%-8d %-44s %s\n", w, Show(sqlite).c_str(), Show(pg).c_str());
#if GRIN_BENCH_POSTGRES
    if (profile) profile->Print();
#endif
    std::fflush(stdout);
    if ((sqlite.ran && sqlite.errors > 0) || (pg.ran && pg.errors > 0)) exit_code = 1;
    if (!sqlite.ran) {
      std::printf("  sqlite: %s\n", sqlite.why_not.c_str());
      exit_code = 1;
    }
    if (!pg.ran && pg_note.empty()) {
      std::printf("  postgresql: %s\n", pg.why_not.c_str());
      exit_code = 1;
    }
  }
  std::printf("us/item: CPU of this process (PostgreSQL's server CPU is not in it)\n");
  if (status_jobs > 0) {
    std::string sqlite_status, pg_status = "n/a";
    {
      ScratchDir dir;
      auto opened = grin::storage::SqliteStateStore::Open((dir.path / "status.db").string(),
                                                          grin::storage::StateStoreOptions{});
      sqlite_status = opened.ok() ? StatusLatency(**opened, **opened, status_jobs)
                                  : "n/a: " + opened.status().ToString();
    }
#if GRIN_BENCH_POSTGRES
    if (cluster) {
      auto db = cluster->CreateDatabase("bench_status");
      auto w = db.ok() ? grin::storage::PgStateStore::Open(*db, {}) : db.status();
      auto r = db.ok() ? grin::storage::PgStateStore::Open(*db, {}) : db.status();
      pg_status = w.ok() && r.ok() ? StatusLatency(**w, **r, status_jobs)
                                   : "n/a: " + (w.ok() ? r.status() : w.status()).ToString();
    }
#endif
    std::printf("%-8s %-44s %s\n", "status", sqlite_status.c_str(), pg_status.c_str());
    std::printf("status: Counts()+Failures() through the port at %lld jobs (a quarter uploaded) "
                "with a busy writer\n",
                static_cast<long long>(status_jobs));
  }
  if (!pg_note.empty()) std::printf("postgresql: n/a: %s\n", pg_note.c_str());
  return exit_code;
}
