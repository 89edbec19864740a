#include "engine/archive/ocr.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace grin::archive {

std::optional<uint32_t> OcrPageNumber(std::string_view name) {
  if (name.size() != 12 || name.substr(8) != ".txt") return std::nullopt;
  uint32_t n = 0;
  for (size_t i = 0; i < 8; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n < 1 || n > kMaxPageNumber) return std::nullopt;
  return n;
}

std::string SanitizeUtf8(std::string_view in) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const uint8_t*>(in.data());
  size_t n = in.size(), i = 0;
  while (i < n) {
    uint8_t b = s[i];
    if (b < 0x80) {
      // Copy a run of ASCII at once.
      size_t j = i + 1;
      while (j < n && s[j] < 0x80) ++j;
      out.append(in.data() + i, j - i);
      i = j;
      continue;
    }
    int need;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the FIRST continuation byte
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2, lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      need = 2;
    } else if (b == 0xED) {
      need = 2, hi = 0x9F;  // no UTF-16 surrogates
    } else if (b == 0xF0) {
      need = 3, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else if (b == 0xF4) {
      need = 3, hi = 0x8F;  // <= U+10FFFF
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t j = i + 1;
    int k = 0;
    while (k < need && j < n) {
      uint8_t c = s[j];
      uint8_t clo = k == 0 ? lo : 0x80, chi = k == 0 ? hi : 0xBF;
      if (c < clo || c > chi) break;
      ++j;
      ++k;
    }
    if (k == need) {
      out.append(in.data() + i, j - i);
    } else {
      out += kReplacement;  // the maximal subpart [i, j) becomes one replacement character
    }
    i = j;
  }
  return out;
}

void AppendJsonEscaped(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the pending verbatim run
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        *out += "\\u00";
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  AppendJsonEscaped(out, s);
  out->push_back('"');
}

Result<std::string> GzipCompress(std::string_view data, int level) {
  z_stream zs{};
  // windowBits 15 + 16: gzip wrapper.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("deflate did not finish");
  out.resize(produced);
  return out;
}

Result<std::string> GzipDecompress(std::string_view data, size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Status::Internal("inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::DataLoss("corrupt gzip data");
    }
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      return Status::ResourceExhausted("gzip output over limit");
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Status::DataLoss("truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

Status OcrPages::Add(uint32_t page, std::string text) {
  bytes_ += text.size();
  if (!pages_.emplace(page, std::move(text)).second) {
    return Status::DataLoss("page " + std::to_string(page) + " appears twice");
  }
  return Status();
}

std::string OcrPages::BuildJsonl() const {
  std::string out;
  out.reserve(bytes_ + bytes_ / 8 + 4 * page_count());
  uint32_t next = 1;
  for (const auto& [page, text] : pages_) {
    for (; next < page; ++next) out += "\"\"\n";  // a gap: the page had no text member
    AppendJsonString(&out, SanitizeUtf8(text));
    out.push_back('\n');
    next = page + 1;
  }
  return out;
}

Result<std::string> OcrPages::BuildJsonlGz() const { return GzipCompress(BuildJsonl(), 1); }

}  // namespace grin::archive

namespace grin::archive {
namespace {

constexpr size_t kPiece = 64 * 1024;  // text handled at once (its escaped form is at most ~18x)
constexpr unsigned char kGzipHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};
constexpr unsigned char kFinalBlock[2] = {0x03, 0x00};  // an empty final fixed-Huffman block

z_stream* Z(void* p) { return static_cast<z_stream*>(p); }

// Bytes of s[0, n) that can be sanitized without the bytes after them: everything but a
// trailing UTF-8 lead byte whose sequence is not complete yet. (A lead byte is never a
// continuation, so no sequence that starts before it can reach past it.)
size_t SafeCut(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    uint8_t b = p[n - back];
    if (b < 0x80) return n;
    if (b >= 0xC0) {
      size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      return back < need ? n - back : n;
    }
  }
  return n;
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      return Status::ResourceExhausted("cannot write the OCR spill file " + path + ": " +
                                       std::strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status();
}

void PutLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

OcrJsonlWriter::OcrJsonlWriter(std::string spill_path, uint64_t memory_bytes)
    : spill_path_(std::move(spill_path)), memory_bytes_(memory_bytes) {
  auto* zs = new z_stream{};
  if (deflateInit2(zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    delete zs;
    return;
  }
  zs_ = zs;
  // The gap line, deflated once like any page.
  static constexpr char kGap[] = "\"\"\n";
  unsigned char buf[64];
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(kGap));
  zs->avail_in = 3;
  zs->next_out = buf;
  zs->avail_out = sizeof buf;
  deflate(zs, Z_SYNC_FLUSH);
  gap_data_.assign(reinterpret_cast<char*>(buf), sizeof buf - zs->avail_out);
  gap_.length = gap_data_.size();
  gap_.crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(kGap), 3));
  gap_.raw = 3;
}

