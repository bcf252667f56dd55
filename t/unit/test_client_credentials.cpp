// grant_type=client_credentials for services the operator configures
// (mcp_auth_service_client): the directive's lines and what load() checks,
// the grant's answer and the session it creates for the client, its
// refusals (client authentication by secret or private_key_jwt among them),
// the metadata, and what the guard does with such a token.
#include <gtest/gtest.h>

#include "configured_client.hpp"
#include "guard.hpp"
#include "identity_assertion.hpp"
#include "session_index.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

const std::string kServiceSecret(40, 'v');

TEST(ServiceClientLines, ParsesCredentialScopesAndName) {
  std::string err;
  auto c = parse_service_client("svc\tsecret_file=/s\tscope=mcp:read mcp:tools\tname=Nightly report job", &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->client_id, "svc");
  EXPECT_EQ(c->secret_file, "/s");
  EXPECT_EQ(c->scopes, (std::vector<std::string>{"mcp:read", "mcp:tools"}));
  EXPECT_EQ(c->name, "Nightly report job");
  c = parse_service_client("signer\tjwks_file=/j\tscope=mcp:read", &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->jwks_file, "/j");
  EXPECT_EQ(c->name, "");
}

TEST(ServiceClientLines, RefusesWhatCannotWork) {
  std::string err;
  for (const char* line : {"svc\tscope=mcp:read", "svc\tsecret_file=/s", "svc\tsecret_file=/s\tjwks_file=/j\tscope=a",
                           "svc\tsecret_file=/s\tjwks_location=/l\tscope=a", "svc\tjwks_location=l\tscope=a",
                           "svc\tsecret_file=/s\tsecret_file=/t\tscope=a", "svc\tsecret_file=/s\tscope=a\tscope=b",
                           "svc\tsecret_file=/s\tscope=a\"b", "svc\tsecret_file=/s\tscope=a\tname=say \"hi\"",
                           "svc\tsecret_file=/s\tscope=a\tname=", "svc\tsecret_file=/s\tscope=a\tname=x\tname=y",
                           "svc\tsecret_file=/s\tscope=a\taudience=api", "scope=a\tsecret_file=/s", "svc\tsecret_file"}) {
    err.clear();
    EXPECT_FALSE(parse_service_client(line, &err)) << line;
    EXPECT_NE(err.find("mcp_auth_service_client"), std::string::npos) << err;
  }
  EXPECT_NE(check_setting(MCPA_CHECK_SERVICE_CLIENT, "mcp_auth_service_client", "svc\tscope=a"), "");
  EXPECT_EQ(check_setting(MCPA_CHECK_SERVICE_CLIENT, "mcp_auth_service_client", "svc\tsecret_file=/s\tscope=a"), "");
}

