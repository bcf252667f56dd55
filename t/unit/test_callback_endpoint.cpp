// GET /oauth-callback and its provider continuations.
#include "test_endpoint_fixture.hpp"

#include <algorithm>

namespace mcpauth_test {
namespace {

struct Started {
  std::string client_id, provider, nonce;
};

class CallbackTest : public Gateway {
 protected:
  Started start() {
    Started s;
    s.client_id = public_client();
    s.provider = to_provider(s.client_id);
    s.nonce = nonce_of(s.provider);
    return s;
  }
  // Callback + provider token answer with the JWKS already cached.
  Response finish(const Started& s, const std::string& token_answer, int status = 200) {
    store.now = now;
    store.put("jwks:https://idp.example", FakeIdp::get().jwks, now + 3600);
    Response cb = callback(s.provider);
    EXPECT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << cb.body;
    return resume(MCPA_EP_CALLBACK, cb, status, token_answer);
  }
  // Before the login completed, the client hears of a failure through a
  // link on the page (no automatic redirect).
  std::string client_error(const Response& r) {
    EXPECT_TRUE(r.status == 400 || r.status == 200) << r.status << r.body;
    EXPECT_EQ(header(r, "Location"), "");
    std::string loc = return_link(r);
    EXPECT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << r.body;
    EXPECT_TRUE(qget(loc, "code").empty());
    EXPECT_EQ(qget(loc, "iss"), "https://mcp.example");
    EXPECT_EQ(qget(loc, "state"), "client-state");
    return qget(loc, "error");
  }
};

void expect_page(const Response& r, int status = 400) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(r.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
}

TEST_F(CallbackTest, AnUnknownOrForgedStateGetsAnErrorPage) {
  start();
  expect_page(call(MCPA_EP_CALLBACK, request("GET", "code=c&state=forged")));
  expect_page(call(MCPA_EP_CALLBACK, request("GET", "code=c")));
}

TEST_F(CallbackTest, TheStateIsSingleUse) {
  Started s = start();
  const std::string answer = FakeIdp::get().token_response(FakeIdp::get().id_token(s.nonce, now));
  // two callbacks with the same state at once: one login goes on
  Response first = callback(s.provider);
  Response second = callback(s.provider);
  ASSERT_EQ(first.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  ASSERT_EQ(second.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  store.put("jwks:https://idp.example", FakeIdp::get().jwks, now + 3600);
  Response done = resume(MCPA_EP_CALLBACK, first, 200, answer);
  EXPECT_EQ(done.status, 303);
  EXPECT_FALSE(qget(header(done, "Location"), "code").empty());
  expect_page(resume(MCPA_EP_CALLBACK, second, 200, answer));
  // and once completed, a replayed callback is refused before any provider call
  expect_page(callback(s.provider));
}

TEST_F(CallbackTest, AForgedStateOpensNothingAndStoresNothing) {
  Started s = start();
  std::string state = qget(s.provider, "state");
  state[state.size() / 2] = state[state.size() / 2] == 'A' ? 'B' : 'A';
  const size_t before = store.size();
  expect_page(call(MCPA_EP_CALLBACK, request("GET", "code=c&state=" + state)));
  EXPECT_EQ(store.size(), before);
}

TEST_F(CallbackTest, AStateFromAnotherBrowserIsRefused) {
  Started s = start();
  // The attacker's state, replayed in the victim's browser (no login cookie
  // or another one): login CSRF.
  jar.cookies["__Host-mcp_login"] = random_token(32);
  expect_page(callback(s.provider));
  Started t = start();
  jar.cookies.erase("__Host-mcp_login");
  expect_page(callback(t.provider));
}

TEST_F(CallbackTest, SwappedStatesBetweenTwoLoginsFailTheBinding) {
  Started a = start();
  Jar first = jar;
  jar = Jar();
  Started b = start();
  // Browser B comes back with A's state.
  Response r = call(MCPA_EP_CALLBACK, request("GET", "code=c&state=" + qget(a.provider, "state")));
  expect_page(r);
  (void)first;
  (void)b;
}

TEST_F(CallbackTest, AnExpiredLoginGetsAnErrorPage) {
  Started s = start();
  now += 601;
  expect_page(callback(s.provider));
}

TEST_F(CallbackTest, AForeignIssParameterIsAMixUpAndSendsNoCode) {
  Started s = start();
  Response r = call(MCPA_EP_CALLBACK, request("GET", "code=c&state=" + qget(s.provider, "state") +
                                                         "&iss=" + pct_encode("https://evil.example")));
  EXPECT_EQ(r.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(client_error(r), "server_error");
}

TEST_F(CallbackTest, AProviderDenialBecomesAccessDenied) {
  Started s = start();
  Response r = call(MCPA_EP_CALLBACK,
                    request("GET", "error=access_denied&state=" + qget(s.provider, "state")));
  EXPECT_EQ(client_error(r), "access_denied");
  Started t = start();
  r = call(MCPA_EP_CALLBACK, request("GET", "error=temporarily_unavailable&state=" + qget(t.provider, "state")));
  EXPECT_EQ(client_error(r), "server_error");
}

TEST_F(CallbackTest, AnUnreachableProviderGivesA502Page) {
  Started s = start();
  expect_page(finish(s, "", 0), 502);
}

TEST_F(CallbackTest, AProviderErrorTellsTheClientServerError) {
  Started s = start();
  Response r = finish(s, R"({"error":"invalid_grant"})", 400);
  EXPECT_EQ(client_error(r), "server_error");
  EXPECT_NE(qget(return_link(r), "error_description").find("invalid_grant"), std::string::npos);
}

TEST_F(CallbackTest, AnIdTokenWithTheWrongNonceIsRefused) {
  Started s = start();
  EXPECT_EQ(client_error(finish(s, FakeIdp::get().token_response(FakeIdp::get().id_token("other-nonce", now)))),
            "server_error");
  EXPECT_EQ(store.size(), 2u);  // client + jwks: no session, no code
}

TEST_F(CallbackTest, AnIdTokenForAnotherAudienceOrIssuerIsRefused) {
  Started s = start();
  EXPECT_EQ(client_error(finish(s, FakeIdp::get().token_response(
                                       FakeIdp::get().id_token(s.nonce, now, "u", "https://idp.example", "other")))),
            "server_error");
  Started t = start();
  EXPECT_EQ(client_error(finish(t, FakeIdp::get().token_response(
                                       FakeIdp::get().id_token(t.nonce, now, "u", "https://evil.example")))),
            "server_error");
}

TEST_F(CallbackTest, ATamperedIdTokenIsRefused) {
  Started s = start();
  std::string tok = FakeIdp::get().id_token(s.nonce, now);
  tok[tok.find('.') + 5] ^= 1;
  EXPECT_EQ(client_error(finish(s, FakeIdp::get().token_response(tok))), "server_error");
}

TEST_F(CallbackTest, AnUnknownKidTriggersOneJwksRefetchOnly) {
  Started s = start();
  std::string tok = FakeIdp::get().id_token(s.nonce, now, "user-42", "https://idp.example", "gateway", "rotated");
  Response r = finish(s, FakeIdp::get().token_response(tok));
  ASSERT_EQ(r.fetch.target, MCPA_FETCH_PROVIDER_JWKS);
  // The refetched set still lacks the kid: no second fetch, an error.
  Response again = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
  EXPECT_EQ(again.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(client_error(again), "server_error");
}

TEST_F(CallbackTest, ARotatedProviderKeyIsPickedUpByTheRefetch) {
  Started s = start();
  std::string tok = FakeIdp::get().id_token(s.nonce, now, "user-42", "https://idp.example", "gateway", "rotated");
  Response r = finish(s, FakeIdp::get().token_response(tok));
  ASSERT_EQ(r.fetch.target, MCPA_FETCH_PROVIDER_JWKS);
  Response done = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks_with_kid("rotated"));
  EXPECT_EQ(done.status, 303);
  EXPECT_FALSE(qget(header(done, "Location"), "code").empty());
}

TEST_F(CallbackTest, AForgedContinuationIsRefused) {
  Started s = start();
  Response cb = callback(s.provider);
  cb.fetch.continuation[cb.fetch.continuation.size() - 3] ^= 1;
  expect_page(resume(MCPA_EP_CALLBACK, cb, 200, "{}"), 500);
}

TEST_F(CallbackTest, ClientSecretPostAndPrivateKeyJwtShapeTheProviderRequest) {
  cf.provider_client_auth = Config::ProviderAuth::client_secret_post;
  Started s = start();
  Response cb = callback(s.provider);
  auto body = Params::parse(cb.fetch.body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->get("client_id").value_or(""), "gateway");
  EXPECT_EQ(body->get("client_secret").value_or(""), "provider secret");
  EXPECT_EQ(cb.fetch.authorization, "");

  cf.provider_client_auth = Config::ProviderAuth::private_key_jwt;
  cf.provider_private_key = FakeIdp::get().private_pem;
  Started t = start();
  cb = callback(t.provider);
  body = Params::parse(cb.fetch.body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->get("client_assertion_type").value_or(""), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  const std::string assertion = body->get("client_assertion").value_or("");
  EXPECT_EQ(std::count(assertion.begin(), assertion.end(), '.'), 2);
  EXPECT_FALSE(body->has("client_secret"));
}

}  // namespace
}  // namespace mcpauth_test

namespace mcpauth_test {
namespace {

class CallbackMethod : public Gateway {};

TEST_F(CallbackMethod, OnlyGetIsServedAndAHeadDoesNotConsumeTheLogin) {
  std::string id = public_client();
  std::string loc = to_provider(id);
  Request head = request("HEAD", "code=c&state=" + qget(loc, "state"));
  EXPECT_EQ(call(MCPA_EP_CALLBACK, head).status, 405);
  EXPECT_EQ(callback(loc).fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
}

}  // namespace
}  // namespace mcpauth_test
