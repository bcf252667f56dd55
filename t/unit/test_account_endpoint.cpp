// GET/POST /account: the user's connected apps.  The sign-in it starts, the
// cookie the callback sets, what the page lists (only the user's own
// sessions, every client string escaped), and Revoke with its defences.
#include "test_endpoint_fixture.hpp"

#include "account_page.hpp"
#include "session_index.hpp"

namespace mcpauth_test {
namespace {

constexpr const char* kCookie = "__Secure-mcp_account";

class Account : public Gateway {
 protected:
  Request account_request(const std::string& method, const std::string& body = "") {
    Request r = request(method, "", body, body.empty() ? "" : "application/x-www-form-urlencoded");
    r.uri = "/account";
    if (method == "POST") {
      r.origin = "https://mcp.example";
      r.sec_fetch_site = "same-origin";
    }
    return r;
  }

  // The provider answers a sign-in (its redirect `loc`) for `sub`; the
  // callback's last answer.
  Response provider_answers(const std::string& loc, const std::string& sub) {
    Response cb = callback(loc);
    EXPECT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << cb.body;
    Response r = resume(MCPA_EP_CALLBACK, cb, 200,
                        FakeIdp::get().token_response(FakeIdp::get().id_token(nonce_of(loc), now, sub)));
    if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
    return r;
  }

  // GET /account without a cookie -> provider -> callback: the callback's answer.
  Response sign_in_to_account(const std::string& sub = "user-42") {
    Response start = call(MCPA_EP_ACCOUNT, account_request("GET"));
    EXPECT_EQ(start.status, 303) << start.body;
    return provider_answers(header(start, "Location"), sub);
  }

  // A client's whole login for `sub`; returns its session id.
  std::string client_login(const std::string& client_id, const std::string& sub, bool remember = false) {
    std::string loc = to_provider(client_id, {}, remember);
    Response r = provider_answers(loc, sub);
    EXPECT_EQ(r.status, 303) << r.body;
    std::vector<IndexEntry> mine;
    EXPECT_EQ(sessions_of_subject(store, sub, now, &mine), StoreStatus::ok);
    // the newest of the user's sessions: the one just made
    std::string sid;
    int64_t created = -1;
    for (const auto& e : mine) {
      std::string raw;
      if (store.get("session:" + e.member, &raw) != StoreStatus::ok) continue;
      auto s = decode_session(raw);
      if (s && s->client_id == client_id && s->created >= created) sid = s->sid, created = s->created;
    }
    return sid;
  }

  std::string named_client(const std::string& name) {
    return register_client(R"({"client_name":")" + name + R"(","token_endpoint_auth_method":"none",)"
                           R"("redirect_uris":[")" + kRedirect + R"("]})");
  }

  static std::vector<std::string> fields_of(const Response& page, const std::string& name) {
    std::vector<std::string> out;
    const std::string marker = "name=\"" + name + "\" value=\"";
    for (auto p = page.body.find(marker); p != std::string::npos; p = page.body.find(marker, p)) {
      p += marker.size();
      out.push_back(page.body.substr(p, page.body.find('"', p) - p));
    }
    return out;
  }

  Response page() { return call(MCPA_EP_ACCOUNT, account_request("GET")); }

  Response post(const std::vector<std::pair<std::string, std::string>>& fields) {
    return call(MCPA_EP_ACCOUNT, account_request("POST", form(fields)));
  }

