// POST /token: code redemption (OAuth 2.1 §4.1.3), refresh (§4.3), client
// authentication (RFC 6749 §2.3.1).
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

class Token : public Gateway {
 protected:
  std::string error_of(const Response& r) { return json_string(r.body, "error"); }
  std::string sid_of(const std::string& access) {
    auto a = decode_access(cf.keys->open(seal_purpose::access_token, access).value_or(""));
    return a ? a->sid : "";
  }
  bool session_alive(const std::string& sid) {
    std::string raw;
    store.now = now;
    return store.get("session:" + sid, &raw) == StoreStatus::ok;
  }
  // A fresh login redeemed: {access, refresh}.
  std::pair<std::string, std::string> tokens(const std::string& client_id) {
    Response r = redeem(client_id, qget(login(client_id), "code"));
    EXPECT_EQ(r.status, 200) << r.body;
    return {json_string(r.body, "access_token"), json_string(r.body, "refresh_token")};
  }
};

TEST_F(Token, ARedeemedCodeCannotBeUsedAgainAndTheReplayRevokesTheSession) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  Response first = redeem(id, code);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string sid = sid_of(json_string(first.body, "access_token"));
  ASSERT_TRUE(session_alive(sid));
  Response second = redeem(id, code);
  EXPECT_EQ(second.status, 400);
  EXPECT_EQ(error_of(second), "invalid_grant");
  EXPECT_EQ(header(second, "Cache-Control"), "no-store");
  EXPECT_FALSE(session_alive(sid));
  EXPECT_EQ(error_of(refresh(id, json_string(first.body, "refresh_token"))), "invalid_grant");
}

TEST_F(Token, AWrongVerifierIsInvalidGrant) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  Response r = redeem(id, code, "wrong-verifier-wrong-verifier-wrong-verifier-000");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "invalid_grant");
  EXPECT_EQ(json_string(r.body, "error_description"), "PKCE verification failed");
}

// RFC 9700 §4.5, OAuth 2.1 §4.1.3: only a presentation that would succeed
// consumes the code.  Someone who saw the code (a log, a Referer, a shared
// redirect) but lacks the verifier, the client or the redirect URI gets
// invalid_grant and the rightful client still redeems it.
TEST_F(Token, ALeakedCodeCannotBeBurntWithoutItsVerifierClientOrRedirectUri) {
  std::string id = public_client();
  std::string other = public_client();
  std::string code = qget(login(id), "code");
  const std::vector<Request> attacks = {
      token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                     {"client_id", id}, {"code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-000"}}),
      token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                     {"client_id", id}, {"code_verifier", "short"}}),
      token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                     {"client_id", other}, {"code_verifier", kVerifier}}),
      token_request({{"grant_type", "authorization_code"}, {"code", code},
                     {"redirect_uri", "https://client.example/other"}, {"client_id", id},
                     {"code_verifier", kVerifier}}),
      token_request({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", id},
                     {"code_verifier", kVerifier}}),  // redirect_uri was sent at /authorize
  };
  for (const Request& attack : attacks) {
    Response r = call(MCPA_EP_TOKEN, attack);
    EXPECT_EQ(r.status, 400) << attack.body;
    EXPECT_EQ(error_of(r), "invalid_grant") << attack.body;
  }
  Response rightful = redeem(id, code);
  ASSERT_EQ(rightful.status, 200) << rightful.body;
  EXPECT_TRUE(session_alive(sid_of(json_string(rightful.body, "access_token"))));
}

TEST_F(Token, AFailedPresentationOfAUsedCodeLeavesTheSessionAlone) {
  std::string id = public_client();
  std::string other = public_client();
  std::string code = qget(login(id), "code");
  Response first = redeem(id, code);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string sid = sid_of(json_string(first.body, "access_token"));
  // Not the rightful client: nothing changes (it could not have redeemed it).
  EXPECT_EQ(error_of(redeem(id, code, "wrong-verifier-wrong-verifier-wrong-verifier-000")), "invalid_grant");
  EXPECT_EQ(error_of(redeem(other, code)), "invalid_grant");
  EXPECT_TRUE(session_alive(sid));
  // The rightful client presenting it again: a replay, the session ends.
  EXPECT_EQ(error_of(redeem(id, code)), "invalid_grant");
  EXPECT_FALSE(session_alive(sid));
}

