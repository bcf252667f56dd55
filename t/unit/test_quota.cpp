// Quotas (mcp_auth_limit): the rules as written, the bucket as a pure step,
// its state in the store (shared, compare-and-set), and the guard's 429.
#include <gtest/gtest.h>

#include "guard.hpp"
#include "quota.hpp"
#include "session.hpp"
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

QuotaRule rule(const char* text) {
  std::string err;
  auto r = QuotaRule::parse(text, &err);
  EXPECT_TRUE(r) << text << ": " << err;
  return r ? *r : QuotaRule();
}

std::string refusal(const char* text) {
  std::string err;
  EXPECT_FALSE(QuotaRule::parse(text, &err)) << text;
  return err;
}

TEST(QuotaRule, ParsesEveryWordInAnyOrder) {
  QuotaRule r = rule("tool=save_snippet burst=5\tper=subject rate=10r/m");
  EXPECT_EQ(r.count, 10);
  EXPECT_EQ(r.period_ms, 60000);
  EXPECT_EQ(r.per, QuotaRule::subject);
  EXPECT_EQ(r.burst, 5);
  EXPECT_EQ(r.tool, "save_snippet");
  EXPECT_EQ(r.text, "rate=10r/m per=subject burst=5 tool=save_snippet");
  EXPECT_EQ(r.interval_us(), 6000000);
  EXPECT_EQ(r.describe(), "10 calls of save_snippet per minute per user (burst 5)");

  QuotaRule c = rule("rate=100r/s per=client");
  EXPECT_EQ(c.per, QuotaRule::client);
  EXPECT_EQ(c.burst, 0);
  EXPECT_EQ(c.tool, "");
  EXPECT_EQ(c.interval_us(), 10000);
  EXPECT_EQ(c.describe(), "100 requests per second per client");
  EXPECT_EQ(rule("rate=1r/h per=subject").describe(), "1 request per hour per user");
}

TEST(QuotaRule, RefusesWhatItCannotReadAndSaysWhat) {
  EXPECT_NE(refusal("per=subject").find("needs rate="), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m").find("needs per="), std::string::npos);
  EXPECT_NE(refusal("rate=10r/d per=subject").find("\"rate=10r/d\""), std::string::npos);
  EXPECT_NE(refusal("rate=0r/s per=subject").find("from 1 to"), std::string::npos);
  EXPECT_NE(refusal("rate=10 per=subject").find("Nr/s"), std::string::npos);
  EXPECT_NE(refusal("rate=-1r/s per=subject").find("Nr/s"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=ip").find("subject or client"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client burst=x").find("burst"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client rate=5r/s").find("given twice"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client zone=x").find("\"zone=x\""), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client tool=").find("tool name"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client tool=a\"b").find("tool name"), std::string::npos);
  EXPECT_NE(refusal("rate=10r/m per=client nodelay").find("\"nodelay\""), std::string::npos);
}

TEST(QuotaRule, AtMost16RulesALocation) {
  std::string lines, err;
  for (int i = 0; i < 16; ++i) lines += "rate=" + std::to_string(i + 1) + "r/s\tper=client\n";
  auto ok = parse_quota_rules(lines, &err);
  ASSERT_TRUE(ok) << err;
  EXPECT_EQ(ok->size(), 16u);
  EXPECT_FALSE(parse_quota_rules(lines + "rate=1r/h\tper=client\n", &err));
  EXPECT_NE(err.find("at most 16"), std::string::npos);
}

// --- the bucket, pure ----------------------------------------------------

TEST(QuotaStep, WithoutBurstOneRequestAnInterval) {
  QuotaRule r = rule("rate=60r/m per=subject");  // one a second
  const int64_t t0 = 1700000000000;
  QuotaStep a = quota_step(std::nullopt, t0, r, 1);
  ASSERT_TRUE(a.allowed);
  EXPECT_EQ(a.tat_us, (t0 + 1000) * 1000);
  EXPECT_EQ(a.expires, t0 / 1000 + 2);
  QuotaStep b = quota_step(a.tat_us, t0 + 400, r, 1);
  ASSERT_FALSE(b.allowed);
  EXPECT_EQ(b.retry_after_us, 600000);
  EXPECT_TRUE(quota_step(a.tat_us, t0 + 1000, r, 1).allowed);
}