  bool live(const std::string& sid) {
    std::string raw;
    return store.get("session:" + sid, &raw) == StoreStatus::ok;
  }
};

TEST_F(Account, WithoutACookieTheSignInStartsAtTheProviderAndNothingIsStored) {
  Response r = call(MCPA_EP_ACCOUNT, account_request("GET"));
  ASSERT_EQ(r.status, 303) << r.body;
  std::string loc = header(r, "Location");
  EXPECT_EQ(loc.rfind("https://idp.example/authorize?", 0), 0u) << loc;
  EXPECT_EQ(qget(loc, "redirect_uri"), "https://mcp.example/oauth-callback");
  EXPECT_EQ(qget(loc, "code_challenge_method"), "S256");
  auto login = login_of(loc);
  ASSERT_TRUE(login);
  EXPECT_TRUE(login->account());
  EXPECT_EQ(login->account_path, "/account");
  EXPECT_EQ(login->authz.client_id, "");
  EXPECT_EQ(s256_challenge(login->provider_verifier), qget(loc, "code_challenge"));
  ASSERT_EQ(jar.cookies.count("__Host-mcp_login"), 1u);
  EXPECT_EQ(sha256_b64url(jar.cookies["__Host-mcp_login"]), login->browser_hash);
  EXPECT_EQ(store.size(), 0u);
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events[0].kind, MCPA_EV_LOGIN_STARTED);
}

TEST_F(Account, TheCallbackSetsTheAccountCookieAndReturnsToThePage) {
  Response r = sign_in_to_account();
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(header(r, "Location"), "https://mcp.example/account");
  std::string cookie;
  for (const auto& c : headers(r, "Set-Cookie"))
    if (c.rfind(std::string(kCookie) + "=", 0) == 0) cookie = c;
  ASSERT_FALSE(cookie.empty());
  EXPECT_NE(cookie.find("; Path=/account;"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Lax"), std::string::npos);
  EXPECT_NE(cookie.find("Max-Age=900"), std::string::npos);
  EXPECT_NE(cookie.find("Secure"), std::string::npos);
  EXPECT_EQ(jar.cookies.count("__Host-mcp_login"), 0u);  // the login cookie is spent
  std::vector<IndexEntry> sessions;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &sessions), StoreStatus::ok);
  EXPECT_TRUE(sessions.empty());  // no session for an account sign-in
  ASSERT_FALSE(r.events.empty());
  EXPECT_STREQ(r.events.back().name, "account.signed_in");
  EXPECT_EQ(r.events.back().subject, "user-42");

  Response p = page();
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_NE(p.body.find("Your connected apps"), std::string::npos);
  EXPECT_NE(p.body.find("No app holds access in your name"), std::string::npos);
  EXPECT_NE(p.body.find("ada@example.com"), std::string::npos);
  EXPECT_EQ(header(p, "X-Frame-Options"), "DENY");
  EXPECT_EQ(header(p, "Cache-Control"), "no-store");
  EXPECT_EQ(header(p, "Referrer-Policy"), "same-origin");
  EXPECT_EQ(header(p, "Content-Security-Policy"),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
}

TEST_F(Account, TheBadIdTokenChecksApplyToAnAccountSignIn) {
  Response start = call(MCPA_EP_ACCOUNT, account_request("GET"));
  std::string loc = header(start, "Location");
  Response cb = callback(loc);
  Response r = resume(MCPA_EP_CALLBACK, cb, 200,
                      FakeIdp::get().token_response(FakeIdp::get().id_token("another-nonce", now)));
  if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(jar.cookies.count(kCookie), 0u);
}

TEST_F(Account, TheListingShowsOnlyTheUsersOwnSessions) {
  std::string a = named_client("Notes App");
  std::string b = named_client("Calendar Bot");
  std::string c = named_client("Someone Elses App");
  Jar mine = jar;
  ASSERT_FALSE(client_login(a, "user-42").empty());
  ASSERT_FALSE(client_login(b, "user-42").empty());
  jar = Jar();
  ASSERT_FALSE(client_login(c, "user-7").empty());
  jar = mine;
  ASSERT_EQ(sign_in_to_account().status, 303);
  Response p = page();
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_NE(p.body.find("Notes App"), std::string::npos);
  EXPECT_NE(p.body.find("Calendar Bot"), std::string::npos);
  EXPECT_EQ(p.body.find("Someone Elses App"), std::string::npos);
  EXPECT_NE(p.body.find("client.example"), std::string::npos);
  EXPECT_NE(p.body.find("mcp:tools"), std::string::npos);
  EXPECT_NE(p.body.find(utc_text(kT0)), std::string::npos);
  EXPECT_EQ(fields_of(p, "session").size(), 2u);
  EXPECT_EQ(p.body.find("No app holds access"), std::string::npos);
}

TEST_F(Account, AHostileClientNameIsEscaped) {
  std::string id = register_client(
      R"({"client_name":"<script>alert(1)</script>\"><img src=x>","token_endpoint_auth_method":"none",)"
      R"("redirect_uris":[")" + kRedirect + R"("]})");
  client_login(id, "user-42");
  sign_in_to_account();
  Response p = page();
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.body.find("<script>"), std::string::npos);
  EXPECT_EQ(p.body.find("<img"), std::string::npos);
  EXPECT_NE(p.body.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << p.body;
}

TEST_F(Account, ThePageListsTheNewestSessionsWithinTheStoresBudget) {
  std::string id = named_client("Busy App");
  for (int i = 0; i < 27; ++i) {
    client_login(id, "user-42");
    now += 1;
  }
  sign_in_to_account();
  Response p = page();
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(fields_of(p, "session").size(), 25u);
  EXPECT_NE(p.body.find("2 older sessions are not shown"), std::string::npos);
}

TEST_F(Account, AnUnnamedClientIsShownAsUnnamed) {
  std::string id = register_client(R"({"token_endpoint_auth_method":"none","redirect_uris":[")" + kRedirect + R"("]})");
  client_login(id, "user-42");
  sign_in_to_account();
  EXPECT_NE(page().body.find("unnamed app"), std::string::npos);
}

TEST_F(Account, RevokeEndsOnlyThatSessionAndForgetsTheRememberedConsent) {
  std::string a = named_client("Notes App");
  std::string b = named_client("Calendar Bot");
  std::string sa = client_login(a, "user-42", /*remember=*/true);
  std::string sb = client_login(b, "user-42", /*remember=*/true);
  ASSERT_TRUE(live(sa) && live(sb));
  sign_in_to_account();
  Response p = page();
  ASSERT_NE(p.body.find("Consent remembered in this browser</dt><dd>yes"), std::string::npos) << p.body;
  std::string csrf = fields_of(p, "csrf").at(0);
  const std::string consent_before = jar.cookies["__Host-mcp_consent"];

  Response r = post({{"csrf", csrf}, {"action", "revoke"}, {"session", sa}});
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(header(r, "Location"), "https://mcp.example/account?revoked=1");
  EXPECT_FALSE(live(sa));
  EXPECT_TRUE(live(sb));
  // the browser's cookie was rewritten without the app (b is still remembered)
  EXPECT_NE(jar.cookies["__Host-mcp_consent"], consent_before);
  Request probe = request("GET");
  EXPECT_FALSE(consent_remembered(cf, probe, a, kRedirect));
  EXPECT_TRUE(consent_remembered(cf, probe, b, kRedirect));
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events[0].kind, MCPA_EV_REVOCATION);
  EXPECT_STREQ(r.events[0].name, "account.revoked");
  EXPECT_EQ(r.events[0].outcome, "revoked");
  EXPECT_EQ(r.events[0].subject, "user-42");
  EXPECT_EQ(r.events[0].client_id, a);
  EXPECT_NE(r.events[0].metric[0], -1);  // counted with the revocations