TEST_F(Token, AMissingVerifierIsInvalidRequest) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  Response r = call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"}, {"code", code},
                                                  {"redirect_uri", kRedirect}, {"client_id", id}}));
  EXPECT_EQ(error_of(r), "invalid_request");
}

TEST_F(Token, AnExpiredCodeIsInvalidGrant) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  now += cf.code_ttl;
  EXPECT_EQ(error_of(redeem(id, code)), "invalid_grant");
}

TEST_F(Token, ACodeRedeemedByAnotherClientFails) {
  std::string victim = public_client();
  std::string attacker = public_client();
  std::string code = qget(login(victim), "code");
  Response r = redeem(attacker, code);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "invalid_grant");
}

TEST_F(Token, TheRedirectUriMustMatchTheAuthorizationRequest) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  Response r = call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"}, {"code", code},
                                                  {"redirect_uri", "https://client.example/other"},
                                                  {"client_id", id}, {"code_verifier", kVerifier}}));
  EXPECT_EQ(error_of(r), "invalid_grant");
  code = qget(login(id), "code");
  r = call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"}, {"code", code},
                                         {"client_id", id}, {"code_verifier", kVerifier}}));
  EXPECT_EQ(error_of(r), "invalid_grant");
}

TEST_F(Token, AForeignResourceIsInvalidTarget) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  Response r = call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"}, {"code", code},
                                                  {"redirect_uri", kRedirect}, {"client_id", id},
                                                  {"code_verifier", kVerifier},
                                                  {"resource", "https://other.example/mcp"}}));
  EXPECT_EQ(error_of(r), "invalid_target");
}

TEST_F(Token, AnUnknownClientIsInvalidClientWith401) {
  Response r = redeem("nobody", "whatever");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_of(r), "invalid_client");
  Request req = token_request({{"grant_type", "authorization_code"}, {"code", "c"}, {"code_verifier", kVerifier}});
  req.authorization = "Basic " + b64_encode("nobody:secret");
  r = call(MCPA_EP_TOKEN, req);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(header(r, "WWW-Authenticate").rfind("Basic", 0), 0u);
}

TEST_F(Token, AConfidentialClientMustPresentItsSecret) {
  std::string secret;
  std::string id = register_client(R"({"redirect_uris":["https://client.example/cb"]})", &secret);
  std::string code = qget(login(id), "code");
  // client_id alone: refused, and the code survives (no side effect first).
  Response r = redeem(id, code);
  EXPECT_EQ(r.status, 401);
  Request wrong = token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                                 {"code_verifier", kVerifier}});
  wrong.authorization = "Basic " + b64_encode(id + ":" + secret + "x");
  EXPECT_EQ(call(MCPA_EP_TOKEN, wrong).status, 401);
  Request good = wrong;
  good.authorization = "Basic " + b64_encode(id + ":" + secret);
  Response ok = call(MCPA_EP_TOKEN, good);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(Token, ClientSecretPostIsAcceptedButNotTogetherWithBasic) {
  std::string secret;
  std::string id = register_client(
      R"({"token_endpoint_auth_method":"client_secret_post","redirect_uris":["https://client.example/cb"]})", &secret);
  std::string code = qget(login(id), "code");
  Request both = token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                                {"code_verifier", kVerifier}, {"client_id", id}, {"client_secret", secret}});
  both.authorization = "Basic " + b64_encode(id + ":" + secret);
  EXPECT_EQ(error_of(call(MCPA_EP_TOKEN, both)), "invalid_request");
  Response ok = call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"}, {"code", code},
                                                   {"redirect_uri", kRedirect}, {"code_verifier", kVerifier},
                                                   {"client_id", id}, {"client_secret", secret}}));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(Token, RequestShapeErrors) {
  std::string id = public_client();
  EXPECT_EQ(error_of(call(MCPA_EP_TOKEN, request("POST", "", "grant_type=authorization_code", "application/json"))),
            "invalid_request");
  EXPECT_EQ(error_of(call(MCPA_EP_TOKEN, token_request({{"grant_type", "password"}, {"client_id", id}}))),
            "unsupported_grant_type");
  EXPECT_EQ(error_of(call(MCPA_EP_TOKEN, token_request({{"client_id", id}}))), "invalid_request");
  EXPECT_EQ(error_of(call(MCPA_EP_TOKEN, token_request({{"grant_type", "refresh_token"}, {"grant_type", "x"},
                                                         {"client_id", id}}))),
            "invalid_request");
  EXPECT_EQ(call(MCPA_EP_TOKEN, request("GET")).status, 405);
  Request pre = request("OPTIONS");
  pre.origin = "https://inspector.example";
  EXPECT_EQ(call(MCPA_EP_TOKEN, pre).status, 204);
}

