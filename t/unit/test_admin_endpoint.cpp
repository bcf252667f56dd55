// The admin API: the key, listing, ending sessions, disabling clients.
#include "exchange_policy.hpp"
#include "session_index.hpp"
#include "test_endpoint_fixture.hpp"
#include "token_exchange.hpp"

namespace mcpauth_test {
namespace {

const std::string kAdminKey = "0123456789abcdef0123456789abcdef-admin";

class Admin : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    cf.admin_key_file = write_file("admin.key", kAdminKey + "\n");
    ASSERT_EQ(cf.load(), "");
  }
  Response admin(const std::string& method, const std::string& path, const std::string& args = "",
                 const std::string& key = kAdminKey) {
    Request r = request(method, args);
    r.uri = "/_mcp_auth/admin" + path;
    r.cookie.clear();
    if (!key.empty()) r.authorization = "Bearer " + key;
    return call(MCPA_EP_ADMIN, r);
  }
  // A signed-in client of the fixture's user (user-42): its access token.
  struct Signed {
    std::string client_id, access, refresh;
  };
  Signed signed_in() {
    Signed s;
    s.client_id = public_client();
    Response r = redeem(s.client_id, qget(login(s.client_id), "code"));
    EXPECT_EQ(r.status, 200) << r.body;
    s.access = json_string(r.body, "access_token");
    s.refresh = json_string(r.body, "refresh_token");
    return s;
  }
  bool refresh_works(const Signed& s) { return refresh(s.client_id, s.refresh).status == 200; }
};

TEST_F(Admin, NoKeyOrAWrongKeyIsRefused) {
  for (const std::string& key : {std::string(), std::string("wrong"), kAdminKey + "x", kAdminKey.substr(1)}) {
    Response r = admin("GET", "/sessions", "subject=user-42", key);
    EXPECT_EQ(r.status, 401) << key;
    EXPECT_EQ(json_string(r.body, "error"), "unauthorized");
    EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer realm=\"mcp_auth admin\"");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_STREQ(r.events[0].name, "admin.refused");
  }
  Request basic = request("GET", "subject=user-42");
  basic.uri = "/_mcp_auth/admin/sessions";
  basic.authorization = "Basic " + kAdminKey;
  EXPECT_EQ(call(MCPA_EP_ADMIN, basic).status, 401);
}

TEST_F(Admin, AShortOrMissingKeyFailsTheConfiguration) {
  Config c = cf;
  c.admin_key_file = write_file("short.key", "too-short\n");
  EXPECT_NE(c.load().find("fewer than 32"), std::string::npos);
  c.admin_key_file = write_file("spaced.key", "0123456789abcdef 0123456789abcdef0123\n");
  EXPECT_NE(c.load().find("one line"), std::string::npos);
  Config none = cf;
  none.admin_key_file.clear();
  none.admin_key_hash.clear();
  ASSERT_EQ(none.load(), "");
  EXPECT_EQ(none.check_use(MCPA_EP_ADMIN), "mcp_auth_endpoint admin needs mcp_auth_admin_key_file");
  EXPECT_EQ(cf.check_use(MCPA_EP_ADMIN), "");
}

