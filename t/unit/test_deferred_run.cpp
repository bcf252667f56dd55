// Requests over a deferred store through DeferredRun, the objects the C
// boundary uses (replay log, session-record cache, sealed values): a run
// that reaches an operation not answered yet returns, nothing is thrown,
// and the work that is not a store operation (the ID token's signature
// check) is done once per request however often the request runs.
#include <algorithm>
#include <fstream>

#include "guard.hpp"
#include "id_token.hpp"
#include "sealed_store.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

class OverDeferredRun : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    through_deferred_run = true;
  }

  // What Redis holds under key, opened as the gateway opens it.
  std::optional<std::string> opened(const std::string& key) {
    SealedStore sealed(redis, *cf.keys);
    std::string v;
    if (sealed.get(key, &v) != StoreStatus::ok) return std::nullopt;
    return v;
  }
};

TEST_F(OverDeferredRun, ALoginStopsOncePerStoreOperationThenAnswers) {
  pendings = 0;
  std::string client_id = public_client();
  ASSERT_FALSE(client_id.empty());
  EXPECT_EQ(pendings, 2);  // put_new newclient:, then the sync that confirms it

  std::string provider = to_provider(client_id);
  std::string nonce = nonce_of(provider);

  pendings = 0;
  Response cb = callback(provider);
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << cb.body;
  EXPECT_EQ(pendings, 1);  // get loginused:

  // The provider's tokens: no JWKS in the store yet, so it is fetched.
  pendings = 0;
  const uint64_t checks = id_token_signature_checks();
  Response need_keys = resume(MCPA_EP_CALLBACK, cb, 200,
                              FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  ASSERT_EQ(need_keys.fetch.target, MCPA_FETCH_PROVIDER_JWKS) << need_keys.body;
  EXPECT_EQ(pendings, 1);  // get jwks:
  EXPECT_EQ(id_token_signature_checks(), checks);

  // The JWKS: put jwks:, put_new loginused:, get client:, get newclient:,
  // put client:, del newclient:, get clientoff:, get and put_new of bysub:,
  // byclient: and clients:, put_new session:, put_new code:, the sync --
  // sixteen runs that stop, then one that answers; the ID token is checked
  // once.
  pendings = 0;
  Response back = resume(MCPA_EP_CALLBACK, need_keys, 200, FakeIdp::get().jwks);
  ASSERT_EQ(back.status, 303) << back.body;
  EXPECT_EQ(pendings, 16);
  EXPECT_EQ(id_token_signature_checks(), checks + 1);
  std::string code = qget(header(back, "Location"), "code");
  ASSERT_FALSE(code.empty());
  EXPECT_TRUE(opened("client:" + client_id));
  EXPECT_FALSE(opened("newclient:" + client_id));

  // get client:, get code:, replace_if code:, get session:, the sync
  pendings = 0;
  Response tok = redeem(client_id, code);
  ASSERT_EQ(tok.status, 200) << tok.body;
  EXPECT_EQ(pendings, 5);
  auto claims = decode_access(cf.keys->open(seal_purpose::access_token, json_string(tok.body, "access_token")).value_or(""));
  ASSERT_TRUE(claims);
  auto session = decode_session(opened("session:" + claims->sid).value_or(""));
  ASSERT_TRUE(session);
  EXPECT_EQ(session->sub, "user-42");

  // A second login finds the JWKS in the store: get jwks:, put_new
  // loginused:, get client:, get clientoff:, get and write bysub: and
  // byclient:, get clients: (listed already), put_new session:, put_new
  // code:, the sync.
  provider = to_provider(client_id);
  nonce = nonce_of(provider);
  cb = callback(provider);
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN) << cb.body;
  pendings = 0;
  Response again = resume(MCPA_EP_CALLBACK, cb, 200,
                          FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  ASSERT_EQ(again.status, 303) << again.body;
  EXPECT_EQ(pendings, 12);
  EXPECT_EQ(id_token_signature_checks(), checks + 2);
}

TEST_F(OverDeferredRun, AnIdTokenThatDoesNotVerifyIsRefusedOnEveryRun) {
  std::string client_id = public_client();
  std::string provider = to_provider(client_id);
  Response cb = callback(provider);
  // signed for another nonce: no run may take it for the login's
  Response need_keys = resume(MCPA_EP_CALLBACK, cb, 200,
                              FakeIdp::get().token_response(FakeIdp::get().id_token("other-nonce", now)));
  ASSERT_EQ(need_keys.fetch.target, MCPA_FETCH_PROVIDER_JWKS);
  Response r = resume(MCPA_EP_CALLBACK, need_keys, 200, FakeIdp::get().jwks);
  EXPECT_NE(r.status, 303);
  EXPECT_NE(return_link(r).find("error=server_error"), std::string::npos) << r.body;
  EXPECT_FALSE(opened("loginused:" + nonce_of(provider)));
}

// The memo is keyed by what was verified: another token (here: for another
// nonce) under the same keys never finds the first one's claims.
TEST(IdTokenOnce, AMemoHitNeedsTheVeryTokenKeysAndExpectations) {
  auto keys = parse_jwks(FakeIdp::get().jwks, nullptr);
  ASSERT_TRUE(keys);
  IdTokenExpectations expect;
  expect.issuer = "https://idp.example";
  expect.client_id = "gateway";
  expect.nonce = "n1";
  expect.now = kT0;
  const std::string good = FakeIdp::get().id_token("n1", kT0);
  const std::string other = FakeIdp::get().id_token("n2", kT0, "user-43");

  ReplayLog log;
  ReplayScope scope(log);
  const uint64_t checks = id_token_signature_checks();
  auto first = verify_id_token_once(good, *keys, expect);
  ASSERT_TRUE(std::holds_alternative<IdTokenClaims>(first)) << std::get<std::string>(first);
  auto second = verify_id_token_once(good, *keys, expect);
  ASSERT_TRUE(std::holds_alternative<IdTokenClaims>(second));
  EXPECT_EQ(std::get<IdTokenClaims>(second).sub, "user-42");
  EXPECT_EQ(std::get<IdTokenClaims>(second).email, "ada@example.com");
  EXPECT_EQ(std::get<IdTokenClaims>(second).exp, std::get<IdTokenClaims>(first).exp);
  EXPECT_EQ(id_token_signature_checks(), checks + 1);

  EXPECT_TRUE(std::holds_alternative<std::string>(verify_id_token_once(other, *keys, expect)));
  IdTokenExpectations later = expect;
  later.now += 1000;  // expired by then
  EXPECT_TRUE(std::holds_alternative<std::string>(verify_id_token_once(good, *keys, later)));
  auto other_keys = parse_jwks(FakeIdp::get().jwks_with_kid("idp-2"), nullptr);
  ASSERT_TRUE(other_keys);
  EXPECT_TRUE(std::holds_alternative<std::string>(verify_id_token_once(good, *other_keys, expect)));
  EXPECT_EQ(id_token_signature_checks(), checks + 3);
  EXPECT_EQ(log.memo.entries.size(), 1u);  // failures are not kept
}

// --- the guard over a deferred store --------------------------------------

class GuardOverDeferredRun : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    const std::string key_file = write_file("identity.key", std::string(64, 'b') + "\n");
    gs.identity_key_file = key_file;
    ASSERT_EQ(gs.load(), "");
    ASSERT_EQ(gs.check_use(), "");
    redis.now = now;
    Session s;
    s.sid = "sid-" + random_token(8);
    s.sub = "alice";
    s.client_id = "c1";
    s.scope = "mcp:tools";
    s.provider_refresh_token = "idp-refresh-1";
    s.provider_expires = now - 1;  // the provider's token needs renewing
    s.expires = now + 3600;
    sid = s.sid;
    SealedStore sealed(redis, *cf.keys);
    ASSERT_EQ(sealed.put("session:" + sid, encode_session(s), s.expires), StoreStatus::ok);
    AccessClaims a;
    a.sid = sid;
    a.client_id = "c1";
    a.exp = now + 600;
    bearer = "Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a));
  }

  // One guard call as the glue makes it: again after each store operation.
  template <class F>
  GuardOutcome over_run(F&& check) {
    std::string wire, value;
    int status = MCPA_OK;
    for (int round = 0; round < 32; ++round) {
      mcpa_replay_t replay{{wire.data(), wire.size()}, status, {value.data(), value.size()}};
      DeferredRun run(cf, replay, now, true);
      EXPECT_TRUE(run.ok());
      GuardOutcome out;
      StoreOp op;
      std::string next;
      const DeferredRun::End end = run.run([&](Store& st) noexcept { out = check(st); }, &op, &next);
      if (end == DeferredRun::End::done) return out;
      EXPECT_EQ(end, DeferredRun::End::pending);
      if (end != DeferredRun::End::pending) return GuardOutcome();
      ++pendings;
      ops.push_back(op.key);
      value.clear();
      status = c_status(perform(redis, op, &value));
      wire = std::move(next);
    }
    ADD_FAILURE() << "more than 32 store operations for one request";
    return GuardOutcome();
  }

  GuardInput input() {
    GuardInput in;
    in.method = "POST";
    in.authorization = bearer;
    in.now = now;
    return in;
  }

  GuardSettings gs;
  IdentityCache cache;
  std::string sid, bearer;
  std::vector<std::string> ops;
};