TEST_F(Token, AccessTokensNeverOutliveTheSession) {
  cf.session_ttl = 1000;
  std::string id = public_client();
  Response r = redeem(id, qget(login(id), "code"));
  EXPECT_LE(json_number(r.body, "expires_in").value_or(99999), 1000);
}

TEST_F(Token, RefreshRotatesAndReuseOfAnOldTokenRevokesTheSession) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string sid = sid_of(access);
  now += 100;
  Response second = refresh(id, r1);
  ASSERT_EQ(second.status, 200) << second.body;
  std::string r2 = json_string(second.body, "refresh_token");
  now += 100;
  Response third = refresh(id, r2);
  ASSERT_EQ(third.status, 200);
  // r1 is two generations old: reuse -> the session ends for everyone.
  Response reuse = refresh(id, r1);
  EXPECT_EQ(error_of(reuse), "invalid_grant");
  EXPECT_FALSE(session_alive(sid));
  EXPECT_EQ(error_of(refresh(id, json_string(third.body, "refresh_token"))), "invalid_grant");
}

// RFC 9700 §4.14.2 with a grace for genuine concurrency: a retry of the
// old refresh token within 30 s of its rotation gets the very pair the
// winning rotation returned -- the same strings -- not a new pair.
TEST_F(Token, AConcurrentRefreshWithinTheGraceWindowGetsTheSamePairAgain) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string sid = sid_of(access);
  now += 100;
  Response a = refresh(id, r1);
  ASSERT_EQ(a.status, 200) << a.body;
  for (int later : {0, 10, 20}) {
    now += later ? 10 : 0;
    Response b = refresh(id, r1);  // the same token again
    ASSERT_EQ(b.status, 200) << b.body;
    EXPECT_EQ(json_string(b.body, "access_token"), json_string(a.body, "access_token")) << later;
    EXPECT_EQ(json_string(b.body, "refresh_token"), json_string(a.body, "refresh_token")) << later;
    EXPECT_EQ(json_number(b.body, "expires_in").value_or(0), json_number(a.body, "expires_in").value_or(0) - later);
  }
  EXPECT_TRUE(session_alive(sid));
  auto g = decode_refresh(cf.keys->open(seal_purpose::refresh_token, json_string(a.body, "refresh_token")).value_or(""));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->gen, 1);
  // and the pair works: the successor rotates
  Response next = refresh(id, json_string(a.body, "refresh_token"));
  EXPECT_EQ(next.status, 200) << next.body;
}

TEST_F(Token, OnceTheSuccessorIsUsedAnOlderRefreshTokenEndsTheSessionEvenWithinTheGrace) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string sid = sid_of(access);
  Response a = refresh(id, r1);
  ASSERT_EQ(a.status, 200) << a.body;
  now += 5;
  Response b = refresh(id, json_string(a.body, "refresh_token"));  // the successor, used
  ASSERT_EQ(b.status, 200) << b.body;
  now += 5;
  EXPECT_EQ(error_of(refresh(id, r1)), "invalid_grant");  // 10 s after its rotation
  EXPECT_FALSE(session_alive(sid));
  EXPECT_EQ(error_of(refresh(id, json_string(b.body, "refresh_token"))), "invalid_grant");
}

TEST_F(Token, AGraceRequestForANarrowerScopeGetsItsOwnAccessTokenAndTheSameRefreshToken) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  Response a = refresh(id, r1);
  ASSERT_EQ(a.status, 200) << a.body;
  now += 3;
  Response narrow = call(MCPA_EP_TOKEN, token_request({{"grant_type", "refresh_token"}, {"refresh_token", r1},
                                                       {"client_id", id}, {"scope", "mcp:read"}}));
  ASSERT_EQ(narrow.status, 200) << narrow.body;
  EXPECT_EQ(json_string(narrow.body, "scope"), "mcp:read");
  EXPECT_NE(json_string(narrow.body, "access_token"), json_string(a.body, "access_token"));
  EXPECT_EQ(json_string(narrow.body, "refresh_token"), json_string(a.body, "refresh_token"));
}

