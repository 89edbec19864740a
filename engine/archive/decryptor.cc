#include "engine/archive/decryptor.h"

#include <openssl/crypto.h>

#include <vector>

#include "engine/archive/decryptor_internal.h"
#include "engine/archive/subprocess.h"

namespace grin::archive {

Secret& Secret::operator=(Secret&& o) noexcept {
  if (this != &o) {
    OPENSSL_cleanse(value_.data(), value_.size());
    value_ = std::move(o.value_);
  }
  return *this;
}

Secret::~Secret() { OPENSSL_cleanse(value_.data(), value_.size()); }

std::string_view BackendName(DecryptBackend b) {
  switch (b) {
    case DecryptBackend::kAuto: return "auto";
    case DecryptBackend::kGpg: return "gpg";
    case DecryptBackend::kRnp: return "rnp";
  }
  return "?";
}

Result<DecryptBackend> ParseBackend(std::string_view text) {
  if (text == "auto") return DecryptBackend::kAuto;
  if (text == "gpg") return DecryptBackend::kGpg;
  if (text == "rnp") return DecryptBackend::kRnp;
  return Status::InvalidArgument("unknown decryption backend '" + std::string(text) +
                                 "' (expected auto, gpg or rnp)");
}

std::optional<uint64_t> PeekS2kCount(const uint8_t* p, size_t n) {
  if (n < 2 || (p[0] & 0x80) == 0) return std::nullopt;
  size_t pos;
  if (p[0] & 0x40) {  // new format: tag in the low 6 bits
    if ((p[0] & 0x3f) != 3) return std::nullopt;
    uint8_t l = p[1];
    pos = l < 192 ? 2 : l < 224 ? 3 : l == 255 ? 6 : 2;
  } else {  // old format: tag in bits 5..2, length type in bits 1..0
    if (((p[0] >> 2) & 0x0f) != 3) return std::nullopt;
    static constexpr size_t kLenBytes[4] = {1, 2, 4, 0};
    pos = 1 + kLenBytes[p[0] & 3];
  }
  // version 4, cipher, S2K type 3 (iterated + salted), hash, 8-byte salt, coded count.
  if (n < pos + 13 || p[pos] != 4 || p[pos + 2] != 3) return std::nullopt;
  uint8_t c = p[pos + 12];
  return static_cast<uint64_t>(16 + (c & 15)) << ((c >> 4) + 6);
}

DecryptBackend ChooseBackend(std::optional<uint64_t> size_hint,
                             std::optional<uint64_t> s2k_count) {
  // Measured in docs/benchmarks.md ("## Archive"): librnp's ~0.1 ms fixed cost and faster S2K
  // win for small messages, gpg's ~3x faster bulk decryption wins beyond a break-even size that
  // grows with the S2K count (the S2K work is a larger share of gpg's cost at 65M iterations).
  if (!size_hint) return DecryptBackend::kGpg;  // unknown size: assume a large archive
  uint64_t threshold = (s2k_count && *s2k_count >= (16u << 20)) ? (8u << 20) : (1u << 20);
  return *size_hint < threshold ? DecryptBackend::kRnp : DecryptBackend::kGpg;
}

namespace {

// Resolves kAuto once the first packet (the SKESK, a few dozen bytes) has arrived.
class AutoDecryptor final : public Decryptor {
 public:
  AutoDecryptor(const DecryptOptions& options, const Secret& passphrase, ByteSink* sink)
      : options_(options), passphrase_(passphrase.Clone()), sink_(sink) {}

  DecryptBackend backend() const override {
    return inner_ ? inner_->backend() : DecryptBackend::kAuto;
  }

  Status Write(const uint8_t* data, size_t n) override {
    if (!inner_) {
      head_.insert(head_.end(), data, data + n);
      if (head_.size() < kPeekBytes) return Status();
      return Start();
    }
    return inner_->Write(data, n);
  }

  Status Finish() override {
    if (!inner_) GRIN_RETURN_IF_ERROR(Start());
    return inner_->Finish();
  }

 private:
  static constexpr size_t kPeekBytes = 64;

  Status Start() {
    DecryptOptions o = options_;
    o.backend = ChooseBackend(options_.size_hint, PeekS2kCount(head_.data(), head_.size()));
    if (o.backend == DecryptBackend::kGpg && FindInPath(o.gpg_program).empty()) {
      o.backend = DecryptBackend::kRnp;  // gpg not installed: the in-process backend still works
    }
    GRIN_ASSIGN_OR_RETURN(inner_, NewDecryptor(o, passphrase_, sink_));
    std::vector<uint8_t> head = std::move(head_);
    if (head.empty()) return Status();
    return inner_->Write(head.data(), head.size());
  }

  DecryptOptions options_;
  Secret passphrase_;
  ByteSink* sink_;
  std::vector<uint8_t> head_;
  std::unique_ptr<Decryptor> inner_;
};

}  // namespace

Result<std::unique_ptr<Decryptor>> NewDecryptor(const DecryptOptions& options,
                                                const Secret& passphrase, ByteSink* sink) {
  switch (options.backend) {
    case DecryptBackend::kGpg:
      return internal::NewGpgDecryptor(options, passphrase, sink);
    case DecryptBackend::kRnp:
      return internal::NewRnpDecryptor(options, passphrase, sink);
    case DecryptBackend::kAuto:
      break;
  }
  return std::unique_ptr<Decryptor>(new AutoDecryptor(options, passphrase, sink));
}

}  // namespace grin::archive