TEST_F(GuardOverDeferredRun, ARenewalIsClaimedBeforeAnythingElseHappens) {
  GuardOutcome out = over_run([&](Store& st) { return guard_check(cf, gs, cache, st, input()); });
  ASSERT_EQ(out.verdict, GuardOutcome::fetch);
  EXPECT_EQ(ops, (std::vector<std::string>{"session:" + sid, "renewing:" + sid}));
  EXPECT_EQ(cache.size(), 0u);  // no identity asserted by a run that stopped
  EXPECT_EQ(out.response.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);

  ops.clear();
  const std::string answer = R"({"access_token":"idp-access-2","token_type":"Bearer","expires_in":3600})";
  out = over_run([&](Store& st) {
    return guard_resume(cf, gs, cache, st, input(), out.response.fetch.continuation, 200, answer);
  });
  ASSERT_EQ(out.verdict, GuardOutcome::allow);
  // get, replace_if, del renewing:, and the check's own get
  EXPECT_EQ(ops, (std::vector<std::string>{"session:" + sid, "session:" + sid, "renewing:" + sid,
                                           "session:" + sid}));
  EXPECT_EQ(out.subject, "alice");
  SealedStore sealed(redis, *cf.keys);
  std::string raw;
  ASSERT_EQ(sealed.get("session:" + sid, &raw), StoreStatus::ok);
  auto s = decode_session(raw);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->provider_access_token, "idp-access-2");
  EXPECT_EQ(cache.size(), 1u);
}

