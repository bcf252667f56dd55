// verify_id_token / jwt_header_kid: OIDC Core §3.1.3.7 ID token validation.
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "encoding.hpp"
#include "id_token.hpp"
#include "jwks.hpp"

namespace {

using mcpauth::IdTokenClaims;
using mcpauth::IdTokenExpectations;
using mcpauth::Jwk;

constexpr int64_t kNow = 1'800'000'000;

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string b64_bn(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
  std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return mcpauth::b64url_encode(out);
}

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

// Claims as name -> raw JSON value, so tests can drop or retype any claim.
using Claims = std::map<std::string, std::string>;

Claims good_claims() {
  return {{"iss", R"("https://idp.example")"},
          {"aud", R"("gateway")"},
          {"sub", R"("user-42")"},
          {"nonce", R"("n-0S6_WzA2Mj")"},
          {"exp", std::to_string(kNow + 300)},
          {"iat", std::to_string(kNow - 5)},
          {"name", R"("Ada Lovelace")"},
          {"email", R"("ada@example.com")"},
          {"email_verified", "true"},
          {"preferred_username", R"("ada")"}};
}

std::string to_json(const Claims& c) {
  std::string s = "{";
  for (const auto& [k, v] : c) s += (s.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
  return s + "}";
}

std::string sign(jwt_alg_t alg, const std::string& key, const std::string& kid, const Claims& claims) {
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_new(&jwt), 0);
  if (!kid.empty()) {
    EXPECT_EQ(jwt_add_header(jwt, "kid", kid.c_str()), 0);
  }
  EXPECT_EQ(jwt_add_grants_json(jwt, to_json(claims).c_str()), 0);
  EXPECT_EQ(jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())),
            0);
  char* out = jwt_encode_str(jwt);
  std::string token = out ? out : "";
  free(out);
  jwt_free(jwt);
  return token;
}

// A token assembled by hand, for headers libjwt would not produce.
std::string forge(const std::string& header_json, const Claims& claims, const std::string& sig) {
  return mcpauth::b64url_encode(header_json) + "." + mcpauth::b64url_encode(to_json(claims)) + "." + sig;
}

