// The claim rules through the handlers: a login the rules refuse stores
// nothing, one they admit keeps the claims and only the scopes they allow,
// a renewal at the provider checks them again, and the guard decides tool
// calls on them (403 that says why, no step-up for what cannot be granted).
#include "guard.hpp"
#include "identity_assertion.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

constexpr const char* kTenant = "t-demo";

class ClaimRules : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    cf.claim_rules = std::string("login\ttid\t") + kTenant + "\n" +
                     "scope\tmcp:tools\tgroups\teditors\n"
                     "tool\tsave_snippet\tgroups\teditors\n";
    cf.scope_description_lines = "mcp:read\tRead <your> snippets\n";
    cf.provider_param_lines = "access_type\toffline\nprompt\tconsent\n";
    ASSERT_EQ(cf.load(), "");
  }

  std::string id_token(const std::string& nonce, const std::string& extra, const std::string& sub = "user-42") {
    return FakeIdp::get().sign(R"({"iss":"https://idp.example","aud":"gateway","sub":")" + sub + R"(","nonce":")" +
                               nonce + R"(","iat":)" + std::to_string(now) + R"(,"exp":)" +
                               std::to_string(now + 300) + R"(,"email":"ada@example.com")" + extra + "}");
  }

  // /authorize goes straight to the provider: with claim rules on scopes the
  // consent page follows the sign-in.
  std::string provider_location(const std::string& client_id) {
    Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id)));
    std::string loc = header(a, "Location");
    EXPECT_EQ(loc.rfind("https://idp.example/authorize?", 0), 0u) << loc << a.body;
    return loc;
  }

  // A sign-in whose ID token carries `extra` claims; the callback's answer
  // (the consent page, the refusal, or the code when consent was remembered).
  Response sign_in(const std::string& client_id, const std::string& extra, int64_t provider_ttl = 3600) {
    std::string loc = provider_location(client_id);
    Response cb = callback(loc);
    EXPECT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
    Response r = resume(MCPA_EP_CALLBACK, cb, 200,
                        FakeIdp::get().token_response(id_token(nonce_of(loc), extra), provider_ttl));
    if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
    return r;
  }

  static std::string field_of(const Response& page, const std::string& name) {
    std::string marker = "name=\"" + name + "\" value=\"";
    auto p = page.body.find(marker);
    if (p == std::string::npos) return "";
    p += marker.size();
    return page.body.substr(p, page.body.find('"', p) - p);
  }

  // The user's answer on the consent page that followed the sign-in.
  Response answer(const Response& page, const std::string& decision, bool remember = false) {
    std::vector<std::pair<std::string, std::string>> f = {
        {"grant", field_of(page, "grant")}, {"csrf_token", field_of(page, "csrf_token")}, {"decision", decision}};
    if (remember) f.emplace_back("remember", "1");
    Request r = request("POST", "", form(f), "application/x-www-form-urlencoded");
    r.origin = "https://mcp.example";
    r.sec_fetch_site = "same-origin";
    return call(MCPA_EP_CONSENT, r);
  }

  // Signed in and approved: the redirect back to the client.
  Response login_with(const std::string& client_id, const std::string& extra, int64_t provider_ttl = 3600) {
    Response page = sign_in(client_id, extra, provider_ttl);
    if (page.status != 200) return page;
    return answer(page, "allow");
  }

  std::optional<Session> session_of(const std::string& access_token) {
    auto claims = decode_access(cf.keys->open(seal_purpose::access_token, access_token).value_or(""));
    if (!claims) return std::nullopt;
    std::string raw;
    if (store.get("session:" + claims->sid, &raw) != StoreStatus::ok) return std::nullopt;
    return decode_session(raw);
  }
};

TEST_F(ClaimRules, ALoginTheRulesRefuseShowsAPageAndStoresNothing) {
  std::string id = public_client();
  store.put("jwks:https://idp.example", FakeIdp::get().jwks, now + 3600);  // the provider's keys may be cached
  const size_t before = store.size();
  Response r = sign_in(id, R"(,"tid":"another-tenant","groups":["editors"])");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("Your account is not allowed to use this server"), std::string::npos);
  EXPECT_NE(r.body.find("ada@example.com"), std::string::npos);
  std::string back = return_link(r);
  EXPECT_EQ(back.rfind(kRedirect + "?", 0), 0u) << back;
  EXPECT_EQ(qget(back, "error"), "access_denied");
  EXPECT_EQ(qget(back, "state"), "client-state");
  EXPECT_EQ(r.error, "access_denied");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_STREQ(r.events[0].name, "login.denied");
  EXPECT_EQ(r.events[0].outcome, "not_admitted");
  EXPECT_EQ(r.events[0].reason, "claim tid");
  EXPECT_EQ(store.size(), before);  // no session, code or used-login mark
  EXPECT_EQ(jar.cookies.count("__Host-mcp_login"), 0u);
  // the same with the claim missing altogether
  Response none = sign_in(id, "");
  EXPECT_EQ(none.status, 403);
  EXPECT_EQ(store.size(), before);
}

