// The librnp backend: rnp_op_verify_execute() is one blocking call per message that pulls
// ciphertext through a reader callback, so it runs on a worker thread fed by a BoundedPipe.
// Plaintext is pushed to the sink from that thread as librnp produces it (<= 32 KiB at a time).
//
// librnp accepts messages without integrity protection (and even plain literal data) as a
// success, so the verdict also requires rnp_op_verify_get_protection_info() to report an MDC or
// AEAD mode that validated.

#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "engine/archive/bounded_pipe.h"
#include "engine/archive/decryptor_internal.h"
#include "engine/base/fn_deleter.h"

namespace grin::archive::internal {
namespace {

// 1 MiB of ciphertext in flight between the caller and the worker: memory stays flat whatever
// the message size, and the caller can run ahead of decryption by that much.
constexpr size_t kPipeCapacity = 1 << 20;
// SKESK (~15 bytes) + SEIPD header + the 18-byte random prefix + the 22-byte MDC packet.
constexpr uint64_t kMinMessageBytes = 64;

using RnpFfi = std::unique_ptr<rnp_ffi_st, FnDeleter<rnp_ffi_destroy>>;
using RnpInput = std::unique_ptr<rnp_input_st, FnDeleter<rnp_input_destroy>>;
using RnpOutput = std::unique_ptr<rnp_output_st, FnDeleter<rnp_output_destroy>>;
using RnpOpVerify = std::unique_ptr<rnp_op_verify_st, FnDeleter<rnp_op_verify_destroy>>;
using RnpBuffer = std::unique_ptr<char, FnDeleter<rnp_buffer_destroy>>;

class RnpDecryptor final : public Decryptor {
 public:
  RnpDecryptor(const Secret& passphrase, ByteSink* sink, uint64_t max_plaintext)
      : passphrase_(passphrase.Clone()),
        sink_(sink),
        max_plaintext_(max_plaintext),
        pipe_(kPipeCapacity) {
    worker_ = std::thread([this] { verdict_ = Run(); });
  }

  ~RnpDecryptor() override {
    if (worker_.joinable()) {
      pipe_.CloseWrite(/*abort=*/true);
      worker_.join();
    }
  }

  DecryptBackend backend() const override { return DecryptBackend::kRnp; }

  Status Write(const uint8_t* data, size_t n) override {
    if (!worker_.joinable()) return Status::FailedPrecondition("Write after Finish");
    if (pipe_.Write(data, n)) return Status();
    // The worker stopped reading: decryption already failed. Collect its reason.
    return Finish();
  }

  Status Finish() override {
    if (worker_.joinable()) {
      pipe_.CloseWrite();
      worker_.join();
    }
    return verdict_;
  }

 private:
  static bool Reader(void* ctx, void* buf, size_t len, size_t* read) {
    auto* self = static_cast<RnpDecryptor*>(ctx);
    long r = self->pipe_.Read(static_cast<uint8_t*>(buf), len);
    if (r < 0) {
      *read = 0;
      return false;  // the caller abandoned the message
    }
    *read = static_cast<size_t>(r);
    self->ciphertext_ += *read;
    if (r == 0) self->eof_seen_ = true;
    return true;
  }

  static bool Writer(void* ctx, const void* buf, size_t len) {
    auto* self = static_cast<RnpDecryptor*>(ctx);
    if (!self->sink_status_.ok()) return false;
    self->plaintext_ += len;
    if (self->max_plaintext_ && self->plaintext_ > self->max_plaintext_) {
      self->sink_status_ = Status::ResourceExhausted("plaintext exceeds the limit of " +
                                                     std::to_string(self->max_plaintext_) +
                                                     " bytes");
      return false;
    }
    if (len == 0) return true;
    self->sink_status_ = self->sink_->Write(static_cast<const uint8_t*>(buf), len);
    return self->sink_status_.ok();
  }

  static bool PasswordProvider(rnp_ffi_t, void* ctx, rnp_key_handle_t, const char* pgp_context,
                               char buf[], size_t buf_len) {
    auto* self = static_cast<RnpDecryptor*>(ctx);
    if (pgp_context == nullptr || std::strcmp(pgp_context, "decrypt (symmetric)") != 0) {
      return false;
    }
    // librnp asks again after a wrong passphrase; one try is all we have.
    if (self->password_asked_++ > 0) return false;
    const std::string& p = self->passphrase_.reveal();
    if (p.size() + 1 > buf_len) return false;
    std::memcpy(buf, p.c_str(), p.size() + 1);
    return true;
  }

