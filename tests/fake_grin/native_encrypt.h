#pragma once
// NativeEncrypt: the fake GRIN's opt-in in-process OpenPGP encryptor (OpenSSL), for benchmarks
// that need tens of thousands of archives: real gpg costs a process and an agent round trip per
// archive (~5-30 archives/s on two busy cores), this costs the AES and SHA-1 passes.
//
// It writes what `gpg --symmetric` writes for the same parameters (RFC 4880):
//   SKESK v4: cipher, S2K type 3 (iterated and salted; random salt, the iteration count rounded
//             up to the next one the one-byte coding can express, as gpg does), no encrypted
//             session key (the S2K key is the session key);
//   SEIPD v1: CFB with an all-zero IV over [block-size random prefix][its last 2 bytes again]
//             [literal data packet 'b', or a compressed packet (ZIP / ZLIB) holding it]
//             [MDC packet 0xD3 0x14 SHA-1(everything before it, 0xD3 0x14 included)].
// Packets carry definite lengths (new-format headers), where gpg streams partial lengths; both
// are valid OpenPGP. Salt and prefix are random, so two encryptions of the same plaintext differ
// (as with gpg). tests/fake_grin/native_encrypt_test.cc checks that real `gpg --decrypt` and the
// engine's own decryptor both return the plaintext byte for byte.
//
// The real gpg stays the fake's default (ArchiveParams::encryptor); this is selected with
// `grin-fake --encrypt native`. Thread-safe (no shared state).

#include <string>

#include "engine/base/result.h"
#include "tests/fake_grin/archive.h"

namespace grin::fake {

// Encrypts plaintext with params.cipher (AES, AES192, AES256), params.compress (none, zip,
// zlib), params.s2k_digest (SHA1, SHA224, SHA256, SHA384, SHA512) and params.s2k_count.
// kInvalidArgument naming the parameter if one is outside those (e.g. CAST5: use gpg).
Result<std::string> NativeEncrypt(const ArchiveParams& params, const std::string& passphrase,
                                  const std::string& plaintext);

// The one-byte S2K count coding (RFC 4880 §3.7.1.3): the smallest code whose count is at least
// `count` (255 above the largest expressible count, 65,011,712), and its decoded count.
int EncodeS2kCount(int64_t count);
int64_t DecodeS2kCount(int code);

}  // namespace grin::fake