TEST_F(Admin, SessionsAreListedByUserAndClientWithoutTokens) {
  Signed a = signed_in(), b = signed_in();
  Response r = admin("GET", "/sessions", "subject=user-42");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  EXPECT_NE(r.body.find(a.client_id), std::string::npos);
  EXPECT_NE(r.body.find(b.client_id), std::string::npos);
  EXPECT_NE(r.body.find("\"redirect_uri\":\"" + std::string(kRedirect) + "\""), std::string::npos);
  EXPECT_EQ(r.body.find("token"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(a.access), std::string::npos);
  Response by_client = admin("GET", "/sessions", "client_id=" + pct_encode(a.client_id));
  ASSERT_EQ(by_client.status, 200);
  EXPECT_NE(by_client.body.find(a.client_id), std::string::npos);
  EXPECT_EQ(by_client.body.find(b.client_id), std::string::npos);
}

TEST_F(Admin, ListingsArePagedAndASessionEndedMeanwhileMovesNoOther) {
  std::vector<std::string> sids;
  for (int i = 0; i < 3; ++i) {
    auto a = decode_access(cf.keys->open(seal_purpose::access_token, signed_in().access).value_or(""));
    ASSERT_TRUE(a);
    sids.push_back(a->sid);
    now += 1;  // three expiries, so one order
  }
  Response first = admin("GET", "/sessions", "subject=user-42&limit=2");
  ASSERT_EQ(first.status, 200);
  const std::string cursor = json_string(first.body, "next_cursor");
  ASSERT_FALSE(cursor.empty());
  EXPECT_NE(first.body.find(sids[0]), std::string::npos);
  EXPECT_NE(first.body.find(sids[1]), std::string::npos);
  // the first page's sessions end before the second page is asked for
  ASSERT_EQ(admin("DELETE", "/sessions/" + sids[0]).status, 200);
  Response rest = admin("GET", "/sessions", "subject=user-42&limit=2&cursor=" + cursor);
  ASSERT_EQ(rest.status, 200);
  EXPECT_EQ(json_string(rest.body, "next_cursor"), "");
  EXPECT_NE(rest.body.find(sids[2]), std::string::npos) << rest.body;
  for (const char* bad : {"limit=0", "limit=26", "limit=x", "limit=", "cursor=-1", "cursor=2", "subject=a&subject=b",
                          "", "subject=a&client_id=b"}) {
    const std::string args = std::string(bad).rfind("subject", 0) == 0 || !*bad ? bad : "subject=a&" + std::string(bad);
    EXPECT_EQ(admin("GET", "/sessions", args).status, 400) << args;
  }
}

TEST_F(Admin, EndingAUsersSessionsEndsTheirTokens) {
  Signed a = signed_in(), b = signed_in();
  Response r = admin("DELETE", "/sessions", "subject=user-42");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"ended\":2,\"remaining\":0}");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_STREQ(r.events[0].name, "admin.session_ended");
  EXPECT_EQ(r.events[0].subject, "user-42");
  EXPECT_FALSE(r.events[0].session_tag.empty());
  EXPECT_FALSE(refresh_works(a));
  EXPECT_FALSE(refresh_works(b));
  EXPECT_EQ(admin("GET", "/sessions", "subject=user-42").body, "{\"sessions\":[]}");
  EXPECT_EQ(admin("DELETE", "/sessions", "subject=user-42").body, "{\"ended\":0,\"remaining\":0}");
}

// Over Redis a request's store operations are bounded: a user with more
// sessions than one request ends is ended over several, each saying how
// many are left (MCPA_UNIT_DEFERRED=1 runs this over the replay log).
TEST_F(Admin, ManySessionsEndSixteenARequestAndListTwentyFiveAPage) {
  std::vector<Signed> all;
  for (int i = 0; i < 20; ++i) all.push_back(signed_in());
  Response page = admin("GET", "/sessions", "subject=user-42");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(json_string(page.body, "next_cursor"), "");
  Response first = admin("DELETE", "/sessions", "subject=user-42");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, "{\"ended\":16,\"remaining\":4}");
  Response second = admin("DELETE", "/sessions", "subject=user-42");
  EXPECT_EQ(second.body, "{\"ended\":4,\"remaining\":0}");
  for (const auto& s : all) EXPECT_FALSE(refresh_works(s));
}

// Each session also takes along the tokens backends got for it (one more
// operation each, token_exchange.hpp): a bulk end stops where the most the
// next session can cost would not fit the request's budget.
TEST_F(Admin, ABulkEndStaysWithinTheBudgetWhenSessionsHoldExchangedTokens) {
  for (int i = 0; i < 20; ++i) signed_in();
  std::vector<IndexEntry> listed;
  store.now = now;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &listed), StoreStatus::ok);
  ASSERT_EQ(listed.size(), 20u);
  for (const auto& e : listed) {
    std::string raw;
    ASSERT_EQ(store.get("session:" + e.member, &raw), StoreStatus::ok);
    Session sess = *decode_session(raw);
    for (size_t k = 0; k < kMaxExchangeAudiences; ++k) {
      const std::string key = "aud" + std::to_string(k);
      sess.exchanges += (k ? " " : "") + key;
      ASSERT_EQ(store.put(exchange_cache_key(e.member, key), "cached", now + 600), StoreStatus::ok);
    }
    ASSERT_EQ(store.put("session:" + e.member, encode_session(sess), sess.expires), StoreStatus::ok);
  }
  int64_t ended = 0;
  for (int request = 0; request < 20 && ended < 20; ++request) {
    Response r = admin("DELETE", "/sessions", "subject=user-42");
    ASSERT_EQ(r.status, 200) << r.body;
    const int64_t now_ended = json_number(r.body, "ended").value_or(0);
    EXPECT_GT(now_ended, 0);
    EXPECT_LT(now_ended, 16);  // 22 operations a session: fewer fit
    ended += now_ended;
    EXPECT_EQ(json_number(r.body, "remaining").value_or(-1), 20 - ended);
  }
  EXPECT_EQ(ended, 20);
  std::string raw;
  for (const auto& e : listed)
    EXPECT_EQ(store.get(exchange_cache_key(e.member, "aud15"), &raw), StoreStatus::not_found);
}

