#include <gtest/gtest.h>
#include <jwt.h>

#include <string>

#include "identity_assertion.hpp"

using namespace mcpauth;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

IdentityMinter minter() {
  std::string err;
  auto m = IdentityMinter::create(kSecret + "\n", "ngx_mcp_auth", "mcp-tool-server", &err);
  EXPECT_TRUE(m) << err;
  return *m;
}

}  // namespace

TEST(IdentityMinter, MintsAnHs256TokenTheToolServerCanVerify) {
  std::string token = minter().mint({"user-demo", "client-1", "snippets:read", "", "", ""}, 1000, 300);
  jwt_t* jwt = nullptr;
  ASSERT_EQ(jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(kSecret.data()),
                       static_cast<int>(kSecret.size())),
            0);
  EXPECT_EQ(jwt_get_alg(jwt), JWT_ALG_HS256);
  EXPECT_STREQ(jwt_get_grant(jwt, "sub"), "user-demo");
  EXPECT_STREQ(jwt_get_grant(jwt, "client_id"), "client-1");
  EXPECT_STREQ(jwt_get_grant(jwt, "aud"), "mcp-tool-server");
  EXPECT_STREQ(jwt_get_grant(jwt, "iss"), "ngx_mcp_auth");
  EXPECT_EQ(jwt_get_grant_int(jwt, "exp"), 1300);
  jwt_free(jwt);
}

TEST(IdentityMinter, LifetimeIsCappedAtFiveMinutes) {
  std::string token = minter().mint({"u", "c", "", "", "", ""}, 1000, 3600);
  jwt_t* jwt = nullptr;
  ASSERT_EQ(jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(kSecret.data()),
                       static_cast<int>(kSecret.size())),
            0);
  EXPECT_EQ(jwt_get_grant_int(jwt, "exp"), 1300);
  jwt_free(jwt);
}

TEST(IdentityMinter, ShortSecretIsRefused) {
  std::string err;
  EXPECT_FALSE(IdentityMinter::create("short\n", "i", "a", &err));
  EXPECT_NE(err.find("32"), std::string::npos);
}

TEST(IdentityCache, ReusesAnAssertionUntilCloseToExpiry) {
  IdentityCache cache;
  auto m = minter();
  std::string first = cache.get(m, nullptr, "sid1", {"u", "c", "s", "", "", ""}, 1000);
  EXPECT_EQ(cache.get(m, nullptr, "sid1", {"u", "c", "s", "", "", ""}, 1200), first);
  EXPECT_NE(cache.get(m, nullptr, "sid1", {"u", "c", "s", "", "", ""}, 1241), first);
}

TEST(IdentityCache, ExpiredAssertionsOfEndedSessionsAreDropped) {
  IdentityCache cache;
  auto m = minter();
  for (int i = 0; i < 50; ++i) cache.get(m, nullptr, "old" + std::to_string(i), {"u", "c", "s", "", "", ""}, 1000);
  EXPECT_EQ(cache.size(), 50u);
  cache.get(m, nullptr, "new", {"u", "c", "s", "", "", ""}, 1000 + IdentityCache::kLifetime);  // the old ones expired
  EXPECT_EQ(cache.size(), 1u);
  std::string live = cache.get(m, nullptr, "new2", {"u", "c", "s", "", "", ""}, 1000 + IdentityCache::kLifetime + 1);
  EXPECT_EQ(cache.size(), 2u);  // live entries stay (and no prune within the minute)
  EXPECT_EQ(cache.get(m, nullptr, "new2", {"u", "c", "s", "", "", ""}, 1000 + IdentityCache::kLifetime + 2), live);
}

TEST(IdentityCache, AChangedScopeGetsAFreshAssertion) {
  IdentityCache cache;
  auto m = minter();
  std::string first = cache.get(m, nullptr, "sid1", {"u", "c", "s", "", "", ""}, 1000);
  EXPECT_NE(cache.get(m, nullptr, "sid1", {"u", "c", "s t", "", "", ""}, 1001), first);
}

// Tokens this worker opened: a hit only for the byte-identical token, and
// the table is emptied (not grown) when full.
TEST(TokenCache, HitsOnlyTheSameTokenAndStaysBounded) {
  TokenCache cache;
  AccessClaims a;
  a.sid = "sid-1";
  a.exp = 100;
  const std::string token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  EXPECT_FALSE(cache.find(token));
  const AccessClaims* added = cache.add(token, a);
  ASSERT_TRUE(added);
  const AccessClaims* hit = cache.find(token);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->sid, "sid-1");
  std::string other = token;
  other[0] = 'B';  // same tail, so the same hash chain: compared in full
  EXPECT_FALSE(cache.find(other));
  EXPECT_FALSE(cache.find(token.substr(1)));
  for (size_t i = 0; i < TokenCache::kMaxEntries; ++i) cache.add("t" + std::to_string(i), a);
  EXPECT_LE(cache.size(), TokenCache::kMaxEntries);
}

// The guard's buffers hold the session record and the provider's tokens in
// the clear only until the request's result is released.
TEST(IdentityCache, WipeScratchLeavesNoProviderToken) {
  IdentityCache cache;
  cache.scratch_record = R"({"provider_access_token":"pat-secret"})";
  cache.scratch_session.sid = "sid-1";
  cache.scratch_session.provider_access_token = std::string(64, 'p');
  cache.scratch_session.provider_refresh_token = std::string(64, 'r');
  const char* token_bytes = cache.scratch_session.provider_access_token.data();
  cache.wipe_scratch();
  EXPECT_TRUE(cache.scratch_record.empty());
  EXPECT_TRUE(cache.scratch_session.provider_access_token.empty());
  EXPECT_TRUE(cache.scratch_session.provider_refresh_token.empty());
  EXPECT_EQ(cache.scratch_session.sid, "sid-1");
  // the buffer is kept for the next request, overwritten
  EXPECT_EQ(cache.scratch_session.provider_access_token.data(), token_bytes);
  EXPECT_EQ(std::string(token_bytes, 64), std::string(64, '\0'));
}

// decode_session_into leaves nothing of a previous session behind.
TEST(SessionRecords, DecodingIntoAReusedSessionEqualsAFreshDecode) {
  mcpauth::Session a, b;
  a.sid = "s1";
  a.sub = "u1";
  a.client_id = "c1";
  a.name = "Name";
  a.email = "e@x";
  a.provider_access_token = std::string(100, 'p');
  a.gen = 7;
  a.rotated_at = 9;
  b.sid = "s2";
  b.sub = "u2";
  b.client_id = "c2";
  mcpauth::Session reused;
  ASSERT_TRUE(mcpauth::decode_session_into(mcpauth::encode_session(a), &reused));
  ASSERT_TRUE(mcpauth::decode_session_into(mcpauth::encode_session(b), &reused));
  auto fresh = mcpauth::decode_session(mcpauth::encode_session(b));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(mcpauth::encode_session(reused), mcpauth::encode_session(*fresh));
  EXPECT_TRUE(reused.name.empty() && reused.email.empty() && reused.provider_access_token.empty());
  EXPECT_EQ(reused.gen, 0);
}