  Request after = account_request("GET");
  after.args = "revoked=1";
  Response again = call(MCPA_EP_ACCOUNT, after);
  EXPECT_NE(again.body.find("Access revoked"), std::string::npos);
  EXPECT_EQ(again.body.find("Notes App"), std::string::npos);
  EXPECT_NE(again.body.find("Calendar Bot"), std::string::npos);

  // revoking the last one deletes the consent cookie
  r = post({{"csrf", csrf}, {"action", "revoke"}, {"session", sb}});
  ASSERT_EQ(r.status, 303);
  EXPECT_EQ(jar.cookies.count("__Host-mcp_consent"), 0u);
  EXPECT_NE(page().body.find("No app holds access in your name"), std::string::npos);
}

TEST_F(Account, ARevokedSessionsRefreshTokenNoLongerWorks) {
  std::string a = public_client();
  std::string loc = to_provider(a);
  Response cb = provider_answers(loc, "user-42");
  Response tok = redeem(a, qget(header(cb, "Location"), "code"));
  ASSERT_EQ(tok.status, 200) << tok.body;
  std::string refresh_token = json_string(tok.body, "refresh_token");
  sign_in_to_account();
  Response p = page();
  auto sids = fields_of(p, "session");
  ASSERT_EQ(sids.size(), 1u);
  ASSERT_EQ(post({{"csrf", fields_of(p, "csrf").at(0)}, {"action", "revoke"}, {"session", sids[0]}}).status, 303);
  EXPECT_EQ(refresh(a, refresh_token).status, 400);
}

