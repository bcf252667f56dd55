// Unit tests for src/pkce.hpp (RFC 7636).
#include "pkce.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mcpauth;

namespace {
// RFC 7636 Appendix B.
const std::string kRfcVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const std::string kRfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
}  // namespace

TEST(Pkce, ComputesRfc7636AppendixBChallenge) {
  EXPECT_EQ(s256_challenge(kRfcVerifier), kRfcChallenge);
}

TEST(Pkce, VerifiesRfc7636AppendixBPair) { EXPECT_TRUE(verify_s256(kRfcVerifier, kRfcChallenge)); }

TEST(Pkce, RejectsWrongVerifier) {
  std::string v = kRfcVerifier;
  v[0] = 'e';
  EXPECT_FALSE(verify_s256(v, kRfcChallenge));
}

TEST(Pkce, RejectsWrongChallenge) {
  std::string c = kRfcChallenge;
  c[5] = 'X';
  EXPECT_FALSE(verify_s256(kRfcVerifier, c));
  EXPECT_FALSE(verify_s256(kRfcVerifier, kRfcChallenge + "A"));
  EXPECT_FALSE(verify_s256(kRfcVerifier, ""));
}

TEST(Pkce, RefusesPlainMethodWhereChallengeEqualsVerifier) {
  // With "plain" the challenge would be the verifier itself; S256 must not
  // accept that.
  EXPECT_FALSE(verify_s256(kRfcVerifier, kRfcVerifier));
}

TEST(Pkce, RejectsVerifierShorterThan43Chars) {
  EXPECT_FALSE(valid_verifier(std::string(42, 'a')));
  EXPECT_TRUE(valid_verifier(std::string(43, 'a')));
}

TEST(Pkce, RejectsVerifierLongerThan128Chars) {
  EXPECT_TRUE(valid_verifier(std::string(128, 'a')));
  EXPECT_FALSE(valid_verifier(std::string(129, 'a')));
}

TEST(Pkce, AcceptsAllUnreservedCharactersInVerifier) {
  EXPECT_TRUE(valid_verifier("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"));
}

TEST(Pkce, RejectsVerifierWithReservedOrSpaceCharacters) {
  std::string base(43, 'a');
  for (char c : std::string(" +/=%&?#\x01\xff")) {
    std::string v = base;
    v[10] = c;
    EXPECT_FALSE(valid_verifier(v)) << static_cast<int>(c);
  }
}

TEST(Pkce, VerifyRejectsMalformedVerifierEvenIfHashMatches) {
  std::string short_v = "short";
  EXPECT_FALSE(verify_s256(short_v, s256_challenge(short_v)));
}

TEST(Pkce, ChallengeMustBeExactly43Base64UrlChars) {
  EXPECT_TRUE(valid_challenge(kRfcChallenge));
  EXPECT_FALSE(valid_challenge(kRfcChallenge.substr(0, 42)));
  EXPECT_FALSE(valid_challenge(kRfcChallenge + "A"));
  EXPECT_FALSE(valid_challenge(kRfcChallenge.substr(0, 42) + "="));
  std::string plus = kRfcChallenge;
  plus[3] = '+';
  EXPECT_FALSE(valid_challenge(plus));
}

TEST(Pkce, ChallengeWithNonCanonicalLastCharacterIsRejected) {
  // 'N' encodes bits no SHA-256 digest can produce in the last position.
  std::string c = kRfcChallenge.substr(0, 42) + "N";
  EXPECT_FALSE(valid_challenge(c));
}

TEST(Pkce, ComputedChallengesAreValidChallenges) {
  for (int i = 0; i < 50; ++i) {
    std::string v(43 + i, static_cast<char>('a' + i % 26));
    EXPECT_TRUE(valid_challenge(s256_challenge(v)));
  }
}