// --- changes confirmed before they are told (mcpa_store_t.confirm_writes) --

TEST_F(OverDeferredRun, ARedemptionIsConfirmedAfterItsLastChangeAndBeforeItsAnswer) {
  std::string client_id = public_client();
  std::string code = qget(login(client_id), "code");
  performed.clear();
  Response tok = redeem(client_id, code);
  ASSERT_EQ(tok.status, 200) << tok.body;
  ASSERT_FALSE(performed.empty());
  EXPECT_EQ(performed.back(), MCPA_OP_SYNC);
  EXPECT_EQ(std::count(performed.begin(), performed.end(), MCPA_OP_SYNC), 1);
}

TEST_F(OverDeferredRun, ARedemptionTheReplicasDoNotConfirmIsA503AndTheCodeStaysUsed) {
  std::string client_id = public_client();
  std::string code = qget(login(client_id), "code");
  sync_answer = StoreStatus::unavailable;
  Response tok = redeem(client_id, code);
  EXPECT_EQ(tok.status, 503) << tok.body;
  EXPECT_EQ(json_string(tok.body, "error"), "temporarily_unavailable");
  EXPECT_EQ(header(tok, "Retry-After"), "2");
  EXPECT_EQ(tok.body.find("access_token"), std::string::npos);
  // the change was made: the code cannot be redeemed again
  sync_answer = StoreStatus::ok;
  Response again = redeem(client_id, code);
  EXPECT_EQ(again.status, 400) << again.body;
  EXPECT_EQ(json_string(again.body, "error"), "invalid_grant");
}

