// Enterprise-managed authorization: mcp_auth_trusted_issuer and
// mcp_auth_enterprise_client lines and what load() checks, the jwt-bearer
// grant with an ID-JAG -- the issuer's keys fetched once and cached, every
// check an attacker would try first, single use, the claim rules, scopes --
// and the metadata.
#include <gtest/gtest.h>

#include "configured_client.hpp"
#include "enterprise_grant.hpp"
#include "session_index.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

const std::string kAppSecret(40, 'e');
const char* kIdp = "https://idp.example";

TEST(TrustedIssuerLines, ParseAndRefuse) {
  std::string err;
  auto t = parse_trusted_issuer("https://idp.example\tjwks_location=/_mcp_auth/issuer/acme\tsubject_prefix=acme:", &err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->issuer, "https://idp.example");
  EXPECT_EQ(t->jwks_location, "/_mcp_auth/issuer/acme");
  EXPECT_EQ(t->subject_prefix, "acme:");
  for (const char* line : {"https://idp.example", "idp.example\tjwks_location=/j", "https://idp.example\tjwks_location=j",
                           "https://idp.example\tjwks_location=/j\tjwks_location=/k",
                           "https://idp.example\tjwks_location=/j\tscope=a", "https://idp.example\tjwks_location"}) {
    err.clear();
    EXPECT_FALSE(parse_trusted_issuer(line, &err)) << line;
    EXPECT_NE(err.find("mcp_auth_trusted_issuer"), std::string::npos) << err;
  }
  EXPECT_EQ(check_setting(MCPA_CHECK_TRUSTED_ISSUER, "mcp_auth_trusted_issuer", "https://i\tjwks_location=/j"), "");
  EXPECT_NE(check_setting(MCPA_CHECK_TRUSTED_ISSUER, "mcp_auth_trusted_issuer", "https://i"), "");
}

TEST(EnterpriseClientLines, ParseAndRefuse) {
  std::string err;
  auto c = parse_enterprise_client("app\tsecret_file=/s\tissuer=https://a\tissuer=https://b\tscope=mcp:read\tname=Chat",
                                   &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->issuers, (std::vector<std::string>{"https://a", "https://b"}));
  EXPECT_EQ(c->scopes, (std::vector<std::string>{"mcp:read"}));
  EXPECT_EQ(c->name, "Chat");
  for (const char* line : {"app\tsecret_file=/s\tscope=mcp:read", "app\tissuer=https://a\tscope=mcp:read",
                           "app\tsecret_file=/s\tissuer=https://a", "app\tsecret_file=/s\tissuer=https://a\tissuer=https://a\tscope=a"}) {
    err.clear();
    EXPECT_FALSE(parse_enterprise_client(line, &err)) << line;
    EXPECT_NE(err.find("mcp_auth_enterprise_client"), std::string::npos) << err;
  }
  // a service client takes no issuer
  EXPECT_FALSE(parse_service_client("svc\tsecret_file=/s\tissuer=https://a\tscope=a", &err));
}