TEST_F(Account, AMissingOrWrongCsrfTokenIsRefused) {
  std::string sid = client_login(public_client(), "user-42");
  sign_in_to_account();
  Response p = page();
  std::string csrf = fields_of(p, "csrf").at(0);
  EXPECT_EQ(post({{"action", "revoke"}, {"session", sid}}).status, 403);
  std::string wrong = csrf;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(post({{"csrf", wrong}, {"action", "revoke"}, {"session", sid}}).status, 403);
  // a token of another cookie (another sign-in) does not do either
  Jar kept = jar;
  jar = Jar();
  sign_in_to_account();
  std::string other_csrf = fields_of(page(), "csrf").at(0);
  jar = kept;
  EXPECT_EQ(post({{"csrf", other_csrf}, {"action", "revoke"}, {"session", sid}}).status, 403);
  EXPECT_TRUE(live(sid));
  // nor a cross-site post, nor one from another origin, with the right token
  Request cross = account_request("POST", form({{"csrf", csrf}, {"action", "revoke"}, {"session", sid}}));
  cross.sec_fetch_site = "cross-site";
  EXPECT_EQ(call(MCPA_EP_ACCOUNT, cross).status, 403);
  cross.sec_fetch_site = "";
  cross.origin = "https://evil.example";
  EXPECT_EQ(call(MCPA_EP_ACCOUNT, cross).status, 403);
  EXPECT_TRUE(live(sid));
}

