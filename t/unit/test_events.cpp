// What each endpoint says it did (Response::events): the audit log's lines
// and the metrics' counters come from these, over both store kinds.
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

// The one event of a kind a response carries (failing when there are more).
const Event* only(const Response& r, mcpa_event_e kind) {
  const Event* found = nullptr;
  for (const auto& e : r.events)
    if (e.kind == kind) {
      EXPECT_EQ(found, nullptr) << "two events of kind " << kind;
      found = &e;
    }
  return found;
}

// Every event names its counters.
void expect_counted(const Response& r) {
  for (const auto& e : r.events) {
    if (e.kind != MCPA_EV_NONE) {
      EXPECT_GE(e.metric[0], 0) << e.name;
    }
  }
}

class Events : public Gateway {};

TEST_F(Events, AWholeLoginIsRegistrationConsentStartAndCompletion) {
  Response reg = call(MCPA_EP_REGISTER, request("POST", "", R"({"redirect_uris":[")" + kRedirect +
                                                              R"("],"token_endpoint_auth_method":"none"})",
                                                "application/json"));
  ASSERT_EQ(reg.status, 201);
  const Event* e = only(reg, MCPA_EV_REGISTRATION);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "ok");
  const std::string client_id = json_string(reg.body, "client_id");
  EXPECT_EQ(e->client_id, client_id);

  Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id)));
  e = only(a, MCPA_EV_AUTHORIZE);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "ok");
  EXPECT_FALSE(e->audit);  // counted only
  const std::string authz = qget(header(a, "Location"), "authz");
  Response allow = call(MCPA_EP_CONSENT, consent_post(authz, consent_page(authz), "allow"));
  ASSERT_EQ(allow.events.size(), 2u);
  EXPECT_EQ(allow.events[0].kind, MCPA_EV_CONSENT);
  EXPECT_EQ(allow.events[0].outcome, "allowed");
  EXPECT_EQ(allow.events[1].kind, MCPA_EV_LOGIN_STARTED);
  expect_counted(allow);

  const std::string loc = header(allow, "Location");
  Response cb = callback(loc);
  EXPECT_TRUE(cb.events.empty());  // the provider is asked first: not the end yet
  Response done = resume(MCPA_EP_CALLBACK, cb, 200,
                         FakeIdp::get().token_response(FakeIdp::get().id_token(nonce_of(loc), now)));
  if (done.fetch.target == MCPA_FETCH_PROVIDER_JWKS) done = resume(MCPA_EP_CALLBACK, done, 200, FakeIdp::get().jwks);
  e = only(done, MCPA_EV_LOGIN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "completed");
  EXPECT_EQ(e->client_id, client_id);
  EXPECT_FALSE(e->subject.empty());
  EXPECT_EQ(e->session_tag.size(), 16u);
  expect_counted(done);

  // the code's redemption: the same session's tag, and no secret anywhere
  const std::string code = qget(header(done, "Location"), "code");
  Response tokens = redeem(client_id, code);
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  e = only(tokens, MCPA_EV_TOKEN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->grant_type, "authorization_code");
  EXPECT_EQ(e->session_tag, only(done, MCPA_EV_LOGIN)->session_tag);
  for (const Response* r : {&reg, &a, &allow, &done, &tokens})
    for (const auto& ev : r->events)
      for (const std::string* field : {&ev.outcome, &ev.reason, &ev.subject, &ev.client_id, &ev.session_tag}) {
        EXPECT_EQ(field->find(code), std::string::npos);
        EXPECT_EQ(field->find(json_string(tokens.body, "access_token")), std::string::npos);
      }
}