TEST_F(ClaimRules, AnAdmittedLoginKeepsTheRulesClaimsAndOnlyTheScopesTheyAllow) {
  std::string id = public_client();
  // a viewer: no group, so no mcp:tools
  Response r = login_with(id, std::string(R"(,"tid":")") + kTenant + R"(","groups":["staff"],"x":1)");
  ASSERT_EQ(r.status, 303) << r.body;
  Response tok = redeem(id, qget(header(r, "Location"), "code"));
  ASSERT_EQ(tok.status, 200) << tok.body;
  EXPECT_EQ(json_string(tok.body, "scope"), "mcp:read");
  auto s = session_of(json_string(tok.body, "access_token"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->scope, "mcp:read");
  EXPECT_EQ(ClaimSet::from_record(s->claims)->to_json(), std::string(R"({"tid":[")") + kTenant + R"("]})");

  // an editor gets both, and the session keeps the group
  Response e = login_with(id, std::string(R"(,"tid":")") + kTenant + R"(","groups":["staff","editors"])");
  ASSERT_EQ(e.status, 303) << e.body;
  Response etok = redeem(id, qget(header(e, "Location"), "code"));
  EXPECT_EQ(json_string(etok.body, "scope"), "mcp:tools mcp:read");
  auto es = session_of(json_string(etok.body, "access_token"));
  ASSERT_TRUE(es);
  EXPECT_EQ(ClaimSet::from_record(es->claims)->to_json(),
            std::string(R"({"tid":[")") + kTenant + R"("],"groups":["editors"]})");
}

TEST_F(ClaimRules, TheConsentPageFollowsTheSignInAndOffersOnlyWhatTheUserMayHold) {
  std::string id = public_client();
  // a viewer: the page offers mcp:read alone, described, and names the account
  Response page = sign_in(id, std::string(R"(,"tid":")") + kTenant + R"(")");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("Read &lt;your&gt; snippets"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("Read <your>"), std::string::npos);
  EXPECT_EQ(page.body.find("mcp:tools"), std::string::npos);
  EXPECT_NE(page.body.find("ada@example.com"), std::string::npos);
  EXPECT_EQ(page.body.find("idp-access-1"), std::string::npos);  // the provider's tokens travel sealed
  const size_t stored = store.size();
  EXPECT_EQ(store.size(), stored);  // nothing is stored before the answer

  // the answer needs this browser's login cookie and a CSRF token for it
  Jar saved = jar;
  jar.cookies.erase("__Host-mcp_login");
  EXPECT_EQ(answer(page, "allow").status, 403);
  jar = saved;
  Response forged = page;
  forged.body.replace(forged.body.find(field_of(page, "csrf_token")), 4, "AAAA");
  EXPECT_EQ(answer(forged, "allow").status, 403);

  Jar before = jar;
  Response back = answer(page, "allow", true);
  ASSERT_EQ(back.status, 303) << back.body;
  ASSERT_EQ(back.events.size(), 2u);
  EXPECT_STREQ(back.events[0].name, "consent.allowed");
  EXPECT_STREQ(back.events[1].name, "login.completed");
  Response tok = redeem(id, qget(header(back, "Location"), "code"));
  EXPECT_EQ(json_string(tok.body, "scope"), "mcp:read");
  // the same answer again, login cookie and all, is a replay
  Jar after = jar;
  jar = before;
  Response replay = answer(page, "allow");
  EXPECT_EQ(replay.status, 400);
  EXPECT_NE(replay.body.find("already completed"), std::string::npos);
  jar = after;

  // remembered: the next sign-in of this browser needs no page
  Response again = sign_in(id, std::string(R"(,"tid":")") + kTenant + R"(")");
  EXPECT_EQ(again.status, 303) << again.body;

  // a denial reaches the client as access_denied
  Response other = sign_in(public_client(), std::string(R"(,"tid":")") + kTenant + R"(")");
  ASSERT_EQ(other.status, 200);
  Response no = answer(other, "deny");
  EXPECT_EQ(qget(return_link(no), "error"), "access_denied");
}

TEST_F(ClaimRules, TheLoginRequestCarriesTheProvidersOwnParameters) {
  std::string loc = provider_location(public_client());
  EXPECT_EQ(qget(loc, "access_type"), "offline");
  EXPECT_EQ(qget(loc, "prompt"), "consent");
  EXPECT_EQ(qget(loc, "response_type"), "code");  // the gateway's own stay as they are
  // and a configuration cannot replace those
  Config other = cf;
  other.provider_param_lines = "redirect_uri\thttps://evil.example/\n";
  EXPECT_NE(other.load().find("set by the gateway itself"), std::string::npos);
}

TEST_F(ClaimRules, ARenewalAtTheProviderChecksTheRulesAgain) {
  std::string id = public_client();
  Response r = login_with(id, std::string(R"(,"tid":")") + kTenant + R"(","groups":["editors"])", 60);
  ASSERT_EQ(r.status, 303) << r.body;
  Response tok = redeem(id, qget(header(r, "Location"), "code"));
  ASSERT_EQ(json_string(tok.body, "scope"), "mcp:tools mcp:read");
  std::string refresh_token = json_string(tok.body, "refresh_token");

  // The provider's token is about to expire: the refresh renews it first,
  // and the new ID token no longer has the group.
  now += 30;
  Response asked = refresh(id, refresh_token);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << asked.body;
  Response narrowed = resume(MCPA_EP_TOKEN, asked, 200,
                             FakeIdp::get().token_response(id_token("", std::string(R"(,"tid":")") + kTenant + "\""),
                                                           60, "idp-refresh-2"));
  ASSERT_EQ(narrowed.status, 200) << narrowed.body;
  EXPECT_EQ(json_string(narrowed.body, "scope"), "mcp:read");
  auto s = session_of(json_string(narrowed.body, "access_token"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->scope, "mcp:read");
  EXPECT_EQ(s->provider_refresh_token, "idp-refresh-2");

  // An ID token for another user is not this session's: nothing changes.
  now += 40;
  refresh_token = json_string(narrowed.body, "refresh_token");
  asked = refresh(id, refresh_token);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << asked.body;
  Response foreign = resume(MCPA_EP_TOKEN, asked, 200,
                            FakeIdp::get().token_response(
                                id_token("", std::string(R"(,"tid":")") + kTenant + "\"", "someone-else"), 60,
                                "idp-refresh-3"));
  EXPECT_EQ(session_of(json_string(foreign.body, "access_token"))->provider_refresh_token, "idp-refresh-2");

  // Moved to another tenant: the session ends.
  now += 70;
  refresh_token = json_string(foreign.body, "refresh_token");
  asked = refresh(id, refresh_token);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << asked.body;
  Response ended = resume(MCPA_EP_TOKEN, asked, 200,
                          FakeIdp::get().token_response(id_token("", R"(,"tid":"elsewhere")"), 60, "idp-refresh-4"));
  EXPECT_EQ(ended.status, 400);
  EXPECT_EQ(json_string(ended.body, "error"), "invalid_grant");
  EXPECT_FALSE(session_of(json_string(tok.body, "access_token")));
}

// --- the guard ---------------------------------------------------------------

class ClaimGuard : public ClaimRules {
 protected:
  void SetUp() override {
    ClaimRules::SetUp();
    gs.tool_scopes = "get_snippet mcp:read\nhello mcp:tools\n";
    gs.identity_key_file = write_file("identity", "0123456789abcdef0123456789abcdef");
    ASSERT_EQ(gs.load(), "");
  }

  std::string token_for(const std::string& scope, const std::string& claims_record) {
    Session s;
    s.sid = "sid-" + std::to_string(++sessions);
    s.sub = "user-42";
    s.client_id = "client-1";
    s.scope = scope;
    s.claims = claims_record;
    s.created = now;
    s.expires = now + 3600;
    store.put("session:" + s.sid, encode_session(s), s.expires);
    AccessClaims a;
    a.sid = s.sid;
    a.client_id = s.client_id;
    a.scope = scope;
    a.exp = now + 600;
    return "Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a));
  }

  GuardOutcome call_tool(const std::string& bearer, const std::string& tool) {
    body = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":")" + tool + R"(","arguments":{}}})";
    GuardInput in;
    in.method = "POST";
    in.authorization = bearer;
    in.body = body;
    in.body_read = true;
    in.now = now;
    store.now = now;
    return guard_check(cf, gs, cache, store, in);
  }

  static std::string header_of(const Response& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
      if (n == name) return v;
    return "";
  }

  GuardSettings gs;
  IdentityCache cache;
  std::string body;
  int sessions = 0;
};

TEST_F(ClaimGuard, AToolRuleRefusesWhoLacksTheClaimWithA403ThatSaysWhy) {
  GuardOutcome d = call_tool(token_for("mcp:read", "tid=t-demo"), "save_snippet");
  ASSERT_EQ(d.verdict, GuardOutcome::deny);
  EXPECT_EQ(d.response.status, 403);
  EXPECT_EQ(header_of(d.response, "WWW-Authenticate"), "");  // nothing to step up to
  EXPECT_NE(d.response.body.find(R"("id":7)"), std::string::npos) << d.response.body;
  EXPECT_NE(d.response.body.find("-32001"), std::string::npos);
  EXPECT_NE(d.response.body.find("your account may not call save_snippet: it requires groups = editors"),
            std::string::npos)
      << d.response.body;
  EXPECT_EQ(d.reason, metrics::GuardReason::claim_required);
  EXPECT_EQ(d.tool, "save_snippet");
  EXPECT_EQ(d.subject, "user-42");

  GuardOutcome ok = call_tool(token_for("mcp:read", "groups=editors"), "save_snippet");
  EXPECT_EQ(ok.verdict, GuardOutcome::allow);
}

TEST_F(ClaimGuard, AScopeTheClaimsNeverAllowIsNoStepUp) {
  // hello needs mcp:tools, which only editors may hold
  GuardOutcome d = call_tool(token_for("mcp:read", ""), "hello");
  ASSERT_EQ(d.verdict, GuardOutcome::deny);
  EXPECT_EQ(d.response.status, 403);
  EXPECT_EQ(header_of(d.response, "WWW-Authenticate"), "");
  EXPECT_FALSE(d.step_up);
  EXPECT_NE(d.response.body.find("needs the scope mcp:tools, which your account cannot be granted"),
            std::string::npos)
      << d.response.body;
  EXPECT_EQ(d.reason, metrics::GuardReason::scope_not_grantable);
  std::string raw;
  EXPECT_EQ(store.get("stepup:sid-1", &raw), StoreStatus::not_found);

  // an editor whose token lacks it is asked to step up, as before
  GuardOutcome up = call_tool(token_for("mcp:read", "groups=editors"), "hello");
  ASSERT_EQ(up.verdict, GuardOutcome::deny);
  EXPECT_TRUE(up.step_up);
  EXPECT_NE(header_of(up.response, "WWW-Authenticate").find(R"(scope="mcp:read mcp:tools")"), std::string::npos);
}

TEST_F(ClaimGuard, TheAssertionCarriesTheKeptClaimsAndTheNarrowerScope) {
  std::string bearer = token_for("mcp:read", "groups=editors&tid=t-demo");
  GuardOutcome ok = call_tool(bearer, "get_snippet");
  ASSERT_EQ(ok.verdict, GuardOutcome::allow);
  std::string jwt(ok.identity);
  auto payload = b64url_decode(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1));
  ASSERT_TRUE(payload);
  EXPECT_NE(payload->find(R"("claims":{"groups":["editors"],"tid":["t-demo"]})"), std::string::npos) << *payload;
  EXPECT_EQ(ok.claims, "groups=editors&tid=t-demo");

  // the session narrowed below a token issued before (a renewal): the
  // request has only what both allow
  Session s;
  std::string raw;
  ASSERT_EQ(store.get("session:sid-1", &raw), StoreStatus::ok);
  s = *decode_session(raw);
  s.scope = "";
  store.put("session:sid-1", encode_session(s), s.expires);
  GuardOutcome after = call_tool(bearer, "get_snippet");
  ASSERT_EQ(after.verdict, GuardOutcome::deny);
  EXPECT_EQ(after.response.status, 403);
  EXPECT_TRUE(after.step_up);
}

}  // namespace
}  // namespace mcpauth_test