class ClientCredentials : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    secret_file = write_file("service-secret", kServiceSecret + "\n");
    jwks_file = write_file("service-jwks", FakeIdp::get().jwks);
    cf.service_client_lines = "svc\tsecret_file=" + secret_file + "\tscope=mcp:tools mcp:read\tname=Nightly job\n" +
                              "signer\tjwks_file=" + jwks_file + "\tscope=mcp:read\n";
    ASSERT_EQ(cf.load(), "");
    ASSERT_EQ(cf.service_clients.size(), 2u);
  }

  Request grant(std::vector<std::pair<std::string, std::string>> extra = {}, const std::string& basic = "svc",
                const std::string& secret = kServiceSecret) {
    std::vector<std::pair<std::string, std::string>> f = {{"grant_type", "client_credentials"}};
    for (auto& e : extra) f.push_back(e);
    Request r = request("POST", "", form(f), "application/x-www-form-urlencoded");
    if (!basic.empty()) r.authorization = "Basic " + b64_encode(basic + ":" + secret);
    r.request_id = "request-" + std::to_string(++requests);
    return r;
  }

  // A client assertion of `signer` (RFC 7523), signed with FakeIdp's key.
  std::string assertion(const std::string& jti, int64_t lifetime = 120, const std::string& aud = "",
                        const std::string& iss = "signer", const std::string& sub = "signer") {
    return FakeIdp::get().sign(R"({"iss":")" + iss + R"(","sub":")" + sub + R"(","aud":")" +
                               (aud.empty() ? cf.url(cf.token_path) : aud) + R"(","jti":")" + jti +
                               R"(","iat":)" + std::to_string(now) + R"(,"exp":)" + std::to_string(now + lifetime) +
                               "}");
  }

  Request by_assertion(const std::string& jwt, std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> f = {
        {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
        {"client_assertion", jwt}};
    for (auto& e : extra) f.push_back(e);
    return grant(f, "");
  }

  std::optional<AccessClaims> claims_of(const std::string& token) {
    auto plain = cf.keys->open(seal_purpose::access_token, token);
    return plain ? decode_access(*plain) : std::nullopt;
  }

  std::optional<Session> session(const std::string& sid) {
    std::string raw;
    store.now = now;
    if (store.get("session:" + sid, &raw) != StoreStatus::ok) return std::nullopt;
    return decode_session(raw);
  }

  static const Event* token_event(const Response& r) {
    const Event* found = nullptr;
    for (const auto& e : r.events)
      if (e.kind == MCPA_EV_TOKEN) {
        EXPECT_EQ(found, nullptr) << "two token events";
        found = &e;
      }
    return found;
  }

  // "STATUS error", checking the refusal's event on the way
  std::string refusal(const Request& r, const std::string& client_id = "") {
    Response resp = call(MCPA_EP_TOKEN, r);
    const Event* e = token_event(resp);
    EXPECT_TRUE(e && e->name == std::string("token.refused") && e->grant_type == "client_credentials" &&
                e->outcome == json_string(resp.body, "error"))
        << resp.body;
    if (e && !client_id.empty()) {
      EXPECT_EQ(e->client_id, client_id);
    }
    return std::to_string(resp.status) + " " + json_string(resp.body, "error");
  }

  std::string secret_file, jwks_file;
  int requests = 0;
};

TEST_F(ClientCredentials, AServiceGetsAnAccessTokenOfItsOwnAndNoRefreshToken) {
  Response r = call(MCPA_EP_TOKEN, grant());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "token_type"), "Bearer");
  EXPECT_EQ(json_number(r.body, "expires_in").value_or(0), cf.access_token_ttl);
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:tools mcp:read");
  EXPECT_EQ(r.body.find("refresh_token"), std::string::npos) << r.body;
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");

  // an access token like any other: sealed claims that point at a session
  auto a = claims_of(json_string(r.body, "access_token"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->client_id, "svc");
  EXPECT_EQ(a->scope, "mcp:tools mcp:read");
  EXPECT_EQ(a->resource, cf.resource);
  EXPECT_EQ(a->exp, now + cf.access_token_ttl);
  auto s = session(a->sid);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->sub, "client:svc");
  EXPECT_EQ(s->subject_type, "client");
  EXPECT_EQ(s->client_id, "svc");
  EXPECT_EQ(s->name, "Nightly job");
  EXPECT_EQ(s->scope, "mcp:tools mcp:read");
  EXPECT_EQ(s->expires, now + cf.access_token_ttl);
  EXPECT_EQ(s->provider_access_token, "");
  EXPECT_EQ(s->provider_refresh_token, "");

  // listed like a sign-in's session: the admin API finds and ends it
  std::vector<IndexEntry> listed;
  store.now = now;
  ASSERT_EQ(sessions_of_client(store, "svc", now, &listed), StoreStatus::ok);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].member, a->sid);
  ASSERT_EQ(sessions_of_subject(store, "client:svc", now, &listed), StoreStatus::ok);
  ASSERT_EQ(listed.size(), 1u);

  const Event* e = token_event(r);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, std::string("token.issued"));
  EXPECT_EQ(e->grant_type, "client_credentials");
  EXPECT_EQ(e->subject, "client:svc");
  EXPECT_EQ(e->client_id, "svc");
  EXPECT_TRUE(e->audit);

  ASSERT_EQ(end_session(store, a->sid, now), StoreStatus::ok);
  EXPECT_FALSE(session(a->sid));
}

