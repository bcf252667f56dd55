// The guard through the C API (mcp_auth.h), as the glue calls it, over both
// store kinds: the shared-memory zone's synchronous store and a deferred one
// (Redis through the glue, with the worker's session record cache).  Every
// request reads the session record afresh: a change to it is seen by the
// next request; the result's views stay valid until the glue releases it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "crypto.hpp"
#include "encoding.hpp"
#include "identity_assertion.hpp"
#include "mcp_auth.h"
#include "sealed_store.hpp"
#include "session.hpp"

namespace {

using namespace mcpauth;

constexpr int64_t kNow = 1'900'000'000;

struct MapStore {
  std::map<std::string, std::string> values;

  static void sink(void* ctx, const char* data, size_t len) { static_cast<std::string*>(ctx)->assign(data, len); }
  static int get(void* data, mcpa_str_t key, int take, mcpa_sink_pt out, void* ctx) {
    auto& m = static_cast<MapStore*>(data)->values;
    auto it = m.find(std::string(key.data, key.len));
    if (it == m.end()) return MCPA_NOT_FOUND;
    out(ctx, it->second.data(), it->second.size());
    if (take) m.erase(it);
    return MCPA_OK;
  }
  static int put(void* data, mcpa_str_t key, mcpa_str_t value, int64_t, int, mcpa_str_t) {
    static_cast<MapStore*>(data)->values[std::string(key.data, key.len)] = std::string(value.data, value.len);
    return MCPA_OK;
  }
  static int del(void* data, mcpa_str_t key) {
    return static_cast<MapStore*>(data)->values.erase(std::string(key.data, key.len)) ? MCPA_OK : MCPA_NOT_FOUND;
  }
};

class GuardCapi : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    deferred = GetParam();
    char dir[] = "/tmp/guard-capi.XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    dir_ = dir;
    key_line = KeyRing::generate_line("k1");
    write(dir_ + "/keys", key_line);
    write(dir_ + "/identity", "0123456789abcdef0123456789abcdef");
    build();

