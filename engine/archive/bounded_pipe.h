#pragma once
// BoundedPipe: a byte FIFO of fixed capacity between one producer thread and one consumer thread.
// It turns a push stream (chunks arriving from a download or a decryptor) into the pull stream
// that librnp and libarchive want, with memory bounded by the capacity.
//
// Thread safety: Write/CloseWrite from one thread, Read/CloseRead from another; all methods may
// run concurrently with each other.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace grin::archive {

class BoundedPipe {
 public:
  explicit BoundedPipe(size_t capacity);
  BoundedPipe(const BoundedPipe&) = delete;
  BoundedPipe& operator=(const BoundedPipe&) = delete;

  // Copies all n bytes in, blocking while the pipe is full. Returns false (having copied some or
  // none) once the reader has called CloseRead().
  bool Write(const uint8_t* data, size_t n);
  // End of stream: Read() returns 0 once the buffer is drained. If abort is true the reader sees
  // an error (-1) instead of a clean end.
  void CloseWrite(bool abort = false);

  // Blocks until at least one byte is available or the writer closed. Returns the number of
  // bytes copied (1..n), 0 at a clean end of stream, -1 if the writer aborted.
  long Read(uint8_t* out, size_t n);
  // The reader is gone: pending and future Write() calls return false.
  void CloseRead();

 private:
  std::mutex mu_;
  std::condition_variable can_read_;
  std::condition_variable can_write_;
  std::vector<uint8_t> buf_;
  size_t head_ = 0;  // index of the first unread byte
  size_t size_ = 0;  // bytes stored
  bool write_closed_ = false;
  bool write_aborted_ = false;
  bool read_closed_ = false;
};

}  // namespace grin::archive
