#pragma once
// OpenPGP symmetric crypto for the native decryptor: algorithm tables, string-to-key (S2K) key
// derivation, and a CFB decrypter that decrypts in bulk. OpenSSL types stay out of this header.
//
// CFB decryption is parallel: the keystream for ciphertext block i is E(C[i-1]) (E(IV) for the
// first), so a run of m whole blocks is decrypted with one ECB call over the ciphertext shifted
// by one block, then an XOR — AES-NI pipelines that, where OpenSSL's own CFB mode is serial.
//
// Legacy ciphers (CAST5, Blowfish) live in OpenSSL 3's "legacy" provider; they are fetched from a
// private library context so the process's default context is left alone. Thread-safe:
// algorithm lookups are initialised once; each CfbDecrypter is used by one thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::archive::internal {

struct CipherInfo {
  int id;            // OpenPGP symmetric algorithm id
  const char* name;  // for messages ("AES256")
  size_t key_len;
  size_t block_len;
};
// The cipher with that OpenPGP id, or an error naming it (unknown, or not available here:
// IDEA, Twofish, or a legacy cipher whose provider failed to load).
Result<const CipherInfo*> FindCipher(int id);

// Digest length in bytes of the OpenPGP hash id, or an error if unsupported.
Result<size_t> HashLength(int id);

struct S2k {
  int type = 0;  // 0 simple, 1 salted, 3 iterated and salted
  int hash = 0;  // OpenPGP hash id
  uint8_t salt[8] = {};
  uint64_t count = 0;  // decoded iteration count (bytes hashed), type 3 only
};
// Parses an S2K specifier at p[0..n). *used = its length. kDataLoss if malformed or unsupported.
Result<S2k> ParseS2k(const uint8_t* p, size_t n, size_t* used);
// Derives key_len bytes from the passphrase (RFC 4880 §3.7.1).
Status DeriveKey(const S2k& s2k, const std::string& passphrase, uint8_t* key, size_t key_len);

class CfbDecrypter {
 public:
  CfbDecrypter();
  ~CfbDecrypter();
  CfbDecrypter(const CfbDecrypter&) = delete;
  CfbDecrypter& operator=(const CfbDecrypter&) = delete;

  // Starts plain CFB decryption with an all-zero IV (OpenPGP's SEIPD v1 and session-key modes).
  Status Init(const CipherInfo& cipher, const uint8_t* key);
  // Decrypts the next n bytes of the stream; in and out must not overlap. Any n.
  void Decrypt(const uint8_t* in, uint8_t* out, size_t n);
  size_t block_size() const { return bs_; }

 private:
  void EncryptBlock(const uint8_t* in, uint8_t* out);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t bs_ = 16;
  size_t pos_ = 0;        // bytes of the current block already decrypted
  uint8_t ks_[16] = {};   // keystream of the current block: E(previous ciphertext block)
  uint8_t cur_[16] = {};  // ciphertext of the current block so far
};

}  // namespace grin::archive::internal