class EnterpriseGrant : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    secret_file = write_file("app-secret", kAppSecret + "\n");
    cf.trusted_issuer_lines = std::string(kIdp) + "\tjwks_location=/_mcp_auth/issuer/idp\n" +
                              "https://other.example\tjwks_location=/_mcp_auth/issuer/other\tsubject_prefix=other:\n";
    cf.enterprise_client_lines = "app\tsecret_file=" + secret_file + "\tissuer=" + kIdp +
                                 "\tscope=mcp:tools mcp:read\tname=Chat\n" + "other-app\tsecret_file=" + secret_file +
                                 "\tissuer=https://other.example\tscope=mcp:read\n";
    ASSERT_EQ(cf.load(), "");
  }

  // An ID-JAG signed with FakeIdp's key; `edit` changes the claims first.
  std::string id_jag(const std::string& jti, const std::function<void(Fields&)>& edit = nullptr,
                     const std::string& typ = "oauth-id-jag+jwt") {
    Fields f;
    f.set("iss", kIdp);
    f.set("sub", "user-42");
    f.set("aud", cf.issuer);
    f.set("resource", cf.resource);
    f.set("client_id", "app");
    f.set("jti", jti);
    f.set("scope", "mcp:tools mcp:read");
    f.set("email", "ada@example.com");
    f.set("name", "Ada Lovelace");
    if (edit) edit(f);
    // Fields holds strings: the dates go in as numbers
    std::string json = f.encode();
    json.pop_back();
    json += R"(,"iat":)" + std::to_string(iat) + R"(,"exp":)" + std::to_string(exp) + "}";
    return FakeIdp::get().sign_typed(json, "idp-1", typ);
  }

  Request grant(const std::string& assertion, std::vector<std::pair<std::string, std::string>> extra = {},
                const std::string& client = "app", const std::string& secret = kAppSecret) {
    std::vector<std::pair<std::string, std::string>> f = {{"grant_type", kJwtBearerGrant}, {"assertion", assertion}};
    for (auto& e : extra) f.push_back(e);
    Request r = request("POST", "", form(f), "application/x-www-form-urlencoded");
    if (!client.empty()) r.authorization = "Basic " + b64_encode(client + ":" + secret);
    r.request_id = "request-" + std::to_string(++requests);
    return r;
  }

  // The request, with the issuer's keys fetched when it asks (the glue runs
  // the same request again with the answer).
  Response run(const Request& r, int jwks_status = 200, const std::string& jwks = FakeIdp::get().jwks) {
    Response resp = call(MCPA_EP_TOKEN, r);
    if (resp.fetch.target != MCPA_FETCH_ISSUER_JWKS) return resp;
    ++fetches;
    fetched_from = resp.fetch.path;
    store.now = now;
    Request again = r;
    again.now = now;
    return over_store([&](Store& st) {
      return resume_endpoint(MCPA_EP_TOKEN, cf, st, again, resp.fetch.continuation, jwks_status, jwks);
    });
  }

  std::string refusal(const Request& r) {
    Response resp = run(r);
    const Event* e = nullptr;
    for (const auto& ev : resp.events)
      if (ev.kind == MCPA_EV_TOKEN) e = &ev;
    EXPECT_TRUE(e && e->name == std::string("token.refused") && e->grant_type == "jwt_bearer") << resp.body;
    return std::to_string(resp.status) + " " + json_string(resp.body, "error");
  }

  std::optional<Session> session_of(const Response& r) {
    auto plain = cf.keys->open(seal_purpose::access_token, json_string(r.body, "access_token"));
    auto a = plain ? decode_access(*plain) : std::nullopt;
    if (!a) return std::nullopt;
    std::string raw;
    store.now = now;
    if (store.get("session:" + a->sid, &raw) != StoreStatus::ok) return std::nullopt;
    return decode_session(raw);
  }

  std::string secret_file;
  int requests = 0, fetches = 0;
  std::string fetched_from;
  int64_t iat = now, exp = now + 300;
};

