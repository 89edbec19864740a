#include "storage/s3/buffer_pool.h"

#include <doctest/doctest.h>

#include <cstring>
#include <thread>
#include <vector>

namespace grin::s3 {
namespace {

TEST_CASE("buffer pool: buffers are reused, sized exactly, bounded when idle") {
  BufferPool pool(3 << 20);
  const char* first = nullptr;
  {
    auto a = pool.Take(1 << 20);
    REQUIRE(a->size() == (1u << 20));
    std::memset(a->data(), 'x', a->size());
    first = a->data();
    CHECK(pool.idle_bytes() == 0);
  }
  CHECK(pool.idle_bytes() == (1u << 20));  // back in the pool
  {
    auto b = pool.Take((1 << 20) - 7);  // fits the idle one (capacity within [n, 2n])
    CHECK(b->data() == first);
    CHECK(b->size() == (1u << 20) - 7);
    auto c = pool.Take(100);  // far smaller: a new buffer, not the 1 MiB one
    CHECK(c->data() != first);
    CHECK(c->size() == 100);
  }
  // Beyond max_idle_bytes released buffers are freed, not kept.
  {
    std::vector<std::shared_ptr<PooledBuffer>> many;
    for (int i = 0; i < 6; ++i) many.push_back(pool.Take(1 << 20));
  }
  CHECK(pool.idle_bytes() <= (3u << 20));
  auto empty = pool.Take(0);
  CHECK(empty->size() == 0);
}

TEST_CASE("buffer pool: concurrent takers, and buffers outliving the pool") {
  std::shared_ptr<PooledBuffer> survivor;
  {
    BufferPool pool(64 << 20);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool, t] {
        for (int i = 0; i < 200; ++i) {
          auto b = pool.Take(static_cast<size_t>(4096 * (1 + (i + t) % 3)));
          std::memset(b->data(), t, b->size());
          CHECK(static_cast<unsigned char>(b->data()[b->size() - 1]) == t);
        }
      });
    }
    for (auto& th : threads) th.join();
    survivor = pool.Take(1000);
  }
  std::memset(survivor->data(), 1, survivor->size());  // still valid; freed on release
  survivor.reset();
}

}  // namespace
}  // namespace grin::s3
