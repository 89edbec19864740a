#include "engine/archive/openpgp_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "engine/base/fn_deleter.h"

namespace grin::archive::internal {
namespace {

struct CipherRow {
  CipherInfo info;
  const char* ossl_name;  // ECB mode; nullptr = not available through OpenSSL
};
constexpr CipherRow kCiphers[] = {
    {{1, "IDEA", 16, 8}, nullptr},
    {{2, "3DES", 24, 8}, "DES-EDE3-ECB"},
    {{3, "CAST5", 16, 8}, "CAST5-ECB"},
    {{4, "Blowfish", 16, 8}, "BF-ECB"},
    {{7, "AES128", 16, 16}, "AES-128-ECB"},
    {{8, "AES192", 24, 16}, "AES-192-ECB"},
    {{9, "AES256", 32, 16}, "AES-256-ECB"},
    {{10, "Twofish", 32, 16}, nullptr},
    {{11, "Camellia128", 16, 16}, "CAMELLIA-128-ECB"},
    {{12, "Camellia192", 24, 16}, "CAMELLIA-192-ECB"},
    {{13, "Camellia256", 32, 16}, "CAMELLIA-256-ECB"},
};
constexpr size_t kNumCiphers = sizeof kCiphers / sizeof kCiphers[0];

struct HashRow {
  int id;
  const char* ossl_name;
};
constexpr HashRow kHashes[] = {
    {1, "MD5"},     {2, "SHA1"},     {3, "RIPEMD160"}, {8, "SHA256"},   {9, "SHA384"},
    {10, "SHA512"}, {11, "SHA224"},  {12, "SHA3-256"}, {14, "SHA3-512"},
};
constexpr size_t kNumHashes = sizeof kHashes / sizeof kHashes[0];

// Algorithms fetched once per process from a private library context holding OpenSSL's default
// and (if it loads) legacy providers.
class Algorithms {
 public:
  static const Algorithms& Get() {
    static Algorithms a;
    return a;
  }
  const EVP_CIPHER* cipher(size_t row) const { return ciphers_[row]; }
  const EVP_MD* md(size_t row) const { return mds_[row]; }
  bool legacy_loaded() const { return legacy_ != nullptr; }

 private:
  Algorithms() {
    ctx_ = OSSL_LIB_CTX_new();
    if (ctx_ != nullptr) {
      default_ = OSSL_PROVIDER_load(ctx_, "default");
      legacy_ = OSSL_PROVIDER_load(ctx_, "legacy");
    }
    for (size_t i = 0; i < kNumCiphers; ++i) {
      ciphers_[i] = kCiphers[i].ossl_name && ctx_
                        ? EVP_CIPHER_fetch(ctx_, kCiphers[i].ossl_name, nullptr)
                        : nullptr;
    }
    for (size_t i = 0; i < kNumHashes; ++i) {
      mds_[i] = ctx_ ? EVP_MD_fetch(ctx_, kHashes[i].ossl_name, nullptr) : nullptr;
    }
  }
  ~Algorithms() {
    for (EVP_CIPHER* c : ciphers_) EVP_CIPHER_free(c);
    for (EVP_MD* m : mds_) EVP_MD_free(m);
    if (legacy_) OSSL_PROVIDER_unload(legacy_);
    if (default_) OSSL_PROVIDER_unload(default_);
    OSSL_LIB_CTX_free(ctx_);
  }
  OSSL_LIB_CTX* ctx_ = nullptr;
  OSSL_PROVIDER* default_ = nullptr;
  OSSL_PROVIDER* legacy_ = nullptr;
  EVP_CIPHER* ciphers_[kNumCiphers] = {};
  EVP_MD* mds_[kNumHashes] = {};
};

Result<size_t> CipherRowOf(int id) {
  for (size_t i = 0; i < kNumCiphers; ++i) {
    if (kCiphers[i].info.id != id) continue;
    if (Algorithms::Get().cipher(i) != nullptr) return i;
    const char* name = kCiphers[i].info.name;
    if (kCiphers[i].ossl_name == nullptr) {
      return Status::DataLoss(std::string("cipher ") + name +
                              " is not supported by the native backend (use --backend gpg)");
    }
    return Status::DataLoss(std::string("cipher ") + name +
                            " is unavailable: OpenSSL's legacy provider did not load");
  }
  return Status::DataLoss("unknown OpenPGP cipher algorithm " + std::to_string(id));
}

Result<const EVP_MD*> MdOf(int id) {
  for (size_t i = 0; i < kNumHashes; ++i) {
    if (kHashes[i].id != id) continue;
    if (const EVP_MD* md = Algorithms::Get().md(i)) return md;
    return Status::DataLoss(std::string("hash ") + kHashes[i].ossl_name + " is unavailable");
  }
  return Status::DataLoss("unsupported OpenPGP hash algorithm " + std::to_string(id) +
                          " in the S2K specifier");
}

using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, FnDeleter<EVP_MD_CTX_free>>;
using EvpCipherCtx = std::unique_ptr<EVP_CIPHER_CTX, FnDeleter<EVP_CIPHER_CTX_free>>;

// out[i] ^= in[i]; the hot loop of bulk CFB.
void XorInto(uint8_t* out, const uint8_t* in, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 64 <= n; i += 64) {
    for (size_t k = 0; k < 64; k += 16) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(out + i + k));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + k));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + k), _mm_xor_si128(a, b));
    }
  }