TEST_F(EnterpriseGrant, AnAppGetsATokenForTheUserTheAssertionNames) {
  Response r = run(grant(id_jag("jti-1")));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(fetched_from, "/_mcp_auth/issuer/idp");
  EXPECT_EQ(json_string(r.body, "token_type"), "Bearer");
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:tools mcp:read");
  EXPECT_EQ(r.body.find("refresh_token"), std::string::npos) << r.body;
  auto s = session_of(r);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->sub, "user-42");
  EXPECT_EQ(s->subject_type, "");  // a user
  EXPECT_EQ(s->client_id, "app");
  EXPECT_EQ(s->name, "Ada Lovelace");
  EXPECT_EQ(s->email, "ada@example.com");
  EXPECT_EQ(s->expires, now + cf.access_token_ttl);
  EXPECT_EQ(s->provider_access_token, "");
  // listed under the user, so the admin API ends it with the user's others
  std::vector<IndexEntry> listed;
  store.now = now;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &listed), StoreStatus::ok);
  EXPECT_EQ(listed.size(), 1u);
  const Event* e = nullptr;
  for (const auto& ev : r.events)
    if (ev.kind == MCPA_EV_TOKEN) e = &ev;
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, std::string("token.issued"));
  EXPECT_EQ(e->grant_type, "jwt_bearer");
  EXPECT_EQ(e->subject, "user-42");

  // the keys are cached: the next assertion needs no fetch
  r = run(grant(id_jag("jti-2"), {{"scope", "mcp:read"}, {"resource", cf.resource}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:read");
}

TEST_F(EnterpriseGrant, AnAssertionIsGoodForOneRequest) {
  const std::string jwt = id_jag("jti-once");
  ASSERT_EQ(run(grant(jwt)).status, 200);
  EXPECT_EQ(refusal(grant(jwt)), "400 invalid_grant");
}

TEST_F(EnterpriseGrant, RefusesEveryAssertionThatIsNotForThisServerAndClient) {
  const auto with = [&](const char* name, const std::string& value) {
    return [=](Fields& f) { f.set(name, value); };
  };
  EXPECT_EQ(refusal(grant(id_jag("a1", with("aud", "https://elsewhere.example")))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a2", with("resource", "https://elsewhere.example/mcp")))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a3", with("client_id", "other-app")))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a4", with("iss", "https://untrusted.example")))), "400 invalid_grant");
  // a trusted issuer, but not one this client may present
  EXPECT_EQ(refusal(grant(id_jag("a5", with("iss", "https://other.example")))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a6", [](Fields& f) { f.set("jti", ""); }))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a7", with("sub", "")))), "400 invalid_grant");
  EXPECT_EQ(refusal(grant(id_jag("a8", nullptr, "JWT"))), "400 invalid_grant");  // an ID token's typ
  EXPECT_EQ(refusal(grant(id_jag("a9", nullptr, "at+jwt"))), "400 invalid_grant");
  exp = now;  // expired
  EXPECT_EQ(refusal(grant(id_jag("a10"))), "400 invalid_grant");
  exp = now + 2 * kIdJagMaxLifetime;
  EXPECT_EQ(refusal(grant(id_jag("a11"))), "400 invalid_grant");
  exp = now + 300;
  iat = now + 600;  // issued in the future
  EXPECT_EQ(refusal(grant(id_jag("a12"))), "400 invalid_grant");
  iat = now;

  std::string tampered = id_jag("a13");
  char& c = tampered[tampered.size() - 20];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(refusal(grant(tampered)), "400 invalid_grant");
  // signed with another key under the issuer's kid
  static FakeIdp impostor;
  EXPECT_EQ(refusal(grant(impostor.sign_typed(R"({"iss":"https://idp.example","sub":"user-42","aud":")" + cf.issuer +
                                            R"(","resource":")" + cf.resource +
                                            R"(","client_id":"app","jti":"a14","iat":)" + std::to_string(now) +
                                            R"(,"exp":)" + std::to_string(now + 300) + "}",
                                        "idp-1", "oauth-id-jag+jwt"))),
            "400 invalid_grant");

  // algorithm confusion: HS256 keyed with the issuer's public key, and none
  auto keys = parse_jwks(FakeIdp::get().jwks, nullptr);
  ASSERT_TRUE(keys && !keys->empty());
  const std::string claims = R"({"iss":"https://idp.example","sub":"user-42","aud":")" + cf.issuer +
                             R"(","resource":")" + cf.resource + R"(","client_id":"app","jti":"a15","iat":)" +
                             std::to_string(now) + R"(,"exp":)" + std::to_string(now + 300) + "}";
  for (jwt_alg_t alg : {JWT_ALG_HS256, JWT_ALG_NONE}) {
    jwt_t* jwt = nullptr;
    jwt_new(&jwt);
    jwt_add_header(jwt, "typ", "oauth-id-jag+jwt");
    jwt_add_header(jwt, "kid", "idp-1");
    jwt_add_grants_json(jwt, claims.c_str());
    const std::string& pem = (*keys)[0].pem;
    jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(pem.data()),
                alg == JWT_ALG_NONE ? 0 : static_cast<int>(pem.size()));
    char* out = jwt_encode_str(jwt);
    const std::string forged = out ? out : "";
    free(out);
    jwt_free(jwt);
    ASSERT_FALSE(forged.empty());
    EXPECT_EQ(refusal(grant(forged)), "400 invalid_grant") << alg;
  }
  // none of the refused assertions left a session
  std::vector<IndexEntry> listed;
  store.now = now;
  ASSERT_EQ(sessions_of_subject(store, "user-42", now, &listed), StoreStatus::ok);
  EXPECT_TRUE(listed.empty());
}

