#pragma once
// PacketReader: streaming OpenPGP packet framing (RFC 4880 §4.2, RFC 9580 §4.2). Bytes arrive in
// chunks of any size; the reader splits them into packets and hands each packet's body to a
// Handler as slices of the caller's buffer (no copies). Old and new headers, definite lengths,
// partial body lengths (new format, data packets only) and the old format's indeterminate length
// (the packet runs to the end of the enclosing stream) are understood. Lengths are never used to
// allocate: a huge declared length only means the stream ends early (a truncation error).
//
// Not thread-safe; one reader per stream. Internal to the native decryptor.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/base/status.h"

namespace grin::archive::internal {

// Packet tags used by the decryptor.
enum PacketTag : int {
  kTagPkesk = 1,
  kTagSignature = 2,
  kTagSkesk = 3,
  kTagOnePassSignature = 4,
  kTagCompressed = 8,
  kTagSed = 9,
  kTagMarker = 10,
  kTagLiteral = 11,
  kTagSeipd = 18,
  kTagMdc = 19,
  kTagAead = 20,
  kTagPadding = 21,
};

class PacketReader {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A packet begins. length: its body size when the header states it (definite length), or
    // nullopt for partial-length and indeterminate packets.
    virtual Status OnPacketStart(int tag, std::optional<uint64_t> length) = 0;
    // The next n > 0 bytes of the current packet's body (valid during the call only).
    virtual Status OnPacketBody(const uint8_t* data, size_t n) = 0;
    // The current packet's body is complete.
    virtual Status OnPacketEnd() = 0;
  };

  // what names the stream in errors ("message", "encrypted data", ...). handler is not owned.
  PacketReader(Handler* handler, const char* what) : handler_(handler), what_(what) {}

  // Parses the next n bytes. Errors (malformed header, handler failure) are sticky.
  Status Feed(const uint8_t* data, size_t n);
  // End of the enclosing stream: OK between packets; an indeterminate-length packet ends here;
  // anything else is a truncation (kDataLoss).
  Status End();

  uint64_t offset() const { return offset_; }
  bool between_packets() const { return state_ == State::kHeader && hdr_len_ == 0; }

 private:
  enum class State { kHeader, kPartialLength, kBody, kIndeterminate, kEnded };
  Status ParseHeaderByte(uint8_t b);
  Status StartSegment(uint64_t len, bool partial);

  Handler* handler_;
  const char* what_;
  State state_ = State::kHeader;
  Status failure_;
  uint8_t hdr_[6] = {};
  size_t hdr_len_ = 0;
  int tag_ = 0;
  bool new_format_ = false;
  bool partial_ = false;      // the current segment is followed by another length header
  uint64_t remaining_ = 0;    // bytes left in the current segment
  uint64_t offset_ = 0;       // bytes consumed
};

}  // namespace grin::archive::internal
