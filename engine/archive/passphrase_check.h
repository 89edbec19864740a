#pragma once
// Checking a passphrase against the first bytes of an encrypted archive, without the rest: the
// preflight of `grin-jobs doctor`. A passphrase-encrypted OpenPGP message (SKESK v4 + SEIPD v1)
// starts with the S2K parameters and the encrypted session key, then a random prefix whose last
// two bytes repeat the two before them (the "quick check"): the passphrase is tested there, and
// the decrypted packets that follow within the prefix confirm it (a wrong key passes the 2-byte
// check once in 65536 but does not decrypt to OpenPGP packets).

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/archive/decryptor.h"

namespace grin::archive {

// How many leading bytes of an archive CheckPassphrase wants: the SKESK packets and the first
// decrypted packets fit many times over.
inline constexpr size_t kPassphraseCheckBytes = 64 * 1024;

struct PassphraseCheck {
  enum class Verdict { kOk, kWrong, kUndecidable };
  Verdict verdict = Verdict::kUndecidable;
  std::string detail;  // why (wrong / undecidable); never contains the passphrase
};

// Tests `passphrase` against prefix[0..n), the first bytes of one archive (n may be the whole
// archive). kOk: a session key passed the check bytes and decrypted to OpenPGP packets. kWrong:
// the passphrase does not open this archive. kUndecidable: the bytes end before the check bytes,
// or the message uses what the native decoder lacks (AEAD, IDEA, Twofish), or is not an
// encrypted OpenPGP message; `detail` says which.
PassphraseCheck CheckPassphrase(const uint8_t* prefix, size_t n, const Secret& passphrase);

}  // namespace grin::archive
