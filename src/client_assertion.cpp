#include "client_assertion.hpp"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <limits>
#include <memory>

#include "encoding.hpp"

namespace mcpauth {
namespace {

struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct JwtFree { void operator()(jwt_t* p) const { jwt_free(p); } };

AssertionResult fail(const char* why) { return {false, std::string("client_assertion: ") + why}; }

std::unique_ptr<BIO, BioFree> mem_bio(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return nullptr;
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Never let OpenSSL prompt on a terminal for the passphrase of an encrypted
// key (its default callback does): encrypted keys are simply refused.
int no_passphrase(char*, int, int, void*) { return -1; }

// The JWS alg a private key signs with, or JWT_ALG_INVAL.
jwt_alg_t alg_for_key(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    return EVP_PKEY_get_bits(key) >= 2048 ? JWT_ALG_RS256 : JWT_ALG_INVAL;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
      return JWT_ALG_INVAL;
    std::string_view g(group, len);
    if (g == "prime256v1" || g == "P-256") return JWT_ALG_ES256;
    if (g == "secp384r1" || g == "P-384") return JWT_ALG_ES384;
    if (g == "secp521r1" || g == "P-521") return JWT_ALG_ES512;
  }
  return JWT_ALG_INVAL;
}

}  // namespace

AssertionResult make_client_assertion(std::string_view private_key_pem, std::string_view client_id,
                                      std::string_view token_endpoint, int64_t now, std::string_view kid,
                                      std::string_view x5t) {
  if (client_id.empty() || token_endpoint.empty()) return fail("client_id and token endpoint are required");
  // libjwt takes C strings: an embedded NUL would silently truncate a claim.
  for (std::string_view s : {client_id, token_endpoint, kid, x5t}) {
    if (s.find('\0') != std::string_view::npos) return fail("NUL byte in an argument");
  }
  if (now < 0 || now > std::numeric_limits<long>::max() - kClientAssertionLifetime) return fail("bad time");

  auto bio = mem_bio(private_key_pem);
  if (!bio) return fail("key too large");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return fail("cannot read the private key PEM");
  jwt_alg_t alg = alg_for_key(key.get());
  if (alg == JWT_ALG_INVAL) return fail("unsupported key type (RSA >= 2048 or EC P-256/384/521)");

  // RFC 7523 §3 item 7: a unique jti lets the provider refuse replays.
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return fail("no randomness");
  std::string jti = b64url_encode(std::string_view(reinterpret_cast<const char*>(rnd), sizeof rnd));

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return fail("out of memory");
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  std::string cid(client_id), aud(token_endpoint);
  const long t = static_cast<long>(now);
  if (jwt_add_grant(jwt.get(), "iss", cid.c_str()) != 0 || jwt_add_grant(jwt.get(), "sub", cid.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "aud", aud.c_str()) != 0 || jwt_add_grant(jwt.get(), "jti", jti.c_str()) != 0 ||
      jwt_add_grant_int(jwt.get(), "iat", t) != 0 || jwt_add_grant_int(jwt.get(), "nbf", t) != 0 ||
      jwt_add_grant_int(jwt.get(), "exp", t + kClientAssertionLifetime) != 0)
    return fail("cannot set claims");
  if (!kid.empty() && jwt_add_header(jwt.get(), "kid", std::string(kid).c_str()) != 0)
    return fail("cannot set kid");
  if (!x5t.empty() && jwt_add_header(jwt.get(), "x5t", std::string(x5t).c_str()) != 0)
    return fail("cannot set x5t");
  std::string pem(private_key_pem);
  if (jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(pem.data()),
                  static_cast<int>(pem.size())) != 0)
    return fail("cannot set alg");
  char* out = jwt_encode_str(jwt.get());
  OPENSSL_cleanse(pem.data(), pem.size());
  if (out == nullptr) return fail("signing failed");
  AssertionResult ok{true, out};
  free(out);
  return ok;
}

std::optional<std::string> x5t_from_certificate_pem(std::string_view cert_pem) {
  auto bio = mem_bio(cert_pem);
  if (!bio) return std::nullopt;
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return std::nullopt;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha1(), md, &len) != 1 || len != 20) return std::nullopt;
  return b64url_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace mcpauth
