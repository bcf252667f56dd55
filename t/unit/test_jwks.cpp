// parse_jwks / jwk_allows_alg: RFC 7517 key sets into PEM keys for libjwt.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include "encoding.hpp"
#include "jwks.hpp"

namespace {

using mcpauth::Jwk;
using mcpauth::parse_jwks;

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string bn_param(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return mcpauth::b64url_encode(out);
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

EVP_PKEY* rsa2048() {
  static Pkey key(EVP_RSA_gen(2048));
  return key.get();
}
EVP_PKEY* ec256() {
  static Pkey key(EVP_EC_gen("P-256"));
  return key.get();
}

std::string rsa_jwk(EVP_PKEY* key, const std::string& kid, const std::string& extra = "") {
  return R"({"kty":"RSA","kid":")" + kid + R"(","n":")" + bn_param(key, OSSL_PKEY_PARAM_RSA_N, 0) +
         R"(","e":")" + bn_param(key, OSSL_PKEY_PARAM_RSA_E, 0) + "\"" + extra + "}";
}
std::string ec_jwk(EVP_PKEY* key, const std::string& kid, const std::string& extra = "") {
  return R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" +
         bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
         bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + "\"" + extra + "}";
}
std::string jwks(const std::string& members) { return R"({"keys":[)" + members + "]}"; }

TEST(Jwks, RsaAndEcKeysBecomePemPublicKeysIdenticalToTheOriginals) {
  std::string err;
  auto keys = parse_jwks(jwks(rsa_jwk(rsa2048(), "r1", R"(,"use":"sig","alg":"RS256")") + "," +
                              ec_jwk(ec256(), "e1")),
                         &err);
  ASSERT_TRUE(keys) << err;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].kid, "r1");
  EXPECT_EQ((*keys)[0].kty, "RSA");
  EXPECT_EQ((*keys)[0].alg, "RS256");
  EXPECT_EQ((*keys)[0].pem, public_pem(rsa2048()));
  EXPECT_EQ((*keys)[1].kid, "e1");
  EXPECT_EQ((*keys)[1].kty, "EC");
  EXPECT_EQ((*keys)[1].crv, "P-256");
  EXPECT_EQ((*keys)[1].pem, public_pem(ec256()));
}

TEST(Jwks, EncryptionAndUnknownTypeKeysAreSkippedWithoutFailingTheSet) {
  auto keys = parse_jwks(jwks(rsa_jwk(rsa2048(), "enc", R"(,"use":"enc")") + "," +
                              R"({"kty":"oct","kid":"sym","k":"c2VjcmV0"},)" +
                              R"({"kty":"OKP","crv":"Ed25519","kid":"ed","x":"AAAA"},)" +
                              ec_jwk(ec256(), "good")),
                         nullptr);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "good");
}

TEST(Jwks, KeysWhoseKeyOpsDoNotAllowVerifyAreSkipped) {
  auto keys = parse_jwks(jwks(ec_jwk(ec256(), "no", R"(,"key_ops":["encrypt"])") + "," +
                              ec_jwk(ec256(), "yes", R"(,"key_ops":["verify"])")),
                         nullptr);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "yes");
}

TEST(Jwks, RsaKeysShorterThan2048BitsAreRefused) {
  Pkey weak(EVP_RSA_gen(1024));
  std::string err;
  EXPECT_FALSE(parse_jwks(jwks(rsa_jwk(weak.get(), "weak")), &err));
  EXPECT_NE(err.find("no usable"), std::string::npos);
}

TEST(Jwks, AnEcPointThatIsNotOnTheCurveIsRefused) {
  std::string x = mcpauth::b64url_encode(std::string(31, '\0') + "\x01");
  std::string y = mcpauth::b64url_encode(std::string(31, '\0') + "\x01");
  EXPECT_FALSE(parse_jwks(
      jwks(R"({"kty":"EC","crv":"P-256","kid":"bad","x":")" + x + R"(","y":")" + y + "\"}"), nullptr));
}

TEST(Jwks, EcCoordinatesOfTheWrongLengthAreRefused) {
  std::string good = ec_jwk(ec256(), "k");
  // Drop the first coordinate byte: a valid-looking but short encoding.
  std::string x = bn_param(ec256(), OSSL_PKEY_PARAM_EC_PUB_X, 32);
  auto raw = mcpauth::b64url_decode(x);
  ASSERT_TRUE(raw);
  std::string short_x = mcpauth::b64url_encode(raw->substr(1));
  std::string bad = good;
  bad.replace(bad.find(x), x.size(), short_x);
  EXPECT_FALSE(parse_jwks(jwks(bad), nullptr));
  EXPECT_TRUE(parse_jwks(jwks(good), nullptr));
}

