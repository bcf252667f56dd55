// Token exchange for backends at /token (token_exchange.cpp): the policy
// lines, the provider requests of each method, and the whole grant over the
// store -- the cache, the one-at-a-time lock and the waits, refusals, the
// renewal of the user's provider token first, and the session's end.
#include <gtest/gtest.h>

#include "exchange_policy.hpp"
#include "identity_assertion.hpp"
#include "provider.hpp"
#include "provider_renewal.hpp"
#include "session_index.hpp"
#include "test_endpoint_fixture.hpp"
#include "token_exchange.hpp"

namespace mcpauth_test {
namespace {

const std::string kBackendSecret(40, 's');
const std::string kGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
const std::string kJwtType = "urn:ietf:params:oauth:token-type:jwt";

TEST(ExchangePolicy, ParsesAudiencesAndClients) {
  std::string err;
  auto a = parse_exchange_audience("api\tmethod=token_exchange\tscope=read write", &err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ(a->scopes, (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(a->provider_audience, "api");  // the name, unless told otherwise
  a = parse_exchange_audience("graph\tmethod=on_behalf_of\tscope=https://graph.microsoft.com/User.Read", &err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ(a->method, ExchangeAudience::Method::on_behalf_of);

  auto c = parse_exchange_client("backend\tsecret_file=/s\taudience=api\tscope=read\taudience=graph", &err);
  ASSERT_TRUE(c) << err;
  ASSERT_EQ(c->grants.size(), 2u);
  EXPECT_EQ(c->grants[0].scopes, std::vector<std::string>{"read"});
  EXPECT_TRUE(c->grants[1].scopes.empty());
  EXPECT_EQ(c->grant_for("graph"), &c->grants[1]);
  EXPECT_EQ(c->grant_for("gra"), nullptr);
}

TEST(ExchangePolicy, RefusesWhatCannotWork) {
  std::string err;
  for (const char* line : {"api", "api\tmethod=magic", "graph\tmethod=on_behalf_of",
                           "multi\tmethod=refresh_token", "api\tmethod=token_exchange\tscope=a\"b",
                           "api\tmethod=on_behalf_of\tscope=x\tprovider_audience=y", "method=token_exchange",
                           "api\tmethod=token_exchange\tmethod=on_behalf_of", "api\tmethod=token_exchange\tcolour=red"})
    EXPECT_FALSE(parse_exchange_audience(line, &err)) << line;
  for (const char* line : {"b\taudience=api", "b\tsecret_file=/s\tjwks_file=/j\taudience=api", "b\tsecret_file=/s",
                           "b\tsecret_file=/s\tscope=read\taudience=api", "b\tsecret_file=/s\taudience=api\taudience=api",
                           "b\tsecret_file=/s\taudience=api\tscope=x\tscope=y"})
    EXPECT_FALSE(parse_exchange_client(line, &err)) << line;
  EXPECT_NE(err.find("mcp_auth_exchange_client"), std::string::npos);
}

class TokenExchange : public Gateway {
 protected:
  std::optional<IdentityMinter> minter;

  void SetUp() override {
    Gateway::SetUp();
    cf.exchange_audience_lines =
        "api\tmethod=token_exchange\tscope=read write\n"
        "graph\tmethod=on_behalf_of\tscope=https://graph.microsoft.com/User.Read\n"
        "multi\tmethod=refresh_token\tscope=api://other/.default\n"
        "closed\tmethod=token_exchange\n";
    cf.exchange_client_lines = "backend\tsecret_file=" + write_file("backend-secret", kBackendSecret + "\n") +
                               "\taudience=api\tscope=read\taudience=graph\taudience=multi\n";
    ASSERT_EQ(cf.load(), "");
    std::string err;
    minter = IdentityMinter::create(std::string(40, 'i'), "ngx_mcp_auth", "mcp-tool-server", &err);
    ASSERT_TRUE(minter) << err;
    cf.identity = &*minter;
    put_session("sid-1", "user-42", now + 3600);
  }

  void put_session(const std::string& sid, const std::string& sub, int64_t provider_expires) {
    Session s;
    s.sid = sid;
    s.sub = sub;
    s.client_id = "client-1";
    s.scope = "mcp:tools";
    s.provider_access_token = "idp-access-1";
    s.provider_refresh_token = "idp-refresh-1";
    s.provider_expires = provider_expires;
    s.created = now;
    s.expires = now + 86400;
    store.now = now;
    ASSERT_EQ(store.put("session:" + sid, encode_session(s), s.expires), StoreStatus::ok);
  }

  Session session(const std::string& sid = "sid-1") {
    std::string raw;
    store.now = now;
    EXPECT_EQ(store.get("session:" + sid, &raw), StoreStatus::ok);
    return decode_session(raw).value_or(Session());
  }

  std::string assertion(const std::string& sid = "sid-1", const std::string& sub = "user-42",
                        int64_t lifetime = 300) {
    Identity who{sub, "client-1", "mcp:tools", "", seal_session_ref(*cf.keys, sid), ""};
    return minter->mint(who, now, lifetime);
  }

  Request ask(const std::string& audience, std::vector<std::pair<std::string, std::string>> extra = {},
              const std::string& subject = "", const std::string& secret = kBackendSecret) {
    std::vector<std::pair<std::string, std::string>> f = {{"grant_type", kGrant},
                                                          {"subject_token", subject.empty() ? assertion() : subject},
                                                          {"subject_token_type", kJwtType},
                                                          {"audience", audience}};
    for (auto& e : extra) f.push_back(e);
    Request r = request("POST", "", form(f), "application/x-www-form-urlencoded");
    r.authorization = "Basic " + b64_encode("backend:" + secret);
    r.request_id = "request-1";
    return r;
  }

  Response answer(const Request& r, const Response& asked, int status, const std::string& body) {
    store.now = now;
    Request again = r;
    again.now = now;
    return over_store([&](Store& st) {
      return resume_endpoint(MCPA_EP_TOKEN, cf, st, again, asked.fetch.continuation, status, body);
    });
  }

  static std::string tokens(const std::string& access, int64_t expires_in, const std::string& refresh = "") {
    return R"({"access_token":")" + access + R"(","token_type":"Bearer","expires_in":)" +
           std::to_string(expires_in) + (refresh.empty() ? "" : R"(,"refresh_token":")" + refresh + "\"") + "}";
  }

  // sid-1 exchanged for "api": the key of its cached token
  std::string exchanged_and_cached() {
    Request r = ask("api");
    Response asked = call(MCPA_EP_TOKEN, r);
    EXPECT_EQ(answer(r, asked, 200, tokens("down-1", 600)).status, 200);
    const std::string cached = exchange_cache_key("sid-1", exchange_audience_key("api"));
    std::string raw;
    store.now = now;
    EXPECT_EQ(store.get(cached, &raw), StoreStatus::ok);
    return cached;
  }

  static const Event* exchange_event(const Response& r) {
    for (const auto& e : r.events)
      if (e.kind == MCPA_EV_EXCHANGE) return &e;
    return nullptr;
  }
};

TEST_F(TokenExchange, AsksTheProviderOnceThenAnswersFromTheCacheUntilShortlyBeforeExpiry) {
  Request r = ask("api");
  Response asked = call(MCPA_EP_TOKEN, r);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << asked.status << asked.body;
  auto sent = Params::parse(asked.fetch.body);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->get("grant_type"), kGrant);
  EXPECT_EQ(sent->get("subject_token"), "idp-access-1");  // the user's provider token, not the assertion
  EXPECT_EQ(sent->get("subject_token_type"), "urn:ietf:params:oauth:token-type:access_token");
  EXPECT_EQ(sent->get("audience"), "api");
  EXPECT_EQ(sent->get("scope"), "read");                   // the backend's allowance
  EXPECT_EQ(asked.fetch.authorization.rfind("Basic ", 0), 0u);  // as the gateway's own client

  Response ok = answer(r, asked, 200, tokens("down-1", 600));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json_string(ok.body, "access_token"), "down-1");
  EXPECT_EQ(json_string(ok.body, "issued_token_type"), "urn:ietf:params:oauth:token-type:access_token");
  EXPECT_EQ(json_string(ok.body, "token_type"), "Bearer");
  EXPECT_EQ(json_string(ok.body, "scope"), "read");
  EXPECT_EQ(json_number(ok.body, "expires_in"), 600);
  const Event* e = exchange_event(ok);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->outcome, "issued");
  EXPECT_EQ(e->client_id, "backend");
  EXPECT_EQ(e->subject, "user-42");
  EXPECT_EQ(e->audience, "api");
  EXPECT_EQ(e->scope, "read");
  EXPECT_EQ(e->grant_type, "token_exchange");
  EXPECT_EQ(session().exchanges, exchange_audience_key("api"));

  now += 100;
  Response cached = call(MCPA_EP_TOKEN, ask("api"));
  ASSERT_EQ(cached.status, 200) << cached.body;
  EXPECT_EQ(cached.fetch.target, MCPA_FETCH_NONE);
  EXPECT_EQ(json_string(cached.body, "access_token"), "down-1");
  EXPECT_EQ(json_number(cached.body, "expires_in"), 500);
  EXPECT_EQ(exchange_event(cached)->outcome, "cached");

  now += 441;  // 59 s before it expires: replaced (a quarter of its life, at most 60 s)
  EXPECT_EQ(call(MCPA_EP_TOKEN, ask("api")).fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
}

TEST_F(TokenExchange, RequestsThatArriveMeanwhileWaitForTheOneAtTheProvider) {
  Request first = ask("api");
  Response asked = call(MCPA_EP_TOKEN, first);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  Request second = ask("api");
  second.request_id = "request-2";
  Response waiting = call(MCPA_EP_TOKEN, second);
  EXPECT_GT(waiting.wait_ms, 0);
  EXPECT_EQ(waiting.fetch.target, MCPA_FETCH_NONE);
  EXPECT_TRUE(waiting.events.empty());  // nothing sent, nothing counted yet

  ASSERT_EQ(answer(first, asked, 200, tokens("down-1", 600)).status, 200);
  second.waits = 1;
  Response taken = call(MCPA_EP_TOKEN, second);
  ASSERT_EQ(taken.status, 200) << taken.body;
  EXPECT_EQ(json_string(taken.body, "access_token"), "down-1");

  // one that waits too long gives up with a 503 (the lock outlives it)
  ASSERT_EQ(store.put_new("exchanging:sid-1:" + exchange_audience_key("graph"), "1", now + 20), StoreStatus::ok);
  Request late = ask("graph");
  late.waits = 120;
  Response gave_up = call(MCPA_EP_TOKEN, late);
  EXPECT_EQ(gave_up.status, 503);
  EXPECT_EQ(header(gave_up, "Retry-After"), "1");
  EXPECT_EQ(exchange_event(gave_up)->outcome, "temporarily_unavailable");
}

// The holder before a request may cache its answer and let go between that
// request's look at the cache and its lock: the request looks again once it
// holds the lock, and the provider is not asked twice.
TEST_F(TokenExchange, ARequestThatGetsTheLockLooksAtTheCacheAgain) {
  Request first = ask("api");
  Response asked = call(MCPA_EP_TOKEN, first);
  ASSERT_EQ(answer(first, asked, 200, tokens("down-1", 600)).status, 200);

  // a store whose first look at a cached exchange is from before it was written
  class StaleFirstLook final : public Store {
   public:
    explicit StaleFirstLook(Store& inner) : inner_(inner) {}
    StoreStatus get(std::string_view key, std::string* value) override {
      if (stale_ && key.rfind("exchange:", 0) == 0) {
        stale_ = false;
        return StoreStatus::not_found;
      }
      return inner_.get(key, value);
    }
    StoreStatus take(std::string_view key, std::string* value) override { return inner_.take(key, value); }
    StoreStatus put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
      return inner_.put(key, value, expires, cls);
    }
    StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
      return inner_.put_new(key, value, expires, cls);
    }
    StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                           int64_t expires) override {
      return inner_.replace_if(key, expected, value, expires);
    }
    StoreStatus del(std::string_view key) override { return inner_.del(key); }

