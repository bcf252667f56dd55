// GET/POST /consent: the user's decision, and the defences around it.
#include "test_endpoint_fixture.hpp"

#include "csrf.hpp"
#include "session.hpp"

namespace mcpauth_test {
namespace {

using Consent = Gateway;

TEST_F(Consent, ThePageNamesTheClientAndCarriesTheSecurityHeaders) {
  std::string id = public_client();
  std::string authz = authorize_to_consent(id);
  Response page;
  std::string csrf = consent_page(authz, &page);
  EXPECT_FALSE(csrf.empty());
  EXPECT_NE(page.body.find("Test App"), std::string::npos);
  EXPECT_NE(page.body.find("client.example"), std::string::npos);
  EXPECT_NE(page.body.find("mcp:tools"), std::string::npos);
  EXPECT_EQ(header(page, "Content-Security-Policy"),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://idp.example "
            "https://client.example; frame-ancestors 'none'");
  EXPECT_EQ(header(page, "X-Frame-Options"), "DENY");
  EXPECT_EQ(header(page, "Cache-Control"), "no-store");
  EXPECT_EQ(header(page, "Referrer-Policy"), "same-origin");  // "Origin: null" otherwise
  std::string cookie = header(page, "Set-Cookie");
  EXPECT_EQ(cookie.rfind("__Host-mcp_browser=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("Secure"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Lax"), std::string::npos);
  EXPECT_NE(cookie.find("Path=/"), std::string::npos);
}

TEST_F(Consent, TheBrowserCookieIsSetOnlyOnce) {
  std::string authz = authorize_to_consent(public_client());
  consent_page(authz);
  Response again;
  consent_page(authz, &again);
  EXPECT_TRUE(headers(again, "Set-Cookie").empty());
}

TEST_F(Consent, AnUnknownOrExpiredRequestShowsTheExpiredPage) {
  Response r = call(MCPA_EP_CONSENT, request("GET", "authz=nope"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("This sign-in request has expired"), std::string::npos);
  std::string authz = authorize_to_consent(public_client());
  now += cf.login_ttl;
  r = call(MCPA_EP_CONSENT, request("GET", "authz=" + authz));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(header(r, "Location"), "");
}

TEST_F(Consent, AllowSendsTheBrowserToTheProviderWithoutTheClientsResource) {
  std::string id = public_client();
  Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"resource", "https://mcp.example/mcp"}})));
  std::string authz = qget(header(a, "Location"), "authz");
  std::string csrf = consent_page(authz);
  Response r = call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow"));
  ASSERT_EQ(r.status, 303) << r.body;
  std::string loc = header(r, "Location");
  EXPECT_EQ(loc.rfind("https://idp.example/authorize?", 0), 0u) << loc;
  EXPECT_EQ(qget(loc, "response_type"), "code");
  EXPECT_EQ(qget(loc, "client_id"), "gateway");
  EXPECT_EQ(qget(loc, "redirect_uri"), "https://mcp.example/oauth-callback");
  EXPECT_EQ(qget(loc, "scope"), "openid profile email offline_access");
  EXPECT_EQ(qget(loc, "code_challenge_method"), "S256");
  EXPECT_EQ(qget(loc, "code_challenge").size(), 43u);
  EXPECT_FALSE(qget(loc, "nonce").empty());
  EXPECT_FALSE(query_of(loc).has("resource"));
  // Nothing is stored: the state is the login, sealed; it holds our verifier.
  EXPECT_EQ(store.size(), 1u);  // the client
  auto login = open_login(cf, qget(loc, "state"), now);
  ASSERT_TRUE(login);
  EXPECT_EQ(s256_challenge(login->provider_verifier), qget(loc, "code_challenge"));
  EXPECT_EQ(login->nonce, qget(loc, "nonce"));
  EXPECT_EQ(login->authz.resource, "https://mcp.example/mcp");
  ASSERT_EQ(jar.cookies.count("__Host-mcp_login"), 1u);
  EXPECT_EQ(sha256_b64url(jar.cookies["__Host-mcp_login"]), login->browser_hash);
}