TEST_F(Admin, EntriesOfSessionsEndedOtherwiseLeaveTheListSoABulkEndGoesOn) {
  std::vector<std::string> sids;
  for (int i = 0; i < 18; ++i) {
    auto a = decode_access(cf.keys->open(seal_purpose::access_token, signed_in().access).value_or(""));
    ASSERT_TRUE(a);
    sids.push_back(a->sid);
    now += 1;  // the list's order is the sign-ins' order
  }
  // the sixteen oldest end otherwise (expiry, refresh-token reuse): their
  // records go, their entries stay
  store.now = now;
  for (int i = 0; i < 16; ++i) ASSERT_EQ(store.del("session:" + sids[size_t(i)]), StoreStatus::ok);
  EXPECT_EQ(admin("DELETE", "/sessions", "subject=user-42").body, "{\"ended\":0,\"remaining\":2}");
  EXPECT_EQ(admin("DELETE", "/sessions", "subject=user-42").body, "{\"ended\":2,\"remaining\":0}");
  std::vector<IndexEntry> left;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &left), StoreStatus::ok);
  EXPECT_TRUE(left.empty());
}

TEST_F(Admin, ASessionEndedByRefreshTokenReuseLeavesTheLists) {
  Signed a = signed_in();
  Response rotated = refresh(a.client_id, a.refresh);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  now += 120;  // past the grace: the old token again is theft
  ASSERT_EQ(json_string(refresh(a.client_id, a.refresh).body, "error"), "invalid_grant");
  std::vector<IndexEntry> left;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &left), StoreStatus::ok);
  EXPECT_TRUE(left.empty());
  ASSERT_EQ(sessions_of_client(store, a.client_id, now, &left), StoreStatus::ok);
  EXPECT_TRUE(left.empty());
}

TEST_F(Admin, OneSessionEndsByItsId) {
  Signed a = signed_in(), b = signed_in();
  auto claims = decode_access(cf.keys->open(seal_purpose::access_token, a.access).value_or(""));
  ASSERT_TRUE(claims);
  EXPECT_EQ(admin("DELETE", "/sessions/" + claims->sid).status, 200);
  EXPECT_FALSE(refresh_works(a));
  EXPECT_TRUE(refresh_works(b));
  Response again = admin("DELETE", "/sessions/" + claims->sid);
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(json_string(again.body, "error"), "not_found");
  EXPECT_EQ(admin("GET", "/sessions/" + claims->sid).status, 405);
}

TEST_F(Admin, ADisabledClientLosesItsSessionsAndCannotSignInAgain) {
  Signed a = signed_in(), b = signed_in();
  Response r = admin("POST", "/clients/disable", "client_id=" + pct_encode(a.client_id));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "client_id"), a.client_id);
  EXPECT_NE(r.body.find("\"sessions_ended\":1"), std::string::npos);
  EXPECT_FALSE(refresh_works(a));
  EXPECT_TRUE(refresh_works(b));
  // its registration is gone: /authorize does not know it
  Response again = call(MCPA_EP_AUTHORIZE, request("GET", "client_id=" + a.client_id + "&response_type=code"));
  EXPECT_EQ(again.status, 400);
  Response clients = admin("GET", "/clients");
  ASSERT_EQ(clients.status, 200);
  EXPECT_NE(clients.body.find("\"client_id\":\"" + a.client_id + "\",\"client_name\":\"\",\"redirect_uris\":[],"
                              "\"disabled\":true"),
            std::string::npos)
      << clients.body;
  EXPECT_EQ(admin("POST", "/clients/enable", "client_id=" + pct_encode(a.client_id)).status, 200);
  std::string raw;
  EXPECT_EQ(store.get(client_disabled_key(a.client_id), &raw), StoreStatus::not_found);
}

TEST_F(Admin, ASignInUnderWayForADisabledClientIsRefusedAtTheCallback) {
  std::string id = public_client();
  std::string loc = to_provider(id);
  std::string nonce = nonce_of(loc);
  ASSERT_EQ(admin("POST", "/clients/disable", "client_id=" + id).status, 200);
  Response cb = callback(loc);
  Response r = resume(MCPA_EP_CALLBACK, cb, 200, FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
  EXPECT_NE(r.status, 303) << r.body;
  EXPECT_NE(r.body.find("disabled"), std::string::npos) << r.body;
  std::vector<IndexEntry> left;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &left), StoreStatus::ok);
  EXPECT_TRUE(left.empty());
}

TEST_F(Admin, UnknownPathsAndMethods) {
  EXPECT_EQ(admin("GET", "/nothing").status, 404);
  Response put = admin("PUT", "/sessions", "subject=x");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(json_string(put.body, "error"), "method_not_allowed");
  EXPECT_EQ(header(put, "Allow"), "GET, DELETE");
  EXPECT_EQ(admin("GET", "/clients/disable", "client_id=x").status, 405);
  EXPECT_EQ(admin("POST", "/clients/disable").status, 400);
  EXPECT_EQ(admin("GET", "/sessions/", "subject=user-42").status, 200);  // a trailing slash is the same
}

}  // namespace
}  // namespace mcpauth_test