   private:
    Store& inner_;
    bool stale_ = true;
  };
  StaleFirstLook stale(store);
  store.now = now;
  Request second = ask("api");
  second.request_id = "request-2";
  second.now = now;
  Response r = handle_endpoint(MCPA_EP_TOKEN, cf, stale, second);
  EXPECT_EQ(r.fetch.target, MCPA_FETCH_NONE);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "access_token"), "down-1");
  // and the lock it took is given back
  std::string raw;
  EXPECT_EQ(store.get("exchanging:sid-1:" + exchange_audience_key("api"), &raw), StoreStatus::not_found);
}

TEST_F(TokenExchange, AProviderRefusalIsRepeatedBrieflyAndAnOutageIsNot) {
  Request r = ask("api");
  Response asked = call(MCPA_EP_TOKEN, r);
  Response refused = answer(r, asked, 400, R"({"error":"access_denied","error_description":"no"})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(json_string(refused.body, "error"), "invalid_target");
  EXPECT_NE(json_string(refused.body, "error_description").find("access_denied"), std::string::npos);
  EXPECT_EQ(exchange_event(refused)->outcome, "provider_refused");
  Response again = call(MCPA_EP_TOKEN, ask("api"));
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(again.fetch.target, MCPA_FETCH_NONE);
  now += 11;
  asked = call(MCPA_EP_TOKEN, r);
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);

  Response scope = answer(r, asked, 400, R"({"error":"invalid_scope"})");
  EXPECT_EQ(json_string(scope.body, "error"), "invalid_scope");
  now += 11;

  asked = call(MCPA_EP_TOKEN, r);
  Response down = answer(r, asked, 0, "");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(exchange_event(down)->outcome, "provider_unavailable");
  EXPECT_EQ(call(MCPA_EP_TOKEN, r).fetch.target, MCPA_FETCH_PROVIDER_TOKEN);  // the lock went with it
}