TEST_F(Consent, DenyShowsAPageWithALinkThatTellsTheClient) {
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  Response r = call(MCPA_EP_CONSENT, consent_post(authz, csrf, "deny"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Location"), "");  // never an automatic redirect to an unapproved client
  std::string loc = return_link(r);
  EXPECT_EQ(loc.rfind(kRedirect + "?", 0), 0u) << r.body;
  EXPECT_EQ(qget(loc, "error"), "access_denied");
  EXPECT_EQ(qget(loc, "state"), "client-state");
  EXPECT_EQ(qget(loc, "iss"), "https://mcp.example");
  EXPECT_NE(r.body.find("Return to client.example"), std::string::npos);
  EXPECT_EQ(store.size(), 1u);
}

TEST_F(Consent, DenyGoesBackAutomaticallyToAClientApprovedBefore) {
  std::string id = public_client();
  login(id, {{"scope", "mcp:read"}}, /*remember=*/true);
  // asks for more: the page again; the user refuses the wider grant
  Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:read mcp:tools"}})));
  std::string authz = qget(header(a, "Location"), "authz");
  ASSERT_FALSE(authz.empty()) << header(a, "Location");
  Response r = call(MCPA_EP_CONSENT, consent_post(authz, consent_page(authz), "deny"));
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(qget(header(r, "Location"), "error"), "access_denied");
}

TEST_F(Consent, APostWithoutCsrfTokenIsForbidden) {
  std::string authz = authorize_to_consent(public_client());
  consent_page(authz);
  Request req = request("POST", "", form({{"authz", authz}, {"decision", "allow"}}), "application/x-www-form-urlencoded");
  Response r = call(MCPA_EP_CONSENT, req);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(header(r, "Location"), "");
}

TEST_F(Consent, AForgedOrForeignBrowserCsrfTokenIsForbidden) {
  std::string id = public_client();
  std::string authz = authorize_to_consent(id);
  std::string csrf = consent_page(authz);
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf + "x", "allow")).status, 403);
  // A token minted for another browser (the attacker's own) does not fit
  // the victim's browser cookie.
  std::string attackers = make_csrf_token(cf.keys->derive_key("mcp-auth consent csrf v1"), random_token(32), id,
                                          kRedirect, now);
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, attackers, "allow")).status, 403);
  jar.cookies["__Host-mcp_browser"] = random_token(32);
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 403);
}

TEST_F(Consent, APostWithoutTheBrowserCookieIsForbidden) {
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  jar.cookies.clear();
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 403);
}

TEST_F(Consent, AnExpiredCsrfTokenIsForbidden) {
  cf.login_ttl = 3600;
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  now += 901;
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 403);
}

TEST_F(Consent, ACrossSitePostIsForbidden) {
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  Request req = consent_post(authz, csrf, "allow");
  req.sec_fetch_site = "cross-site";
  EXPECT_EQ(call(MCPA_EP_CONSENT, req).status, 403);
  req = consent_post(authz, csrf, "allow");
  req.origin = "https://evil.example";
  EXPECT_EQ(call(MCPA_EP_CONSENT, req).status, 403);
  req.origin = "null";
  EXPECT_EQ(call(MCPA_EP_CONSENT, req).status, 403);
  // Still usable by the real page.
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 303);
}

TEST_F(Consent, ARepeatedDecisionStoresNothing) {
  // the request travels sealed: a replayed form only starts another login
  // at the provider, where the user must log in again
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 303);
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow")).status, 303);
  EXPECT_EQ(store.size(), 1u);
}

