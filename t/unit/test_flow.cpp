// A whole login through every handler, with the provider's answers faked:
// register -> authorize -> consent GET -> consent POST allow -> callback ->
// provider token -> provider JWKS -> token -> refresh -> revoke -> refresh
// fails.
#include "id_token.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

// Both store kinds: the shared-memory zone's synchronous one, and a
// deferred one (Redis through the glue), where every run stops at each new
// store operation and starts again with its answer.
class Flow : public Gateway, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    deferred = GetParam();
  }
};

INSTANTIATE_TEST_SUITE_P(StoreKinds, Flow, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Deferred" : "Direct"; });

TEST_P(Flow, ACompleteLoginIssuesTokensThatRefreshAndRevoke) {
  // Register.
  std::string client_id = public_client();
  ASSERT_FALSE(client_id.empty());

  // Authorize -> consent page -> allow -> provider.
  std::string authz = authorize_to_consent(client_id);
  std::string csrf = consent_page(authz);
  Response allow = call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow"));
  ASSERT_EQ(allow.status, 303);
  std::string provider = header(allow, "Location");
  ASSERT_EQ(provider.rfind("https://idp.example/authorize?", 0), 0u);
  std::string nonce = nonce_of(provider);

  // The provider sends the browser back; we ask the glue to redeem its code.
  now += 20;
  Response cb = callback(provider);
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << cb.body;
  auto body = Params::parse(cb.fetch.body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->get("grant_type").value_or(""), "authorization_code");
  EXPECT_EQ(body->get("code").value_or(""), "idp-code");
  EXPECT_EQ(body->get("redirect_uri").value_or(""), "https://mcp.example/oauth-callback");
  EXPECT_EQ(s256_challenge(body->get("code_verifier").value_or("")), qget(provider, "code_challenge"));
  EXPECT_FALSE(body->has("client_secret"));
  EXPECT_EQ(cb.fetch.authorization, "Basic " + b64_encode("gateway:provider%20secret"));

  // Token answer -> no JWKS cached yet -> JWKS fetch -> code for the client.
  Response need_keys = resume(MCPA_EP_CALLBACK, cb, 200,
                              FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  ASSERT_EQ(need_keys.fetch.target, MCPA_FETCH_PROVIDER_JWKS) << need_keys.body;
  Response back = resume(MCPA_EP_CALLBACK, need_keys, 200, FakeIdp::get().jwks);
  ASSERT_EQ(back.status, 303) << back.body;
  std::string loc = header(back, "Location");
  ASSERT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << loc;
  EXPECT_EQ(qget(loc, "state"), "client-state");
  EXPECT_EQ(qget(loc, "iss"), "https://mcp.example");
  std::string code = qget(loc, "code");
  ASSERT_EQ(code.size(), 43u);
  EXPECT_EQ(jar.cookies.count("__Host-mcp_login"), 0u);  // cleared
  std::string raw;
  EXPECT_EQ(store.get("jwks:https://idp.example", &raw), StoreStatus::ok);
  EXPECT_EQ(store.get("code:" + code, &raw), StoreStatus::not_found);  // only its hash is a key

  // Token.
  now += 5;
  Response tok = redeem(client_id, code);
  ASSERT_EQ(tok.status, 200) << tok.body;
  EXPECT_EQ(header(tok, "Cache-Control"), "no-store");
  EXPECT_EQ(json_string(tok.body, "token_type"), "Bearer");
  EXPECT_EQ(json_number(tok.body, "expires_in").value_or(0), 3600);
  EXPECT_EQ(json_string(tok.body, "scope"), "mcp:tools mcp:read");
  std::string access = json_string(tok.body, "access_token");
  std::string refresh1 = json_string(tok.body, "refresh_token");
  ASSERT_FALSE(access.empty());
  ASSERT_FALSE(refresh1.empty());
  auto claims = decode_access(cf.keys->open(seal_purpose::access_token, access).value_or(""));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->client_id, client_id);
  EXPECT_EQ(claims->resource, "https://mcp.example/mcp");
  ASSERT_EQ(store.get("session:" + claims->sid, &raw), StoreStatus::ok);
  auto session = decode_session(raw);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->sub, "user-42");
  EXPECT_EQ(session->email, "ada@example.com");
  EXPECT_EQ(session->provider_refresh_token, "idp-refresh-1");

  // Refresh rotates.
  now += 600;
  Response r2 = refresh(client_id, refresh1);
  ASSERT_EQ(r2.status, 200) << r2.body;
  std::string refresh2 = json_string(r2.body, "refresh_token");
  EXPECT_NE(refresh2, refresh1);

  // Revoke with the newest refresh token.
  Response rv = call(MCPA_EP_REVOKE, token_request({{"token", refresh2}, {"client_id", client_id}}));
  EXPECT_EQ(rv.status, 200);
  EXPECT_EQ(rv.body, "");
  EXPECT_EQ(store.get("session:" + claims->sid, &raw), StoreStatus::not_found);

  // Refresh now fails.
  Response r3 = refresh(client_id, refresh2);
  EXPECT_EQ(r3.status, 400);
  EXPECT_EQ(json_string(r3.body, "error"), "invalid_grant");

  // In deferred mode every operation above went through a replay.
  EXPECT_EQ(deferred_ops > 10, GetParam()) << deferred_ops;
}

TEST_P(Flow, ALoginChecksTheIdTokenSignatureOnce) {
  std::string id = public_client();
  const uint64_t checks = id_token_signature_checks();
  login(id);
  EXPECT_EQ(id_token_signature_checks(), checks + 1);
  login(id);  // with the JWKS from the store
  EXPECT_EQ(id_token_signature_checks(), checks + 2);
}

TEST_P(Flow, ASecondLoginUsesTheCachedJwksWithoutFetching) {
  std::string id = public_client();
  login(id);
  std::string loc = to_provider(id);
  std::string nonce = nonce_of(loc);
  Response cb = callback(loc);
  Response r = resume(MCPA_EP_CALLBACK, cb, 200, FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  EXPECT_EQ(r.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(r.status, 303);
  EXPECT_FALSE(qget(header(r, "Location"), "code").empty()) << header(r, "Location") << r.body;
}

}  // namespace
}  // namespace mcpauth_test
