#include "engine/archive/message_outline.h"

#include <cstdio>

#include "engine/base/format.h"

namespace grin::archive {
namespace {

std::string S2kTypeName(int t) {
  switch (t) {
    case 0: return "simple";
    case 1: return "salted";
    case 3: return "iterated and salted";
  }
  return "type " + std::to_string(t);
}

std::string HashName(int h) {
  switch (h) {
    case 1: return "MD5";
    case 2: return "SHA1";
    case 3: return "RIPEMD160";
    case 8: return "SHA256";
    case 9: return "SHA384";
    case 10: return "SHA512";
    case 11: return "SHA224";
  }
  return "hash " + std::to_string(h);
}

std::string CompressionName(int a) {
  switch (a) {
    case 0: return "uncompressed";
    case 1: return "ZIP (raw deflate)";
    case 2: return "ZLIB";
    case 3: return "BZip2";
  }
  return "algorithm " + std::to_string(a);
}


}  // namespace

std::string DescribeOutline(const MessageOutline& o) {
  std::string out;
  for (const auto& k : o.key_packets) {
    out += "symmetric-key packet (tag 3): version " + std::to_string(k.version) + ", cipher " +
           k.cipher + ", S2K " + S2kTypeName(k.s2k_type) + ", hash " + HashName(k.s2k_hash);
    if (k.s2k_type == 3) out += ", count " + std::to_string(k.s2k_count);
    out += std::string(", session key encrypted: ") + (k.encrypted_session_key ? "yes" : "no") +
           "\n";
  }
  if (o.seipd_version >= 0) {
    out += "encrypted data packet (tag 18): version " + std::to_string(o.seipd_version) +
           (o.session_cipher.empty() ? "" : ", cipher " + o.session_cipher) + ", MDC " +
           (o.mdc_verified ? "verified" : "not verified") + "\n";
  }
  if (o.compression >= 0) {
    out += "compressed data packet (tag 8): " + CompressionName(o.compression) + "\n";
  }
  if (o.literal_format != 0) {
    out += std::string("literal data packet (tag 11): format '") + o.literal_format +
           "', name \"" + EscapeNonPrintable(o.literal_name) + "\", date " +
           std::to_string(o.literal_date) + "\n";
  }
  return out;
}

}  // namespace grin::archive
