#include "engine/archive/ocr.h"

#include <zlib.h>

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

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
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