TEST_F(Token, TheGraceNeverHandsOutAnExpiredAccessToken) {
  cf.access_token_ttl = 10;
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string sid = sid_of(access);
  Response a = refresh(id, r1);
  ASSERT_EQ(a.status, 200) << a.body;
  now += 9;
  Response b = refresh(id, r1);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(json_number(b.body, "expires_in").value_or(0), 1);
  now += 1;  // the winner's access token has expired: no longer a concurrent retry
  EXPECT_EQ(error_of(refresh(id, r1)), "invalid_grant");
  EXPECT_FALSE(session_alive(sid));
}

TEST_F(Token, TheSameOldTokenAfterTheGraceWindowRevokes) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  refresh(id, r1);
  now += 31;
  EXPECT_EQ(error_of(refresh(id, r1)), "invalid_grant");
  EXPECT_FALSE(session_alive(sid_of(access)));
}

TEST_F(Token, TamperedForeignKeyExpiredAndAccessTokensAreNotRefreshTokens) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string tampered = r1;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(error_of(refresh(id, tampered)), "invalid_grant");
  EXPECT_EQ(error_of(refresh(id, access)), "invalid_grant");
  std::string why;
  auto other = KeyRing::parse(KeyRing::generate_line("k1"), &why);
  RefreshClaims forged{sid_of(access), id, 0, now + 1000};
  EXPECT_EQ(error_of(refresh(id, other->seal(seal_purpose::refresh_token, encode_refresh(forged)))), "invalid_grant");
  now += cf.refresh_token_ttl;
  EXPECT_EQ(error_of(refresh(id, r1)), "invalid_grant");
}

TEST_F(Token, ARefreshTokenOfAnotherClientIsRefused) {
  std::string a = public_client();
  std::string b = public_client();
  auto [access, r1] = tokens(a);
  EXPECT_EQ(error_of(refresh(b, r1)), "invalid_grant");
  EXPECT_TRUE(session_alive(sid_of(access)));
}

TEST_F(Token, ARefreshMayNarrowButNotWidenTheScope) {
  std::string id = public_client();
  Response r = redeem(id, qget(login(id, {{"scope", "mcp:read"}}), "code"));
  std::string r1 = json_string(r.body, "refresh_token");
  Response wide = call(MCPA_EP_TOKEN, token_request({{"grant_type", "refresh_token"}, {"refresh_token", r1},
                                                     {"client_id", id}, {"scope", "mcp:read mcp:tools"}}));
  EXPECT_EQ(error_of(wide), "invalid_scope");
  Response same = call(MCPA_EP_TOKEN, token_request({{"grant_type", "refresh_token"}, {"refresh_token", r1},
                                                     {"client_id", id}, {"scope", "mcp:read"}}));
  EXPECT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(json_string(same.body, "scope"), "mcp:read");
}