TEST(QuotaStep, BurstAllowsThatManyMoreAtOnceThenTheRate) {
  QuotaRule r = rule("rate=10r/s per=subject burst=2");  // 100 ms apart
  const int64_t t0 = 5000;
  std::optional<int64_t> tat;
  for (int i = 0; i < 3; ++i) {
    QuotaStep s = quota_step(tat, t0, r, 1);
    ASSERT_TRUE(s.allowed) << i;
    tat = s.tat_us;
  }
  QuotaStep over = quota_step(tat, t0, r, 1);
  ASSERT_FALSE(over.allowed);
  EXPECT_EQ(over.retry_after_us, 100000);
  EXPECT_TRUE(quota_step(tat, t0 + 100, r, 1).allowed);
  // an idle bucket fills up to burst+1, no further
  QuotaStep later = quota_step(tat, t0 + 60000, r, 1);
  EXPECT_EQ(later.tat_us, (t0 + 60000 + 100) * 1000);
}

TEST(QuotaStep, ABatchCostsEachOfItsCalls) {
  QuotaRule r = rule("rate=1r/s per=subject burst=3");
  QuotaStep s = quota_step(std::nullopt, 0, r, 3);
  ASSERT_TRUE(s.allowed);
  EXPECT_FALSE(quota_step(s.tat_us, 0, r, 2).allowed);
  EXPECT_TRUE(quota_step(s.tat_us, 0, r, 1).allowed);
  EXPECT_FALSE(quota_step(std::nullopt, 0, r, 5).allowed);  // more than the bucket holds
}

// --- in the store ----------------------------------------------------------

class QuotaStore : public Gateway {
 protected:
  int64_t now_ms = 1700000000000;

  std::vector<QuotaRule> rules(const char* lines) {
    std::string err;
    auto r = parse_quota_rules(lines, &err);
    EXPECT_TRUE(r) << err;
    return r ? *r : std::vector<QuotaRule>();
  }

  // quota_spend over `store`, or over a deferred store whose operations
  // `store` answers, as the glue does with Redis (MCPA_UNIT_DEFERRED=1)
  QuotaOutcome spend(const std::vector<QuotaRule>& rs, std::vector<int64_t> cost, const char* sub,
                     const char* client) {
    store.now = now_ms / 1000;
    cost.resize(rs.size(), 1);
    if (!std::getenv("MCPA_UNIT_DEFERRED")) return quota_spend(store, rs, cost.data(), sub, client, now_ms);
    std::string wire;
    for (int round = 0; round < 32; ++round) {
      ReplayLog log;
      EXPECT_TRUE(ReplayLog::decode(wire, &log));
      ReplayStore replay(log);
      QuotaOutcome q;
      {
        ReplayScope scope(log);
        q = quota_spend(replay, rs, cost.data(), sub, client, now_ms);
      }
      EXPECT_FALSE(replay.out_of_step());
      if (!replay.stopped()) {
        EXPECT_NE(q.verdict, QuotaOutcome::pending);
        return q;
      }
      EXPECT_EQ(q.verdict, QuotaOutcome::pending);  // returned at once
      std::string value;
      StoreStatus st = perform(store, replay.pending_op(), &value);
      log.answer(c_status(st), value);
      wire = log.encode();
    }
    ADD_FAILURE() << "more than 32 store operations";
    return QuotaOutcome();
  }
};

TEST_F(QuotaStore, PerSubjectTheUsersClientsShareOneBucket) {
  auto rs = rules("rate=60r/m\tper=subject\tburst=1\n");
  EXPECT_EQ(spend(rs, {}, "ada", "client-a").verdict, QuotaOutcome::allowed);
  EXPECT_EQ(spend(rs, {}, "ada", "client-b").verdict, QuotaOutcome::allowed);
  QuotaOutcome over = spend(rs, {}, "ada", "client-c");
  ASSERT_EQ(over.verdict, QuotaOutcome::limited);
  EXPECT_EQ(over.rule, 0);
  EXPECT_EQ(over.retry_after_s, 1);
  EXPECT_EQ(spend(rs, {}, "grace", "client-a").verdict, QuotaOutcome::allowed);  // another user
  now_ms += 1000;
  EXPECT_EQ(spend(rs, {}, "ada", "client-a").verdict, QuotaOutcome::allowed);
}

