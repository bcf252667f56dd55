// Mcp-Method / Mcp-Name against the body (mirror_headers.hpp), and the
// guard deciding on the body whatever the headers say.
#include <gtest/gtest.h>

#include <fstream>

#include "guard.hpp"
#include "jsonrpc_peek.hpp"
#include "encoding.hpp"
#include "mirror_headers.hpp"
#include "test_endpoint_fixture.hpp"

using namespace mcpauth;
using mcpauth_test::kT0;

namespace {

std::string mismatch(MirrorHeaders h, const std::string& body) {
  bool batch = false;
  auto calls = peek_jsonrpc(body, &batch);
  EXPECT_TRUE(calls) << body;
  return calls ? mirror_mismatch(h, *calls, batch) : "unreadable";
}

MirrorHeaders method_only(std::string_view m) {
  MirrorHeaders h;
  h.has_method = true;
  h.method = m;
  return h;
}

MirrorHeaders both(std::string_view m, std::string_view n) {
  MirrorHeaders h = method_only(m);
  h.has_name = true;
  h.name = n;
  return h;
}

const std::string kSave =
    R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"save_snippet","arguments":{}}})";

}  // namespace

TEST(MirrorHeaders, NoHeadersNothingToCheck) { EXPECT_EQ(mismatch(MirrorHeaders(), kSave), ""); }

TEST(MirrorHeaders, HonestHeadersAgree) {
  EXPECT_EQ(mismatch(both("tools/call", "save_snippet"), kSave), "");
  EXPECT_EQ(mismatch(method_only("tools/call"), kSave), "");  // Mcp-Name optional before 2026-07-28
  EXPECT_EQ(mismatch(both("resources/read", "file:///a b.txt"),
                     R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a b.txt"}})"),
            "");
  EXPECT_EQ(mismatch(both("prompts/get", "p"), R"({"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}})"),
            "");
}

TEST(MirrorHeaders, ALyingMethodIsAMismatch) {
  EXPECT_NE(mismatch(method_only("tools/list"), kSave), "");
  EXPECT_NE(mismatch(method_only("Tools/call"), kSave), "");  // values are case-sensitive
  EXPECT_NE(mismatch(method_only(""), kSave), "");
}

TEST(MirrorHeaders, ALyingNameIsAMismatch) {
  EXPECT_NE(mismatch(both("tools/call", "hello_mcp"), kSave), "");
  MirrorHeaders name_only;
  name_only.has_name = true;
  name_only.name = "hello_mcp";
  EXPECT_NE(mismatch(name_only, kSave), "");
}

TEST(MirrorHeaders, ANameForAMethodWithoutATargetIsAMismatch) {
  EXPECT_NE(mismatch(both("tools/list", "save_snippet"), R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})"), "");
  // resources/read mirrors params.uri, not params.name
  EXPECT_NE(mismatch(both("resources/read", "x"),
                     R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x","uri":"y"}})"),
            "");
}

TEST(MirrorHeaders, RepeatedHeadersAndBatchesAreMismatches) {
  MirrorHeaders h = both("tools/call", "save_snippet");
  h.repeated = true;
  EXPECT_NE(mismatch(h, kSave), "");
  EXPECT_NE(mismatch(method_only("tools/call"), "[" + kSave + "]"), "");
  EXPECT_NE(mismatch(method_only("tools/list"), R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"},)" + kSave + "]"),
            "");
}

TEST(MirrorHeaders, TheBase64SentinelIsDecodedBeforeComparing) {
  // "save_snippet" and a name with non-ASCII characters
  EXPECT_EQ(mismatch(both("tools/call", "=?base64?c2F2ZV9zbmlwcGV0?="), kSave), "");
  EXPECT_NE(mismatch(both("tools/call", "=?base64?aGVsbG9fbWNw?="), kSave), "");  // hello_mcp
  EXPECT_EQ(mismatch(both("tools/call", "=?base64?aMOpbGxv?="),
                     R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"h\u00e9llo"}})"),
            "");
  EXPECT_EQ(decode_mirror_value("=?base64?IHBhZGRlZCA=?="), " padded ");
  EXPECT_FALSE(decode_mirror_value("=?base64?not base64?="));
  EXPECT_FALSE(decode_mirror_value("=?base64?AA==?="));         // a NUL inside
  EXPECT_FALSE(decode_mirror_value("h\xc3\xa9llo"));            // raw non-ASCII
  EXPECT_FALSE(decode_mirror_value(std::string("a\x01", 2)));   // a control byte
  EXPECT_EQ(decode_mirror_value("=?BASE64?eA==?="), "=?BASE64?eA==?=");  // markers are case-sensitive
  // one spelling per name: canonical base64 of valid UTF-8, markers apart
  EXPECT_FALSE(decode_mirror_value("=?base64?eQ?="));    // no padding
  EXPECT_FALSE(decode_mirror_value("=?base64?eR==?="));  // stray bits
  EXPECT_FALSE(decode_mirror_value("=?base64?/w==?="));  // 0xFF is not UTF-8
  EXPECT_FALSE(decode_mirror_value("=?base64?7aCA?="));  // a surrogate
  EXPECT_FALSE(decode_mirror_value("=?base64?=")); // the markers overlap
  EXPECT_EQ(decode_mirror_value("=?base64?" "?="), "");  // an empty name
}

