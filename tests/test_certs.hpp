// Test certificates made at test time with the OpenSSL API, so no key material lives in the
// repository and nothing expires: a self-signed EC P-256 certificate for CN=localhost with
// subjectAltName DNS:localhost and IP:127.0.0.1. It is its own CA, so the same file serves as
// the server's certificate and as the client's trust anchor; two calls give two unrelated
// "CAs" (a fresh key each), which is what a wrong-CA test needs.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/temp_dir.hpp"

namespace moatkv::test {

struct test_cert {
  std::string cert_file;  // PEM certificate (also the CA file clients trust)
  std::string key_file;   // PEM private key
};

namespace detail {

inline void cert_check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

inline void add_ext(X509* x, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  cert_check(ext != nullptr, value);
  cert_check(X509_add_ext(x, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

inline void write_pem(const std::string& file, const std::function<int(FILE*)>& write) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "wb"), &std::fclose);
  cert_check(f != nullptr, "fopen");
  cert_check(write(f.get()) == 1, "PEM write");
}

}  // namespace detail

/// Writes NAME.crt and NAME.key into `dir`.
inline test_cert make_test_cert(const temp_dir& dir, const std::string& name = "server") {
  using detail::cert_check;
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  cert_check(key != nullptr, "EVP_EC_gen");
  std::unique_ptr<X509, void (*)(X509*)> x(X509_new(), &X509_free);
  cert_check(x != nullptr, "X509_new");
  X509_set_version(x.get(), 2);  // v3, for the extensions
  // Distinct serials keep two test CAs apart in error messages.
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 7 * 24 * 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* subject = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x.get(), subject);
  detail::add_ext(x.get(), NID_basic_constraints, "critical,CA:TRUE");
  detail::add_ext(x.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
  detail::add_ext(x.get(), NID_subject_key_identifier, "hash");
  detail::add_ext(x.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  cert_check(X509_sign(x.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  test_cert out{dir.file(name + ".crt"), dir.file(name + ".key")};
  detail::write_pem(out.cert_file, [&](FILE* f) { return PEM_write_X509(f, x.get()); });
  detail::write_pem(out.key_file, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return out;
}

}  // namespace moatkv::test
