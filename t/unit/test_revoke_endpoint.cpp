// POST /revoke (RFC 7009).
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

class Revoke : public Gateway {
 protected:
  struct Login {
    std::string client_id, access, refresh, sid;
  };
  Login signed_in() {
    Login l;
    l.client_id = public_client();
    Response r = redeem(l.client_id, qget(login(l.client_id), "code"));
    EXPECT_EQ(r.status, 200) << r.body;
    l.access = json_string(r.body, "access_token");
    l.refresh = json_string(r.body, "refresh_token");
    auto a = decode_access(cf.keys->open(seal_purpose::access_token, l.access).value_or(""));
    l.sid = a ? a->sid : "";
    return l;
  }
  bool alive(const std::string& sid) {
    std::string raw;
    store.now = now;
    return store.get("session:" + sid, &raw) == StoreStatus::ok;
  }
  Response revoke(const std::vector<std::pair<std::string, std::string>>& f) {
    return call(MCPA_EP_REVOKE, token_request(f));
  }
};

TEST_F(Revoke, RevokingTheRefreshTokenEndsTheSession) {
  Login l = signed_in();
  Response r = revoke({{"token", l.refresh}, {"token_type_hint", "refresh_token"}, {"client_id", l.client_id}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  EXPECT_FALSE(alive(l.sid));
}

TEST_F(Revoke, RevokingTheAccessTokenEndsTheSessionToo) {
  Login l = signed_in();
  EXPECT_EQ(revoke({{"token", l.access}, {"client_id", l.client_id}}).status, 200);
  EXPECT_FALSE(alive(l.sid));
  EXPECT_EQ(json_string(refresh(l.client_id, l.refresh).body, "error"), "invalid_grant");
}

TEST_F(Revoke, AnUnknownTokenStillAnswers200) {
  std::string id = public_client();
  Response r = revoke({{"token", "garbage"}, {"client_id", id}});
  EXPECT_EQ(r.status, 200);
}

TEST_F(Revoke, AnotherClientCannotRevokeTheSession) {
  Login l = signed_in();
  std::string other = public_client();
  EXPECT_EQ(revoke({{"token", l.refresh}, {"client_id", other}}).status, 200);
  EXPECT_TRUE(alive(l.sid));
}

TEST_F(Revoke, FailedClientAuthenticationIsInvalidClient) {
  Login l = signed_in();
  Response r = revoke({{"token", l.refresh}, {"client_id", "nobody"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "error"), "invalid_client");
  EXPECT_TRUE(alive(l.sid));
}

TEST_F(Revoke, AMissingTokenIsInvalidRequestAndGetIs405) {
  std::string id = public_client();
  EXPECT_EQ(json_string(revoke({{"client_id", id}}).body, "error"), "invalid_request");
  EXPECT_EQ(call(MCPA_EP_REVOKE, request("GET")).status, 405);
  Request pre = request("OPTIONS");
  pre.origin = "https://inspector.example";
  Response p = call(MCPA_EP_REVOKE, pre);
  EXPECT_EQ(p.status, 204);
  EXPECT_EQ(header(p, "Access-Control-Allow-Origin"), "*");
}

}  // namespace
}  // namespace mcpauth_test
