#include "tests/net/test_pki.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>

#include "tests/support/test_pki.h"

namespace grin::net::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "TestPki: %s failed\n", what);
  std::abort();
}

using BioPtr = std::unique_ptr<BIO, FnDeleter<BIO_free_all>>;

BioPtr MemBio(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) Die("BIO_new_mem_buf");
  return bio;
}

X509Ptr ReadCert(const std::string& pem) {
  X509Ptr x(PEM_read_bio_X509(MemBio(pem).get(), nullptr, nullptr, nullptr));
  if (!x) Die("PEM_read_bio_X509");
  return x;
}

PkeyPtr ReadKey(const std::string& pem) {
  PkeyPtr k(PEM_read_bio_PrivateKey(MemBio(pem).get(), nullptr, nullptr, nullptr));
  if (!k) Die("PEM_read_bio_PrivateKey");
  return k;
}

}  // namespace

TestPki TestPki::Generate(const std::string& ca_name) {
  auto tls = grin::testing::GenerateTestTls(ca_name);
  if (!tls.ok()) Die(tls.status().message().c_str());
  TestPki p;
  p.ca_key = ReadKey(tls->ca_key_pem);
  p.ca_cert = ReadCert(tls->ca_cert_pem);
  p.server_key = ReadKey(tls->server_key_pem);
  p.server_cert = ReadCert(tls->server_cert_pem);
  return p;
}

bool TestPki::WriteCaPem(const std::string& path) const {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) return false;
  const bool ok = PEM_write_bio_X509(bio, ca_cert.get()) == 1;
  BIO_free(bio);
  return ok;
}

}  // namespace grin::net::testing
