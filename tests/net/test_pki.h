#pragma once
// TestPki: tests/support/test_pki.h's throwaway CA and server certificate (127.0.0.1, ::1,
// localhost) as OpenSSL objects, for the loopback server's SSL_CTX. The CA certificate is
// written as PEM into a temp directory for the client's ca_file.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "engine/base/fn_deleter.h"

namespace grin::net::testing {

using X509Ptr = std::unique_ptr<X509, FnDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, FnDeleter<EVP_PKEY_free>>;

struct TestPki {
  PkeyPtr ca_key;
  X509Ptr ca_cert;
  PkeyPtr server_key;
  X509Ptr server_cert;

  // Generates a CA named `ca_name` and a server certificate it signs. Aborts the test on failure.
  static TestPki Generate(const std::string& ca_name);
  // Writes the CA certificate as PEM to `path`; false on error.
  bool WriteCaPem(const std::string& path) const;
};

}  // namespace grin::net::testing