TEST_F(EnterpriseGrant, RefusesClientsThatMayNotPresentAssertions) {
  EXPECT_EQ(refusal(grant(id_jag("c1"), {}, "app", std::string(40, 'x'))), "401 invalid_client");
  EXPECT_EQ(refusal(grant(id_jag("c2"), {}, "nobody")), "401 invalid_client");
  EXPECT_EQ(refusal(grant(id_jag("c3"), {}, "")), "401 invalid_client");
  std::string secret;
  const std::string registered = register_client(R"({"redirect_uris":["https://client.example/cb"]})", &secret);
  EXPECT_EQ(refusal(grant(id_jag("c4", [&](Fields& f) { f.set("client_id", registered); }), {}, registered, secret)),
            "400 unauthorized_client");
  store.now = now;
  ASSERT_EQ(store.put(client_disabled_key("app"), "1", now + 3600), StoreStatus::ok);
  EXPECT_EQ(refusal(grant(id_jag("c5"))), "400 unauthorized_client");
}

TEST_F(EnterpriseGrant, ScopesAreWhatTheProviderGrantedWithinTheClientsAllowance) {
  // the provider granted more than the client may hold: narrowed
  Response r = run(grant(id_jag("s1", [](Fields& f) { f.set("scope", "mcp:read mcp:admin"); })));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:read");
  // no scope claim: the client's allowance
  r = run(grant(id_jag("s3", [](Fields& f) {
    Fields g;
    for (const char* k : {"iss", "sub", "aud", "resource", "client_id", "jti"}) g.set(k, f.str(k));
    f = g;
  })));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:tools mcp:read");
  // asking beyond what the provider granted
  EXPECT_EQ(refusal(grant(id_jag("s4", [](Fields& f) { f.set("scope", "mcp:read"); }), {{"scope", "mcp:tools"}})),
            "400 invalid_scope");
  // nothing left
  EXPECT_EQ(refusal(grant(id_jag("s5", [](Fields& f) { f.set("scope", "mcp:admin"); }))), "400 invalid_scope");
  EXPECT_EQ(refusal(grant(id_jag("s6"), {{"resource", "https://elsewhere.example/mcp"}})), "400 invalid_target");
}

TEST_F(EnterpriseGrant, TheClaimRulesHoldAsForABrowserSignIn) {
  cf.claim_rules = "login\tgroups\teditors\n";
  ASSERT_EQ(cf.load(), "");
  EXPECT_EQ(refusal(grant(id_jag("r1"))), "400 invalid_grant");
  // with the group (an array: signed from JSON, as Fields holds strings)
  const std::string jwt = FakeIdp::get().sign_typed(R"({"iss":"https://idp.example","sub":"user-42","aud":")" + cf.issuer +
                                R"(","resource":")" + cf.resource +
                                R"(","client_id":"app","jti":"r2","groups":["editors"],"iat":)" +
                                std::to_string(now) + R"(,"exp":)" + std::to_string(now + 300) + "}",
                            "idp-1", "oauth-id-jag+jwt");
  Response r = run(grant(jwt));
  ASSERT_EQ(r.status, 200) << r.body;
  auto s = session_of(r);
  ASSERT_TRUE(s);
  EXPECT_NE(s->claims.find("editors"), std::string::npos) << s->claims;
}

