// make_client_assertion / x5t_from_certificate_pem: RFC 7523 private_key_jwt.
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "client_assertion.hpp"
#include "encoding.hpp"

namespace {

using mcpauth::make_client_assertion;

constexpr int64_t kNow = 1'800'000'000;
const char kEndpoint[] = "https://login.example/tenant/oauth2/v2.0/token";

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct JwtFree { void operator()(jwt_t* p) const { jwt_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

std::string pem_of(EVP_PKEY* key, bool priv) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (priv) PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  else PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

Jwt decode(const std::string& token, const std::string& public_pem) {
  jwt_t* raw = nullptr;
  int rc = jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(public_pem.data()),
                      static_cast<int>(public_pem.size()));
  EXPECT_EQ(rc, 0);
  return Jwt(raw);
}

EVP_PKEY* rsa_key() {
  static Pkey k(EVP_RSA_gen(2048));
  return k.get();
}

TEST(ClientAssertion, AnRsaKeyProducesAnRs256AssertionWithTheRfc7523Claims) {
  auto r = make_client_assertion(pem_of(rsa_key(), true), "gateway-client", kEndpoint, kNow, "", "");
  ASSERT_TRUE(r.ok) << r.value_or_error;
  Jwt jwt = decode(r.value_or_error, pem_of(rsa_key(), false));
  ASSERT_TRUE(jwt);
  EXPECT_EQ(jwt_get_alg(jwt.get()), JWT_ALG_RS256);
  EXPECT_STREQ(jwt_get_grant(jwt.get(), "iss"), "gateway-client");
  EXPECT_STREQ(jwt_get_grant(jwt.get(), "sub"), "gateway-client");
  EXPECT_STREQ(jwt_get_grant(jwt.get(), "aud"), kEndpoint);
  EXPECT_EQ(jwt_get_grant_int(jwt.get(), "iat"), kNow);
  EXPECT_EQ(jwt_get_grant_int(jwt.get(), "nbf"), kNow);
  EXPECT_EQ(jwt_get_grant_int(jwt.get(), "exp"), kNow + 300);
  const char* jti = jwt_get_grant(jwt.get(), "jti");
  ASSERT_NE(jti, nullptr);
  auto jti_bytes = mcpauth::b64url_decode(jti);
  ASSERT_TRUE(jti_bytes);
  EXPECT_EQ(jti_bytes->size(), 16u);
  EXPECT_EQ(jwt_get_header(jwt.get(), "kid"), nullptr);
  EXPECT_EQ(jwt_get_header(jwt.get(), "x5t"), nullptr);
}

TEST(ClientAssertion, AnEcP256KeyProducesAnEs256Assertion) {
  Pkey ec(EVP_EC_gen("P-256"));
  auto r = make_client_assertion(pem_of(ec.get(), true), "c", kEndpoint, kNow, "k1", "");
  ASSERT_TRUE(r.ok) << r.value_or_error;
  Jwt jwt = decode(r.value_or_error, pem_of(ec.get(), false));
  ASSERT_TRUE(jwt);
  EXPECT_EQ(jwt_get_alg(jwt.get()), JWT_ALG_ES256);
  EXPECT_STREQ(jwt_get_header(jwt.get(), "kid"), "k1");
}

TEST(ClientAssertion, TheAssertionDoesNotVerifyWithAnotherKey) {
  auto r = make_client_assertion(pem_of(rsa_key(), true), "c", kEndpoint, kNow, "", "");
  ASSERT_TRUE(r.ok);
  Pkey other(EVP_RSA_gen(2048));
  std::string pub = pem_of(other.get(), false);
  jwt_t* raw = nullptr;
  EXPECT_NE(jwt_decode(&raw, r.value_or_error.c_str(), reinterpret_cast<const unsigned char*>(pub.data()),
                       static_cast<int>(pub.size())),
            0);
  jwt_free(raw);
}

TEST(ClientAssertion, KidAndX5tAreCarriedInTheHeaderWhenGiven) {
  auto r = make_client_assertion(pem_of(rsa_key(), true), "c", kEndpoint, kNow, "key-7", "dGh1bWJwcmludA");
  ASSERT_TRUE(r.ok);
  Jwt jwt = decode(r.value_or_error, pem_of(rsa_key(), false));
  ASSERT_TRUE(jwt);
  EXPECT_STREQ(jwt_get_header(jwt.get(), "kid"), "key-7");
  EXPECT_STREQ(jwt_get_header(jwt.get(), "x5t"), "dGh1bWJwcmludA");
}

TEST(ClientAssertion, EachAssertionHasAFreshJti) {
  std::string pem = pem_of(rsa_key(), true);
  auto a = make_client_assertion(pem, "c", kEndpoint, kNow, "", "");
  auto b = make_client_assertion(pem, "c", kEndpoint, kNow, "", "");
  ASSERT_TRUE(a.ok && b.ok);
  Jwt ja = decode(a.value_or_error, pem_of(rsa_key(), false));
  Jwt jb = decode(b.value_or_error, pem_of(rsa_key(), false));
  ASSERT_TRUE(ja && jb);
  EXPECT_STRNE(jwt_get_grant(ja.get(), "jti"), jwt_get_grant(jb.get(), "jti"));
}

TEST(ClientAssertion, WeakUnreadableOrPublicKeysAreRefused) {
  Pkey weak(EVP_RSA_gen(1024));
  EXPECT_FALSE(make_client_assertion(pem_of(weak.get(), true), "c", kEndpoint, kNow, "", "").ok);
  EXPECT_FALSE(make_client_assertion("not a pem", "c", kEndpoint, kNow, "", "").ok);
  EXPECT_FALSE(make_client_assertion(pem_of(rsa_key(), false), "c", kEndpoint, kNow, "", "").ok);
  // An encrypted key is refused, not prompted for.
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, rsa_key(), EVP_aes_128_cbc(), reinterpret_cast<const unsigned char*>("pw"), 2,
                           nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string encrypted(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  EXPECT_FALSE(make_client_assertion(encrypted, "c", kEndpoint, kNow, "", "").ok);
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  auto r = make_client_assertion(pem_of(ed.get(), true), "c", kEndpoint, kNow, "", "");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.value_or_error.find("unsupported"), std::string::npos);
}

TEST(ClientAssertion, EmptyClientIdOrEndpointAndEmbeddedNulsAreRefused) {
  std::string pem = pem_of(rsa_key(), true);
  EXPECT_FALSE(make_client_assertion(pem, "", kEndpoint, kNow, "", "").ok);
  EXPECT_FALSE(make_client_assertion(pem, "c", "", kNow, "", "").ok);
  EXPECT_FALSE(make_client_assertion(pem, std::string("c\0x", 3), kEndpoint, kNow, "", "").ok);
}

TEST(ClientAssertion, X5tIsTheBase64urlSha1OfTheCertificateDer) {
  Pkey key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  ASSERT_TRUE(cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("gw"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);

  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);

  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert.get(), &der);
  ASSERT_GT(der_len, 0);
  unsigned char md[20];
  unsigned int md_len = 0;
  ASSERT_EQ(EVP_Digest(der, static_cast<size_t>(der_len), md, &md_len, EVP_sha1(), nullptr), 1);
  OPENSSL_free(der);
  std::string expected = mcpauth::b64url_encode(std::string(reinterpret_cast<char*>(md), md_len));

  auto x5t = mcpauth::x5t_from_certificate_pem(pem);
  ASSERT_TRUE(x5t);
  EXPECT_EQ(*x5t, expected);
  EXPECT_EQ(x5t->size(), 27u);  // 20 bytes, unpadded base64url
  EXPECT_FALSE(mcpauth::x5t_from_certificate_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(mcpauth::x5t_from_certificate_pem(pem_of(key.get(), false)));
}

}  // namespace
