#pragma once
// MessageOutline: what one passphrase-encrypted OpenPGP archive is made of — its packets and
// their parameters (cipher, S2K, compression, literal data header) — as the native decryptor
// saw them while decrypting. For `grin-jobs doctor --capture`, the sample pack of what GRIN
// really sends. Holds nothing secret: the S2K salt and count are public, keys are never kept.

#include <cstdint>
#include <string>
#include <vector>

namespace grin::archive {

struct MessageOutline {
  struct KeyPacket {           // one symmetric-key encrypted session key packet (tag 3)
    int version = 0;
    std::string cipher;        // the key-encryption cipher ("AES256")
    int s2k_type = 0;          // 0 simple, 1 salted, 3 iterated and salted
    int s2k_hash = 0;          // OpenPGP hash id (2 = SHA1, 8 = SHA256, ...)
    uint64_t s2k_count = 0;    // bytes hashed (type 3)
    bool encrypted_session_key = false;  // false: the S2K key is the session key
  };
  std::vector<KeyPacket> key_packets;
  std::string session_cipher;  // the cipher of the data, once a key opened it
  int seipd_version = -1;      // the encrypted data packet (tag 18) version; -1 none seen
  int compression = -1;        // compressed data packet algorithm (0 none, 1 ZIP, 2 ZLIB, 3
                               // BZip2); -1 no compressed packet
  char literal_format = 0;     // literal data packet: 'b', 't', 'u'; 0 none seen
  std::string literal_name;    // its file name field (as sent; may be empty)
  uint32_t literal_date = 0;   // its date field (Unix seconds)
  bool mdc_verified = false;   // the modification detection code matched at the end
};

// One line per packet, e.g. "symmetric-key packet: version 4, cipher AES256, S2K iterated and
// salted, hash SHA1, count 65536, session key encrypted: no". Non-printable bytes of the
// literal name are escaped (\xNN).
std::string DescribeOutline(const MessageOutline& outline);

}  // namespace grin::archive