TEST_F(Account, AnotherUsersSessionIsNotFound) {
  Jar mine = jar;
  jar = Jar();
  std::string theirs = client_login(public_client(), "user-7");
  jar = mine;
  sign_in_to_account("user-42");
  std::string csrf = fields_of(page(), "csrf").at(0);
  Response r = post({{"csrf", csrf}, {"action", "revoke"}, {"session", theirs}});
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(live(theirs));
  Response unknown = post({{"csrf", csrf}, {"action", "revoke"}, {"session", "no-such-session"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, r.body);  // the same answer: nothing learnt of others' sessions
}

TEST_F(Account, AnExpiredOrForgedCookieStartsANewSignIn) {
  sign_in_to_account();
  ASSERT_EQ(page().status, 200);
  now += 901;
  Response r = page();
  ASSERT_EQ(r.status, 303);
  EXPECT_EQ(header(r, "Location").rfind("https://idp.example/authorize?", 0), 0u);
  EXPECT_EQ(jar.cookies.count(kCookie), 0u);  // the stale one was deleted

  jar.cookies[kCookie] = "forged-value";
  r = page();
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(header(r, "Location").rfind("https://idp.example/authorize?", 0), 0u);
  // a value sealed for another purpose (a login state) does not open either
  Response start = call(MCPA_EP_ACCOUNT, account_request("GET"));
  jar.cookies[kCookie] = qget(header(start, "Location"), "state");
  EXPECT_EQ(page().status, 303);
  // and a POST without a valid cookie is refused
  EXPECT_EQ(post({{"csrf", "x"}, {"action", "revoke"}, {"session", "s"}}).status, 403);
}

TEST_F(Account, SignOutDeletesTheCookie) {
  sign_in_to_account();
  std::string csrf = fields_of(page(), "csrf").at(0);
  Response r = post({{"csrf", csrf}, {"action", "signout"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(jar.cookies.count(kCookie), 0u);
  EXPECT_EQ(page().status, 303);
}

TEST_F(Account, OtherMethodsAreRefused) {
  Response r = call(MCPA_EP_ACCOUNT, account_request("PUT"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, POST");
}

// A remembered consent skips the consent page; the provider's answer goes
// straight to a code, or (after a revoke) to the consent page.
TEST_F(Account, ARevokeMakesEveryBrowserAskForConsentAgain) {
  std::string id = named_client("Notes App");
  std::string sid = client_login(id, "user-42", /*remember=*/true);
  Jar first = jar;  // remembers approving Notes App
  auto skips_consent = [&]() {
    Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id)));
    return header(a, "Location").rfind("https://idp.example/authorize?", 0) == 0;
  };
  ASSERT_TRUE(skips_consent());
  Response remembered = provider_answers(header(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id))),
                                                "Location"),
                                         "user-42");
  ASSERT_EQ(remembered.status, 303);  // straight to a code
  EXPECT_EQ(qget(header(remembered, "Location"), "code").empty(), false);

  // the user revokes the app from another browser
  jar = Jar();
  sign_in_to_account();
  Response p = page();
  std::string csrf = fields_of(p, "csrf").at(0);
  for (const auto& s : fields_of(p, "session"))
    ASSERT_EQ(post({{"csrf", csrf}, {"action", "revoke"}, {"session", s}}).status, 303);
  EXPECT_FALSE(live(sid));

  // the first browser still holds its cookie: the page is skipped before
  // the sign-in (nobody is known yet), and shown after it
  jar = first;
  now += 5;
  ASSERT_TRUE(skips_consent());
  std::string loc = header(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id))), "Location");
  Response shown = provider_answers(loc, "user-42");
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_NE(shown.body.find("Authorize Notes App"), std::string::npos);
  auto grant = fields_of(shown, "grant");
  ASSERT_EQ(grant.size(), 1u);
  Request answer = request("POST", "", form({{"grant", grant[0]},
                                             {"csrf_token", fields_of(shown, "csrf_token").at(0)},
                                             {"decision", "allow"},
                                             {"remember", "1"}}),
                           "application/x-www-form-urlencoded");
  answer.origin = "https://mcp.example";
  answer.sec_fetch_site = "same-origin";
  Response allowed = call(MCPA_EP_CONSENT, answer);
  ASSERT_EQ(allowed.status, 303) << allowed.body;
  EXPECT_FALSE(qget(header(allowed, "Location"), "code").empty());

  // approved again after the revoke: remembered from now on
  now += 5;
  loc = header(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id))), "Location");
  Response again = provider_answers(loc, "user-42");
  EXPECT_EQ(again.status, 303);
  // another user is not affected by this user's revoke
  jar = first;
  loc = header(call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(id))), "Location");
  EXPECT_EQ(provider_answers(loc, "user-7").status, 303);
}

TEST(AccountConfig, TheEndpointNeedsTheKeyFileAndTheProvider) {
  Config c;
  c.issuer = "https://mcp.example";
  ASSERT_EQ(c.load(), "");
  std::string err = c.check_use(MCPA_EP_ACCOUNT);
  EXPECT_NE(err.find("mcp_auth_key_file"), std::string::npos) << err;
  EXPECT_NE(err.find("account"), std::string::npos) << err;
  c.key_file = write_file("account-keys", KeyRing::generate_line("k") + "\n");
  ASSERT_EQ(c.load(), "");
  EXPECT_NE(c.check_use(MCPA_EP_ACCOUNT).find("mcp_auth_provider_issuer"), std::string::npos);
}

class AccountClaimRules : public Account {
 protected:
  void SetUp() override {
    Account::SetUp();
    cf.claim_rules = "login\ttid\tt-demo\n";
    ASSERT_EQ(cf.load(), "");
  }
};

TEST_F(AccountClaimRules, AUserTheRulesDoNotAdmitGetsNoAccountPage) {
  Response r = sign_in_to_account();  // the fake provider's token has no tid
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(jar.cookies.count(kCookie), 0u);
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.back().outcome, "not_admitted");
}

}  // namespace
}  // namespace mcpauth_test
