#pragma once
// MemoryBudget: bounds the bytes the pipeline holds in memory for books streamed without staging
// (their decrypted archive waits in memory for the upload). A worker reserves a book's size
// before downloading it and releases it when the book is stored or failed.
//
// The budget also keeps the memory those books used, for the next books: a 50 MiB buffer
// allocated afresh costs ~12,800 page faults (the kernel zeroes every page), about as much CPU as
// hashing it. The memory is handed out in fixed-size chunks (ChunkBuffer), so a book of any size
// reuses what books of other sizes returned. Chunks are handed out idle ones first, and a
// returned chunk is kept only while the chunks out plus the idle ones stay within the capacity,
// so the memory held (books' chunks + idle chunks) stays within it too, given that each book
// takes no more chunks than its reservation covers.
//
// Thread safety: all methods may be called from any thread.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace grin::pipeline {

class MemoryBudget {
 public:
  static constexpr size_t kChunkBytes = 256 << 10;
  using Chunk = std::unique_ptr<char[]>;

  explicit MemoryBudget(uint64_t capacity) : capacity_(capacity) {}
  ~MemoryBudget();
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // True if `bytes` could ever be reserved (bytes <= capacity).
  bool Fits(uint64_t bytes) const { return bytes <= capacity_; }
  // Waits until `bytes` are free and takes them. Returns false without taking anything if
  // `bytes` exceeds the capacity or `stop()` turns true (checked every 50 ms while waiting; a
  // `stop` that is already true makes this a try that never waits).
  bool Acquire(uint64_t bytes, const std::function<bool()>& stop);
  // Gives back `bytes` and takes back the chunks in one step, so that a reservation waiting for
  // the released bytes finds the chunks kept rather than freed. `chunks` is emptied.
  void Release(uint64_t bytes, std::vector<Chunk>* chunks);
  uint64_t in_use() const;
  // Bytes a reservation could take now without waiting.
  uint64_t available() const;

  // A chunk of kChunkBytes for a reserved book: a kept one if there is one, else a new one. The
  // caller's reservation must cover it. Every chunk taken must come back through ReturnChunks
  // or Release(bytes, chunks).
  Chunk TakeChunk();
  // Takes chunks back: keeps them for TakeChunk while the chunks out plus the idle ones stay
  // within the capacity, frees the rest. `chunks` is emptied.
  void ReturnChunks(std::vector<Chunk>* chunks);
  uint64_t idle_bytes() const;
  uint64_t chunk_bytes_out() const;

 private:
  // Takes `chunks` back: keeps what fits, moves the rest into `freed` (freed outside the lock).
  void KeepLocked(std::vector<Chunk>* chunks, std::vector<Chunk>* freed);

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ = 0;         // reserved bytes
  uint64_t out_ = 0;          // chunks handed out and not yet returned
  std::vector<Chunk> idle_;   // kept chunks, each kChunkBytes
};

}  // namespace grin::pipeline
