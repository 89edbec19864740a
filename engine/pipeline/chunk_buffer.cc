#include "engine/pipeline/chunk_buffer.h"

#include <algorithm>
#include <cstring>

namespace grin::pipeline {

namespace {
constexpr uint64_t kChunk = MemoryBudget::kChunkBytes;
}  // namespace

ChunkBuffer::~ChunkBuffer() {
  if (!chunks_.empty()) budget_->ReturnChunks(&chunks_);
}

Status ChunkBuffer::Write(const uint8_t* data, size_t n) {
  while (n > 0) {
    size_t index = static_cast<size_t>(size_ / kChunk);
    size_t at = static_cast<size_t>(size_ % kChunk);
    if (index == chunks_.size()) chunks_.push_back(budget_->TakeChunk());
    size_t k = std::min<size_t>(n, kChunk - at);
    std::memcpy(chunks_[index].get() + at, data, k);
    data += k;
    n -= k;
    size_ += k;
  }
  return Status::Ok();
}

size_t ChunkBuffer::ReadAt(uint64_t offset, char* buf, size_t n) const {
  if (offset >= size_) return 0;
  const size_t k = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  size_t done = 0;
  (void)Visit(offset, k, [&](std::string_view piece) {  // in range: cannot fail
    std::memcpy(buf + done, piece.data(), piece.size());
    done += piece.size();
    return Status::Ok();
  });
  return done;
}

Status ChunkBuffer::Visit(uint64_t offset, uint64_t length,
                          const std::function<Status(std::string_view)>& fn) const {
  if (offset > size_ || length > size_ - offset) {
    return Status::DataLoss("read beyond the end of the data");
  }
  while (length > 0) {
    size_t index = static_cast<size_t>(offset / kChunk);
    size_t at = static_cast<size_t>(offset % kChunk);
    size_t k = static_cast<size_t>(std::min<uint64_t>(length, kChunk - at));
    GRIN_RETURN_IF_ERROR(fn(std::string_view(chunks_[index].get() + at, k)));
    offset += k;
    length -= k;
  }
  return Status::Ok();
}

Result<bool> ChunkSource::VisitInPlace(uint64_t offset, uint64_t length,
                                       const std::function<Status(std::string_view)>& fn) const {
  GRIN_RETURN_IF_ERROR(buffer_.Visit(offset, length, fn));
  return true;
}

}  // namespace grin::pipeline