TEST_F(EnterpriseGrant, KeysAreFetchedAgainForAnUnknownKidAndAFailedFetchIsRetryable) {
  ASSERT_EQ(run(grant(id_jag("k1"))).status, 200);
  EXPECT_EQ(fetches, 1);
  // the issuer rotated its key: the cached set lacks the kid
  const std::string rotated = FakeIdp::get().sign_typed(
      R"({"iss":"https://idp.example","sub":"user-42","aud":")" + cf.issuer + R"(","resource":")" + cf.resource +
          R"(","client_id":"app","jti":"k2","iat":)" + std::to_string(now) + R"(,"exp":)" +
          std::to_string(now + 300) + "}",
      "idp-2", "oauth-id-jag+jwt");
  // within kJwksRefetchSeconds of the fetch, the set is not fetched again
  // (else made-up kids would make every request a fetch): refused
  Response r = run(grant(rotated), 200, FakeIdp::get().jwks_with_kid("idp-2"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json_string(r.body, "error"), "invalid_grant");
  EXPECT_EQ(fetches, 1);
  now += kJwksRefetchSeconds;
  r = run(grant(rotated), 200, FakeIdp::get().jwks_with_kid("idp-2"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 2);
  // the provider's keys cannot be had: 503, and the assertion is not spent
  store.now = now;
  ASSERT_EQ(store.del("jwks:" + std::string(kIdp)), StoreStatus::ok);
  const Request again = grant(id_jag("k3"));
  r = run(again, 502, "");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(json_string(r.body, "error"), "temporarily_unavailable");
  EXPECT_EQ(run(grant(id_jag("k3"))).status, 200);
}

TEST_F(EnterpriseGrant, TheSubjectPrefixKeepsASecondProvidersUsersApart) {
  Response r = run(grant(id_jag("p1", [](Fields& f) {
                           f.set("iss", "https://other.example");
                           f.set("client_id", "other-app");
                           f.set("scope", "mcp:read");
                         }),
                         {}, "other-app"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetched_from, "/_mcp_auth/issuer/other");
  EXPECT_EQ(session_of(r)->sub, "other:user-42");
}

TEST_F(EnterpriseGrant, TheMetadataAdvertisesTheGrantOnlyWhenAppsAreConfigured) {
  Response r = call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET"));
  EXPECT_NE(r.body.find(R"("urn:ietf:params:oauth:grant-type:jwt-bearer")"), std::string::npos) << r.body;
  cf.enterprise_client_lines.clear();
  ASSERT_EQ(cf.load(), "");
  r = call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET"));
  EXPECT_EQ(r.body.find("jwt-bearer"), std::string::npos) << r.body;
  const std::string pub = public_client();
  Response t = call(MCPA_EP_TOKEN, request("POST", "",
                                          form({{"grant_type", kJwtBearerGrant}, {"assertion", "x"}, {"client_id", pub}}),
                                          "application/x-www-form-urlencoded"));
  EXPECT_EQ(json_string(t.body, "error"), "unsupported_grant_type");
}

TEST_F(EnterpriseGrant, LoadRefusesWhatCannotWork) {
  const std::string issuers = cf.trusted_issuer_lines;
  cf.enterprise_client_lines = "app\tsecret_file=" + secret_file + "\tissuer=https://nowhere.example\tscope=mcp:read\n";
  EXPECT_NE(cf.load().find("has no mcp_auth_trusted_issuer"), std::string::npos);
  cf.enterprise_client_lines = "app\tsecret_file=" + secret_file + "\tissuer=" + kIdp + "\tscope=mcp:admin\n";
  EXPECT_NE(cf.load().find("not among mcp_auth_scopes"), std::string::npos);
  cf.service_client_lines = "app\tsecret_file=" + secret_file + "\tscope=mcp:read\n";
  cf.enterprise_client_lines = "app\tsecret_file=" + secret_file + "\tissuer=" + kIdp + "\tscope=mcp:read\n";
  EXPECT_NE(cf.load().find("a service or exchange client's already"), std::string::npos);
  cf.service_client_lines.clear();
  cf.trusted_issuer_lines = issuers + issuers;
  EXPECT_NE(cf.load().find("is repeated"), std::string::npos);
  cf.trusted_issuer_lines.clear();
  EXPECT_NE(cf.load().find("has no mcp_auth_trusted_issuer"), std::string::npos);
}

}  // namespace
}  // namespace mcpauth_test