TEST(Jwks, AnUnsupportedCurveIsSkipped) {
  std::string k = ec_jwk(ec256(), "k");
  k.replace(k.find("P-256"), 5, "P-192");
  EXPECT_FALSE(parse_jwks(jwks(k), nullptr));
}

TEST(Jwks, AKeyWhoseDeclaredAlgDoesNotFitItsTypeIsSkipped) {
  EXPECT_FALSE(parse_jwks(jwks(rsa_jwk(rsa2048(), "r", R"(,"alg":"ES256")")), nullptr));
  EXPECT_FALSE(parse_jwks(jwks(ec_jwk(ec256(), "e", R"(,"alg":"ES384")")), nullptr));
  EXPECT_FALSE(parse_jwks(jwks(rsa_jwk(rsa2048(), "r", R"(,"alg":"HS256")")), nullptr));
}

TEST(Jwks, MalformedBase64InAKeyMakesOnlyThatKeyBeSkipped) {
  auto keys = parse_jwks(
      jwks(R"({"kty":"RSA","kid":"bad","n":"!!!","e":"AQAB"},)" + ec_jwk(ec256(), "ok")), nullptr);
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "ok");
}

TEST(Jwks, DocumentsThatAreNotJwksAreRejectedWithAReason) {
  std::string err;
  EXPECT_FALSE(parse_jwks("not json", &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(parse_jwks("[]", &err));
  EXPECT_FALSE(parse_jwks(R"({"keys":{}})", &err));
  EXPECT_NE(err.find("keys"), std::string::npos);
  EXPECT_FALSE(parse_jwks(R"({"keys":[]})", &err));
  EXPECT_FALSE(parse_jwks("", &err));
}

TEST(Jwks, OversizedDocumentsAreRejectedBeforeParsing) {
  std::string big = jwks(ec_jwk(ec256(), "k")) + std::string(mcpauth::kJwksMaxBytes, ' ');
  std::string err;
  EXPECT_FALSE(parse_jwks(big, &err));
  EXPECT_NE(err.find("too large"), std::string::npos);
}

TEST(Jwks, SetsWithMoreThanTheKeyLimitAreRejected) {
  std::string one = ec_jwk(ec256(), "k");
  std::string members = one;
  for (std::size_t i = 1; i < mcpauth::kJwksMaxKeys; ++i) members += "," + one;
  auto at_limit = parse_jwks(jwks(members), nullptr);
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(at_limit->size(), mcpauth::kJwksMaxKeys);
  std::string err;
  EXPECT_FALSE(parse_jwks(jwks(members + "," + one), &err));
  EXPECT_NE(err.find("too many"), std::string::npos);
}

TEST(Jwks, AlgorithmsAreAllowedOnlyForTheMatchingKeyTypeAndCurve) {
  Jwk rsa{"k", "RSA", "", "", ""};
  Jwk p256{"k", "EC", "", "P-256", ""};
  Jwk p384{"k", "EC", "", "P-384", ""};
  Jwk p521{"k", "EC", "", "P-521", ""};
  EXPECT_TRUE(mcpauth::jwk_allows_alg(rsa, "RS256"));
  EXPECT_TRUE(mcpauth::jwk_allows_alg(rsa, "RS512"));
  EXPECT_FALSE(mcpauth::jwk_allows_alg(rsa, "ES256"));
  EXPECT_FALSE(mcpauth::jwk_allows_alg(rsa, "HS256"));
  EXPECT_FALSE(mcpauth::jwk_allows_alg(rsa, "none"));
  EXPECT_TRUE(mcpauth::jwk_allows_alg(p256, "ES256"));
  EXPECT_FALSE(mcpauth::jwk_allows_alg(p256, "ES384"));
  EXPECT_TRUE(mcpauth::jwk_allows_alg(p384, "ES384"));
  EXPECT_TRUE(mcpauth::jwk_allows_alg(p521, "ES512"));
  EXPECT_FALSE(mcpauth::jwk_allows_alg(p521, "RS256"));
  Jwk rs384_only{"k", "RSA", "RS384", "", ""};
  EXPECT_FALSE(mcpauth::jwk_allows_alg(rs384_only, "RS256"));
  EXPECT_TRUE(mcpauth::jwk_allows_alg(rs384_only, "RS384"));
}

}  // namespace