TEST_F(ClientCredentials, TheSecretMayComeInTheFormAndTheScopeMayBeNarrower) {
  Response r = call(MCPA_EP_TOKEN, grant({{"client_id", "svc"}, {"client_secret", kServiceSecret},
                                          {"scope", "mcp:read"}, {"resource", cf.resource}},
                                         ""));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:read");
  auto s = session(claims_of(json_string(r.body, "access_token"))->sid);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->scope, "mcp:read");
  EXPECT_EQ(s->name, "Nightly job");
}

TEST_F(ClientCredentials, RefusesWrongCredentialsScopesAndResources) {
  EXPECT_EQ(refusal(grant({}, "svc", std::string(40, 'w')), "svc"), "401 invalid_client");
  EXPECT_EQ(refusal(grant({}, "nobody"), "nobody"), "401 invalid_client");
  EXPECT_EQ(refusal(grant({{"client_id", "svc"}, {"client_secret", "short"}}, "")), "401 invalid_client");
  EXPECT_EQ(refusal(grant({{"scope", "mcp:admin"}})), "400 invalid_scope");
  EXPECT_EQ(refusal(grant({{"scope", "mcp:read mcp:admin"}})), "400 invalid_scope");
  EXPECT_EQ(refusal(grant({{"resource", "https://elsewhere.example/mcp"}})), "400 invalid_target");
  EXPECT_EQ(refusal(grant({{"resource", cf.resource}, {"resource", "https://elsewhere.example/mcp"}})),
            "400 invalid_target");
  // signer authenticates with keys only: a secret does not do
  EXPECT_EQ(refusal(grant({}, "signer")), "401 invalid_client");
  store.now = now;
  std::vector<IndexEntry> listed;
  ASSERT_EQ(sessions_of_client(store, "svc", now, &listed), StoreStatus::ok);
  EXPECT_TRUE(listed.empty());  // nothing refused left a session behind
}

TEST_F(ClientCredentials, RegisteredClientsMayNotUseTheGrant) {
  std::string secret;
  const std::string confidential = register_client(R"({"redirect_uris":["https://client.example/cb"]})", &secret);
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(refusal(grant({}, confidential, secret), confidential), "400 unauthorized_client");
  EXPECT_EQ(refusal(grant({}, confidential, "not-its-secret")), "401 invalid_client");
  const std::string pub = public_client();
  EXPECT_EQ(refusal(grant({{"client_id", pub}}, "")), "400 unauthorized_client");
}

TEST_F(ClientCredentials, ADisabledServiceGetsNoToken) {
  store.now = now;
  ASSERT_EQ(store.put(client_disabled_key("svc"), "1", now + 3600), StoreStatus::ok);
  EXPECT_EQ(refusal(grant(), "svc"), "400 unauthorized_client");
}

TEST_F(ClientCredentials, PrivateKeyJwtAssertionsAreCheckedAndGoodForOneRequest) {
  const std::string jwt = assertion("jti-1");
  Response r = call(MCPA_EP_TOKEN, by_assertion(jwt));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "scope"), "mcp:read");
  auto s = session(claims_of(json_string(r.body, "access_token"))->sid);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->sub, "client:signer");
  EXPECT_EQ(s->name, "signer");  // no name=: the id
  EXPECT_EQ(refusal(by_assertion(jwt), "signer"), "401 invalid_client");   // replayed

  // aud may be the issuer; client_id may repeat the sub
  EXPECT_EQ(call(MCPA_EP_TOKEN, by_assertion(assertion("jti-2", 120, cf.issuer), {{"client_id", "signer"}})).status,
            200);
  EXPECT_EQ(refusal(by_assertion(assertion("jti-3", 120, "https://elsewhere.example/token"))), "401 invalid_client");
  EXPECT_EQ(refusal(by_assertion(assertion("jti-4", -1))), "401 invalid_client");    // expired
  EXPECT_EQ(refusal(by_assertion(assertion("jti-5", 3600))), "401 invalid_client");  // lives too long
  EXPECT_EQ(refusal(by_assertion(assertion("jti-6", 120, "", "svc"))), "401 invalid_client");  // iss is not sub
  EXPECT_EQ(refusal(by_assertion(assertion("jti-7", 120, "", "svc", "svc"))), "401 invalid_client");  // no keys
  EXPECT_EQ(refusal(by_assertion(assertion("jti-8", 120, "", "nobody", "nobody"))), "401 invalid_client");
  EXPECT_EQ(refusal(by_assertion(assertion("jti-9"), {{"client_id", "svc"}})), "401 invalid_client");
  EXPECT_EQ(refusal(by_assertion(assertion("jti-10"), {{"scope", "mcp:tools"}})), "400 invalid_scope");
  std::string tampered = assertion("jti-11");
  char& c = tampered[tampered.size() - 20];  // inside the signature, where every bit counts
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(refusal(by_assertion(tampered)), "401 invalid_client");
}