#endif
  for (; i < n; ++i) out[i] ^= in[i];
}

}  // namespace

Result<const CipherInfo*> FindCipher(int id) {
  GRIN_ASSIGN_OR_RETURN(size_t row, CipherRowOf(id));
  return &kCiphers[row].info;
}

Result<size_t> HashLength(int id) {
  GRIN_ASSIGN_OR_RETURN(const EVP_MD* md, MdOf(id));
  return static_cast<size_t>(EVP_MD_get_size(md));
}

Result<S2k> ParseS2k(const uint8_t* p, size_t n, size_t* used) {
  if (n < 2) return Status::DataLoss("truncated S2K specifier");
  S2k s;
  s.type = p[0];
  s.hash = p[1];
  switch (s.type) {
    case 0:
      *used = 2;
      break;
    case 1:
    case 3: {
      size_t need = s.type == 1 ? 10 : 11;
      if (n < need) return Status::DataLoss("truncated S2K specifier");
      std::memcpy(s.salt, p + 2, 8);
      if (s.type == 3) {
        uint8_t c = p[10];
        s.count = static_cast<uint64_t>(16 + (c & 15)) << ((c >> 4) + 6);
      }
      *used = need;
      break;
    }
    default:
      return Status::DataLoss("unsupported S2K type " + std::to_string(s.type) +
                              " (the native backend knows simple, salted and iterated+salted)");
  }
  GRIN_RETURN_IF_ERROR(MdOf(s.hash).status());
  return s;
}

