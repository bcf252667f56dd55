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
  std::string token = minter().mint({"user-demo", "client-1", "snippets:read"}, 1000, 300);
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
  std::string token = minter().mint({"u", "c", ""}, 1000, 3600);
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
  std::string first = cache.get(m, "sid1", {"u", "c", "s"}, 1000);
  EXPECT_EQ(cache.get(m, "sid1", {"u", "c", "s"}, 1200), first);
  EXPECT_NE(cache.get(m, "sid1", {"u", "c", "s"}, 1241), first);
}

TEST(IdentityCache, ExpiredAssertionsOfEndedSessionsAreDropped) {
  IdentityCache cache;
  auto m = minter();
  for (int i = 0; i < 50; ++i) cache.get(m, "old" + std::to_string(i), {"u", "c", "s"}, 1000);
  EXPECT_EQ(cache.size(), 50u);
  cache.get(m, "new", {"u", "c", "s"}, 1000 + IdentityCache::kLifetime);  // the old ones expired
  EXPECT_EQ(cache.size(), 1u);
  std::string live = cache.get(m, "new2", {"u", "c", "s"}, 1000 + IdentityCache::kLifetime + 1);
  EXPECT_EQ(cache.size(), 2u);  // live entries stay (and no prune within the minute)
  EXPECT_EQ(cache.get(m, "new2", {"u", "c", "s"}, 1000 + IdentityCache::kLifetime + 2), live);
}

TEST(IdentityCache, AChangedScopeGetsAFreshAssertion) {
  IdentityCache cache;
  auto m = minter();
  std::string first = cache.get(m, "sid1", {"u", "c", "s"}, 1000);
  EXPECT_NE(cache.get(m, "sid1", {"u", "c", "s t"}, 1001), first);
}

// The guard's small per-worker table of decoded sessions: a hit only for the
// very same record text; any change is decoded again, a bad record is no
// session, and a slot taken by another session decodes afresh.
TEST(SessionCache, DecodesAgainWhenTheRecordChanges) {
  mcpauth::SessionCache cache;
  mcpauth::Session s;
  s.sid = "sid-1";
  s.sub = "user";
  s.client_id = "client";
  s.scope = "a b";
  s.expires = 100;
  std::string rec = mcpauth::encode_session(s);
  const mcpauth::SessionView* first = cache.decode("sid-1", rec);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->scope, "a b");
  EXPECT_EQ(cache.decode("sid-1", rec), first);
  s.scope = "a";
  s.expires = 200;
  const mcpauth::SessionView* second = cache.decode("sid-1", mcpauth::encode_session(s));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->scope, "a");
  EXPECT_EQ(second->expires, 200);
  EXPECT_FALSE(cache.decode("sid-1", "{\"v\":\"1\"}"));
  const mcpauth::SessionView* again = cache.decode("sid-1", rec);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->scope, "a b");
  EXPECT_EQ(again->expires, 100);
  // many sessions through the same few slots: each decodes as itself
  for (int i = 0; i < 500; ++i) {
    mcpauth::Session o = s;
    o.sid = "sid-" + std::to_string(i % 200);
    o.sub = "user-" + std::to_string(i % 200);
    const mcpauth::SessionView* got = cache.decode(o.sid, mcpauth::encode_session(o));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->sub, o.sub);
    EXPECT_EQ(got->sid, o.sid);
  }
}

// decode_session_into leaves nothing of a previous session behind.
TEST(SessionCache, DecodingIntoAReusedSessionEqualsAFreshDecode) {
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
