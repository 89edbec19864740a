#include "tests/net/test_pki.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace grin::net::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "TestPki: %s failed\n", what);
  std::abort();
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) Die("X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509Ptr MakeCert(EVP_PKEY* key, const std::string& cn, long serial, X509* issuer,
                 EVP_PKEY* issuer_key, bool is_ca) {
  X509Ptr x(X509_new());
  if (!x) Die("X509_new");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer ? issuer : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(iss));
  AddExt(x.get(), iss, NID_subject_key_identifier, "hash");
  if (is_ca) {
    AddExt(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(x.get(), iss, NID_key_usage, "critical,digitalSignature");
    AddExt(x.get(), iss, NID_ext_key_usage, "serverAuth");
    AddExt(x.get(), iss, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    AddExt(x.get(), iss, NID_authority_key_identifier, "keyid:always");
  }
  if (X509_sign(x.get(), issuer_key, EVP_sha256()) == 0) Die("X509_sign");
  return x;
}

}  // namespace

TestPki TestPki::Generate(const std::string& ca_name) {
  TestPki p;
  p.ca_key.reset(EVP_EC_gen("P-256"));
  p.server_key.reset(EVP_EC_gen("P-256"));
  if (!p.ca_key || !p.server_key) Die("EVP_EC_gen");
  p.ca_cert = MakeCert(p.ca_key.get(), ca_name, 1, nullptr, p.ca_key.get(), true);
  p.server_cert =
      MakeCert(p.server_key.get(), "127.0.0.1", 2, p.ca_cert.get(), p.ca_key.get(), false);
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
