// MemoryBudget: reservations and the pool of kept buffers stay within the capacity.
#include "engine/pipeline/memory_budget.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace grin::pipeline {
namespace {

std::string BufferOf(size_t capacity) {
  std::string s;
  s.reserve(capacity);
  return s;
}

TEST_CASE("MemoryBudget keeps a returned buffer and hands the same memory to the next book") {
  MemoryBudget budget(1000);
  std::string b;
  uint64_t reserved = 0;
  REQUIRE(budget.Acquire(300, 250, nullptr, &b, &reserved));
  CHECK(reserved == 300);
  CHECK(b.capacity() < 250);  // nothing kept yet: a new, empty buffer
  b.assign(250, 'x');
  const char* memory = b.data();
  uint64_t cap = b.capacity();
  budget.Release(reserved);
  budget.ReturnBuffer(std::move(b));
  CHECK(budget.idle_bytes() == cap);

  std::string again;
  REQUIRE(budget.Acquire(300, 200, nullptr, &again, &reserved));
  CHECK(again.empty());
  CHECK(again.data() == memory);
  CHECK(reserved == 300 + (cap - 200));  // the surplus over what the book needs is reserved too
  CHECK(budget.in_use() == reserved);
  CHECK(budget.idle_bytes() == 0);
  budget.Release(reserved);
  CHECK(budget.in_use() == 0);
}

TEST_CASE("MemoryBudget hands a released buffer to the reservation that was waiting for it") {
  MemoryBudget budget(1000);
  std::string held;
  uint64_t first = 0;
  REQUIRE(budget.Acquire(900, 800, nullptr, &held, &first));  // the budget is full
  held.assign(800, 'x');
  const char* memory = held.data();
  std::string got;
  uint64_t second = 0;
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    REQUIRE(budget.Acquire(900, 800, nullptr, &got, &second));  // waits for the first
    acquired = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(acquired.load());
  // Releasing the bytes and the buffer in one step: the waiter gets both, never a fresh buffer
  // (with Release then ReturnBuffer it could wake in between and find none kept).
  budget.Release(first, std::move(held));
  waiter.join();
  CHECK(got.data() == memory);
  CHECK(got.empty());
  CHECK(budget.idle_bytes() == 0);
  CHECK(budget.in_use() == second);
  budget.Release(second, std::move(got));
  CHECK(budget.in_use() == 0);
}

TEST_CASE("MemoryBudget hands out the smallest kept buffer that is large enough") {
  MemoryBudget budget(10000);
  budget.ReturnBuffer(BufferOf(100));
  budget.ReturnBuffer(BufferOf(2000));
  budget.ReturnBuffer(BufferOf(500));
  std::string b;
  uint64_t reserved = 0;
  REQUIRE(budget.Acquire(450, 400, nullptr, &b, &reserved));
  CHECK(b.capacity() >= 500);
  CHECK(b.capacity() < 2000);
  std::string none;
  REQUIRE(budget.Acquire(5000, 4000, nullptr, &none, &reserved));  // nothing kept is that large
  CHECK(none.capacity() < 4000);
  CHECK(reserved == 5000);
  CHECK(budget.idle_bytes() == BufferOf(100).capacity() + BufferOf(2000).capacity());
}

TEST_CASE("MemoryBudget hands out a kept buffer before evicting the rest") {
  // Three books fit; the third's reservation would evict the idle buffer if it did not take it.
  MemoryBudget budget(3000);
  REQUIRE(budget.Acquire(1000, nullptr));
  REQUIRE(budget.Acquire(1000, nullptr));
  budget.ReturnBuffer(BufferOf(900));
  REQUIRE(budget.idle_bytes() >= 900);
  std::string b;
  uint64_t reserved = 0;
  REQUIRE(budget.Acquire(950, 900, nullptr, &b, &reserved));
  CHECK(b.capacity() >= 900);
  CHECK(budget.idle_bytes() == 0);
  CHECK(budget.in_use() <= 3000);
}

TEST_CASE("MemoryBudget does not hand out a kept buffer whose surplus has no room") {
  MemoryBudget budget(1000);
  budget.ReturnBuffer(BufferOf(600));
  REQUIRE(budget.Acquire(400, nullptr));
  std::string b;
  uint64_t reserved = 0;
  // 400 + 500 reserved leaves 100: the 600-byte buffer's surplus (400) does not fit.
  REQUIRE(budget.Acquire(500, 200, nullptr, &b, &reserved));
  CHECK(b.capacity() < 200);
  CHECK(reserved == 500);
  CHECK(budget.idle_bytes() == 0);  // evicted: 900 reserved + 600 idle would exceed 1000
}

TEST_CASE("MemoryBudget evicts kept buffers when a reservation needs their room") {
  MemoryBudget budget(1000);
  budget.ReturnBuffer(BufferOf(600));
  uint64_t idle = budget.idle_bytes();
  REQUIRE(idle >= 600);
  REQUIRE(idle <= 1000);
  // 500 reserved + the idle buffer would exceed the capacity: the buffer goes.
  REQUIRE(budget.Acquire(500, nullptr));
  CHECK(budget.idle_bytes() == 0);
  CHECK(budget.in_use() == 500);
  // No room to keep another one while 500 are reserved: it is freed, not kept.
  budget.ReturnBuffer(BufferOf(600));
  CHECK(budget.idle_bytes() == 0);
  budget.Release(500);
  budget.ReturnBuffer(BufferOf(600));
  CHECK(budget.idle_bytes() >= 600);
}

TEST_CASE("MemoryBudget refuses what can never fit and stops waiting when asked") {
  MemoryBudget budget(100);
  CHECK_FALSE(budget.Acquire(101, nullptr));
  REQUIRE(budget.Acquire(80, nullptr));
  int polls = 0;
  CHECK_FALSE(budget.Acquire(30, [&] { return ++polls >= 2; }));
  CHECK(budget.in_use() == 80);
}

}  // namespace
}  // namespace grin::pipeline