TEST_F(ClientCredentials, TheMetadataAdvertisesTheGrantOnlyWhenServicesAreConfigured) {
  Response r = call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET"));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("grant_types_supported":["authorization_code","refresh_token","client_credentials"])"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("private_key_jwt")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("token_endpoint_auth_signing_alg_values_supported":["RS256")"), std::string::npos);

  cf.service_client_lines = "svc\tsecret_file=" + secret_file + "\tscope=mcp:read\n";
  ASSERT_EQ(cf.load(), "");
  r = call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET"));
  EXPECT_NE(r.body.find("client_credentials"), std::string::npos);
  EXPECT_EQ(r.body.find("private_key_jwt"), std::string::npos) << r.body;  // a secret only
  EXPECT_EQ(r.body.find("token_endpoint_auth_signing_alg_values_supported"), std::string::npos);

  cf.service_client_lines.clear();
  ASSERT_EQ(cf.load(), "");
  r = call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET"));
  EXPECT_EQ(r.body.find("client_credentials"), std::string::npos) << r.body;
  // and the grant is unknown
  const std::string pub = public_client();
  EXPECT_EQ(json_string(call(MCPA_EP_TOKEN, grant({{"client_id", pub}}, "")).body, "error"), "unsupported_grant_type");
}

TEST_F(ClientCredentials, LoadRefusesWhatCannotWork) {
  const std::string good = "svc\tsecret_file=" + secret_file + "\tscope=mcp:read\n";
  cf.service_client_lines = good + good;
  EXPECT_NE(cf.load().find("is repeated"), std::string::npos);
  cf.service_client_lines = "svc\tsecret_file=" + secret_file + "\tscope=mcp:admin\n";
  EXPECT_NE(cf.load().find("not among mcp_auth_scopes"), std::string::npos);
  cf.service_client_lines = "svc\tsecret_file=" + write_file("short-secret", "too short\n") + "\tscope=mcp:read\n";
  EXPECT_NE(cf.load().find("at least 32 characters"), std::string::npos);
  cf.service_client_lines = "svc\tjwks_file=" + write_file("bad-jwks", "{}") + "\tscope=mcp:read\n";
  EXPECT_NE(cf.load().find("jwks_file"), std::string::npos);
  cf.service_client_lines = "svc\tsecret_file=/nonexistent/secret\tscope=mcp:read\n";
  EXPECT_NE(cf.load().find("cannot open"), std::string::npos);
  // a scope the claim rules keep for some users: a client has no claims
  cf.service_client_lines = good;
  cf.claim_rules = "scope\tmcp:read\tgroups\teditors\n";
  EXPECT_NE(cf.load().find("needs claims"), std::string::npos);
  cf.claim_rules.clear();
  std::string many;
  for (size_t i = 0; i <= kMaxServiceClients; ++i)
    many += "svc" + std::to_string(i) + "\tsecret_file=" + secret_file + "\tscope=mcp:read\n";
  cf.service_client_lines = many;
  EXPECT_NE(cf.load().find("at most 64"), std::string::npos);
}

TEST_F(ClientCredentials, KeysFromALocationAreFetchedOnceCachedAndFetchedAgainForANewKey) {
  cf.service_client_lines += "rotating\tjwks_location=/_mcp_auth/client/rotating\tscope=mcp:read\n";
  ASSERT_EQ(cf.load(), "");
  const auto signed_by = [&](const std::string& jti, const std::string& kid) {
    return FakeIdp::get().sign(R"({"iss":"rotating","sub":"rotating","aud":")" + cf.url(cf.token_path) +
                                   R"(","jti":")" + jti + R"(","iat":)" + std::to_string(now) + R"(,"exp":)" +
                                   std::to_string(now + 120) + "}",
                               kid);
  };
  int fetches = 0;
  // the request, and again with the keys when it asks for them (as the glue does)
  const auto run = [&](const Request& r, int status, const std::string& jwks) {
    Response resp = call(MCPA_EP_TOKEN, r);
    if (resp.fetch.target != MCPA_FETCH_ISSUER_JWKS) return resp;
    ++fetches;
    EXPECT_EQ(resp.fetch.path, "/_mcp_auth/client/rotating");
    store.now = now;
    Request again = r;
    again.now = now;
    return over_store([&](Store& st) {
      return resume_endpoint(MCPA_EP_TOKEN, cf, st, again, resp.fetch.continuation, status, jwks);
    });
  };
  // the location cannot answer: 503, retryable
  Response r = run(by_assertion(signed_by("r0", "idp-1")), 502, "");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(json_string(r.body, "error"), "temporarily_unavailable");
  now += 31;
  r = run(by_assertion(signed_by("r1", "idp-1")), 200, FakeIdp::get().jwks);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 2);
  EXPECT_EQ(session(claims_of(json_string(r.body, "access_token"))->sid)->sub, "client:rotating");
  r = run(by_assertion(signed_by("r2", "idp-1")), 200, FakeIdp::get().jwks);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 2);  // cached
  // a key the cached set lacks, so soon after a fetch: refused, not fetched
  EXPECT_EQ(refusal(by_assertion(signed_by("r3", "idp-2"))), "401 invalid_client");
  EXPECT_EQ(fetches, 2);
  // later, the client rotated its key: fetched again
  now += 31;
  r = run(by_assertion(signed_by("r4", "idp-2")), 200, FakeIdp::get().jwks_with_kid("idp-2"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fetches, 3);
  // and a forged assertion with the new kid is still checked
  std::string tampered = signed_by("r5", "idp-2");
  char& c = tampered[tampered.size() - 20];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(refusal(by_assertion(tampered)), "401 invalid_client");
  // a client with keys from a location alone still makes the metadata say private_key_jwt
  cf.service_client_lines = "rotating\tjwks_location=/_mcp_auth/client/rotating\tscope=mcp:read\n";
  ASSERT_EQ(cf.load(), "");
  EXPECT_NE(call(MCPA_EP_AUTHORIZATION_SERVER_METADATA, request("GET")).body.find("private_key_jwt"),
            std::string::npos);
}

