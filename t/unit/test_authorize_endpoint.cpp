// GET /authorize (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707, RFC 9207).
#include "test_endpoint_fixture.hpp"

#include "session.hpp"

namespace mcpauth_test {
namespace {

using Authorize = Gateway;
const std::string kDrop = "\x7f";

// An error page: HTML, 400, and above all no Location (never redirect to an
// unverified URI).
void expect_error_page(const Response& r) {
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
}

TEST_F(Authorize, AValidRequestStoresAPendingRecordAndRedirectsToConsent) {
  std::string id = public_client();
  std::string authz = authorize_to_consent(id);
  ASSERT_FALSE(authz.empty());
  std::string raw;
  ASSERT_EQ(store.get("authz:" + authz, &raw), StoreStatus::ok);
  auto p = decode_pending(raw);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_id, id);
  EXPECT_EQ(p->redirect_uri, kRedirect);
  EXPECT_TRUE(p->redirect_uri_sent);
  EXPECT_EQ(p->state, "client-state");
  EXPECT_EQ(p->code_challenge, s256_challenge(kVerifier));
  EXPECT_EQ(p->scope, "mcp:tools mcp:read");
  store.now = kT0 + cf.login_ttl;
  EXPECT_EQ(store.get("authz:" + authz, &raw), StoreStatus::not_found);
}

TEST_F(Authorize, AnUnknownClientGetsAnErrorPageNotARedirect) {
  expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args("no-such-client"))));
}

TEST_F(Authorize, AMissingClientIdGetsAnErrorPage) {
  public_client();
  expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(kDrop))));
}

TEST_F(Authorize, AnUnregisteredRedirectUriGetsAnErrorPageNotARedirect) {
  std::string id = public_client();
  expect_error_page(call(MCPA_EP_AUTHORIZE,
                         request("GET", authorize_args(id, {{"redirect_uri", "https://evil.example/cb"}}))));
}

TEST_F(Authorize, LookAlikeRedirectUrisGetAnErrorPage) {
  std::string id = public_client();
  for (const char* uri :
       {"https://client.example/cb/", "https://client.example/cb?x=1", "https://client.example/CB",
        "https://client.example.evil.example/cb", "https://client.example:444/cb", "http://client.example/cb",
        "https://client.example/cb#frag", "https://client.example/c%62"}) {
    SCOPED_TRACE(uri);
    expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"redirect_uri", uri}}))));
  }
}

TEST_F(Authorize, ARepeatedRedirectUriOrClientIdGetsAnErrorPage) {
  std::string id = public_client();
  expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id) + "&redirect_uri=" + pct_encode(kRedirect))));
  expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id) + "&client_id=" + id)));
}

TEST_F(Authorize, TheRedirectUriMayBeOmittedOnlyWhenExactlyOneIsRegistered) {
  std::string one = public_client();
  Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(one, {}, false)));
  EXPECT_EQ(r.status, 303) << r.body;
  std::string raw;
  auto p = decode_pending(store.get("authz:" + qget(header(r, "Location"), "authz"), &raw) == StoreStatus::ok ? raw : "");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->redirect_uri_sent);
  EXPECT_EQ(p->redirect_uri, kRedirect);

  std::string two = public_client(R"(["https://client.example/cb","https://client.example/cb2"])");
  expect_error_page(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(two, {}, false))));
}

