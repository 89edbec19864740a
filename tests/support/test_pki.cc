#include "tests/support/test_pki.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/fn_deleter.h"

namespace grin::testing {
namespace {

using EvpPkey = std::unique_ptr<EVP_PKEY, FnDeleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, FnDeleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, FnDeleter<BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, FnDeleter<X509_EXTENSION_free>>;

EvpPkey NewEcKey() { return EvpPkey(EVP_EC_gen("P-256")); }

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// san: the leaf's subjectAltName (ignored for the CA).
X509Ptr MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                 const std::string& san) {
  X509Ptr cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("grin-jobs tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok = true;
  if (is_ca) {
    ok = AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE") &&
         AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    ok = AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
         AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth") &&
         AddExt(cert.get(), signer, NID_subject_alt_name, san.c_str()) &&
         AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid");
  }
  if (!ok) return nullptr;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  chmod(path.c_str(), mode);
  return Status::Ok();
}

}  // namespace

Result<TestTlsMaterial> GenerateTestTls(const std::string& ca_name,
                                        const std::vector<std::string>& extra_ips) {
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  for (const auto& ip : extra_ips) {
    if (ip.empty() || ip.find_first_not_of("0123456789.:abcdef") != std::string::npos) {
      return Status::InvalidArgument("not an IP address for a test certificate: " + ip);
    }
    san += ",IP:" + ip;
  }
  EvpPkey ca_key = NewEcKey();
  EvpPkey leaf_key = NewEcKey();
  if (!ca_key || !leaf_key) return Status::Internal("EC key generation failed");
  X509Ptr ca = MakeCert(ca_key.get(), ca_name.c_str(), nullptr, ca_key.get(), true, san);
  if (!ca) return Status::Internal("CA certificate generation failed");
  X509Ptr leaf = MakeCert(leaf_key.get(), "127.0.0.1", ca.get(), ca_key.get(), false, san);
  if (!leaf) return Status::Internal("server certificate generation failed");

  TestTlsMaterial out;
  BioPtr b1(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b1.get(), ca.get());
  out.ca_cert_pem = BioToString(b1.get());
  BioPtr b2(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b2.get(), leaf.get());
  out.server_cert_pem = BioToString(b2.get());
  BioPtr b3(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b3.get(), leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.server_key_pem = BioToString(b3.get());
  BioPtr b4(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b4.get(), ca_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.ca_key_pem = BioToString(b4.get());
  return out;
}

Status WriteTestTls(const TestTlsMaterial& tls, const std::string& dir) {
  GRIN_RETURN_IF_ERROR(WriteFile(dir + "/ca.pem", tls.ca_cert_pem, 0644));
  GRIN_RETURN_IF_ERROR(WriteFile(dir + "/server.pem", tls.server_cert_pem, 0644));
  return WriteFile(dir + "/server.key", tls.server_key_pem, 0600);
}

}  // namespace grin::testing
