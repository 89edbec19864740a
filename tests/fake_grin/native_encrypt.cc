#include "tests/fake_grin/native_encrypt.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
#include <vector>

namespace grin::fake {
namespace {

struct CipherChoice {
  const char* name;
  int id;  // OpenPGP symmetric algorithm id
  const EVP_CIPHER* (*cfb)();
  size_t key_len;
};
constexpr CipherChoice kCiphers[] = {
    {"AES", 7, EVP_aes_128_cfb128, 16},    {"AES128", 7, EVP_aes_128_cfb128, 16},
    {"AES192", 8, EVP_aes_192_cfb128, 24}, {"AES256", 9, EVP_aes_256_cfb128, 32},
};

struct DigestChoice {
  const char* name;
  int id;  // OpenPGP hash algorithm id
  const EVP_MD* (*md)();
};
constexpr DigestChoice kDigests[] = {
    {"SHA1", 2, EVP_sha1},     {"SHA256", 8, EVP_sha256}, {"SHA384", 9, EVP_sha384},
    {"SHA512", 10, EVP_sha512}, {"SHA224", 11, EVP_sha224},
};

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// A new-format packet header (RFC 4880 §4.2.2) with a definite length.
Status AppendHeader(std::string* out, int tag, uint64_t len) {
  out->push_back(static_cast<char>(0xC0 | tag));
  if (len < 192) {
    out->push_back(static_cast<char>(len));
  } else if (len < 8384) {
    out->push_back(static_cast<char>(((len - 192) >> 8) + 192));
    out->push_back(static_cast<char>((len - 192) & 0xFF));
  } else if (len <= 0xFFFFFFFFULL) {
    out->push_back(static_cast<char>(0xFF));
    for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>((len >> s) & 0xFF));
  } else {
    return Status::InvalidArgument("native encryptor: a packet over 4 GiB");
  }
  return Status::Ok();
}

Result<std::string> Deflate(const std::string& in, bool zlib_wrapper) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, zlib_wrapper ? 15 : -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("native encryptor: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("native encryptor: deflate failed");
  return out;
}

// Iterated and salted S2K (RFC 4880 §3.7.1.3): pass i hashes i zero octets, then `count` octets
// of salt || passphrase repeated (the whole unit once if it is longer than count).
Status DeriveKey(const EVP_MD* md, const uint8_t salt[8], int64_t count,
                 const std::string& passphrase, uint8_t* key, size_t key_len) {
  std::string unit(reinterpret_cast<const char*>(salt), 8);
  unit += passphrase;
  const uint64_t total = std::max<uint64_t>(static_cast<uint64_t>(count), unit.size());
  std::string rep;
  while (rep.size() < 64 * 1024) rep += unit;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  static constexpr uint8_t kZeros[64] = {};
  size_t done = 0;
  for (size_t pass = 0; done < key_len; ++pass) {
    if (pass > sizeof kZeros) return Status::Internal("native encryptor: S2K key too long");
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), kZeros, pass) != 1) {
      return Status::Internal("native encryptor: S2K digest failed");
    }
    for (uint64_t left = total; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, rep.size()));
      if (EVP_DigestUpdate(ctx.get(), rep.data(), n) != 1) {
        return Status::Internal("native encryptor: S2K digest failed");
      }
      left -= n;
    }
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(ctx.get(), digest, &dlen) != 1) {
      return Status::Internal("native encryptor: S2K digest failed");
    }
    const size_t take = std::min<size_t>(dlen, key_len - done);
    std::copy(digest, digest + take, key + done);
    done += take;
  }
  return Status::Ok();
}

}  // namespace

int64_t DecodeS2kCount(int code) {
  return static_cast<int64_t>(16 + (code & 15)) << ((code >> 4) + 6);
}

int EncodeS2kCount(int64_t count) {
  for (int c = 0; c < 256; ++c) {
    if (DecodeS2kCount(c) >= count) return c;
  }
  return 255;
}

