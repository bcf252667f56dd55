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

TEST_F(Authorize, AValidRequestIsSealedIntoTheConsentUrlAndNothingIsStored) {
  std::string id = public_client();
  const size_t before = store.size();
  std::string authz = authorize_to_consent(id);
  ASSERT_FALSE(authz.empty());
  EXPECT_EQ(store.size(), before);  // anonymous traffic keeps no state
  auto p = open_pending(cf, authz, now);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_id, id);
  EXPECT_EQ(p->redirect_uri, kRedirect);
  EXPECT_TRUE(p->redirect_uri_sent);
  EXPECT_EQ(p->state, "client-state");
  EXPECT_EQ(p->code_challenge, s256_challenge(kVerifier));
  EXPECT_EQ(p->scope, "mcp:tools mcp:read");
  EXPECT_FALSE(open_pending(cf, authz, kT0 + cf.login_ttl));  // expired
  std::string tampered = authz;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(open_pending(cf, tampered, now));
  EXPECT_FALSE(open_login(cf, authz, now));  // sealed for its purpose only
}

TEST_F(Authorize, AFloodOfRequestsKeepsNoStateEvenWhenTheStoreIsFull) {
  std::string id = public_client();
  store.capacity = store.size();
  for (int i = 0; i < 100; ++i) {
    Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"state", std::to_string(i)}})));
    ASSERT_EQ(r.status, 303) << r.body;
  }
  EXPECT_EQ(store.size(), store.capacity);
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
  auto p = open_pending(cf, qget(header(r, "Location"), "authz"), now);
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

// Errors after the redirect URI is verified are for the client: a page with
// a link there (no automatic redirect to a client this browser has not
// approved and logged in through, RFC 9700 §4.11.2).
struct RedirectedError {
  std::string error, state, iss, description;
};

RedirectedError redirected(const Response& r) {
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  std::string loc = return_link(r);
  EXPECT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << r.body;
  EXPECT_NE(r.body.find("client.example"), std::string::npos);  // the page names where the link goes
  return {qget(loc, "error"), qget(loc, "state"), qget(loc, "iss"), qget(loc, "error_description")};
}

TEST_F(Authorize, ABadRequestForAnUnapprovedClientIsAPageNotARedirect) {
  // anyone can register https://phish.example/cb and send a user here with
  // a deliberately bad request: the gateway must not bounce them there
  std::string id = register_client(
      R"({"client_name":"Phish","token_endpoint_auth_method":"none","redirect_uris":["https://phish.example/cb"]})");
  for (const std::vector<std::pair<std::string, std::string>>& bad :
       std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"response_type", kDrop}}, {{"scope", "no-such-scope"}}, {{"code_challenge_method", "plain"}}}) {
    Response r = call(MCPA_EP_AUTHORIZE,
                      request("GET", authorize_args(id, [&] {
                                auto e = bad;
                                e.emplace_back("redirect_uri", "https://phish.example/cb");
                                return e;
                              }())));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(header(r, "Location"), "");
    EXPECT_EQ(return_link(r).rfind("https://phish.example/cb?error=", 0), 0u) << r.body;
  }
}

TEST_F(Authorize, AfterAnApprovedLoginInThisBrowserErrorsGoBackAutomatically) {
  std::string id = public_client();
  login(id, {}, /*remember=*/true);
  ASSERT_EQ(jar.cookies.count("__Host-mcp_consent"), 1u);
  Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "no-such-scope"}})));
  ASSERT_EQ(r.status, 303) << r.body;
  std::string loc = header(r, "Location");
  EXPECT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << loc;
  EXPECT_EQ(qget(loc, "error"), "invalid_scope");
  EXPECT_EQ(qget(loc, "state"), "client-state");
}

TEST_F(Authorize, ALongStateIsRefusedAndNotEchoed) {
  std::string id = public_client();
  auto e = redirected(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"state", std::string(513, 's')}}))));
  EXPECT_EQ(e.error, "invalid_request");
  EXPECT_EQ(e.state, "");
  Response ok = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"state", std::string(512, 's')}})));
  EXPECT_EQ(ok.status, 303);
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
  auto p = open_pending(cf, qget(header(r, "Location"), "authz"), now);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->scope, "mcp:read");
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

}  // namespace
}  // namespace mcpauth_test