TEST_F(QuotaStore, PerClientTheClientsUsersShareOneBucket) {
  auto rs = rules("rate=1r/m\tper=client\n");
  EXPECT_EQ(spend(rs, {}, "ada", "client-a").verdict, QuotaOutcome::allowed);
  QuotaOutcome over = spend(rs, {}, "grace", "client-a");
  ASSERT_EQ(over.verdict, QuotaOutcome::limited);
  EXPECT_EQ(over.retry_after_s, 60);
  EXPECT_EQ(spend(rs, {}, "ada", "client-b").verdict, QuotaOutcome::allowed);
}

TEST_F(QuotaStore, ARefusalOfOneRuleSpendsNothingOfTheOthers) {
  auto rs = rules("rate=10r/s\tper=subject\tburst=5\nrate=1r/m\tper=client\n");
  EXPECT_EQ(spend(rs, {}, "ada", "c").verdict, QuotaOutcome::allowed);
  const size_t keys = store.size();
  std::string before;
  ASSERT_EQ(store.get(quota_key(rs[0], "ada"), &before), StoreStatus::ok);
  QuotaOutcome over = spend(rs, {}, "ada", "c");
  ASSERT_EQ(over.verdict, QuotaOutcome::limited);
  EXPECT_EQ(over.rule, 1);
  std::string after;
  ASSERT_EQ(store.get(quota_key(rs[0], "ada"), &after), StoreStatus::ok);
  EXPECT_EQ(after, before);
  EXPECT_EQ(store.size(), keys);
}

TEST_F(QuotaStore, ARuleThatCostsNothingIsNotRead) {
  auto rs = rules("rate=1r/m\tper=subject\ttool=save_snippet\n");
  EXPECT_EQ(spend(rs, {0}, "ada", "c").verdict, QuotaOutcome::allowed);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(spend(rs, {1}, "ada", "c").verdict, QuotaOutcome::allowed);
  EXPECT_EQ(spend(rs, {0}, "ada", "c").verdict, QuotaOutcome::allowed);
  EXPECT_EQ(spend(rs, {1}, "ada", "c").verdict, QuotaOutcome::limited);
}

TEST_F(QuotaStore, TheBucketExpiresWhenItIsFullAgain) {
  auto rs = rules("rate=1r/m\tper=subject\tburst=2\n");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(spend(rs, {}, "ada", "c").verdict, QuotaOutcome::allowed);
  std::string v;
  store.now = now_ms / 1000 + 179;
  EXPECT_EQ(store.get(quota_key(rs[0], "ada"), &v), StoreStatus::ok);
  store.now = now_ms / 1000 + 182;
  EXPECT_EQ(store.get(quota_key(rs[0], "ada"), &v), StoreStatus::not_found);
}

TEST_F(QuotaStore, KeysNameTheRuleAndHideWho) {
  auto rs = rules("rate=1r/m\tper=subject\nrate=2r/m\tper=subject\n");
  EXPECT_NE(quota_key(rs[0], "ada"), quota_key(rs[1], "ada"));
  EXPECT_NE(quota_key(rs[0], "ada"), quota_key(rs[0], "grace"));
  EXPECT_EQ(quota_key(rs[0], "ada").find("ada"), std::string::npos);
  EXPECT_EQ(quota_key(rs[0], "ada").rfind("quota:", 0), 0u);
}

// Another worker (or node) writes the bucket between the read and the write.
class RacingStore final : public Store {
 public:
  explicit RacingStore(MemoryStore& inner) : inner_(inner) {}
  int races = 0;             // how many writes lose a race
  int64_t step_us = 1000000;  // what the other request spends: one interval
  StoreStatus get(std::string_view key, std::string* value) override { return inner_.get(key, value); }
  StoreStatus take(std::string_view key, std::string* value) override { return inner_.take(key, value); }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
    return inner_.put(key, value, expires, cls);
  }
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
    race(key);
    return inner_.put_new(key, value, expires, cls);
  }
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override {
    race(key);
    return inner_.replace_if(key, expected, value, expires);
  }
  StoreStatus del(std::string_view key) override { return inner_.del(key); }

 private:
  void race(std::string_view key) {
    if (races <= 0) return;
    --races;
    std::string v;
    int64_t tat = inner_.get(key, &v) == StoreStatus::ok ? std::stoll(v) : 0;
    inner_.put(key, std::to_string(std::max<int64_t>(tat, inner_.now * 1000000) + step_us), inner_.now + 3600);
  }
  MemoryStore& inner_;
};

