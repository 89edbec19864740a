#pragma once
// Backend factories behind NewDecryptor(); not part of the public API.

#include <memory>

#include "engine/archive/decryptor.h"

namespace grin::archive::internal {

Result<std::unique_ptr<Decryptor>> NewGpgDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink);
Result<std::unique_ptr<Decryptor>> NewRnpDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink);
Result<std::unique_ptr<Decryptor>> NewNativeDecryptor(const DecryptOptions& options,
                                                      const Secret& passphrase, ByteSink* sink);

// Whether the first bytes of a message (its SKESK packets) use only what the native backend
// implements: false for AEAD (SKESK v5/v6, SEIPD v2, tag 20) and ciphers, S2K types or hashes it
// lacks, which kAuto then hands to librnp or gpg. Junk and unencrypted data count as true: the
// native backend refuses them with a clear reason.
bool NativeCanDecrypt(const uint8_t* data, size_t n);

// Feeds the first n bytes of a message to the native backend and pushes what it decrypted
// through the plaintext layer: kPermissionDenied for a wrong passphrase, another error if the
// backend cannot tell (or the bytes are not a message it reads); *keyed whether a session key
// passed the check bytes.
Status CheckPassphrasePrefix(const uint8_t* data, size_t n, const Secret& passphrase,
                             bool* keyed);

// The pre-native rule between the two external backends, by size and S2K count (measured
// 2026-11-28; used by kAuto only for messages the native backend cannot decrypt).
DecryptBackend ChooseExternalBackend(std::optional<uint64_t> size_hint,
                                     std::optional<uint64_t> s2k_count);

// Interprets gpg's --status-fd lines and exit status. Exposed for unit tests.
struct GpgVerdictInput {
  std::string status_text;  // everything read from the status fd
  int wait_status = 0;      // raw waitpid status
  std::string stderr_tail;  // last bytes of stderr, for the message
};
Status GpgVerdict(const GpgVerdictInput& in);

}  // namespace grin::archive::internal
