#pragma once
// GzipInflater: a streaming gzip (RFC 1952) decoder on ISA-L's igzip, which inflates several
// times faster than zlib on x86-64. The extractor feeds libarchive the inflated tar stream from
// it instead of letting libarchive inflate through zlib. Concatenated members are decoded in
// turn; each member's CRC-32 and length trailer is verified. Bytes after the last member that
// do not start another member are ignored and counted (as gzip(1) and libarchive do).
//
// Available() is false when the build found no ISA-L (then callers keep libarchive's own gzip
// filter). Not thread-safe; one stream per object.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::archive {

class GzipInflater {
 public:
  static bool Available();

  GzipInflater();
  ~GzipInflater();
  GzipInflater(const GzipInflater&) = delete;
  GzipInflater& operator=(const GzipInflater&) = delete;

  // Decompresses from *in (*in_len bytes; both advanced past what was consumed) into out[0..cap).
  // Returns the bytes written: 0 means all input was consumed and more is needed (or the stream
  // is complete). kDataLoss for corrupt data or a trailer mismatch.
  Result<size_t> Inflate(const uint8_t** in, size_t* in_len, uint8_t* out, size_t cap);
  // End of input: OK if at least one member was decoded and none is left unfinished.
  Status Finish() const;

  uint64_t members() const { return members_; }
  uint64_t trailing_bytes() const { return trailing_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool in_member_ = false;
  uint64_t members_ = 0;
  uint64_t trailing_ = 0;
  bool trailing_mode_ = false;
};

}  // namespace grin::archive
