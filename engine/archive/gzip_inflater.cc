#include "engine/archive/gzip_inflater.h"

#if GRIN_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <algorithm>
#include <cstdint>
#include <string>

namespace grin::archive {

#if GRIN_HAVE_ISAL

struct GzipInflater::Impl {
  inflate_state state;
};

bool GzipInflater::Available() { return true; }

GzipInflater::GzipInflater() : impl_(std::make_unique<Impl>()) {}
GzipInflater::~GzipInflater() = default;

namespace {
std::string IsalError(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid deflate distance";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unsupported gzip compression method";
    case ISAL_INCORRECT_CHECKSUM: return "gzip CRC-32 or length trailer mismatch";
    default: return "igzip error " + std::to_string(rc);
  }
}
}  // namespace

Result<size_t> GzipInflater::Inflate(const uint8_t** in, size_t* in_len, uint8_t* out,
                                     size_t cap) {
  inflate_state& st = impl_->state;
  size_t produced = 0;
  while (produced < cap && *in_len > 0) {
    if (trailing_mode_) {
      trailing_ += *in_len;
      *in += *in_len;
      *in_len = 0;
      break;
    }
    if (!in_member_) {
      if (members_ > 0 && (*in)[0] != 0x1f) {  // not another member: trailing bytes
        trailing_mode_ = true;
        continue;
      }
      isal_inflate_init(&st);
      st.crc_flag = ISAL_GZIP;
      in_member_ = true;
    }
    st.next_in = const_cast<uint8_t*>(*in);
    st.avail_in = static_cast<uint32_t>(std::min<size_t>(*in_len, UINT32_MAX));
    st.next_out = out + produced;
    st.avail_out = static_cast<uint32_t>(std::min<size_t>(cap - produced, UINT32_MAX));
    const uint32_t in_before = st.avail_in, out_before = st.avail_out;
    int rc = isal_inflate(&st);
    size_t used = in_before - st.avail_in;
    *in += used;
    *in_len -= used;
    produced += out_before - st.avail_out;
    if (rc < 0) return Status::DataLoss("corrupt gzip stream: " + IsalError(rc));
    if (st.block_state == ISAL_BLOCK_FINISH) {
      in_member_ = false;
      ++members_;
      continue;
    }
    if (used == 0 && out_before == st.avail_out) break;  // no progress: needs more input
  }
  return produced;
}

Status GzipInflater::Finish() const {
  if (in_member_) return Status::DataLoss("truncated gzip stream (no CRC/length trailer)");
  if (members_ == 0) return Status::DataLoss("empty gzip stream");
  return Status();
}

#else  // !GRIN_HAVE_ISAL

struct GzipInflater::Impl {};
bool GzipInflater::Available() { return false; }
GzipInflater::GzipInflater() = default;
GzipInflater::~GzipInflater() = default;
Result<size_t> GzipInflater::Inflate(const uint8_t**, size_t*, uint8_t*, size_t) {
  return Status::FailedPrecondition("built without ISA-L");
}
Status GzipInflater::Finish() const { return Status::FailedPrecondition("built without ISA-L"); }

#endif

}  // namespace grin::archive
