#pragma once
// Test TLS material for loopback servers: a throw-away CA and a server certificate it signs, for
// "127.0.0.1", "::1" and "localhost". Generated in-process with OpenSSL (EC P-256: ~1 ms, where
// RSA-2048 would cost ~100 ms per server start). Never use outside tests.
//
// Thread safety: pure functions; safe from any thread.

#include <string>

#include "engine/base/result.h"

namespace grin::fake {

struct TestTlsMaterial {
  std::string ca_cert_pem;      // give this to clients as their CA file
  std::string server_cert_pem;  // leaf certificate, signed by the CA
  std::string server_key_pem;   // PKCS#8 private key of the leaf
};

// Generates a fresh CA and leaf (valid from 1 day ago for 10 years). kInternal on OpenSSL failure.
Result<TestTlsMaterial> GenerateTestTls();

// Writes ca.pem, server.pem and server.key (0600) into dir (which must exist).
Status WriteTestTls(const TestTlsMaterial& tls, const std::string& dir);

}  // namespace grin::fake