TEST(ServiceSessionRecord, KnowsItsSubjectIsAClient) {
  Session s;
  s.sid = "sid-1";
  s.sub = "client:svc";
  s.client_id = "svc";
  s.subject_type = "client";
  s.expires = 100;
  const std::string raw = encode_session(s);
  EXPECT_NE(raw.find(R"("subject_type":"client")"), std::string::npos) << raw;
  EXPECT_EQ(decode_session(raw)->subject_type, "client");
  s.subject_type.clear();
  EXPECT_EQ(encode_session(s).find("subject_type"), std::string::npos);  // a user's record is as it was
  Session reused;
  reused.subject_type = "client";
  ASSERT_TRUE(decode_session_into(encode_session(s), &reused));
  EXPECT_EQ(reused.subject_type, "");
}

// --- the guard ---------------------------------------------------------------

class ServiceGuard : public ClientCredentials {
 protected:
  void SetUp() override {
    ClientCredentials::SetUp();
    cf.claim_rules = "tool\tsave_snippet\tgroups\teditors\n";
    ASSERT_EQ(cf.load(), "");
    gs.tool_scopes = "get_snippet mcp:read\nhello mcp:tools\n";
    gs.identity_key_file = write_file("identity", "0123456789abcdef0123456789abcdef");
    ASSERT_EQ(gs.load(), "");
  }

