#include "engine/archive/openpgp_packets.h"

#include <algorithm>

namespace grin::archive::internal {
namespace {

// Decodes a new-format body length from the bytes l[0..have). Returns false while more bytes are
// needed; otherwise sets len and partial.
bool NewLength(const uint8_t* l, size_t have, uint64_t* len, bool* partial) {
  if (have == 0) return false;
  uint8_t a = l[0];
  *partial = false;
  if (a < 192) {
    *len = a;
    return true;
  }
  if (a < 224) {
    if (have < 2) return false;
    *len = ((static_cast<uint64_t>(a) - 192) << 8) + l[1] + 192;
    return true;
  }
  if (a < 255) {
    *len = uint64_t{1} << (a & 0x1f);
    *partial = true;
    return true;
  }
  if (have < 5) return false;
  *len = (uint64_t{l[1]} << 24) | (uint64_t{l[2]} << 16) | (uint64_t{l[3]} << 8) | l[4];
  return true;
}

bool MayBePartial(int tag) {
  return tag == kTagCompressed || tag == kTagSed || tag == kTagLiteral || tag == kTagSeipd ||
         tag == kTagAead;
}

std::string Hex2(uint8_t b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[b >> 4] + kDigits[b & 15];
}

}  // namespace

Status PacketReader::StartSegment(uint64_t len, bool partial) {
  partial_ = partial;
  remaining_ = len;
  state_ = State::kBody;
  if (len == 0 && !partial) {
    state_ = State::kHeader;
    return handler_->OnPacketEnd();
  }
  if (len == 0) state_ = State::kPartialLength;  // cannot happen (2^n >= 1); kept for clarity
  return Status();
}

Status PacketReader::ParseHeaderByte(uint8_t b) {
  hdr_[hdr_len_++] = b;
  if (state_ == State::kPartialLength) {
    uint64_t len = 0;
    bool partial = false;
    if (!NewLength(hdr_, hdr_len_, &len, &partial)) return Status();
    hdr_len_ = 0;
    return StartSegment(len, partial);
  }
  // A packet header.
  if (hdr_len_ == 1) {
    if ((b & 0x80) == 0) {
      std::string why = offset_ == 0 && b == '-'
                            ? " (ASCII armor? only binary messages are supported)"
                            : "";
      return Status::DataLoss(std::string(what_) + " is not OpenPGP: byte " + Hex2(b) +
                              " at offset " + std::to_string(offset_) +
                              " is not a packet header" + why);
    }
    new_format_ = (b & 0x40) != 0;
    tag_ = new_format_ ? (b & 0x3f) : ((b >> 2) & 0x0f);
    if (tag_ == 0) {
      return Status::DataLoss(std::string(what_) + ": packet with the reserved tag 0 at offset " +
                              std::to_string(offset_));
    }
    if (!new_format_ && (b & 3) == 3) {  // old format, indeterminate length
      hdr_len_ = 0;
      state_ = State::kIndeterminate;
      return handler_->OnPacketStart(tag_, std::nullopt);
    }
    return Status();
  }
  uint64_t len = 0;
  bool partial = false;
  if (new_format_) {
    if (!NewLength(hdr_ + 1, hdr_len_ - 1, &len, &partial)) return Status();
  } else {
    static constexpr size_t kLenBytes[3] = {1, 2, 4};
    size_t need = kLenBytes[hdr_[0] & 3];
    if (hdr_len_ < 1 + need) return Status();
    for (size_t i = 0; i < need; ++i) len = (len << 8) | hdr_[1 + i];
  }
  hdr_len_ = 0;
  if (partial && !MayBePartial(tag_)) {
    return Status::DataLoss(std::string(what_) + ": packet tag " + std::to_string(tag_) +
                            " uses a partial body length, which only data packets may");
  }
  GRIN_RETURN_IF_ERROR(
      handler_->OnPacketStart(tag_, partial ? std::nullopt : std::optional<uint64_t>(len)));
  return StartSegment(len, partial);
}

Status PacketReader::Feed(const uint8_t* data, size_t n) {
  if (!failure_.ok()) return failure_;
  if (state_ == State::kEnded && n > 0) {
    return failure_ = Status::FailedPrecondition("packet stream fed after its end");
  }
  Status s;
  while (n > 0 && s.ok()) {
    switch (state_) {
      case State::kHeader:
      case State::kPartialLength:
        s = ParseHeaderByte(*data);
        ++data;
        --n;
        ++offset_;
        break;
      case State::kBody: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
        s = handler_->OnPacketBody(data, take);
        data += take;
        n -= take;
        offset_ += take;
        remaining_ -= take;
        if (s.ok() && remaining_ == 0) {
          if (partial_) {
            state_ = State::kPartialLength;
          } else {
            state_ = State::kHeader;
            s = handler_->OnPacketEnd();
          }
        }
        break;
      }
      case State::kIndeterminate:
        s = handler_->OnPacketBody(data, n);
        offset_ += n;
        n = 0;
        break;
      case State::kEnded:
        n = 0;
        break;
    }
  }
  if (!s.ok()) failure_ = s;
  return s;
}

Status PacketReader::End() {
  if (!failure_.ok()) return failure_;
  State was = state_;
  state_ = State::kEnded;
  if (was == State::kIndeterminate) return failure_ = handler_->OnPacketEnd();
  if (was == State::kHeader && hdr_len_ == 0) return Status();
  std::string where = was == State::kBody
                          ? "inside a packet (tag " + std::to_string(tag_) + ", " +
                                std::to_string(remaining_) + " more bytes announced)"
                          : "inside a packet header";
  return failure_ = Status::DataLoss("truncated: " + std::string(what_) + " ends at offset " +
                                     std::to_string(offset_) + " " + where);
}

}  // namespace grin::archive::internal