TEST_F(Events, EachWayALoginEndsHasItsOutcome) {
  // the user says no at the consent page
  std::string client_id = public_client();
  Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id)));
  std::string authz = qget(header(a, "Location"), "authz");
  Response deny = call(MCPA_EP_CONSENT, consent_post(authz, consent_page(authz), "deny"));
  const Event* e = only(deny, MCPA_EV_CONSENT);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "denied");
  EXPECT_GE(e->metric[1], 0);  // a login that ended denied, too

  // ... or at the provider
  std::string loc = to_provider(client_id);
  Response r = call(MCPA_EP_CALLBACK, request("GET", "error=access_denied&state=" + qget(loc, "state")));
  EXPECT_EQ(only(r, MCPA_EV_LOGIN)->outcome, "denied");

  // the provider fails, or cannot be reached
  loc = to_provider(client_id);
  r = resume(MCPA_EP_CALLBACK, callback(loc), 400, R"({"error":"invalid_grant"})");
  EXPECT_EQ(only(r, MCPA_EV_LOGIN)->outcome, "provider_error");
  loc = to_provider(client_id);
  r = resume(MCPA_EP_CALLBACK, callback(loc), 0, "");
  EXPECT_EQ(only(r, MCPA_EV_LOGIN)->outcome, "provider_error");

  // the user took longer than the login may last
  loc = to_provider(client_id);
  now += 601;
  r = callback(loc);
  e = only(r, MCPA_EV_LOGIN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "timed_out");
  EXPECT_EQ(e->client_id, client_id);

  // a state nobody sealed
  r = call(MCPA_EP_CALLBACK, request("GET", "code=c&state=forged"));
  e = only(r, MCPA_EV_LOGIN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "failed");
  EXPECT_EQ(e->client_id, "");
}

TEST_F(Events, ARefusedTokenRequestNamesItsErrorAndGrantType) {
  std::string client_id = public_client();
  Response r = redeem(client_id, "no-such-code");
  const Event* e = only(r, MCPA_EV_TOKEN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "invalid_grant");
  EXPECT_EQ(e->grant_type, "authorization_code");
  EXPECT_EQ(e->client_id, client_id);
  expect_counted(r);

  r = call(MCPA_EP_TOKEN, token_request({{"grant_type", "password"}, {"client_id", client_id}}));
  e = only(r, MCPA_EV_TOKEN);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->grant_type, "other");  // a client's word never becomes a label
  EXPECT_EQ(e->outcome, "unsupported_grant_type");
}

TEST_F(Events, ARefreshTokenUsedTwiceIsReuse) {
  std::string client_id = public_client();
  Response tokens = redeem(client_id, qget(login(client_id), "code"));
  const std::string first = json_string(tokens.body, "refresh_token");
  Response second = refresh(client_id, first);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(only(second, MCPA_EV_TOKEN)->grant_type, "refresh_token");
  now += 60;  // past the grace
  Response third = refresh(client_id, json_string(second.body, "refresh_token"));
  ASSERT_EQ(third.status, 200);
  Response reuse = refresh(client_id, first);
  EXPECT_EQ(reuse.status, 400);
  const Event* e = only(reuse, MCPA_EV_REFRESH_REUSE);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, "revoked");
  EXPECT_EQ(e->client_id, client_id);
  EXPECT_FALSE(e->subject.empty());
  EXPECT_EQ(only(reuse, MCPA_EV_TOKEN)->outcome, "invalid_grant");
  expect_counted(reuse);
}

TEST_F(Events, ARevocationSaysWhetherItEndedASession) {
  std::string client_id = public_client();
  Response tokens = redeem(client_id, qget(login(client_id), "code"));
  Request rq = request("POST", "", form({{"token", json_string(tokens.body, "refresh_token")}, {"client_id", client_id}}),
                       "application/x-www-form-urlencoded");
  Response r = call(MCPA_EP_REVOKE, rq);
  EXPECT_EQ(only(r, MCPA_EV_REVOCATION)->outcome, "revoked");
  r = call(MCPA_EP_REVOKE, rq);  // again: nothing left to end
  EXPECT_EQ(only(r, MCPA_EV_REVOCATION)->outcome, "unknown");
}

}  // namespace
}  // namespace mcpauth_test