OcrJsonlWriter::~OcrJsonlWriter() {
  if (zs_) {
    deflateEnd(Z(zs_));
    delete Z(zs_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink((spill_path_ + ".part").c_str());
  }
  if (spilled_result_ && !handed_over_) ::unlink(spill_path_.c_str());
}

Status OcrJsonlWriter::Emit(const char* data, size_t n) {
  written_ += n;
  open_->length += n;
  if (fd_ >= 0) return WriteAll(fd_, data, n, spill_path_ + ".part");
  mem_.append(data, n);
  peak_memory_ = std::max<uint64_t>(peak_memory_, mem_.capacity());
  if (spill_path_.empty() || mem_.size() <= memory_bytes_) return Status();
  std::string part = spill_path_ + ".part";
  fd_ = ::open(part.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return Status::ResourceExhausted("cannot create the OCR spill file " + part + ": " +
                                     std::strerror(errno));
  }
  GRIN_RETURN_IF_ERROR(WriteAll(fd_, mem_.data(), mem_.size(), part));
  std::string().swap(mem_);
  return Status();
}

Status OcrJsonlWriter::Deflate(std::string_view in, int flush) {
  z_stream* zs = Z(zs_);
  open_->crc = static_cast<uint32_t>(
      crc32(open_->crc, reinterpret_cast<const Bytef*>(in.data()), static_cast<uInt>(in.size())));
  open_->raw += in.size();
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs->avail_in = static_cast<uInt>(in.size());
  char out[16384];
  do {
    zs->next_out = reinterpret_cast<Bytef*>(out);
    zs->avail_out = sizeof out;
    int rc = deflate(zs, flush);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Status::Internal("deflate failed");
    size_t got = sizeof out - zs->avail_out;
    if (got > 0) GRIN_RETURN_IF_ERROR(Emit(out, got));
  } while (zs->avail_out == 0 || zs->avail_in > 0);
  return Status();
}

Status OcrJsonlWriter::BeginPage(uint32_t page) {
  if (!zs_) return Status::Internal("deflateInit2 failed");
  if (open_) return Status::FailedPrecondition("BeginPage inside a page");
  auto [it, inserted] = index_.emplace(page, Segment{});
  if (!inserted) return Status::DataLoss("page " + std::to_string(page) + " appears twice");
  open_ = &it->second;
  open_->offset = written_;
  deflateReset(Z(zs_));
  pending_.clear();
  return Deflate("\"", Z_NO_FLUSH);
}

Status OcrJsonlWriter::EscapeAndDeflate(std::string_view raw, bool final_piece) {
  std::string_view view = raw;
  if (!pending_.empty()) {
    scratch_.assign(pending_);
    scratch_.append(raw);
    view = scratch_;
  }
  size_t cut = final_piece ? view.size() : SafeCut(view);
  std::string keep(view.substr(cut));
  escaped_.clear();
  AppendJsonEscaped(&escaped_, SanitizeUtf8(view.substr(0, cut)));
  pending_ = std::move(keep);
  return Deflate(escaped_, Z_NO_FLUSH);
}

Status OcrJsonlWriter::PageText(std::string_view piece) {
  if (!open_) return Status::FailedPrecondition("PageText outside a page");
  text_bytes_ += piece.size();
  for (size_t off = 0; off < piece.size(); off += kPiece) {
    GRIN_RETURN_IF_ERROR(EscapeAndDeflate(piece.substr(off, kPiece), false));
  }
  return Status();
}

Status OcrJsonlWriter::EndPage() {
  if (!open_) return Status::FailedPrecondition("EndPage outside a page");
  if (!pending_.empty()) GRIN_RETURN_IF_ERROR(EscapeAndDeflate("", true));
  GRIN_RETURN_IF_ERROR(Deflate("\"\n", Z_SYNC_FLUSH));
  open_ = nullptr;
  if (escaped_.capacity() > 4 * kPiece) std::string().swap(escaped_);
  return Status();
}

Status OcrJsonlWriter::Add(uint32_t page, std::string_view text) {
  GRIN_RETURN_IF_ERROR(BeginPage(page));
  GRIN_RETURN_IF_ERROR(PageText(text));
  return EndPage();
}

Result<OcrJsonlGz> OcrJsonlWriter::Finish() {
  if (!zs_) return Status::Internal("deflateInit2 failed");
  if (open_) return Status::FailedPrecondition("Finish inside a page");
  OcrJsonlGz out;
  int dst = -1;
  if (fd_ >= 0) {
    dst = ::open(spill_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dst < 0) {
      return Status::ResourceExhausted("cannot create the OCR file " + spill_path_ + ": " +
                                       std::strerror(errno));
    }
    spilled_result_ = true;
    out.path = spill_path_;
  } else {
    out.data.reserve(mem_.size() + gap_data_.size() * (page_count() - present()) + 32);
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{dst};
  std::string buf;  // spilled: bytes on their way to the file
  auto put = [&](const char* data, size_t n) -> Status {
    out.size += n;
    if (dst < 0) {
      out.data.append(data, n);
      return Status();
    }
    buf.append(data, n);
    if (buf.size() < kPiece * 4) return Status();
    Status s = WriteAll(dst, buf.data(), buf.size(), spill_path_);
    buf.clear();
    return s;
  };
  auto put_segment = [&](const Segment& seg) -> Status {
    if (fd_ < 0) return put(mem_.data() + seg.offset, seg.length);
    char tmp[65536];
    for (uint64_t done = 0; done < seg.length;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof tmp, seg.length - done));
      ssize_t r = ::pread(fd_, tmp, want, static_cast<off_t>(seg.offset + done));
      if (r <= 0) {
        return Status::DataLoss("cannot read back the OCR spill file " + spill_path_ + ".part");
      }
      GRIN_RETURN_IF_ERROR(put(tmp, static_cast<size_t>(r)));
      done += static_cast<uint64_t>(r);
    }
    return Status();
  };
  GRIN_RETURN_IF_ERROR(put(reinterpret_cast<const char*>(kGzipHeader), sizeof kGzipHeader));
  uint32_t crc = static_cast<uint32_t>(crc32(0, nullptr, 0));
  uint64_t raw = 0;
  auto account = [&](const Segment& seg) {
    crc = static_cast<uint32_t>(crc32_combine(crc, seg.crc, static_cast<z_off_t>(seg.raw)));
    raw += seg.raw;
  };
  uint32_t next = 1;
  for (const auto& [page, seg] : index_) {
    for (; next < page; ++next) {
      GRIN_RETURN_IF_ERROR(put(gap_data_.data(), gap_data_.size()));
      account(gap_);
    }
    GRIN_RETURN_IF_ERROR(put_segment(seg));
    account(seg);
    next = page + 1;
  }
  GRIN_RETURN_IF_ERROR(put(reinterpret_cast<const char*>(kFinalBlock), sizeof kFinalBlock));
  std::string trailer;
  PutLe32(&trailer, crc);
  PutLe32(&trailer, static_cast<uint32_t>(raw & 0xffffffffu));
  GRIN_RETURN_IF_ERROR(put(trailer.data(), trailer.size()));
  if (dst >= 0 && !buf.empty()) {
    GRIN_RETURN_IF_ERROR(WriteAll(dst, buf.data(), buf.size(), spill_path_));
  }
  std::string().swap(mem_);
  handed_over_ = true;
  return out;
}

}  // namespace grin::archive