TEST_F(OverDeferredRun, ARotationAndARevocationWaitForTheirConfirmationToo) {
  std::string client_id = public_client();
  Response tok = redeem(client_id, qget(login(client_id), "code"));
  ASSERT_EQ(tok.status, 200) << tok.body;
  const std::string rt = json_string(tok.body, "refresh_token");

  sync_answer = StoreStatus::unavailable;
  Response rotated = refresh(client_id, rt);
  EXPECT_EQ(rotated.status, 503) << rotated.body;
  EXPECT_EQ(json_string(rotated.body, "error"), "temporarily_unavailable");

  Response revoked = call(MCPA_EP_REVOKE, token_request({{"token", rt}, {"client_id", client_id}}));
  EXPECT_EQ(revoked.status, 503) << revoked.body;
  EXPECT_EQ(json_string(revoked.body, "error"), "temporarily_unavailable");

  // confirmed, the revocation answers 200 and holds
  sync_answer = StoreStatus::ok;
  revoked = call(MCPA_EP_REVOKE, token_request({{"token", rt}, {"client_id", client_id}}));
  EXPECT_EQ(revoked.status, 200) << revoked.body;
  Response after = refresh(client_id, rt);
  EXPECT_EQ(after.status, 400) << after.body;
  EXPECT_EQ(json_string(after.body, "error"), "invalid_grant");
}

TEST_F(OverDeferredRun, ABrowserStepTheReplicasDoNotConfirmIsA503Page) {
  std::string client_id = public_client();
  std::string loc = to_provider(client_id);
  std::string nonce = nonce_of(loc);
  Response cb = callback(loc);
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  sync_answer = StoreStatus::unavailable;
  Response r = resume(MCPA_EP_CALLBACK, cb, 200, FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(header(r, "Location"), "");  // no code reaches the client
  EXPECT_NE(header(r, "Content-Type").find("text/html"), std::string::npos);
}

TEST_F(OverDeferredRun, AJwksCacheRedisCannotReachIsA503PageNotAnErrorForTheClient) {
  std::string client_id = public_client();
  std::string loc = to_provider(client_id);
  std::string nonce = nonce_of(loc);
  Response cb = callback(loc);
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  unreachable = "jwks:";
  Response r = resume(MCPA_EP_CALLBACK, cb, 200, FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(header(r, "Retry-After"), "2");
  EXPECT_EQ(header(r, "Location"), "");
  EXPECT_EQ(r.body.find(kRedirect), std::string::npos);  // no error sent to the client
}

TEST_F(OverDeferredRun, ARequestThatChangesNothingAsksForNoConfirmation) {
  std::string client_id = public_client();
  std::string loc = to_provider(client_id);
  performed.clear();
  Response cb = callback(loc);  // reads only, then asks the provider
  ASSERT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
  EXPECT_EQ(std::count(performed.begin(), performed.end(), MCPA_OP_SYNC), 0);
}

TEST_F(OverDeferredRun, WithoutConfirmationNoSyncIsAsked) {
  confirm_writes = false;
  std::string client_id = public_client();
  performed.clear();
  sync_answer = StoreStatus::unavailable;  // would fail the requests if asked
  Response tok = redeem(client_id, qget(login(client_id), "code"));
  EXPECT_EQ(tok.status, 200) << tok.body;
  EXPECT_EQ(std::count(performed.begin(), performed.end(), MCPA_OP_SYNC), 0);
}

}  // namespace
}  // namespace mcpauth_test
