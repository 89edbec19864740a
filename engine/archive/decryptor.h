#pragma once
// Decryptor: streaming decryption of one symmetric (passphrase) OpenPGP message, as GRIN serves
// its archives. Ciphertext is pushed chunk by chunk as it arrives (Write), plaintext flows to a
// ByteSink as soon as it is produced, and Finish() returns the verdict.
//
// Three real backends behind the one interface:
//   kNative  an in-process decoder of passphrase-encrypted OpenPGP (SKESK v4 + SEIPD v1 with MDC,
//            literal / ZIP / ZLIB / BZip2 data) on the caller's thread: CFB decrypted in bulk
//            (AES-NI) and the MDC's SHA-1 by OpenSSL. No AEAD (SEIPD v2), IDEA or Twofish.
//   kGpg     `gpg --decrypt` as a subprocess through pipes: batch mode, loopback pinentry, the
//            passphrase through its own pipe (never argv), a private GNUPGHOME, the verdict read
//            from --status-fd. ~1.2 GiB/s bulk, ~2 ms to start a process.
//   kRnp     librnp in process on a worker thread fed through a bounded pipe. ~0.1 ms fixed
//            cost, ~400 MiB/s bulk.
// kAuto picks native, unless the message's first packets need something only librnp / gpg has
// (see ChooseBackend; the measurements are in docs/benchmarks.md).
//
// The verdict: Finish() returns OK only if the message was encrypted, carried integrity
// protection (MDC or AEAD) and it verified. Messages without integrity protection, plain
// (unencrypted) OpenPGP data, a wrong passphrase, corrupt or truncated input all fail. Plaintext
// reaches the sink BEFORE the verdict (every backend streams): the caller must commit nothing
// downstream until Finish() returns OK, and discard what the sink received otherwise.
//
// Thread safety: one Decryptor is driven by one thread. The sink is called serially, possibly from
// the backend's own thread, and never after Finish() (or the destructor) returns. Destroying a
// Decryptor without Finish() aborts it (kills gpg / stops the worker).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/archive/sink.h"
#include "engine/archive/message_outline.h"
#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::archive {

enum class DecryptBackend { kAuto, kGpg, kRnp, kNative };

std::string_view BackendName(DecryptBackend b);
// "auto" | "gpg" | "rnp" | "native".
Result<DecryptBackend> ParseBackend(std::string_view text);

// A secret string (the passphrase): not copyable, wiped on destruction, never printed.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(Secret&& o) noexcept : value_(std::move(o.value_)) {}
  Secret& operator=(Secret&& o) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();
  // Explicit copy, so every copy of the secret is visible in the code.
  Secret Clone() const { return Secret(value_); }
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

struct DecryptOptions {
  DecryptBackend backend = DecryptBackend::kAuto;
  // Expected ciphertext size (e.g. Content-Length), used by kAuto; nullopt if unknown.
  std::optional<uint64_t> size_hint;
  // Refuse (kResourceExhausted) once the plaintext exceeds this: a compression bomb at the
  // OpenPGP layer. 0 = unlimited.
  uint64_t max_plaintext_bytes = 0;
  // gpg program (PATH lookup unless it contains '/').
  std::string gpg_program = "gpg";
  // GNUPGHOME for gpg; empty = a private 0700 directory created once per process under $TMPDIR
  // and removed at exit. gpg only creates an empty keybox there; no agent is started.
  std::string gnupg_home;
  // Filled with the message's packets as they are read (message_outline.h); not owned, must
  // outlive the decryptor. The native backend fills it; gpg and rnp leave it untouched.
  MessageOutline* outline = nullptr;
};

class Decryptor {
 public:
  virtual ~Decryptor() = default;
  // Pushes the next n bytes of ciphertext. May call the sink (gpg) or block while the bounded
  // pipe to the worker is full (rnp). Returns an error early if decryption has already failed or
  // the sink refused data; the caller then stops (Finish() repeats the reason).
  virtual Status Write(const uint8_t* data, size_t n) = 0;
  // End of ciphertext. Drains remaining plaintext into the sink and returns the verdict (see the
  // file comment). kPermissionDenied: wrong passphrase. kDataLoss: corrupt, truncated, not
  // integrity-protected or not encrypted. kResourceExhausted: plaintext over the limit.
  virtual Status Finish() = 0;
  // The backend that actually ran (kAuto resolves at the first bytes).
  virtual DecryptBackend backend() const = 0;
};

// Creates a decryptor for one message; plaintext goes to sink (not owned; must outlive it).
// Fails early (kNotFound) if the gpg program is missing when kGpg is forced.
Result<std::unique_ptr<Decryptor>> NewDecryptor(const DecryptOptions& options,
                                                const Secret& passphrase, ByteSink* sink);

// The default-backend rule for kAuto, for a message the native backend can decrypt: kNative at
// every size and S2K count (it measured fastest at each, docs/benchmarks.md "Archive"). Messages
// it cannot decrypt (AEAD, IDEA, Twofish) go to librnp or gpg by the older size/S2K rule.
// s2k_count is the decoded iteration count from the SKESK packet (nullopt if it could not be
// read); size_hint the ciphertext size if known.
DecryptBackend ChooseBackend(std::optional<uint64_t> size_hint, std::optional<uint64_t> s2k_count);

// Reads the S2K iteration count from the start of a message (the first SKESK packet). Returns
// nullopt if the bytes do not start with a v4 SKESK using iterated+salted S2K.
std::optional<uint64_t> PeekS2kCount(const uint8_t* data, size_t n);

}  // namespace grin::archive