TEST_F(QuotaStore, ALostRaceIsReadAgainAndCountsTheOtherRequest) {
  auto rs = rules("rate=1r/s\tper=subject\tburst=2\n");
  store.now = now_ms / 1000;
  RacingStore racing(store);
  racing.races = 1;
  const int64_t one = 1;
  EXPECT_EQ(quota_spend(racing, rs, &one, "ada", "c", now_ms).verdict, QuotaOutcome::allowed);
  racing.races = 1;  // the other request takes the last token
  QuotaOutcome q = quota_spend(racing, rs, &one, "ada", "c", now_ms);
  EXPECT_EQ(q.verdict, QuotaOutcome::limited);
}

TEST_F(QuotaStore, ABucketUnderAFloodOfRacesRefusesForASecond) {
  auto rs = rules("rate=1000r/s\tper=subject\tburst=1000\n");
  store.now = now_ms / 1000;
  RacingStore racing(store);
  racing.races = 100;
  racing.step_us = 1000;
  const int64_t one = 1;
  QuotaOutcome q = quota_spend(racing, rs, &one, "ada", "c", now_ms);
  EXPECT_EQ(q.verdict, QuotaOutcome::limited);
  EXPECT_EQ(q.retry_after_s, 1);
  EXPECT_EQ(racing.races, 100 - kQuotaAttempts);
}

// --- in the guard --------------------------------------------------------------

class QuotaGuard : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    gs.identity_key_file = write_file("identity", "0123456789abcdef0123456789abcdef");
  }

  void limits(const char* lines) {
    gs.limits = lines;
    ASSERT_EQ(gs.load(), "");
  }

  std::string token_for(const std::string& sub, const std::string& client, const std::string& scope = "mcp:tools") {
    Session s;
    s.sid = "sid-" + std::to_string(++sessions);
    s.sub = sub;
    s.client_id = client;
    s.scope = scope;
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

  GuardOutcome post(const std::string& bearer, const std::string& json) {
    body = json;
    GuardInput in;
    in.method = "POST";
    in.authorization = bearer;
    in.body = body;
    in.body_read = true;
    in.now = now;
    in.now_ms = now * 1000 + 250;
    GuardOutcome out;
    over_store([&](Store& st) {
      out = guard_check(cf, gs, cache, st, in);
      return out.response;
    });
    return out;
  }

  static std::string call_of(const char* tool, int id = 7) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":"tools/call","params":{"name":")" +
           tool + R"(","arguments":{}}})";
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

TEST_F(QuotaGuard, OverTheLimitA429ThatSaysWhatAndWhen) {
  limits("rate=10r/m\tper=subject\ttool=save_snippet\n");
  std::string ada = token_for("ada", "client-1");
  GuardOutcome first = post(ada, call_of("save_snippet"));
  ASSERT_EQ(first.verdict, GuardOutcome::allow) << first.response.body;

  GuardOutcome d = post(ada, call_of("save_snippet", 42));
  ASSERT_EQ(d.verdict, GuardOutcome::deny);
  EXPECT_EQ(d.reason, metrics::GuardReason::rate_limited);
  ASSERT_NE(d.limited, nullptr);
  EXPECT_EQ(d.response.status, 429);
  EXPECT_EQ(header_of(d.response, "Retry-After"), "6");
  EXPECT_EQ(header_of(d.response, "WWW-Authenticate"), "");
  EXPECT_EQ(d.response.body,
            R"({"jsonrpc":"2.0","id":42,"error":{"code":-32029,"message":"Rate limit exceeded: 10 calls of )"
            R"(save_snippet per minute per user; retry after 6 s","data":{"retry_after":6}}})");
  EXPECT_EQ(d.subject, "ada");
  EXPECT_EQ(d.client_id, "client-1");
  EXPECT_EQ(d.tool, "save_snippet");

  // another tool is not counted; another user has a bucket of their own
  EXPECT_EQ(post(ada, call_of("hello_mcp")).verdict, GuardOutcome::allow);
  EXPECT_EQ(post(token_for("grace", "client-1"), call_of("save_snippet")).verdict, GuardOutcome::allow);
  now += 6;
  EXPECT_EQ(post(ada, call_of("save_snippet")).verdict, GuardOutcome::allow);
}