TEST(Utf8, WellFormedOnly) {
  EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // cut short
}

TEST(MirrorHeaders, TheMessageIdIsKeptToEchoIt) {
  auto calls = peek_jsonrpc(kSave);
  ASSERT_TRUE(calls);
  EXPECT_EQ(calls->front().id, "7");
  calls = peek_jsonrpc(R"({"id":"a\"b","method":"x"})");
  EXPECT_EQ(calls->front().id, R"("a\"b")");
  calls = peek_jsonrpc(R"({"id":1,"id":2,"method":"x"})");
  EXPECT_EQ(calls->front().id, "");
  calls = peek_jsonrpc(R"({"id":{"a":1},"method":"x"})");
  EXPECT_EQ(calls->front().id, "");
}

// --- the guard: the body decides -----------------------------------------

class GuardMirror : public ::testing::Test {
 protected:
  void SetUp() override {
    cf.issuer = "https://gw.example";
    cf.resource = "https://gw.example/mcp";
    cf.keys = KeyRing::parse(KeyRing::generate_line("k1") + "\n", nullptr);
    ASSERT_TRUE(cf.keys);
    key_file = ::testing::TempDir() + "mirror-identity.key";
    std::ofstream(key_file) << std::string(64, 'b') << "\n";
    gs.identity_key_file = key_file;
    gs.tool_scopes = "save_snippet snippets:write\nget_snippet snippets:read\n";
    ASSERT_EQ(gs.load(), "");
    ASSERT_EQ(gs.check_use(), "");
    store.now = kT0;
    Session s;
    s.sid = "sid-1";
    s.sub = "alice";
    s.client_id = "c1";
    s.scope = "snippets:read";
    s.expires = kT0 + 3600;
    store.put("session:sid-1", encode_session(s), s.expires);
    AccessClaims a;
    a.sid = "sid-1";
    a.client_id = "c1";
    a.resource = cf.resource;
    a.exp = kT0 + 600;
    bearer = "Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a));
  }

  GuardOutcome check(const std::string& body, MirrorHeaders h) {
    GuardInput in;
    in.method = "POST";
    in.authorization = bearer;
    in.body = body;
    in.body_read = true;
    in.mirror = h;
    in.now = kT0;
    return guard_check(cf, gs, cache, store, in);
  }

  Config cf;
  GuardSettings gs;
  IdentityCache cache;
  MemoryStore store;
  std::string key_file, bearer;
};

TEST_F(GuardMirror, AReadOnlyTokenCannotSaveWhateverTheHeadersSay) {
  // the body is what the tool server runs: headers cannot change the decision
  for (const MirrorHeaders& h : {MirrorHeaders(), method_only("tools/list"), both("tools/call", "hello_mcp")}) {
    GuardOutcome out = check(kSave, h);
    EXPECT_EQ(out.verdict, GuardOutcome::deny);
    const int status = out.response.status;
    EXPECT_TRUE(status == 403 || status == 400) << status;
    if (h.any()) {
      EXPECT_EQ(status, 400);
      EXPECT_NE(out.response.body.find("-32020"), std::string::npos) << out.response.body;
      EXPECT_NE(out.response.body.find(R"("id":7)"), std::string::npos) << out.response.body;
    } else {
      EXPECT_EQ(status, 403);
    }
  }
}

TEST_F(GuardMirror, HonestHeadersOnAnAllowedCallPass) {
  const std::string get =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_snippet","arguments":{}}})";
  EXPECT_EQ(check(get, both("tools/call", "get_snippet")).verdict, GuardOutcome::allow);
  EXPECT_EQ(check(get, MirrorHeaders()).verdict, GuardOutcome::allow);
  EXPECT_EQ(check(get, both("tools/call", "save_snippet")).verdict, GuardOutcome::deny);
}

TEST_F(GuardMirror, WithToolRulesTheBodyIsAlwaysRead) {
  GuardInput in;
  in.method = "POST";
  in.authorization = bearer;
  in.mirror = both("tools/call", "get_snippet");
  in.now = kT0;
  EXPECT_EQ(guard_check(cf, gs, cache, store, in).verdict, GuardOutcome::need_body);
}