TEST_F(Authorize, ALoopbackRedirectMayUseAnotherPort) {
  std::string id = public_client(R"(["http://127.0.0.1:3000/callback"])");
  Response r = call(MCPA_EP_AUTHORIZE,
                    request("GET", authorize_args(id, {{"redirect_uri", "http://127.0.0.1:51234/callback"}})));
  EXPECT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(header(r, "Location").rfind("https://mcp.example/consent?", 0), 0u);
}

// Errors after the redirect URI is verified go back to it.
struct RedirectedError {
  std::string error, state, iss, description;
};

RedirectedError redirected(const Response& r) {
  EXPECT_EQ(r.status, 303) << r.body;
  std::string loc = header(r, "Location");
  EXPECT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << loc;
  return {qget(loc, "error"), qget(loc, "state"), qget(loc, "iss"), qget(loc, "error_description")};
}

TEST_F(Authorize, PlainPkceIsRefusedWithInvalidRequest) {
  std::string id = public_client();
  auto e = redirected(call(MCPA_EP_AUTHORIZE,
                           request("GET", authorize_args(id, {{"code_challenge_method", "plain"},
                                                              {"code_challenge", kVerifier}}))));
  EXPECT_EQ(e.error, "invalid_request");
  EXPECT_NE(e.description.find("plain"), std::string::npos);
  EXPECT_EQ(e.state, "client-state");
  EXPECT_EQ(e.iss, "https://mcp.example");
  EXPECT_EQ(store.size(), 1u);  // only the client
}

TEST_F(Authorize, AMissingCodeChallengeMethodIsRefusedNotDefaultedToPlain) {
  std::string id = public_client();
  auto e = redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"code_challenge_method", kDrop}}))));
  EXPECT_EQ(e.error, "invalid_request");
}

TEST_F(Authorize, AMissingOrMalformedCodeChallengeIsRefused) {
  std::string id = public_client();
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"code_challenge", kDrop}})))).error,
            "invalid_request");
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"code_challenge", "short"}})))).error,
            "invalid_request");
}

TEST_F(Authorize, AResponseTypeOtherThanCodeIsUnsupported) {
  std::string id = public_client();
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"response_type", "token"}})))).error,
            "unsupported_response_type");
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"response_type", kDrop}})))).error,
            "invalid_request");
}

TEST_F(Authorize, AnUnknownScopeIsInvalidScope) {
  std::string id = public_client();
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:tools admin"}})))).error,
            "invalid_scope");
}

TEST_F(Authorize, AScopeOutsideTheClientsRegisteredScopeIsRefused) {
  std::string id = register_client(
      R"({"token_endpoint_auth_method":"none","scope":"mcp:read","redirect_uris":["https://client.example/cb"]})");
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:tools"}})))).error,
            "invalid_scope");
  // Absent scope: the registered one.
  Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id)));
  std::string raw;
  ASSERT_EQ(store.get("authz:" + qget(header(r, "Location"), "authz"), &raw), StoreStatus::ok);
  EXPECT_EQ(decode_pending(raw)->scope, "mcp:read");
}

TEST_F(Authorize, AForeignResourceIsInvalidTarget) {
  std::string id = public_client();
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE,
                            request("GET", authorize_args(id, {{"resource", "https://other.example/mcp"}}))))
                .error,
            "invalid_target");
  Response ok = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"resource", "https://MCP.example/mcp/"}})));
  EXPECT_EQ(header(ok, "Location").rfind("https://mcp.example/consent?", 0), 0u);
}

TEST_F(Authorize, ARepeatedParameterIsInvalidRequest) {
  std::string id = public_client();
  auto e = redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id) + "&scope=mcp:read&scope=mcp:tools")));
  EXPECT_EQ(e.error, "invalid_request");
}

TEST_F(Authorize, AClientWithoutTheCodeGrantIsUnauthorized) {
  ClientMetadata c;
  c.client_id = "no-code-grant";
  c.redirect_uris = {kRedirect};
  c.grant_types = {"refresh_token"};
  c.response_types = {"code"};
  c.token_endpoint_auth_method = "none";
  ASSERT_EQ(store.put("client:no-code-grant", serialize_client(c), kT0 + 1000), StoreStatus::ok);
  const std::string id = c.client_id;
  EXPECT_EQ(redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id)))).error, "unauthorized_client");
}

TEST_F(Authorize, AFullStoreGives503) {
  std::string id = public_client();
  store.capacity = store.size();
  Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id)));
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(header(r, "Retry-After").empty());
}

}  // namespace
}  // namespace mcpauth_test