TEST_F(TokenExchange, OnBehalfOfAndRefreshTokenGrantsAskTheWayTheirProvidersWant) {
  Response obo = call(MCPA_EP_TOKEN, ask("graph"));
  auto sent = Params::parse(obo.fetch.body);
  ASSERT_TRUE(sent) << obo.body;
  EXPECT_EQ(sent->get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
  EXPECT_EQ(sent->get("assertion"), "idp-access-1");
  EXPECT_EQ(sent->get("requested_token_use"), "on_behalf_of");
  EXPECT_EQ(sent->get("scope"), "https://graph.microsoft.com/User.Read");
  EXPECT_FALSE(sent->has("audience"));

  Request r = ask("multi");
  Response asked = call(MCPA_EP_TOKEN, r);
  sent = Params::parse(asked.fetch.body);
  ASSERT_TRUE(sent) << asked.body;
  EXPECT_EQ(sent->get("grant_type"), "refresh_token");
  EXPECT_EQ(sent->get("refresh_token"), "idp-refresh-1");
  EXPECT_EQ(sent->get("scope"), "api://other/.default");
  Response ok = answer(r, asked, 200, tokens("other-1", 900, "idp-refresh-2"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(exchange_event(ok)->grant_type, "refresh_token");
  // the provider rotated the user's refresh token: the session keeps the new one
  EXPECT_EQ(session().provider_refresh_token, "idp-refresh-2");
}

TEST_F(TokenExchange, TheUsersProviderTokenIsRenewedFirstWhenItIsAboutToExpire) {
  put_session("sid-2", "user-42", now + 10);
  Request r = ask("api", {}, assertion("sid-2"));
  Response renew = call(MCPA_EP_TOKEN, r);
  auto sent = Params::parse(renew.fetch.body);
  ASSERT_TRUE(sent) << renew.body;
  EXPECT_EQ(sent->get("grant_type"), "refresh_token");
  Response asked = answer(r, renew, 200, tokens("idp-access-2", 3600, "idp-refresh-3"));
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << asked.status << asked.body;
  sent = Params::parse(asked.fetch.body);
  EXPECT_EQ(sent->get("subject_token"), "idp-access-2");
  Response ok = answer(r, asked, 200, tokens("down-2", 600));
  EXPECT_EQ(ok.status, 200) << ok.body;

  // a renewal the provider cannot answer, with the token already expired: 503
  put_session("sid-3", "user-42", now - 1);
  Request late = ask("api", {}, assertion("sid-3"));
  renew = call(MCPA_EP_TOKEN, late);
  Response down = answer(late, renew, 0, "");
  EXPECT_EQ(down.status, 503) << down.body;
}

TEST_F(TokenExchange, AnEndedSessionIsRefusedAndTakesItsCachedTokensAlong) {
  const std::string cached = exchanged_and_cached();
  std::string raw;
  ASSERT_EQ(end_session(store, "sid-1", now), StoreStatus::ok);
  EXPECT_EQ(store.get(cached, &raw), StoreStatus::not_found);
  Response refused = call(MCPA_EP_TOKEN, ask("api"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(json_string(refused.body, "error"), "invalid_grant");

  // ended while the provider was asked: refused, nothing cached, lock gone
  put_session("sid-4", "user-42", now + 3600);
  Request r4 = ask("api", {}, assertion("sid-4"));
  Response asked = call(MCPA_EP_TOKEN, r4);
  ASSERT_EQ(store.del("session:sid-4"), StoreStatus::ok);
  Response late = answer(r4, asked, 200, tokens("down-4", 600));
  EXPECT_EQ(json_string(late.body, "error"), "invalid_grant");
  EXPECT_EQ(store.get(exchange_cache_key("sid-4", exchange_audience_key("api")), &raw), StoreStatus::not_found);
  EXPECT_EQ(store.get("exchanging:sid-4:" + exchange_audience_key("api"), &raw), StoreStatus::not_found);
}

TEST_F(TokenExchange, ASignInTheProviderEndedTakesItsCachedTokensAlong) {
  const std::string cached = exchanged_and_cached();
  std::string raw;
  // the guard's or a refresh's renewal of the provider token: invalid_grant
  EXPECT_EQ(apply_provider_renewal(cf, store, "sid-1", 400, R"({"error":"invalid_grant"})", now),
            RenewalOutcome::ended);
  EXPECT_EQ(store.get("session:sid-1", &raw), StoreStatus::not_found);
  EXPECT_EQ(store.get(cached, &raw), StoreStatus::not_found);
}

TEST_F(TokenExchange, RefusesWhatTheBackendMayNotAskForOrCannotProve) {
  const auto error_of = [&](const Request& r) {
    Response resp = call(MCPA_EP_TOKEN, r);
    EXPECT_EQ(resp.fetch.target, MCPA_FETCH_NONE);
    const Event* e = exchange_event(resp);
    EXPECT_TRUE(e && e->outcome == json_string(resp.body, "error")) << resp.body;
    return std::to_string(resp.status) + " " + json_string(resp.body, "error");
  };
  EXPECT_EQ(error_of(ask("api", {}, "", "wrong-secret-wrong-secret-wrong-secret!")), "401 invalid_client");
  Request nobody = ask("api");
  nobody.authorization = "Basic " + b64_encode("someone:" + kBackendSecret);
  EXPECT_EQ(error_of(nobody), "401 invalid_client");
  EXPECT_EQ(error_of(ask("closed")), "400 invalid_target");   // configured, not for this backend
  EXPECT_EQ(error_of(ask("nowhere")), "400 invalid_target");
  EXPECT_EQ(error_of(ask("api", {{"scope", "write"}})), "400 invalid_scope");
  EXPECT_EQ(error_of(ask("api", {{"resource", "https://api.example"}})), "400 invalid_target");
  EXPECT_EQ(error_of(ask("api", {{"actor_token", "x"}})), "400 invalid_request");
  EXPECT_EQ(error_of(ask("api", {{"requested_token_type", "urn:ietf:params:oauth:token-type:id_token"}})),
            "400 invalid_request");
  EXPECT_EQ(error_of(ask("api", {}, assertion("sid-1", "user-42", -1))), "400 invalid_grant");   // expired
  EXPECT_EQ(error_of(ask("api", {}, assertion("no-such-session"))), "400 invalid_grant");
  EXPECT_EQ(error_of(ask("api", {}, assertion("sid-1", "someone-else"))), "400 invalid_grant");
  Identity raw_sid{"user-42", "client-1", "", "", "sid-1", ""};  // a session id, not the sealed reference
  EXPECT_EQ(error_of(ask("api", {}, minter->mint(raw_sid, now, 300))), "400 invalid_grant");
  std::string err;
  auto other = IdentityMinter::create(std::string(40, 'o'), "ngx_mcp_auth", "mcp-tool-server", &err);
  Identity who{"user-42", "client-1", "", "", seal_session_ref(*cf.keys, "sid-1"), ""};
  EXPECT_EQ(error_of(ask("api", {}, other->mint(who, now, 300))), "400 invalid_grant");
}

TEST(IdentityAssertionRead, ReadsItsOwnAssertionsBackAndNothingElse) {
  std::string err;
  auto hs = IdentityMinter::create(std::string(40, 'h'), "iss", "aud", &err);
  ASSERT_TRUE(hs) << err;
  const std::string token = hs->mint({"u", "c", "s", "", "ref", ""}, 1000, 300);
  auto read = hs->read(token, 1100, &err);
  ASSERT_TRUE(read) << err;
  EXPECT_EQ(read->sub, "u");
  EXPECT_EQ(read->client_id, "c");
  EXPECT_EQ(read->session_ref, "ref");
  EXPECT_EQ(read->exp, 1300);
  EXPECT_FALSE(hs->read(token, 1300, &err));
  EXPECT_NE(err.find("expired"), std::string::npos);
  auto other_aud = IdentityMinter::create(std::string(40, 'h'), "iss", "other", &err);
  EXPECT_FALSE(other_aud->read(token, 1100, &err));

  // ES256: the public half verifies; an HS256 token "signed" with that
  // public key (algorithm confusion) does not pass
  EVP_PKEY* key = EVP_EC_gen("P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  len = BIO_get_mem_data(pub, &data);
  const std::string public_pem(data, static_cast<size_t>(len));
  BIO_free(pub);
  EVP_PKEY_free(key);
  auto es = IdentityMinter::create(pem, "iss", "aud", &err);
  ASSERT_TRUE(es) << err;
  ASSERT_TRUE(es->read(es->mint({"u", "c", "s", "", "ref", ""}, 1000, 300), 1100, &err)) << err;
  auto confused = IdentityMinter::create(public_pem + std::string(8, ' '), "iss", "aud", &err);
  if (confused) {  // a PEM public key is refused as a key; sign the HS256 token by hand
    ADD_FAILURE() << "a public key was accepted as an identity key";
  }
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  jwt_add_grants_json(jwt, R"({"iss":"iss","aud":"aud","sub":"u","client_id":"c","sid":"ref","exp":2000})");
  jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(public_pem.data()),
              static_cast<int>(public_pem.size()));
  char* forged = jwt_encode_str(jwt);
  jwt_free(jwt);
  ASSERT_NE(forged, nullptr);
  EXPECT_FALSE(es->read(forged, 1100, &err));
  free(forged);
}

}  // namespace
}  // namespace mcpauth_test
