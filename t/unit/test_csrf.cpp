// make_csrf_token / verify_csrf_token / sign_value / verify_signed_value.
#include <gtest/gtest.h>

#include <string>

#include "csrf.hpp"
#include "encoding.hpp"

namespace {

using mcpauth::make_csrf_token;
using mcpauth::sign_value;
using mcpauth::verify_csrf_token;
using mcpauth::verify_signed_value;

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');
constexpr int64_t kNow = 1'800'000'000;
const char kBrowser[] = "browser-session-1";
const char kClient[] = "client-a";
const char kRedirect[] = "https://app.example/cb";

bool ok(const std::string& token, int64_t now = kNow, const std::string& browser = kBrowser,
        const std::string& client = kClient, const std::string& redirect = kRedirect) {
  return verify_csrf_token(kKey, token, browser, client, redirect, now, 900);
}

TEST(Csrf, ATokenVerifiesForTheSameBrowserClientAndRedirect) {
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  EXPECT_EQ(t.rfind(std::to_string(kNow) + ".", 0), 0u);
  EXPECT_TRUE(ok(t));
  EXPECT_TRUE(ok(t, kNow + 900));
}

TEST(Csrf, ATokenIsRefusedForAnotherBrowserClientOrRedirect) {
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  EXPECT_FALSE(ok(t, kNow, "browser-session-2"));
  EXPECT_FALSE(ok(t, kNow, kBrowser, "client-b"));
  EXPECT_FALSE(ok(t, kNow, kBrowser, kClient, "https://evil.example/cb"));
}

TEST(Csrf, ShiftingTextBetweenFieldsDoesNotKeepTheTokenValid) {
  std::string t = make_csrf_token(kKey, "a|b", "c", kRedirect, kNow);
  EXPECT_TRUE(ok(t, kNow, "a|b", "c"));
  EXPECT_FALSE(ok(t, kNow, "a", "b|c"));
}

TEST(Csrf, ATokenMadeWithAnotherKeyIsRefused) {
  EXPECT_FALSE(ok(make_csrf_token(kOtherKey, kBrowser, kClient, kRedirect, kNow)));
}

TEST(Csrf, AnExpiredTokenIsRefused) {
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  EXPECT_FALSE(ok(t, kNow + 901));
}

TEST(Csrf, ATokenFromTheFutureIsRefusedBeyondSixtySeconds) {
  EXPECT_TRUE(ok(make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow + 60)));
  EXPECT_FALSE(ok(make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow + 61)));
}

TEST(Csrf, ChangingTheIssuedAtTimeInvalidatesTheMac) {
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow - 2000);
  std::string mac = t.substr(t.find('.'));
  EXPECT_FALSE(ok(std::to_string(kNow) + mac));
  EXPECT_FALSE(ok("0" + t));  // non-canonical number
}

TEST(Csrf, MalformedTokensAreRefused) {
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  EXPECT_FALSE(ok(""));
  EXPECT_FALSE(ok("."));
  EXPECT_FALSE(ok(std::to_string(kNow)));
  EXPECT_FALSE(ok(std::to_string(kNow) + "."));
  EXPECT_FALSE(ok("-" + t));
  EXPECT_FALSE(ok(t + "A"));
  EXPECT_FALSE(ok(t.substr(0, t.size() - 1)));
  EXPECT_FALSE(ok(t + ".x"));
  EXPECT_FALSE(ok(std::string(200, '1') + t.substr(t.find('.'))));
}

TEST(Csrf, AShortKeyProducesNoTokenAndVerifiesNothing) {
  std::string shortkey(31, 'k');
  EXPECT_EQ(make_csrf_token(shortkey, kBrowser, kClient, kRedirect, kNow), "");
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  EXPECT_FALSE(verify_csrf_token(shortkey, t, kBrowser, kClient, kRedirect, kNow, 900));
  EXPECT_EQ(sign_value(shortkey, "v"), "");
  EXPECT_FALSE(verify_signed_value(shortkey, sign_value(kKey, "v")));
}

TEST(SignedValue, ASignedValueRoundTrips) {
  std::string v = std::string("client-a|scope=read write|exp=1800000900\0x", 41);
  std::string t = sign_value(kKey, v);
  auto back = verify_signed_value(kKey, t);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
  EXPECT_EQ(verify_signed_value(kKey, sign_value(kKey, "")), std::string());
}

TEST(SignedValue, ATamperedValueOrMacIsRefused) {
  std::string t = sign_value(kKey, "allow:client-a");
  std::size_t dot = t.find('.');
  std::string forged = mcpauth::b64url_encode("allow:client-b") + t.substr(dot);
  EXPECT_FALSE(verify_signed_value(kKey, forged));
  std::string bad_mac = t;
  // A character in the middle: the last one also holds unused padding bits.
  char& c = bad_mac[dot + 5];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_signed_value(kKey, bad_mac));
  EXPECT_FALSE(verify_signed_value(kOtherKey, t));
}

TEST(SignedValue, MalformedSignedValuesAreRefused) {
  std::string t = sign_value(kKey, "v");
  EXPECT_FALSE(verify_signed_value(kKey, ""));
  EXPECT_FALSE(verify_signed_value(kKey, "abc"));
  EXPECT_FALSE(verify_signed_value(kKey, t + ".x"));
  EXPECT_FALSE(verify_signed_value(kKey, "!" + t));
}

TEST(SignedValue, ACsrfTokenMacIsNotAcceptedAsASignedValue) {
  // Same key, different purpose: context separation must keep them apart.
  std::string t = make_csrf_token(kKey, kBrowser, kClient, kRedirect, kNow);
  std::string as_value = mcpauth::b64url_encode(std::to_string(kNow)) + t.substr(t.find('.'));
  EXPECT_FALSE(verify_signed_value(kKey, as_value));
}

}  // namespace
