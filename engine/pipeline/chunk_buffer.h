#pragma once
// ChunkBuffer: a streamed book's decrypted archive, held in MemoryBudget chunks (fixed size,
// kept by the budget between books) instead of one contiguous buffer, so a book of any size
// reuses memory that books of other sizes returned and no page is faulted in afresh once the
// budget's chunks are warm. ChunkSource reads it back for the upload.
//
//   ChunkBuffer plain(budget);          // under a reservation that covers its size
//   processor writes -> plain (archive::ByteSink)
//   ChunkSource src(plain);             // ByteSource for ObjectStore::Upload
//   auto chunks = plain.TakeChunks();
//   budget->Release(reserved, &chunks);
//
// Thread safety: one writer at a time; ChunkSource reads may run concurrently once writing is
// over (uploads read parts in parallel).

#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/archive/sink.h"
#include "engine/object_store.h"
#include "engine/pipeline/memory_budget.h"

namespace grin::pipeline {

class ChunkBuffer final : public archive::ByteSink {
 public:
  explicit ChunkBuffer(MemoryBudget* budget) : budget_(budget) {}
  ~ChunkBuffer() override;  // chunks not taken go back to the budget
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;

  // Appends; takes chunks from the budget as needed.
  Status Write(const uint8_t* data, size_t n) override;
  // Forgets the bytes (a restarted download); keeps the chunks for the rewrite.
  void Clear() { size_ = 0; }
  uint64_t size() const { return size_; }
  // The chunks, for MemoryBudget::Release(bytes, chunks); the buffer is empty afterwards.
  std::vector<MemoryBudget::Chunk> TakeChunks() {
    std::vector<MemoryBudget::Chunk> out = std::move(chunks_);
    chunks_.clear();
    size_ = 0;
    return out;
  }

  // Copies up to n bytes from offset; returns the count (0 at or past the end).
  size_t ReadAt(uint64_t offset, char* buf, size_t n) const;
  // Hands [offset, offset + length) to fn chunk by chunk.
  Status Visit(uint64_t offset, uint64_t length,
               const std::function<Status(std::string_view)>& fn) const;

 private:
  MemoryBudget* budget_;
  std::vector<MemoryBudget::Chunk> chunks_;
  uint64_t size_ = 0;
};

// The bytes of a ChunkBuffer as an upload source. The buffer must outlive it and not change.
class ChunkSource final : public ByteSource {
 public:
  explicit ChunkSource(const ChunkBuffer& buffer) : buffer_(buffer) {}
  uint64_t size() const override { return buffer_.size(); }
  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    return buffer_.ReadAt(offset, buf, n);
  }
  Result<bool> VisitInPlace(uint64_t offset, uint64_t length,
                            const std::function<Status(std::string_view)>& fn) const override;

 private:
  const ChunkBuffer& buffer_;
};

}  // namespace grin::pipeline