  Status Run() {
    Status s = RunInner();
    // Stop the producer if we quit early, so Write() does not block forever.
    pipe_.CloseRead();
    return s;
  }

  Status RunInner() {
    rnp_ffi_t raw_ffi = nullptr;
    if (rnp_ffi_create(&raw_ffi, "GPG", "GPG") != RNP_SUCCESS) {
      return Status::Internal("rnp_ffi_create failed");
    }
    RnpFfi ffi(raw_ffi);
    if (rnp_ffi_set_pass_provider(ffi.get(), &RnpDecryptor::PasswordProvider, this) !=
        RNP_SUCCESS) {
      return Status::Internal("rnp_ffi_set_pass_provider failed");
    }
    rnp_input_t raw_in = nullptr;
    if (rnp_input_from_callback(&raw_in, &RnpDecryptor::Reader, nullptr, this) != RNP_SUCCESS) {
      return Status::Internal("rnp_input_from_callback failed");
    }
    RnpInput input(raw_in);
    rnp_output_t raw_out = nullptr;
    if (rnp_output_to_callback(&raw_out, &RnpDecryptor::Writer, nullptr, this) != RNP_SUCCESS) {
      return Status::Internal("rnp_output_to_callback failed");
    }
    RnpOutput output(raw_out);
    rnp_op_verify_t raw_op = nullptr;
    if (rnp_op_verify_create(&raw_op, ffi.get(), input.get(), output.get()) != RNP_SUCCESS) {
      return Status::Internal("rnp_op_verify_create failed");
    }
    RnpOpVerify op(raw_op);
    rnp_op_verify_set_flags(op.get(), RNP_VERIFY_IGNORE_SIGS_ON_DECRYPT);
    rnp_result_t rc = rnp_op_verify_execute(op.get());

    // Protection info is meaningful even after a failure (it tells "no MDC" from "bad MDC").
    char* raw_mode = nullptr;
    bool valid = false;
    rnp_result_t prc = rnp_op_verify_get_protection_info(op.get(), &raw_mode, nullptr, &valid);
    RnpBuffer mode(raw_mode);
    std::string mode_str = (prc == RNP_SUCCESS && mode) ? mode.get() : "";
    // Drain anything the caller still pushes, so Finish() sees a clean end.
    if (!sink_status_.ok()) return sink_status_;
    if (rc != RNP_SUCCESS) {
      // librnp reports a header cut short as a bad password; a message that ended within its
      // first packets cannot have been decrypted with any passphrase.
      if (eof_seen_ && ciphertext_ < kMinMessageBytes) {
        return Status::DataLoss("truncated message (" + std::to_string(ciphertext_) +
                                " bytes)");
      }
      if (password_asked_ > 0 && plaintext_ == 0 &&
          (rc == RNP_ERROR_NO_SUITABLE_KEY || rc == RNP_ERROR_BAD_PASSWORD ||
           rc == RNP_ERROR_DECRYPT_FAILED)) {
        return Status::PermissionDenied("wrong passphrase (librnp: " +
                                        std::string(rnp_result_to_string(rc)) + ")");
      }
      if (mode_str == "cfb" || mode_str == "none") {
        return Status::DataLoss("message has no integrity protection (" + mode_str +
                                "); refused");
      }
      return Status::DataLoss("decryption failed: corrupt or truncated message (librnp: " +
                              std::string(rnp_result_to_string(rc)) + ")");
    }
    if (mode_str == "none") {
      return Status::DataLoss("input is not encrypted (plain OpenPGP data); refused");
    }
    if (mode_str != "cfb-mdc" && mode_str.rfind("aead", 0) != 0) {
      return Status::DataLoss("message has no integrity protection (" +
                              (mode_str.empty() ? std::string("unknown") : mode_str) +
                              "); refused");
    }
    if (!valid) return Status::DataLoss("integrity check (" + mode_str + ") failed");
    return Status();
  }

  Secret passphrase_;
  ByteSink* sink_;
  uint64_t max_plaintext_;
  BoundedPipe pipe_;
  // Touched only by the worker until join.
  Status sink_status_;
  uint64_t plaintext_ = 0;
  uint64_t ciphertext_ = 0;
  bool eof_seen_ = false;
  int password_asked_ = 0;
  Status verdict_;
  std::thread worker_;  // last: starts after every other member is built
};

}  // namespace

Result<std::unique_ptr<Decryptor>> NewRnpDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink) {
  return std::unique_ptr<Decryptor>(
      new RnpDecryptor(passphrase, sink, options.max_plaintext_bytes));
}

}  // namespace grin::archive::internal
