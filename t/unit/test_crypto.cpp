// Unit tests for src/crypto.hpp.
#include "crypto.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "encoding.hpp"

using namespace mcpauth;

namespace {

std::string hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

const std::string kKeyA = "a " + b64url_encode(std::string(32, 'A'));
const std::string kKeyB = "b " + b64url_encode(std::string(32, 'B'));

KeyRing ring_from(const std::string& text) {
  std::string err;
  auto r = KeyRing::parse(text, &err);
  EXPECT_TRUE(r.has_value()) << err;
  return *r;
}

std::string parse_error(const std::string& text) {
  std::string err;
  auto r = KeyRing::parse(text, &err);
  EXPECT_FALSE(r.has_value());
  return err;
}

}  // namespace

TEST(Random, ProducesTheRequestedNumberOfBytes) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  EXPECT_EQ(random_bytes(1).size(), 1u);
  EXPECT_EQ(random_bytes(77).size(), 77u);
}

TEST(Random, TwoDrawsDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_bytes(16));
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Random, TokenIsUnpaddedBase64UrlOfTheRequestedLength) {
  std::string t = random_token(32);
  EXPECT_EQ(t.size(), 43u);
  auto raw = b64url_decode(t);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
}

TEST(Sha256, MatchesFips180Vector) {
  EXPECT_EQ(hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, B64UrlFormEncodesTheRawDigest) {
  EXPECT_EQ(sha256_b64url("abc"), b64url_encode(sha256("abc")));
  EXPECT_EQ(sha256_b64url("abc").size(), 43u);
}

TEST(Hmac, MatchesRfc4231TestCase2) {
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hmac, DifferentKeysGiveDifferentMacs) {
  EXPECT_NE(hmac_sha256("k1", "data"), hmac_sha256("k2", "data"));
}

TEST(CtEqual, EqualStringsCompareEqual) {
  EXPECT_TRUE(ct_equal("secret", "secret"));
  EXPECT_TRUE(ct_equal("", ""));
}

TEST(CtEqual, DifferentContentCompareUnequal) {
  EXPECT_FALSE(ct_equal("secret", "secreT"));
  EXPECT_FALSE(ct_equal("Secret", "secret"));
}

TEST(CtEqual, PrefixOfTheOtherIsUnequal) {
  EXPECT_FALSE(ct_equal("secret", "secret2"));
  EXPECT_FALSE(ct_equal("secret2", "secret"));
  EXPECT_FALSE(ct_equal("", "x"));
}

TEST(CtEqual, ComparesEmbeddedNulBytes) {
  EXPECT_FALSE(ct_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

// Eight bytes at a time, then the tail: a difference anywhere counts.
TEST(CtEqual, ADifferenceAtAnyPositionOfALongStringCounts) {
  const std::string base(171, 'k');
  EXPECT_TRUE(ct_equal(base, std::string(171, 'k')));
  for (size_t i = 0; i < base.size(); ++i) {
    std::string other = base;
    other[i] ^= 0x01;
    EXPECT_FALSE(ct_equal(base, other)) << i;
  }
  EXPECT_FALSE(ct_equal(base, base.substr(0, 170)));
  EXPECT_FALSE(ct_equal(base.substr(0, 160), base));
}

TEST(KeyRingParse, AcceptsCommentsBlankLinesAndCrLf) {
  std::string err;
  auto r = KeyRing::parse("# keys\n\n" + kKeyA + "\r\n  # old\n" + kKeyB + "\n", &err);
  ASSERT_TRUE(r.has_value()) << err;
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->sealing_kid(), "a");
}

TEST(KeyRingParse, FirstKeySeals) {
  auto r = ring_from(kKeyB + "\n" + kKeyA);
  EXPECT_EQ(r.sealing_kid(), "b");
  EXPECT_EQ(r.seal(1, "x").substr(0, 2), "b.");
}

TEST(KeyRingParse, RejectsEmptyFile) {
  EXPECT_NE(parse_error("# nothing\n\n").find("no keys"), std::string::npos);
}

TEST(KeyRingParse, RejectsLineWithOneField) {
  EXPECT_EQ(parse_error(kKeyA + "\njustakid\n").rfind("line 2:", 0), 0u);
}

TEST(KeyRingParse, RejectsLineWithThreeFields) {
  auto err = parse_error(kKeyA + " extra\n");
  EXPECT_EQ(err.rfind("line 1:", 0), 0u);
  EXPECT_NE(err.find("more than two"), std::string::npos);
}

TEST(KeyRingParse, RejectsBadKid) {
  std::string key = b64url_encode(std::string(32, 'x'));
  EXPECT_NE(parse_error("bad.kid " + key).find("key id"), std::string::npos);
  EXPECT_NE(parse_error("abcdefghijklmnopq " + key).find("key id"), std::string::npos);
  EXPECT_TRUE(KeyRing::parse("abcdefghijklmnop " + key, nullptr).has_value());
  EXPECT_TRUE(KeyRing::parse("A_z-9 " + key, nullptr).has_value());
}

TEST(KeyRingParse, RejectsKeyThatIsNotBase64Url) {
  auto err = parse_error("k " + b64_encode(std::string(32, 'x')));  // padded
  EXPECT_EQ(err.rfind("line 1:", 0), 0u);
  EXPECT_NE(err.find("base64url"), std::string::npos);
}

TEST(KeyRingParse, RejectsKeyOfWrongLength) {
  auto err = parse_error("\nk " + b64url_encode(std::string(31, 'x')));
  EXPECT_EQ(err.rfind("line 2:", 0), 0u);
  EXPECT_NE(err.find("32 bytes, got 31"), std::string::npos);
  EXPECT_FALSE(KeyRing::parse("k " + b64url_encode(std::string(33, 'x')), nullptr).has_value());
}

TEST(KeyRingParse, RejectsDuplicateKid) {
  auto err = parse_error(kKeyA + "\n# c\na " + b64url_encode(std::string(32, 'Z')));
  EXPECT_EQ(err.rfind("line 3:", 0), 0u);
  EXPECT_NE(err.find("duplicate key id \"a\" (first on line 1)"), std::string::npos);
}

TEST(KeyRingParse, ErrorNeverContainsKeyMaterial) {
  std::string key31 = b64url_encode(std::string(31, 'q'));
  EXPECT_EQ(parse_error("k " + key31).find(key31), std::string::npos);
}

TEST(KeyRingGenerate, LineParsesBackAsAKey) {
  std::string line = KeyRing::generate_line("k2026");
  ASSERT_EQ(line.rfind("k2026 ", 0), 0u);
  auto r = ring_from(line);
  EXPECT_EQ(r.sealing_kid(), "k2026");
  EXPECT_NE(KeyRing::generate_line("k2026"), line);
}

TEST(KeyRingGenerate, RefusesInvalidKid) {
  EXPECT_EQ(KeyRing::generate_line(""), "");
  EXPECT_EQ(KeyRing::generate_line("has space"), "");
}

TEST(KeyRingSeal, RoundTripsPlaintext) {
  auto r = ring_from(kKeyA);
  for (std::string p : {std::string(), std::string("x"), std::string("hello\0world", 11),
                        std::string(1000, 'z')}) {
    auto t = r.seal(seal_purpose::access_token, p);
    auto back = r.open(seal_purpose::access_token, t);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, p);
  }
}

TEST(KeyRingSeal, TokenHasKidDotBase64UrlOfIvCiphertextTag) {
  auto r = ring_from(kKeyA);
  auto t = r.seal(1, "abcd");
  ASSERT_EQ(t.rfind("a.", 0), 0u);
  auto blob = b64url_decode(t.substr(2));
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(blob->size(), 12u + 4u + 16u);
  EXPECT_EQ(blob->find("abcd"), std::string::npos);
}

TEST(KeyRingSeal, SealingTwiceGivesDifferentTokens) {
  auto r = ring_from(kKeyA);
  EXPECT_NE(r.seal(1, "same"), r.seal(1, "same"));
}

TEST(KeyRingSeal, TokenForOnePurposeDoesNotOpenAsAnother) {
  auto r = ring_from(kKeyA);
  auto t = r.seal(seal_purpose::access_token, "payload");
  EXPECT_FALSE(r.open(seal_purpose::refresh_token, t).has_value());
  EXPECT_FALSE(r.open(seal_purpose::state_file, t).has_value());
  EXPECT_FALSE(r.open(seal_purpose::cookie, t).has_value());
  EXPECT_TRUE(r.open(seal_purpose::access_token, t).has_value());
}

TEST(KeyRingSeal, TamperingAnyByteOfTheBlobIsDetected) {
  auto r = ring_from(kKeyA);
  auto t = r.seal(2, "refresh-payload");
  std::string blob = *b64url_decode(t.substr(2));
  for (size_t i = 0; i < blob.size(); ++i) {
    for (unsigned flip : {0x01u, 0x80u}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      EXPECT_FALSE(r.open(2, "a." + b64url_encode(bad)).has_value()) << "byte " << i;
    }
  }
}

TEST(KeyRingSeal, TamperingAnyCharacterOfTheTokenTextIsDetected) {
  auto r = ring_from(kKeyA + "\n" + kKeyB);
  auto t = r.seal(2, "refresh-payload");
  for (size_t i = 0; i < t.size(); ++i) {
    std::string bad = t;
    bad[i] = bad[i] == 'Q' ? 'R' : 'Q';
    EXPECT_FALSE(r.open(2, bad).has_value()) << "char " << i;
  }
}

TEST(KeyRingSeal, TruncatedOrExtendedTokensFail) {
  auto r = ring_from(kKeyA);
  auto t = r.seal(1, "payload");
  for (size_t n = 0; n < t.size(); ++n) EXPECT_FALSE(r.open(1, t.substr(0, n)).has_value());
  EXPECT_FALSE(r.open(1, t + "A").has_value());
  EXPECT_FALSE(r.open(1, t + "AAAA").has_value());
}

TEST(KeyRingSeal, MalformedTokensFail) {
  auto r = ring_from(kKeyA);
  EXPECT_FALSE(r.open(1, "").has_value());
  EXPECT_FALSE(r.open(1, "no-dot").has_value());
  EXPECT_FALSE(r.open(1, "a.").has_value());
  EXPECT_FALSE(r.open(1, "a.!!!!").has_value());
  EXPECT_FALSE(r.open(1, "a." + b64url_encode(std::string(27, 'x'))).has_value());
  EXPECT_FALSE(r.open(1, "a." + b64url_encode(std::string(28, 'x'))).has_value());
}

TEST(KeyRingSeal, UnknownKidFails) {
  auto ra = ring_from(kKeyA);
  auto rb = ring_from(kKeyB);
  EXPECT_FALSE(rb.open(1, ra.seal(1, "x")).has_value());
}

TEST(KeyRingSeal, RelabelingATokenWithAnotherKidFails) {
  // Same key bytes under two kids: the kid is in the AAD, so moving a token
  // from one kid to the other must fail.
  std::string key = b64url_encode(std::string(32, 'K'));
  auto r = ring_from("k1 " + key + "\nk2 " + key);
  auto t = r.seal(1, "x");
  ASSERT_EQ(t.rfind("k1.", 0), 0u);
  EXPECT_FALSE(r.open(1, "k2." + t.substr(3)).has_value());
}

TEST(KeyRingRotation, TokenSealedUnderOldKeyOpensAfterNewKeyIsPrepended) {
  auto old_ring = ring_from(kKeyA);
  auto t = old_ring.seal(seal_purpose::refresh_token, "session-42");
  auto new_ring = ring_from(kKeyB + "\n" + kKeyA);
  EXPECT_EQ(new_ring.open(seal_purpose::refresh_token, t).value_or("?"), "session-42");
  auto t2 = new_ring.seal(seal_purpose::refresh_token, "session-43");
  EXPECT_EQ(t2.rfind("b.", 0), 0u);
  EXPECT_FALSE(old_ring.open(seal_purpose::refresh_token, t2).has_value());
}

TEST(KeyRingRotation, TokenFailsOnceItsKeyIsRemoved) {
  auto t = ring_from(kKeyA).seal(1, "x");
  EXPECT_FALSE(ring_from(kKeyB).open(1, t).has_value());
}

TEST(KeyRingDerive, IsHmacOfTheFirstKeyOverTheLabel) {
  auto r = ring_from(kKeyA + "\n" + kKeyB);
  EXPECT_EQ(r.derive_key("csrf"), hmac_sha256(std::string(32, 'A'), "csrf"));
  EXPECT_EQ(r.derive_key("csrf").size(), 32u);
  EXPECT_NE(r.derive_key("csrf"), r.derive_key("cookie"));
}

TEST(KeyRingCopy, CopiesAndMovesKeepWorking) {
  auto r = ring_from(kKeyA);
  auto t = r.seal(1, "x");
  KeyRing copy = r;
  KeyRing moved = std::move(copy);
  EXPECT_EQ(moved.open(1, t).value_or("?"), "x");
}

// seal_deterministic: the refresh grace hands out the winning rotation's
// very tokens again without storing them (token_endpoint.cpp).
TEST(KeyRingDeterministicSeal, TheSamePlaintextGivesTheSameToken) {
  auto r = ring_from(kKeyA + "\n" + kKeyB);
  const std::string t = r.seal_deterministic(seal_purpose::refresh_token, "sid=1 gen=2 exp=3");
  EXPECT_EQ(t, r.seal_deterministic(seal_purpose::refresh_token, "sid=1 gen=2 exp=3"));
  EXPECT_EQ(t, ring_from(kKeyA).seal_deterministic(seal_purpose::refresh_token, "sid=1 gen=2 exp=3"));
  EXPECT_EQ(t.rfind("a.", 0), 0u);  // the first key seals
  EXPECT_EQ(r.open(seal_purpose::refresh_token, t).value_or("?"), "sid=1 gen=2 exp=3");
}

TEST(KeyRingDeterministicSeal, DifferentPlaintextsPurposesOrKeysGetDifferentNonces) {
  auto r = ring_from(kKeyA);
  auto nonce = [](const std::string& token) { return b64url_decode(token.substr(2))->substr(0, 12); };
  std::set<std::string> nonces;
  std::string p(40, 'p');
  // every one-byte change of the plaintext, anywhere, and every length
  for (size_t i = 0; i < p.size(); ++i) {
    std::string q = p;
    q[i] = 'q';
    nonces.insert(nonce(r.seal_deterministic(1, q)));
    nonces.insert(nonce(r.seal_deterministic(1, p.substr(0, i))));
  }
  nonces.insert(nonce(r.seal_deterministic(1, p)));
  EXPECT_EQ(nonces.size(), 2 * p.size() + 1);
  EXPECT_NE(nonce(r.seal_deterministic(1, p)), nonce(r.seal_deterministic(2, p)));
  EXPECT_NE(nonce(r.seal_deterministic(1, p)), nonce(ring_from(kKeyB).seal_deterministic(1, p)));
  // not the random seal's nonce either, nor anything constant
  EXPECT_NE(r.seal_deterministic(1, p), r.seal(1, p));
}

TEST(KeyRingDeterministicSeal, TheNonceIsTheDocumentedPrfOfTheAadAndPlaintext) {
  auto r = ring_from(kKeyA);
  const std::string t = r.seal_deterministic(seal_purpose::access_token, "payload");
  const std::string kn = hmac_sha256(std::string(32, 'A'), "mcpauth-v1 deterministic seal nonce");
  const std::string aad = std::string("mcpauth-v1|a|") + static_cast<char>(seal_purpose::access_token);
  EXPECT_EQ(hex(b64url_decode(t.substr(2))->substr(0, 12)), hex(hmac_sha256(kn, aad + "payload").substr(0, 12)));
}

TEST(KeyRingDeterministicSeal, TamperingIsDetectedAndThePurposeIsBound) {
  auto r = ring_from(kKeyA);
  const std::string t = r.seal_deterministic(seal_purpose::refresh_token, "refresh-payload");
  EXPECT_FALSE(r.open(seal_purpose::access_token, t).has_value());
  std::string blob = *b64url_decode(t.substr(2));
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ 0x01u);
    EXPECT_FALSE(r.open(seal_purpose::refresh_token, "a." + b64url_encode(bad)).has_value()) << "byte " << i;
  }
  EXPECT_FALSE(ring_from(kKeyB).open(seal_purpose::refresh_token, t).has_value());
}
