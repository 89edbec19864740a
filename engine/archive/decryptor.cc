#include "engine/archive/decryptor.h"

#include <openssl/crypto.h>

#include <vector>

#include "engine/archive/decryptor_internal.h"
#include "engine/base/subprocess.h"

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
    case DecryptBackend::kNative: return "native";
  }
  return "?";
}

Result<DecryptBackend> ParseBackend(std::string_view text) {
  if (text == "auto") return DecryptBackend::kAuto;
  if (text == "gpg") return DecryptBackend::kGpg;
  if (text == "rnp") return DecryptBackend::kRnp;
  if (text == "native") return DecryptBackend::kNative;
  return Status::InvalidArgument("unknown decryption backend '" + std::string(text) +
                                 "' (expected auto, native, gpg or rnp)");
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

DecryptBackend ChooseBackend(std::optional<uint64_t>, std::optional<uint64_t>) {
  return DecryptBackend::kNative;
}

namespace internal {

DecryptBackend ChooseExternalBackend(std::optional<uint64_t> size_hint,
                                     std::optional<uint64_t> s2k_count) {
  // CPU cost per message, measured with scripts/bench-archive (docs/benchmarks.md, "## Archive";
  // AES-256, 2-core Debian 12 VM, 2026-11-28):
  //   gpg: ~2.9 ms fixed (spawn, pipes) + S2K + ~1.9 ms/MiB
  //   rnp: ~0.1 ms fixed + S2K (~0.32 ms per million iterations less than gpg's) + ~3.8 ms/MiB
  // so librnp wins below a break-even size that grows with the S2K count: ~1.5 MiB at 65,536
  // iterations, ~12 MiB at GnuPG's default 65,011,712.
  constexpr double kFixedGapMs = 2.9;
  constexpr double kS2kGapMsPerMillion = 0.32;
  constexpr double kBulkGapMsPerMiB = 1.9;
  if (!size_hint) return DecryptBackend::kGpg;  // unknown size: assume a large archive
  double count = static_cast<double>(s2k_count.value_or(65'011'712));
  double break_even_mib = (kFixedGapMs + kS2kGapMsPerMillion * count / 1e6) / kBulkGapMsPerMiB;
  double size_mib = static_cast<double>(*size_hint) / (1 << 20);
  return size_mib < break_even_mib ? DecryptBackend::kRnp : DecryptBackend::kGpg;
}

}  // namespace internal

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
    std::optional<uint64_t> s2k = PeekS2kCount(head_.data(), head_.size());
    o.backend = internal::NativeCanDecrypt(head_.data(), head_.size())
                    ? ChooseBackend(options_.size_hint, s2k)
                    : internal::ChooseExternalBackend(options_.size_hint, s2k);
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
    case DecryptBackend::kNative:
      return internal::NewNativeDecryptor(options, passphrase, sink);
    case DecryptBackend::kAuto:
      break;
  }
  return std::unique_ptr<Decryptor>(new AutoDecryptor(options, passphrase, sink));
}

}  // namespace grin::archive