Status DeriveKey(const S2k& s2k, const std::string& passphrase, uint8_t* key, size_t key_len) {
  GRIN_ASSIGN_OR_RETURN(const EVP_MD* md, MdOf(s2k.hash));
  const size_t hlen = static_cast<size_t>(EVP_MD_get_size(md));
  // The unit hashed: salt || passphrase (passphrase alone for simple S2K).
  std::vector<uint8_t> unit;
  if (s2k.type != 0) unit.insert(unit.end(), s2k.salt, s2k.salt + 8);
  unit.insert(unit.end(), passphrase.begin(), passphrase.end());
  uint64_t total = unit.size();
  if (s2k.type == 3) total = std::max<uint64_t>(s2k.count, unit.size());
  // Iterated S2K hashes `total` bytes of the unit repeated: feed it from a ~64 KiB buffer of
  // whole repetitions, so millions of iterations cost large EVP updates, not tiny ones.
  std::vector<uint8_t> rep;
  if (total > unit.size() && !unit.empty()) {
    size_t reps = std::max<size_t>(1, (64 * 1024) / unit.size());
    rep.reserve(reps * unit.size());
    for (size_t i = 0; i < reps; ++i) rep.insert(rep.end(), unit.begin(), unit.end());
  } else {
    rep = unit;
  }
  EvpMdCtx ctx(EVP_MD_CTX_new());
  Status status;
  static constexpr uint8_t kZeros[64] = {};
  for (size_t done = 0, pass = 0; done < key_len && status.ok(); ++pass) {
    if (pass > sizeof kZeros) {
      status = Status::DataLoss("S2K key too long for the hash");
      break;
    }
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), kZeros, pass) != 1) {
      status = Status::Internal("S2K digest initialisation failed");
      break;
    }
    for (uint64_t left = total; left > 0;) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(left, rep.size()));
      EVP_DigestUpdate(ctx.get(), rep.data(), take);
      left -= take;
    }
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &dlen);
    size_t take = std::min(hlen, key_len - done);
    std::memcpy(key + done, digest, take);
    OPENSSL_cleanse(digest, sizeof digest);
    done += take;
  }
  OPENSSL_cleanse(unit.data(), unit.size());
  OPENSSL_cleanse(rep.data(), rep.size());
  return status;
}

struct CfbDecrypter::Impl {
  EvpCipherCtx ctx{EVP_CIPHER_CTX_new()};
};

CfbDecrypter::CfbDecrypter() : impl_(std::make_unique<Impl>()) {}
CfbDecrypter::~CfbDecrypter() = default;

Status CfbDecrypter::Init(const CipherInfo& cipher, const uint8_t* key) {
  GRIN_ASSIGN_OR_RETURN(size_t row, CipherRowOf(cipher.id));
  const EVP_CIPHER* c = Algorithms::Get().cipher(row);
  if (!impl_->ctx || EVP_EncryptInit_ex2(impl_->ctx.get(), c, key, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(impl_->ctx.get(), 0) != 1) {
    return Status::Internal(std::string("cannot initialise ") + cipher.name);
  }
  bs_ = cipher.block_len;
  pos_ = 0;
  uint8_t iv[16] = {};
  EncryptBlock(iv, ks_);
  return Status();
}

void CfbDecrypter::EncryptBlock(const uint8_t* in, uint8_t* out) {
  int len = 0;
  EVP_EncryptUpdate(impl_->ctx.get(), out, &len, in, static_cast<int>(bs_));
}

void CfbDecrypter::Decrypt(const uint8_t* in, uint8_t* out, size_t n) {
  // Finish a block begun by an earlier call.
  while (pos_ != 0 && n > 0) {
    uint8_t c = *in++;
    *out++ = c ^ ks_[pos_];
    cur_[pos_++] = c;
    --n;
    if (pos_ == bs_) {
      EncryptBlock(cur_, ks_);
      pos_ = 0;
    }
  }
  // Whole blocks: keystream = E(previous block) then E(C[0..m-2]) in one ECB pass.
  size_t m = n / bs_;
  if (m > 0) {
    std::memcpy(out, ks_, bs_);
    size_t bulk = (m - 1) * bs_;
    // EVP lengths are int: split very large runs.
    for (size_t done = 0; done < bulk;) {
      size_t take = std::min<size_t>(bulk - done, size_t{1} << 30);
      int len = 0;
      EVP_EncryptUpdate(impl_->ctx.get(), out + bs_ + done, &len, in + done,
                        static_cast<int>(take));
      done += take;
    }
    XorInto(out, in, m * bs_);
    EncryptBlock(in + bulk, ks_);
    in += m * bs_;
    out += m * bs_;
    n -= m * bs_;
  }
  // A partial last block.
  for (size_t i = 0; i < n; ++i) {
    out[i] = in[i] ^ ks_[pos_];
    cur_[pos_++] = in[i];
  }
}

}  // namespace grin::archive::internal