TEST_F(Consent, AForgedOrTamperedRequestIsTheExpiredPage) {
  std::string authz = authorize_to_consent(public_client());
  std::string csrf = consent_page(authz);
  std::string tampered = authz;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  Response r = call(MCPA_EP_CONSENT, consent_post(tampered, csrf, "allow"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(header(r, "Location"), "");
}

TEST_F(Consent, ATokenForOneClientCannotApproveAnother) {
  std::string a = authorize_to_consent(public_client());
  std::string csrf_a = consent_page(a);
  std::string b = authorize_to_consent(public_client());
  EXPECT_EQ(call(MCPA_EP_CONSENT, consent_post(b, csrf_a, "allow")).status, 403);
}

TEST_F(Consent, RememberedConsentSkipsThePageForTheSameClientAndRedirectOnly) {
  std::string id = public_client();
  // remembered only once the login has completed
  std::string loc = to_provider(id, {}, /*remember=*/true);
  EXPECT_EQ(jar.cookies.count("__Host-mcp_consent"), 0u);
  authorize_to_consent(id);
  login(id, {}, /*remember=*/true);
  ASSERT_EQ(jar.cookies.count("__Host-mcp_consent"), 1u);

  Response again = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id)));
  ASSERT_EQ(again.status, 303);
  EXPECT_EQ(header(again, "Location").rfind("https://idp.example/authorize?", 0), 0u);

  // Another client in the same browser still sees the page.
  std::string other = public_client();
  authorize_to_consent(other);

  // A tampered cookie is ignored.
  jar.cookies["__Host-mcp_consent"] += "x";
  authorize_to_consent(id);
}

TEST_F(Consent, ARememberedChoiceCoversOnlyTheScopesGranted) {
  std::string id = public_client();
  login(id, {{"scope", "mcp:read"}}, /*remember=*/true);
  // the same scope, or less: no page
  Response same = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:read"}})));
  EXPECT_EQ(header(same, "Location").rfind("https://idp.example/authorize?", 0), 0u);
  // more: the consent page again, naming what is new
  Response wider = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:read mcp:tools"}})));
  std::string authz = qget(header(wider, "Location"), "authz");
  ASSERT_FALSE(authz.empty()) << header(wider, "Location");
  Response page;
  consent_page(authz, &page);
  EXPECT_NE(page.body.find("It now asks for more: <strong>mcp:tools</strong>"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<span class=\"scope-name\">mcp:tools</span><span class=\"scope-new\">new</span>"),
            std::string::npos);
  EXPECT_EQ(page.body.find("<span class=\"scope-name\">mcp:read</span><span class=\"scope-new\">"),
            std::string::npos);
  // once allowed (and remembered) the wider grant is remembered too
  login(id, {{"scope", "mcp:read mcp:tools"}}, /*remember=*/true);
  Response now_known = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id, {{"scope", "mcp:tools"}})));
  EXPECT_EQ(header(now_known, "Location").rfind("https://idp.example/authorize?", 0), 0u);
}

TEST_F(Consent, ARememberCookieWithoutScopesIsNotAGrantOfEverything) {
  // the earlier format named client and redirect URI only
  std::string id = public_client();
  std::string h = sha256_b64url(id + std::string(1, '\0') + kRedirect);
  jar.cookies["__Host-mcp_consent"] =
      sign_value(cf.keys->derive_key("mcp-auth remember consent v1"), h + ":" + std::to_string(now + 3600));
  authorize_to_consent(id);
}

TEST_F(Consent, RememberIsIgnoredWhenTurnedOff) {
  cf.consent_remember = false;
  std::string id = public_client();
  std::string authz = authorize_to_consent(id);
  std::string csrf = consent_page(authz);
  call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow", true));
  login(id, {}, /*remember=*/true);
  EXPECT_EQ(jar.cookies.count("__Host-mcp_consent"), 0u);
  authorize_to_consent(id);
}

TEST_F(Consent, WithoutSecureCookiesTheNamesLoseTheHostPrefix) {
  cf.secure_cookies_setting = 0;
  ASSERT_EQ(cf.load(), "");
  std::string authz = authorize_to_consent(public_client());
  Response page;
  consent_page(authz, &page);
  std::string cookie = header(page, "Set-Cookie");
  EXPECT_EQ(cookie.rfind("mcp_browser=", 0), 0u) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);
}

}  // namespace
}  // namespace mcpauth_test