    std::string why;
    keys.emplace(*KeyRing::parse(key_line, &why));
    // the deferred store's record cache is the process's: a session of its
    // own for every test
    static int tests = 0;
    session.sid = "sid-" + std::to_string(++tests);
    session.sub = "user-1";
    session.client_id = "client-1";
    session.scope = "mcp:tools";
    session.provider_access_token = "provider-access-token-1";
    session.provider_refresh_token = "provider-refresh-token-1";
    session.provider_expires = kNow + 3600;
    session.expires = kNow + 86400;
    store_session();
    AccessClaims a;
    a.sid = session.sid;
    a.client_id = "client-1";
    a.exp = kNow + 600;
    bearer = "Bearer " + keys->seal(seal_purpose::access_token, encode_access(a));
  }

  void build(int filter_tools = -1, bool exchange = false) {
    mcpa_config_free(cf);
    const std::string issuer = "https://mcp.example", key_file = dir_ + "/keys",
                      identity_file = dir_ + "/identity";
    write(dir_ + "/backend", std::string(40, 'b'));
    const std::string audiences = "api\tmethod=token_exchange\n",
                      clients = "backend\tsecret_file=" + dir_ + "/backend\taudience=api\n";
    mcpa_settings_t s;
    mcpa_settings_init(&s);
    s.issuer = {issuer.data(), issuer.size()};
    s.key_file = {key_file.data(), key_file.size()};
    s.identity_key_file = {identity_file.data(), identity_file.size()};
    s.pass_provider_token = 1;
    s.filter_tools = filter_tools;
    if (exchange) {
      s.exchange_audiences = {audiences.data(), audiences.size()};
      s.exchange_clients = {clients.data(), clients.size()};
    }
    if (deferred) s.session_cache_ttl = 5;
    char err[256] = "";
    cf = mcpa_config_build(&s, err, sizeof err);
    ASSERT_NE(cf, nullptr) << err;
    ASSERT_EQ(mcpa_config_check_use(cf, MCPA_EP_NONE, 1, err, sizeof err), MCPA_OK) << err;
  }

  void TearDown() override {
    mcpa_config_free(cf);
    std::remove((dir_ + "/keys").c_str());
    std::remove((dir_ + "/identity").c_str());
    std::remove((dir_ + "/backend").c_str());
    rmdir(dir_.c_str());
  }

  void write(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_TRUE(f);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  // As the glue writes it: sealed in Redis, plain in the zone.
  void store_session() {
    const std::string key = "session:" + session.sid, record = encode_session(session);
    MemoryStore unused;
    backing.values[key] = deferred ? SealedStore(unused, *keys).seal(key, record) : record;
  }

  // One request as the glue drives it; `check` sees the result before it
  // is released.
  template <class F>
  void request(F&& check) {
    mcpa_store_t store{};
    if (deferred) {
      store.deferred = 1;
    } else {
      store.data = &backing;
      store.get = MapStore::get;
      store.put = MapStore::put;
      store.del = MapStore::del;
    }
    mcpa_guard_request_t req{};
    req.method = {method.data(), method.size()};
    req.body = {body.data(), body.size()};
    req.body_read = body_read;
    req.authorization = {bearer.data(), bearer.size()};
    req.now = now;
    std::string log, value;
    for (int round = 0; round < 8; ++round) {
      mcpa_guard_result_t res{};
      ASSERT_EQ(mcpa_guard(cf, &store, &req, &res), MCPA_OK);
      if (res.verdict != MCPA_GUARD_STORE) {
        check(res);
        mcpa_guard_result_free(&res);
        return;
      }
      const mcpa_store_op_t& op = res.response.store_op;
      std::string key(op.key.data, op.key.len);
      int status = MCPA_NOT_FOUND;
      if (op.op == MCPA_OP_GET && backing.values.count(key)) {
        value = backing.values[key];
        status = MCPA_OK;
      } else if (op.op == MCPA_OP_DEL) {
        status = backing.values.erase(key) ? MCPA_OK : MCPA_NOT_FOUND;
      } else if (op.op == MCPA_OP_PUT) {
        backing.values[key] = std::string(op.value.data, op.value.len);
        status = MCPA_OK;
      }
      ++store_ops;
      log.assign(res.response.replay.data, res.response.replay.len);
      mcpa_guard_result_free(&res);
      req.replay.log = {log.data(), log.size()};
      req.replay.status = status;
      req.replay.value = {value.data(), value.size()};
    }
    ADD_FAILURE() << "more than 8 store operations for one check";
  }

  static std::string s(mcpa_str_t v) { return std::string(v.data, v.len); }

  bool deferred = false;
  std::string method = "GET", body;
  int body_read = 0;
  int64_t now = kNow;
  mcpa_config_t* cf = nullptr;
  std::string dir_, key_line, bearer;
  std::optional<KeyRing> keys;
  Session session;
  MapStore backing;
  int store_ops = 0;
};

TEST_P(GuardCapi, AllowsWithTheSessionsIdentityAndProviderToken) {
  for (int i = 0; i < 3; ++i) {
    request([&](const mcpa_guard_result_t& res) {
      ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
      EXPECT_EQ(s(res.subject), "user-1");
      EXPECT_EQ(s(res.client_id), "client-1");
      EXPECT_EQ(s(res.scope), "mcp:tools");
      EXPECT_EQ(s(res.provider_token), "provider-access-token-1");
      EXPECT_FALSE(s(res.identity).empty());
    });
  }
  // over Redis the record is read once, then from the worker's record cache
  if (deferred) {
    EXPECT_EQ(store_ops, 1);
  }
}

// The assertion's payload, as the tool server reads it (its signature is
// the tool server's to check; test_identity_assertion.cpp checks it).
std::string payload_of(const std::string& jwt) {
  const size_t a = jwt.find('.'), b = jwt.find('.', a + 1);
  return b64url_decode(jwt.substr(a + 1, b - a - 1)).value_or("");
}

