#pragma once
// The tests' one PKI: a throw-away CA and a server certificate it signs, for "127.0.0.1", "::1"
// and "localhost", generated in process with OpenSSL at test time (EC P-256: ~1 ms, where
// RSA-2048 would cost ~100 ms per server start); nothing is read from the repository. The fake
// GRIN server and the transport tests' loopback server (tests/net/test_pki.h, the same material
// as OpenSSL objects) both use it; the Swift S3 server's certificate comes from scripts/s3-server.
// Never use outside tests. Library target grin_test_pki.
//
// Thread safety: pure functions; safe from any thread.

#include <string>
#include <vector>

#include "engine/base/result.h"

namespace grin::testing {

struct TestTlsMaterial {
  std::string ca_cert_pem;      // give this to clients as their CA file
  std::string server_cert_pem;  // leaf certificate, signed by the CA
  std::string server_key_pem;   // PKCS#8 private key of the leaf
  std::string ca_key_pem;       // PKCS#8 private key of the CA (to sign more certificates)
};

// Generates a fresh CA (common name ca_name) and leaf, valid from 1 day ago for 10 years, with
// random serials; the leaf also names extra_ips (e.g. a test's veth address, for a client in a
// network namespace). kInternal on OpenSSL failure, kInvalidArgument for a bad address.
Result<TestTlsMaterial> GenerateTestTls(const std::string& ca_name = "grin-jobs test CA",
                                        const std::vector<std::string>& extra_ips = {});

// Writes ca.pem, server.pem and server.key (0600) into dir (which must exist).
Status WriteTestTls(const TestTlsMaterial& tls, const std::string& dir);

}  // namespace grin::testing
