// MemoryBudget and ChunkBuffer: reservations and the kept chunks stay within the capacity; a
// book's bytes read back exactly from its chunks.
#include "engine/pipeline/memory_budget.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/pipeline/chunk_buffer.h"

namespace grin::pipeline {
namespace {

constexpr uint64_t kChunk = MemoryBudget::kChunkBytes;

std::vector<MemoryBudget::Chunk> Take(MemoryBudget& b, int n) {
  std::vector<MemoryBudget::Chunk> out;
  for (int i = 0; i < n; ++i) out.push_back(b.TakeChunk());
  return out;
}

TEST_CASE("MemoryBudget keeps returned chunks and hands the same memory to the next book") {
  MemoryBudget budget(10 * kChunk);
  REQUIRE(budget.Acquire(3 * kChunk, nullptr));
  auto chunks = Take(budget, 3);
  std::set<const char*> memory;
  for (auto& c : chunks) memory.insert(c.get());
  budget.Release(3 * kChunk, &chunks);
  CHECK(chunks.empty());
  CHECK(budget.idle_bytes() == 3 * kChunk);
  CHECK(budget.in_use() == 0);
  // The next book, of any size, gets those chunks first.
  REQUIRE(budget.Acquire(2 * kChunk, nullptr));
  auto again = Take(budget, 2);
  for (auto& c : again) CHECK(memory.count(c.get()) == 1);
  CHECK(budget.idle_bytes() == kChunk);
  budget.Release(2 * kChunk, &again);
  CHECK(budget.idle_bytes() == 3 * kChunk);
}

TEST_CASE("MemoryBudget hands released chunks to the reservation that was waiting for them") {
  MemoryBudget budget(4 * kChunk);
  REQUIRE(budget.Acquire(4 * kChunk, nullptr));  // the budget is full
  auto held = Take(budget, 4);
  std::set<const char*> memory;
  for (auto& c : held) memory.insert(c.get());
  std::atomic<bool> acquired{false};
  std::vector<MemoryBudget::Chunk> got;
  std::thread waiter([&] {
    REQUIRE(budget.Acquire(3 * kChunk, nullptr));  // waits for the first book
    acquired = true;
    got = Take(budget, 3);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(acquired.load());
  // Releasing the bytes and the chunks in one step: they are kept for the waiter, not freed.
  budget.Release(4 * kChunk, &held);
  waiter.join();
  for (auto& c : got) CHECK(memory.count(c.get()) == 1);
  CHECK(budget.in_use() == 3 * kChunk);
  CHECK(budget.idle_bytes() == kChunk);  // 3 reserved + 1 idle: within the capacity
  budget.Release(3 * kChunk, &got);
}

TEST_CASE("MemoryBudget keeps no more chunks than the capacity less what books hold") {
  MemoryBudget budget(4 * kChunk);
  REQUIRE(budget.Acquire(2 * kChunk, nullptr));
  auto a = Take(budget, 2);
  REQUIRE(budget.Acquire(2 * kChunk, nullptr));
  auto b = Take(budget, 2);
  CHECK(budget.chunk_bytes_out() == 4 * kChunk);
  // A book that wrote past its reservation: with 4 chunks out no fifth one is kept.
  auto extra = Take(budget, 1);
  budget.ReturnChunks(&extra);
  CHECK(extra.empty());
  CHECK(budget.idle_bytes() == 0);
  budget.Release(2 * kChunk, &a);
  CHECK(budget.idle_bytes() == 2 * kChunk);
  CHECK(budget.chunk_bytes_out() == 2 * kChunk);
  budget.Release(2 * kChunk, &b);
  CHECK(budget.idle_bytes() == 4 * kChunk);
  CHECK(budget.chunk_bytes_out() == 0);
  CHECK(budget.in_use() == 0);
  // A reservation does not free idle chunks: the book takes them.
  REQUIRE(budget.Acquire(3 * kChunk, nullptr));
  CHECK(budget.idle_bytes() == 4 * kChunk);
  auto c = Take(budget, 3);
  CHECK(budget.idle_bytes() == kChunk);
  budget.Release(3 * kChunk, &c);
}

TEST_CASE("MemoryBudget refuses what can never fit and stops waiting when asked") {
  MemoryBudget budget(100);
  CHECK_FALSE(budget.Acquire(101, nullptr));
  REQUIRE(budget.Acquire(80, nullptr));
  int polls = 0;
  CHECK_FALSE(budget.Acquire(30, [&] { return ++polls >= 2; }));
  CHECK(budget.in_use() == 80);
  CHECK_FALSE(budget.Acquire(30, [] { return true; }));  // a try: never waits
  CHECK(budget.Acquire(20, [] { return true; }));
  CHECK(budget.available() == 0);
}

TEST_CASE("ChunkBuffer reads back exactly what was written, across chunk edges") {
  MemoryBudget budget(64 * kChunk);
  std::mt19937 rng(7);
  std::string data(3 * kChunk + 12345, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  std::vector<MemoryBudget::Chunk> chunks;
  {
    ChunkBuffer buf(&budget);
    // Writes of uneven sizes, some across chunk edges.
    size_t at = 0;
    for (size_t step : {1u, 1000u, 262143u, 262145u, 7u, 500000u}) {
      size_t n = std::min(step, data.size() - at);
      REQUIRE(buf.Write(reinterpret_cast<const uint8_t*>(data.data() + at), n).ok());
      at += n;
    }
    REQUIRE(buf.Write(reinterpret_cast<const uint8_t*>(data.data() + at), data.size() - at).ok());
    REQUIRE(buf.size() == data.size());
    ChunkSource src(buf);
    CHECK(src.size() == data.size());
    // ReadAt at odd offsets and lengths, including past the end.
    for (uint64_t off : {uint64_t{0}, uint64_t{1}, kChunk - 3, kChunk, 2 * kChunk + 17,
                         uint64_t{data.size() - 5}}) {
      std::string out(700000, '\0');
      auto n = src.ReadAt(off, out.data(), out.size());
      REQUIRE(n.ok());
      size_t expect = std::min<size_t>(out.size(), data.size() - off);
      CHECK(*n == expect);
      CHECK(out.substr(0, expect) == data.substr(off, expect));
    }
    auto end = src.ReadAt(data.size(), nullptr, 10);
    REQUIRE(end.ok());
    CHECK(*end == 0);
    // VisitInPlace hands the same bytes, chunk by chunk.
    std::string seen;
    auto v = src.VisitInPlace(100, data.size() - 200, [&](std::string_view piece) {
      CHECK(piece.size() <= kChunk);
      seen.append(piece);
      return Status::Ok();
    });
    REQUIRE(v.ok());
    CHECK(*v);
    CHECK(seen == data.substr(100, data.size() - 200));
    CHECK_FALSE(src.VisitInPlace(data.size() - 1, 2, [](std::string_view) {
                     return Status::Ok();
                   }).ok());
    // A restarted download rewrites from zero into the same chunks.
    buf.Clear();
    CHECK(buf.size() == 0);
    REQUIRE(buf.Write(reinterpret_cast<const uint8_t*>(data.data()), 10).ok());
    CHECK(buf.size() == 10);
    chunks = buf.TakeChunks();
    CHECK(buf.size() == 0);
  }
  CHECK(chunks.size() == 4);  // 3 chunks and a bit
  budget.ReturnChunks(&chunks);
  CHECK(budget.idle_bytes() == 4 * kChunk);
  {
    ChunkBuffer dropped(&budget);  // chunks not taken go back when the buffer goes
    REQUIRE(dropped.Write(reinterpret_cast<const uint8_t*>(data.data()), kChunk + 1).ok());
    CHECK(budget.idle_bytes() == 2 * kChunk);
  }
  CHECK(budget.idle_bytes() == 4 * kChunk);
}

}  // namespace
}  // namespace grin::pipeline