  std::string bearer(const std::string& scope) {
    Response r = call(MCPA_EP_TOKEN, grant({{"scope", scope}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return "Bearer " + json_string(r.body, "access_token");
  }

  GuardOutcome call_tool(const std::string& auth, const std::string& tool) {
    body = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":")" + tool + R"(","arguments":{}}})";
    GuardInput in;
    in.method = "POST";
    in.authorization = auth;
    in.body = body;
    in.body_read = true;
    in.now = now;
    store.now = now;
    return guard_check(cf, gs, cache, store, in);
  }

  GuardSettings gs;
  IdentityCache cache;
  std::string body;
};

TEST_F(ServiceGuard, TheGuardAdmitsTheServiceAndTheAssertionSaysItIsAClient) {
  const std::string auth = bearer("mcp:read");
  GuardOutcome ok = call_tool(auth, "get_snippet");
  ASSERT_EQ(ok.verdict, GuardOutcome::allow) << ok.response.body;
  EXPECT_EQ(ok.subject, "client:svc");
  EXPECT_EQ(ok.client_id, "svc");
  std::string jwt(ok.identity);
  auto payload = b64url_decode(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1));
  ASSERT_TRUE(payload);
  EXPECT_NE(payload->find(R"("sub":"client:svc")"), std::string::npos) << *payload;
  EXPECT_NE(payload->find(R"("subject_type":"client")"), std::string::npos) << *payload;

  // scopes apply unchanged: a tool that needs what the token lacks
  GuardOutcome up = call_tool(auth, "hello");
  ASSERT_EQ(up.verdict, GuardOutcome::deny);
  EXPECT_EQ(up.response.status, 403);
  EXPECT_EQ(up.reason, metrics::GuardReason::insufficient_scope);

  // claim rules refuse it: a client has no claims
  GuardOutcome claimed = call_tool(bearer("mcp:tools mcp:read"), "save_snippet");
  ASSERT_EQ(claimed.verdict, GuardOutcome::deny);
  EXPECT_EQ(claimed.response.status, 403);
  EXPECT_EQ(claimed.reason, metrics::GuardReason::claim_required);

  // the token lives as long as its session: then the guard refuses it
  now += cf.access_token_ttl;
  GuardOutcome late = call_tool(auth, "get_snippet");
  ASSERT_EQ(late.verdict, GuardOutcome::deny);
  EXPECT_EQ(late.response.status, 401);
}

TEST_F(ServiceGuard, AUsersAssertionHasNoSubjectType) {
  Session s;
  s.sid = "user-sid";
  s.sub = "user-42";
  s.client_id = "client-1";
  s.scope = "mcp:read";
  s.created = now;
  s.expires = now + 3600;
  store.now = now;
  ASSERT_EQ(store.put("session:" + s.sid, encode_session(s), s.expires), StoreStatus::ok);
  AccessClaims a;
  a.sid = s.sid;
  a.client_id = s.client_id;
  a.scope = s.scope;
  a.exp = now + 600;
  GuardOutcome ok = call_tool("Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a)), "get_snippet");
  ASSERT_EQ(ok.verdict, GuardOutcome::allow);
  std::string jwt(ok.identity);
  auto payload = b64url_decode(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1));
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->find("subject_type"), std::string::npos) << *payload;
}

}  // namespace
}  // namespace mcpauth_test
