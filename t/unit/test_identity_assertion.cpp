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