TEST_F(QuotaGuard, ABatchCountsEachCallAndHasNoId) {
  limits("rate=1r/s\tper=subject\tburst=2\ttool=save_snippet\n");
  std::string ada = token_for("ada", "client-1");
  const std::string two = "[" + call_of("save_snippet", 1) + "," + call_of("hello_mcp", 2) + "," +
                          call_of("save_snippet", 3) + "]";
  EXPECT_EQ(post(ada, two).verdict, GuardOutcome::allow);
  GuardOutcome d = post(ada, two);
  ASSERT_EQ(d.verdict, GuardOutcome::deny);
  EXPECT_EQ(d.response.status, 429);
  EXPECT_NE(d.response.body.find(R"("id":null)"), std::string::npos) << d.response.body;
  EXPECT_EQ(post(ada, call_of("save_snippet")).verdict, GuardOutcome::allow);  // one left
}

TEST_F(QuotaGuard, ARefusedRequestSpendsNothing) {
  gs.tool_scopes = "save_snippet snippets:write\n";
  limits("rate=1r/m\tper=subject\n");
  std::string reader = token_for("ada", "client-1", "mcp:tools");
  EXPECT_EQ(post(reader, call_of("save_snippet")).response.status, 403);  // step-up asked
  EXPECT_EQ(post(reader, call_of("save_snippet")).response.status, 403);
  EXPECT_EQ(post(reader, call_of("hello_mcp")).verdict, GuardOutcome::allow);
  EXPECT_EQ(post(reader, call_of("hello_mcp")).response.status, 429);
}

TEST_F(QuotaGuard, ToolQuotasReadTheBodyAndLabelTheirTool) {
  limits("rate=1r/m\tper=client\ttool=save_snippet\n");
  EXPECT_TRUE(gs.quota_tools);
  EXPECT_NE(std::find(gs.tools.begin(), gs.tools.end(), "save_snippet"), gs.tools.end());
  GuardInput in;
  in.method = "POST";
  std::string bearer = token_for("ada", "client-1");
  in.authorization = bearer;
  in.now = now;
  GuardOutcome out = guard_check(cf, gs, cache, store, in);
  EXPECT_EQ(out.verdict, GuardOutcome::need_body);
}

TEST_F(QuotaGuard, AQuotaOnRequestsCountsEveryRequestIncludingGets) {
  limits("rate=1r/h\tper=client\tburst=1\n");
  std::string ada = token_for("ada", "client-1");
  GuardInput in;
  in.method = "GET";
  in.authorization = ada;
  in.now = now;
  in.now_ms = now * 1000 + 250;
  store.now = now;
  EXPECT_EQ(guard_check(cf, gs, cache, store, in).verdict, GuardOutcome::allow);
  EXPECT_EQ(post(token_for("grace", "client-1"), call_of("hello_mcp")).verdict, GuardOutcome::allow);
  GuardOutcome d = guard_check(cf, gs, cache, store, in);
  EXPECT_EQ(d.response.status, 429);
  EXPECT_EQ(header_of(d.response, "Retry-After"), "3600");
  EXPECT_NE(d.response.body.find("1 request per hour per client (burst 1)"), std::string::npos);
}

TEST_F(QuotaGuard, ABrowserClientMayReadRetryAfter) {
  limits("rate=1r/m\tper=subject\n");
  cf.cors_origins = {"https://app.example"};
  std::string ada = token_for("ada", "client-1");
  GuardInput in;
  in.method = "GET";
  in.authorization = ada;
  in.origin = "https://app.example";
  in.now = now;
  store.now = now;
  EXPECT_EQ(guard_check(cf, gs, cache, store, in).verdict, GuardOutcome::allow);
  GuardOutcome d = guard_check(cf, gs, cache, store, in);
  ASSERT_EQ(d.response.status, 429);
  EXPECT_EQ(header_of(d.response, "Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(header_of(d.response, "Access-Control-Expose-Headers"), "WWW-Authenticate, Mcp-Session-Id, Retry-After");
}

}  // namespace
}  // namespace mcpauth_test