Result<std::string> NativeEncrypt(const ArchiveParams& params, const std::string& passphrase,
                                  const std::string& plaintext) {
  const CipherChoice* cipher = nullptr;
  for (const auto& c : kCiphers) {
    if (params.cipher == c.name) cipher = &c;
  }
  if (!cipher) {
    return Status::InvalidArgument("native encryptor: cipher " + params.cipher +
                                   " is not supported (AES, AES192, AES256; use gpg for others)");
  }
  const DigestChoice* digest = nullptr;
  for (const auto& d : kDigests) {
    if (params.s2k_digest == d.name) digest = &d;
  }
  if (!digest) {
    return Status::InvalidArgument("native encryptor: S2K digest " + params.s2k_digest +
                                   " is not supported (SHA1, SHA224, SHA256, SHA384, SHA512)");
  }
  int compress_algo = 0;
  if (params.compress == "zip") {
    compress_algo = 1;
  } else if (params.compress == "zlib") {
    compress_algo = 2;
  } else if (params.compress != "none") {
    return Status::InvalidArgument("native encryptor: compression " + params.compress +
                                   " is not supported (none, zip, zlib)");
  }
  if (params.s2k_count < 1) {
    return Status::InvalidArgument("native encryptor: S2K count must be positive");
  }
  const int count_code = EncodeS2kCount(params.s2k_count);
  const size_t bs = 16;  // AES block size

  uint8_t salt[8];
  uint8_t prefix[16];
  if (RAND_bytes(salt, sizeof salt) != 1 || RAND_bytes(prefix, sizeof prefix) != 1) {
    return Status::Internal("native encryptor: RAND_bytes failed");
  }
  uint8_t key[32];
  GRIN_RETURN_IF_ERROR(DeriveKey(digest->md(), salt, DecodeS2kCount(count_code), passphrase, key,
                                 cipher->key_len));

  // The plaintext packets: a literal data packet (binary, no file name, the time now), inside a
  // compressed packet when asked.
  std::string literal;
  const uint32_t now = static_cast<uint32_t>(std::time(nullptr));
  GRIN_RETURN_IF_ERROR(AppendHeader(&literal, 11, 6 + plaintext.size()));
  literal += 'b';
  literal += '\0';  // file name length
  for (int s = 24; s >= 0; s -= 8) literal += static_cast<char>((now >> s) & 0xFF);
  literal += plaintext;
  std::string packets;
  if (compress_algo == 0) {
    packets = std::move(literal);
  } else {
    GRIN_ASSIGN_OR_RETURN(std::string z, Deflate(literal, compress_algo == 2));
    GRIN_RETURN_IF_ERROR(AppendHeader(&packets, 8, 1 + z.size()));
    packets += static_cast<char>(compress_algo);
    packets += z;
  }

  // What SEIPD encrypts: prefix, its last two octets again, the packets, the MDC packet.
  std::string inner;
  inner.reserve(bs + 2 + packets.size() + 22);
  inner.append(reinterpret_cast<const char*>(prefix), bs);
  inner.append(reinterpret_cast<const char*>(prefix) + bs - 2, 2);
  inner += packets;
  packets.clear();
  packets.shrink_to_fit();
  inner += '\xD3';
  inner += '\x14';
  uint8_t mdc[EVP_MAX_MD_SIZE];
  unsigned mdc_len = 0;
  if (EVP_Digest(inner.data(), inner.size(), mdc, &mdc_len, EVP_sha1(), nullptr) != 1 ||
      mdc_len != 20) {
    return Status::Internal("native encryptor: SHA-1 failed");
  }
  inner.append(reinterpret_cast<const char*>(mdc), 20);

  std::string out;
  // SKESK v4: version, cipher, S2K (type 3, hash, salt, coded count); no encrypted session key.
  GRIN_RETURN_IF_ERROR(AppendHeader(&out, 3, 13));
  out += '\x04';
  out += static_cast<char>(cipher->id);
  out += '\x03';
  out += static_cast<char>(digest->id);
  out.append(reinterpret_cast<const char*>(salt), 8);
  out += static_cast<char>(count_code);
  // SEIPD v1: version 1, then CFB with an all-zero IV over `inner`, no resynchronisation.
  GRIN_RETURN_IF_ERROR(AppendHeader(&out, 18, 1 + inner.size()));
  out += '\x01';
  const size_t at = out.size();
  out.resize(at + inner.size());
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  static constexpr uint8_t kZeroIv[16] = {};
  int outl = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher->cfb(), nullptr, key, kZeroIv) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(out.data() + at), &outl,
                        reinterpret_cast<const uint8_t*>(inner.data()),
                        static_cast<int>(inner.size())) != 1 ||
      static_cast<size_t>(outl) != inner.size()) {
    return Status::Internal("native encryptor: AES-CFB failed");
  }
  OPENSSL_cleanse(key, sizeof key);
  return out;
}

}  // namespace grin::fake