class IdToken : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_.reset(EVP_RSA_gen(2048));
    ec_.reset(EVP_EC_gen("P-256"));
    std::string doc = R"({"keys":[{"kty":"RSA","kid":"rsa1","use":"sig","n":")" +
                      b64_bn(rsa_.get(), OSSL_PKEY_PARAM_RSA_N, 0) + R"(","e":")" +
                      b64_bn(rsa_.get(), OSSL_PKEY_PARAM_RSA_E, 0) +
                      R"("},{"kty":"EC","crv":"P-256","kid":"ec1","x":")" +
                      b64_bn(ec_.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
                      b64_bn(ec_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("}]})";
    std::string err;
    auto keys = mcpauth::parse_jwks(doc, &err);
    ASSERT_TRUE(keys) << err;
    keys_ = *keys;
  }
  static void TearDownTestSuite() { rsa_.reset(); ec_.reset(); }

  static IdTokenExpectations expect() {
    IdTokenExpectations e;
    e.issuer = "https://idp.example";
    e.client_id = "gateway";
    e.nonce = "n-0S6_WzA2Mj";
    e.now = kNow;
    return e;
  }
  static std::string rsa_token(const Claims& c, const std::string& kid = "rsa1") {
    return sign(JWT_ALG_RS256, pem_of(rsa_.get(), true), kid, c);
  }
  static std::string verify_error(const std::string& token, const IdTokenExpectations& e = expect(),
                                  const std::vector<Jwk>* keys = nullptr) {
    auto r = mcpauth::verify_id_token(token, keys ? *keys : keys_, e);
    if (auto* err = std::get_if<std::string>(&r)) return *err;
    return "";
  }

  static Pkey rsa_, ec_;
  static std::vector<Jwk> keys_;
};
Pkey IdToken::rsa_;
Pkey IdToken::ec_;
std::vector<Jwk> IdToken::keys_;

TEST_F(IdToken, AValidRs256TokenYieldsItsClaims) {
  auto r = mcpauth::verify_id_token(rsa_token(good_claims()), keys_, expect());
  ASSERT_TRUE(std::holds_alternative<IdTokenClaims>(r)) << std::get<std::string>(r);
  const auto& c = std::get<IdTokenClaims>(r);
  EXPECT_EQ(c.sub, "user-42");
  EXPECT_EQ(c.name, "Ada Lovelace");
  EXPECT_EQ(c.email, "ada@example.com");
  EXPECT_TRUE(c.email_verified);
  EXPECT_EQ(c.preferred_username, "ada");
  EXPECT_EQ(c.exp, kNow + 300);
  EXPECT_EQ(c.iat, kNow - 5);
}

TEST_F(IdToken, AValidEs256TokenIsAccepted) {
  std::string token = sign(JWT_ALG_ES256, pem_of(ec_.get(), true), "ec1", good_claims());
  EXPECT_EQ(verify_error(token), "");
}

TEST_F(IdToken, ATokenWithoutKidIsVerifiedWithTheOnlyKeyFittingItsAlg) {
  EXPECT_EQ(verify_error(rsa_token(good_claims(), "")), "");
}

TEST_F(IdToken, ATokenWithoutKidIsRefusedWhenSeveralKeysFitItsAlg) {
  std::vector<Jwk> two = keys_;
  two.push_back(keys_[0]);
  two.back().kid = "rsa2";
  EXPECT_NE(verify_error(rsa_token(good_claims(), ""), expect(), &two), "");
}

TEST_F(IdToken, AWrongIssuerIsRefused) {
  Claims c = good_claims();
  c["iss"] = R"("https://idp.example/")";
  EXPECT_NE(verify_error(rsa_token(c)).find("iss"), std::string::npos);
}

TEST_F(IdToken, AWrongAudienceIsRefused) {
  Claims c = good_claims();
  c["aud"] = R"("someone-else")";
  EXPECT_NE(verify_error(rsa_token(c)).find("aud"), std::string::npos);
  c["aud"] = "42";
  EXPECT_NE(verify_error(rsa_token(c)), "");
  c.erase("aud");
  EXPECT_NE(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, AnAudienceArrayWithOnlyUsIsAccepted) {
  Claims c = good_claims();
  c["aud"] = R"(["gateway"])";
  EXPECT_EQ(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, AnAudienceArrayWithSeveralEntriesNeedsAzpEqualToUs) {
  Claims c = good_claims();
  c["aud"] = R"(["gateway","other-api"])";
  EXPECT_NE(verify_error(rsa_token(c)).find("aud"), std::string::npos);
  c["azp"] = R"("other-api")";
  EXPECT_NE(verify_error(rsa_token(c)), "");
  c["azp"] = R"("gateway")";
  EXPECT_EQ(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, AnAudienceArrayNotContainingUsIsRefusedEvenWithAzp) {
  Claims c = good_claims();
  c["aud"] = R"(["a","b"])";
  c["azp"] = R"("gateway")";
  EXPECT_NE(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, AnExpiredTokenIsRefusedButLeewayIsHonoured) {
  Claims c = good_claims();
  c["exp"] = std::to_string(kNow - 61);
  EXPECT_NE(verify_error(rsa_token(c)).find("expired"), std::string::npos);
  c["exp"] = std::to_string(kNow - 59);
  EXPECT_EQ(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, ATokenIssuedInTheFutureIsRefused) {
  Claims c = good_claims();
  c["iat"] = std::to_string(kNow + 120);
  EXPECT_NE(verify_error(rsa_token(c)).find("future"), std::string::npos);
}

TEST_F(IdToken, ATokenIssuedLongAgoIsRefused) {
  Claims c = good_claims();
  c["iat"] = std::to_string(kNow - 3600);
  c["exp"] = std::to_string(kNow + 3600);
  EXPECT_NE(verify_error(rsa_token(c)).find("old"), std::string::npos);
}

TEST_F(IdToken, ATokenNotYetValidPerNbfIsRefused) {
  Claims c = good_claims();
  c["nbf"] = std::to_string(kNow + 600);
  EXPECT_NE(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, MissingOrNonNumericTimeClaimsAreRefused) {
  Claims c = good_claims();
  c["exp"] = R"("soon")";
  EXPECT_NE(verify_error(rsa_token(c)), "");
  c = good_claims();
  c.erase("exp");
  EXPECT_NE(verify_error(rsa_token(c)), "");
  c = good_claims();
  c.erase("iat");
  EXPECT_NE(verify_error(rsa_token(c)), "");
}

TEST_F(IdToken, AWrongOrMissingNonceIsRefused) {
  Claims c = good_claims();
  c["nonce"] = R"("n-0S6_WzA2Mk")";
  EXPECT_NE(verify_error(rsa_token(c)).find("nonce"), std::string::npos);
  c.erase("nonce");
  EXPECT_NE(verify_error(rsa_token(c)).find("nonce"), std::string::npos);
}

TEST_F(IdToken, NonceIsNotCheckedWhenNoneWasSent) {
  Claims c = good_claims();
  c.erase("nonce");
  IdTokenExpectations e = expect();
  e.nonce.clear();
  EXPECT_EQ(verify_error(rsa_token(c), e), "");
}

TEST_F(IdToken, AMissingOrEmptySubjectIsRefused) {
  Claims c = good_claims();
  c.erase("sub");
  EXPECT_NE(verify_error(rsa_token(c)).find("sub"), std::string::npos);
  c["sub"] = R"("")";
  EXPECT_NE(verify_error(rsa_token(c)).find("sub"), std::string::npos);
}

TEST_F(IdToken, AnHs256TokenKeyedWithThePublicKeyIsRefused) {
  // Algorithm confusion: the attacker uses the published RSA key as an HMAC secret.
  std::string token = sign(JWT_ALG_HS256, keys_[0].pem, "rsa1", good_claims());
  ASSERT_FALSE(token.empty());
  EXPECT_NE(verify_error(token), "");
  // The same forgery without kid, against a set with a single key.
  std::vector<Jwk> only_rsa{keys_[0]};
  EXPECT_NE(verify_error(sign(JWT_ALG_HS256, keys_[0].pem, "", good_claims()), expect(), &only_rsa), "");
}

TEST_F(IdToken, AnUnsignedAlgNoneTokenIsRefused) {
  EXPECT_NE(verify_error(forge(R"({"alg":"none","kid":"rsa1"})", good_claims(), "")), "");
  EXPECT_NE(verify_error(forge(R"({"alg":"none","kid":"rsa1"})", good_claims(), "AAAA")).find("alg"),
            std::string::npos);
  EXPECT_NE(verify_error(forge(R"({"alg":"None"})", good_claims(), "AAAA")), "");
  EXPECT_NE(verify_error(forge(R"({"kid":"rsa1"})", good_claims(), "AAAA")), "");
}

TEST_F(IdToken, ATamperedPayloadFailsTheSignature) {
  std::string token = rsa_token(good_claims());
  Claims evil = good_claims();
  evil["sub"] = R"("admin")";
  std::size_t a = token.find('.');
  std::size_t b = token.rfind('.');
  std::string tampered = token.substr(0, a + 1) + mcpauth::b64url_encode(to_json(evil)) + token.substr(b);
  EXPECT_NE(verify_error(tampered).find("signature"), std::string::npos);
}

TEST_F(IdToken, AnEs256TokenLabelledWithTheRsaKeyIdIsRefused) {
  std::string token = sign(JWT_ALG_ES256, pem_of(ec_.get(), true), "rsa1", good_claims());
  EXPECT_NE(verify_error(token).find("fit"), std::string::npos);
}

TEST_F(IdToken, AnUnknownKidIsReportedAsSuchAndItsKidCanBeRead) {
  std::string token = rsa_token(good_claims(), "rotated-key");
  EXPECT_NE(verify_error(token).find("unknown kid"), std::string::npos);
  EXPECT_EQ(mcpauth::jwt_header_kid(token), "rotated-key");
  EXPECT_EQ(mcpauth::jwt_header_kid(rsa_token(good_claims(), "")), std::nullopt);
  EXPECT_EQ(mcpauth::jwt_header_kid("garbage"), std::nullopt);
}

TEST_F(IdToken, ACritHeaderIsRefused) {
  EXPECT_NE(verify_error(forge(R"({"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1})", good_claims(), "AAAA"))
                .find("crit"),
            std::string::npos);
}

TEST_F(IdToken, MalformedTokensAreRefused) {
  std::string good = rsa_token(good_claims());
  EXPECT_NE(verify_error(""), "");
  EXPECT_NE(verify_error("a.b"), "");
  EXPECT_NE(verify_error(good + ".x"), "");
  EXPECT_NE(verify_error("!!!." + good.substr(good.find('.') + 1)), "");
  EXPECT_NE(verify_error(std::string(mcpauth::kIdTokenMaxBytes + 1, 'a')), "");
}

TEST_F(IdToken, ExpectationsWithoutIssuerOrClientIdRefuseEverything) {
  IdTokenExpectations e = expect();
  e.issuer.clear();
  EXPECT_NE(verify_error(rsa_token(good_claims()), e), "");
  e = expect();
  e.client_id.clear();
  EXPECT_NE(verify_error(rsa_token(good_claims()), e), "");
}

}  // namespace