TEST_P(GuardCapi, TheAssertionNamesItsSessionSealedOnlyWhereBackendsMayExchangeIt) {
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    EXPECT_EQ(payload_of(s(res.identity)).find("\"sid\""), std::string::npos);
  });
  build(-1, true);
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    const std::string payload = payload_of(s(res.identity));
    const size_t at = payload.find("\"sid\":\"");
    ASSERT_NE(at, std::string::npos) << payload;
    const size_t from = at + 7;
    const std::string ref = payload.substr(from, payload.find('"', from) - from);
    EXPECT_EQ(ref.find(session.sid), std::string::npos);  // sealed, not the id itself
    EXPECT_EQ(open_session_ref(*keys, ref), session.sid);
  });
}

TEST_P(GuardCapi, EveryRequestReadsTheRecordAfresh) {
  request([&](const mcpa_guard_result_t& res) { ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW); });
  // the provider's token renewed and the scope narrowed: seen at once where
  // the record is read (the zone; over Redis once the cached read is older
  // than the cache's lifetime, which this worker's own writes shorten)
  session.provider_access_token = "provider-access-token-2";
  session.scope = "mcp:read";
  store_session();
  if (deferred) {
    request([&](const mcpa_guard_result_t& res) {
      EXPECT_EQ(s(res.provider_token), "provider-access-token-1");  // within the documented cache bound
    });
    now = kNow + 5;  // the cached read is as old as the cache's lifetime: read again
  }
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    EXPECT_EQ(s(res.provider_token), "provider-access-token-2");
    EXPECT_EQ(s(res.scope), "mcp:read");
  });
  backing.values.erase("session:" + session.sid);  // revoked elsewhere
  if (deferred) now += 5;                            // past the cache bound
  request([&](const mcpa_guard_result_t& res) { EXPECT_EQ(res.verdict, MCPA_GUARD_DENY); });
}

TEST_P(GuardCapi, ARecordThatDoesNotDecodeIsNoSession) {
  const std::string key = "session:" + session.sid;
  MemoryStore unused;
  backing.values[key] = deferred ? SealedStore(unused, *keys).seal(key, "{\"v\":\"1\"}") : "{\"v\":\"1\"}";
  request([&](const mcpa_guard_result_t& res) { EXPECT_EQ(res.verdict, MCPA_GUARD_DENY); });
  store_session();
  if (!deferred) {
    request([&](const mcpa_guard_result_t& res) { EXPECT_EQ(res.verdict, MCPA_GUARD_ALLOW); });
  }
}

TEST_P(GuardCapi, FilterToolsReadsTheBodyAndTellsWhetherItListsTools) {
  method = "POST";
  body = R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})";
  body_read = 1;
  // off: the body is not needed, and nothing is filtered
  EXPECT_EQ(mcpa_guard_reads_body(cf), 0);
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    EXPECT_EQ(res.lists_tools, 0);
  });
  build(1);
  EXPECT_EQ(mcpa_guard_reads_body(cf), 1);
  body_read = 0;
  request([&](const mcpa_guard_result_t& res) { EXPECT_EQ(res.verdict, MCPA_GUARD_NEED_BODY); });
  body_read = 1;
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    EXPECT_EQ(res.lists_tools, 1);
  });
  // one tools/list, nothing else
  for (const char* other : {R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"}])",
                            R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}})",
                            R"({"jsonrpc":"2.0","id":1,"method":"prompts/list"})"}) {
    body = other;
    request([&](const mcpa_guard_result_t& res) {
      ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW) << other;
      EXPECT_EQ(res.lists_tools, 0) << other;
    });
  }
  // a GET stream has no body
  method = "GET";
  body.clear();
  request([&](const mcpa_guard_result_t& res) {
    ASSERT_EQ(res.verdict, MCPA_GUARD_ALLOW);
    EXPECT_EQ(res.lists_tools, 0);
  });
}

INSTANTIATE_TEST_SUITE_P(Stores, GuardCapi, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Deferred" : "Zone"; });

}  // namespace