TEST_F(Token, AProviderTokenNearExpiryIsRenewedBeforeAnswering) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  std::string sid = sid_of(access);
  now += 3590;  // the provider's access token (3600 s) is about to expire
  Response r = refresh(id, r1);
  ASSERT_EQ(r.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << r.body;
  auto body = Params::parse(r.fetch.body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->get("grant_type").value_or(""), "refresh_token");
  EXPECT_EQ(body->get("refresh_token").value_or(""), "idp-refresh-1");
  // A second refresh meanwhile does not start another renewal.
  Response meanwhile = refresh(id, r1);
  EXPECT_EQ(meanwhile.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(meanwhile.status, 200);

  Response done = resume(MCPA_EP_TOKEN, r, 200,
                         R"({"access_token":"idp-access-2","token_type":"Bearer","expires_in":3600,"refresh_token":"idp-refresh-2"})");
  EXPECT_EQ(done.status, 200) << done.body;
  std::string raw;
  ASSERT_EQ(store.get("session:" + sid, &raw), StoreStatus::ok);
  EXPECT_EQ(decode_session(raw)->provider_refresh_token, "idp-refresh-2");
}

TEST_F(Token, AProviderRefusingTheRenewalEndsTheSession) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  now += 3590;
  Response r = refresh(id, r1);
  ASSERT_EQ(r.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  Response done = resume(MCPA_EP_TOKEN, r, 400, R"({"error":"invalid_grant"})");
  EXPECT_EQ(error_of(done), "invalid_grant");
  EXPECT_FALSE(session_alive(sid_of(access)));
}

TEST_F(Token, AnUnreachableProviderDoesNotLockTheUserOut) {
  std::string id = public_client();
  auto [access, r1] = tokens(id);
  now += 3590;
  Response r = refresh(id, r1);
  ASSERT_EQ(r.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  Response done = resume(MCPA_EP_TOKEN, r, 0, "");
  EXPECT_EQ(done.status, 200) << done.body;
}

// Two rightful redemptions at once (two nodes, one Redis): the rival's
// compare-and-set lands between this request's read and its own.
class RacingStore final : public Store {
 public:
  explicit RacingStore(MemoryStore& inner) : inner_(inner) {}
  StoreStatus get(std::string_view k, std::string* v) override { return inner_.get(k, v); }
  StoreStatus take(std::string_view k, std::string* v) override { return inner_.take(k, v); }
  StoreStatus put(std::string_view k, std::string_view v, int64_t e, StoreClass c) override {
    return inner_.put(k, v, e, c);
  }
  StoreStatus put_new(std::string_view k, std::string_view v, int64_t e, StoreClass c) override {
    return inner_.put_new(k, v, e, c);
  }
  StoreStatus replace_if(std::string_view k, std::string_view expected, std::string_view v, int64_t e) override {
    if (!raced && k.substr(0, 5) == "code:") {
      raced = true;
      EXPECT_EQ(inner_.replace_if(k, expected, v, e), StoreStatus::ok);  // the rival wins
    }
    return inner_.replace_if(k, expected, v, e);
  }
  StoreStatus del(std::string_view k) override { return inner_.del(k); }
  bool raced = false;

 private:
  MemoryStore& inner_;
};

TEST_F(Token, OfTwoConcurrentRedemptionsOneWinsAndTheLoserEndsTheSession) {
  std::string id = public_client();
  std::string code = qget(login(id), "code");
  std::string sid;
  {
    std::string raw;
    ASSERT_EQ(store.get("code:" + sha256_b64url(code), &raw), StoreStatus::ok);
    sid = decode_code(raw)->sid;
  }
  RacingStore racing(store);
  store.now = now;
  Request req = token_request({{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kRedirect},
                               {"client_id", id}, {"code_verifier", kVerifier}});
  req.now = now;
  Response loser = handle_token(cf, racing, req);
  EXPECT_TRUE(racing.raced);
  EXPECT_EQ(error_of(loser), "invalid_grant");
  // The code was presented twice: whoever won may be an attacker.
  EXPECT_FALSE(session_alive(sid));
}

// A store whose reads fail with a chosen status.
class FailingStore final : public Store {
 public:
  explicit FailingStore(StoreStatus s) : status_(s) {}
  StoreStatus get(std::string_view, std::string*) override { return status_; }
  StoreStatus take(std::string_view, std::string*) override { return status_; }
  StoreStatus put(std::string_view, std::string_view, int64_t, StoreClass) override { return status_; }
  StoreStatus put_new(std::string_view, std::string_view, int64_t, StoreClass) override { return status_; }
  StoreStatus replace_if(std::string_view, std::string_view, std::string_view, int64_t) override { return status_; }
  StoreStatus del(std::string_view) override { return status_; }

 private:
  StoreStatus status_;
};

TEST_F(Token, AStoreFailureIsNeverReportedAsInvalidClient) {
  Request req = token_request({{"grant_type", "authorization_code"}, {"code", "c"}, {"client_id", "some-client"},
                               {"code_verifier", kVerifier}});
  FailingStore full(StoreStatus::full);
  Response r = handle_token(cf, full, req);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(error_of(r), "temporarily_unavailable");
  EXPECT_FALSE(header(r, "Retry-After").empty());
  FailingStore broken(StoreStatus::error);
  r = handle_token(cf, broken, req);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(error_of(r), "server_error");
  r = handle_revoke(cf, broken, token_request({{"token", "t"}, {"client_id", "some-client"}}));
  EXPECT_EQ(r.status, 500);
}

}  // namespace
}  // namespace mcpauth_test
