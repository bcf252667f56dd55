// peek_jsonrpc (the guard's one-pass reading of a JSON-RPC body) against
// cJSON read the way the tool server reads a body (tool-server/jsonrpc.cpp:
// no NUL byte, cJSON_ParseWithOpts with nothing after the value, no
// "\u0000"; then cJSON_GetObjectItemCaseSensitive for method, params and
// params.name, batch elements one by one).
//
// What must hold for every input:
//   1. when peek_jsonrpc reads a body, the tool server reads it too, and
//      both see the same calls (method, tool name) in the same order;
//   2. what the tool server reads and peek_jsonrpc refuses is only what it
//      refuses on purpose: a repeated method/params/name, or text that is not
//      strict JSON (cJSON re-printing it gives strict JSON, which
//      peek_jsonrpc then reads, with the same calls).
#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "jsonrpc_peek.hpp"

using namespace mcpauth;

namespace {

using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

Json tool_server_parse(const std::string& body) {
  Json none(nullptr, cJSON_Delete);
  if (std::memchr(body.data(), '\0', body.size()) != nullptr) return none;
  const char* end = nullptr;
  Json doc(cJSON_ParseWithOpts(body.c_str(), &end, 1), cJSON_Delete);
  if (!doc) return none;
  // jsonrpc.cpp's has_escaped_nul
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (!in_string) {
      in_string = c == '"';
    } else if (c == '"') {
      in_string = false;
    } else if (c == '\\' && i + 1 < body.size()) {
      if (body.compare(i + 1, 5, "u0000") == 0) return none;
      ++i;
    }
  }
  return doc;
}

McpCall call_of(const cJSON* msg) {
  McpCall call;
  const cJSON* method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  if (cJSON_IsString(method)) {
    call.method = method->valuestring;
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON* name = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "name") : nullptr;
    if (cJSON_IsString(name)) call.name = name->valuestring;
  }
  return call;
}

std::vector<McpCall> calls_of(const cJSON* doc) {
  std::vector<McpCall> out;
  if (cJSON_IsObject(doc)) out.push_back(call_of(doc));
  if (cJSON_IsArray(doc)) {
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) if (cJSON_IsObject(item)) out.push_back(call_of(item));
  }
  return out;
}

int count_key(const cJSON* obj, const char* key) {
  int n = 0;
  for (const cJSON* c = obj ? obj->child : nullptr; c; c = c->next)
    if (c->string && std::strcmp(c->string, key) == 0) ++n;
  return n;
}

// A message whose method, params or params.name appear more than once.
bool message_repeats(const cJSON* msg) {
  if (!cJSON_IsObject(msg)) return false;
  if (count_key(msg, "method") > 1 || count_key(msg, "params") > 1) return true;
  const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
  return cJSON_IsObject(params) && count_key(params, "name") > 1;
}

bool repeats(const cJSON* doc) {
  if (cJSON_IsArray(doc)) {
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) if (message_repeats(item)) return true;
    return false;
  }
  return message_repeats(doc);
}

int depth_of(const cJSON* j) {
  int d = 0;
  for (const cJSON* c = j->child; c; c = c->next) d = std::max(d, depth_of(c));
  return (cJSON_IsArray(j) || cJSON_IsObject(j)) ? d + 1 : 0;
}

std::string show(const std::vector<McpCall>& calls) {
  std::string s;
  for (const auto& c : calls) s += "[" + c.method + "|" + c.name + "]";
  return s;
}

// Checks properties 1 and 2 for one body; returns whether peek read it.
bool agrees(const std::string& body) {
  auto peeked = peek_jsonrpc(body);
  Json doc = tool_server_parse(body);
  if (peeked) {
    EXPECT_TRUE(doc) << "peek read what the tool server refuses: " << body;
    if (doc) {
      EXPECT_EQ(show(*peeked), show(calls_of(doc.get()))) << body;
    }
    return true;
  }
  if (doc && !repeats(doc.get()) && depth_of(doc.get()) <= 512) {
    std::unique_ptr<char, decltype(&cJSON_free)> printed(cJSON_PrintUnformatted(doc.get()), cJSON_free);
    EXPECT_TRUE(printed);
    if (printed) {
      auto again = peek_jsonrpc(printed.get());
      EXPECT_TRUE(again) << "peek refuses strict JSON the tool server reads: " << printed.get()
                         << "\n(from " << body << ")";
      if (again) {
        EXPECT_EQ(show(*again), show(calls_of(doc.get()))) << body;
      }
    }
  }
  return false;
}

const char* kCall = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"save_snippet","arguments":{"snippetname":"a","snippet":"b"}}})";

}  // namespace

TEST(JsonRpcPeek, ReadsOneToolCall) {
  auto calls = peek_jsonrpc(kCall);
  ASSERT_TRUE(calls);
  ASSERT_EQ(calls->size(), 1u);
  EXPECT_EQ((*calls)[0].method, "tools/call");
  EXPECT_EQ((*calls)[0].name, "save_snippet");
  EXPECT_TRUE(agrees(kCall));
}

TEST(JsonRpcPeek, ReadsTheOrderOfMembersAsTheToolServer) {
  for (const char* body : {
           R"({"params":{"arguments":{"name":"inner"},"name":"save_snippet"},"id":1,"method":"tools/call","jsonrpc":"2.0"})",
           R"( { "method" : "tools/call" , "params" : { "name" : "x" } } )",
           "\t\r\n{\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n",
           R"({"method":"ping"})",
           R"({"method":"tools/call"})",
           R"({"method":"tools/call","params":[]})",
           R"({"method":"tools/call","params":{"name":1}})",
           R"({"method":"tools/call","params":{"name":null}})",
           R"({"method":"tools/call","params":{}})",
           R"({"method":"","params":{"name":"x"}})",
           R"({"method":7,"params":{"name":"save_snippet"}})",
           R"({"method":null,"params":{"name":"save_snippet"}})",
           R"({"method":{"name":"save_snippet"}})",
           R"({"id":1,"result":{}})",
           R"({})",
           R"({"Method":"tools/call","params":{"Name":"x"}})",
           R"({"a":{"method":"tools/call","params":{"name":"x"}},"method":"ping"})",
       }) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(agrees(body));
  }
}

TEST(JsonRpcPeek, DecodesEscapesExactlyAsCJson) {
  for (const char* body : {
           R"({"method":"tools\/call","params":{"name":"save_snippet"}})",
           R"({"\u006dethod":"tools/call","params":{"n\u0061me":"save_snippet"}})",
           R"({"method":"tools/call","\u0070arams":{"name":"s\u00e9"}})",
           R"({"method":"tools/call","params":{"name":"\ud83d\ude00 \u20ac \u00FF \t\n\"\\"}})",
           R"({"method":"tools/call","params":{"name":"caf\u00e9\u0041"}})",
           "{\"method\":\"tools/call\",\"params\":{\"name\":\"caf\xc3\xa9\"}}",
       }) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(agrees(body));
  }
  auto calls = peek_jsonrpc(R"({"\u006dethod":"tools/call","params":{"n\u0061me":"save\u005fsnippet"}})");
  ASSERT_TRUE(calls);
  EXPECT_EQ((*calls)[0].name, "save_snippet");
}

TEST(JsonRpcPeek, ReadsEveryCallOfABatchAndSkipsWhatIsNotAnObject) {
  auto calls = peek_jsonrpc(R"([1,{"method":"ping"},"x",{"method":"tools/call","params":{"name":"save_snippet"}},null,[]])");
  ASSERT_TRUE(calls);
  ASSERT_EQ(calls->size(), 2u);
  EXPECT_EQ((*calls)[1].name, "save_snippet");
  for (const char* body : {"[]", "[1,2]", R"([{"method":"a"},{"method":"b","params":{"name":"c"}}])",
                           R"([[{"method":"tools/call","params":{"name":"x"}}]])", "1", "\"x\"", "null",
                           "true", "-0.5e+3"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(agrees(body));
  }
}

TEST(JsonRpcPeek, RefusesARepeatedMethodParamsOrName) {
  for (const char* body : {
           R"({"method":"tools/call","method":"ping"})",
           R"({"method":"tools/call","params":{"name":"save_snippet"},"params":{"name":"hello_mcp"}})",
           R"({"method":"tools/call","params":{"name":"save_snippet","name":"hello_mcp"}})",
           R"({"method":"tools/call","\u006dethod":"ping"})",
           R"({"method":"tools/call","params":{"name":"a","n\u0061me":"b"}})",
           R"({"method":1,"method":"tools/call"})",
           R"([{"method":"ping"},{"method":"tools/call","params":{"name":"a","name":"b"}}])",
       }) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(peek_jsonrpc(body));
    agrees(body);
  }
  // elsewhere a repeated key is the tool server's business
  EXPECT_TRUE(peek_jsonrpc(R"({"id":1,"id":2,"method":"ping","params":{"arguments":{"a":1,"a":2}}})"));
}

TEST(JsonRpcPeek, RefusesEscapesThatDoNotDecodeToOneCharacter) {
  for (const char* body : {
           R"({"method":"tools/call","params":{"name":"save_snippet\u0000x"}})",
           R"({"method":"tools/call","params":{"name":"save_snippet\uzzzz"}})",
           R"({"method":"tools/call","params":{"name":"save_snippet\u12"}})",
           R"({"method":"tools/call","params":{"name":"\ud800"}})",
           R"({"method":"tools/call","params":{"name":"\ud800\u0041"}})",
           R"({"method":"tools/call","params":{"name":"\udc00"}})",
           R"({"method":"tools/call","params":{"name":"\x"}})",
           R"({"method":"tools/call","params":{"name":"\'"}})",
           R"({"other":"\u0000","method":"ping"})",
       }) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(peek_jsonrpc(body));
    agrees(body);
  }
}

TEST(JsonRpcPeek, RefusesWhatIsNotStrictJson) {
  for (std::string body : {
           std::string("{nope"), std::string(""), std::string(" "), std::string("{"), std::string("[1,2"),
           std::string(R"({"method":"ping"} x)"), std::string(R"({"method":"ping"}{})"),
           std::string(R"({"method":"ping",})"), std::string("[1,]"), std::string(R"({"method" "ping"})"),
           std::string(R"({method:"ping"})"), std::string("{'method':'ping'}"), std::string("[01]"),
           std::string("[1.]"), std::string("[.5]"), std::string("[+1]"), std::string("[1e]"),
           std::string("[-]"), std::string("[NaN]"), std::string("[Infinity]"), std::string("[tru]"),
           std::string("[nulll]"), std::string("\xEF\xBB\xBF{\"method\":\"ping\"}"),
           std::string("{\"method\":\"pi\nng\"}"), std::string("{\"method\":\"ping\"}\x01"),
           std::string("\x0c{\"method\":\"ping\"}"), std::string("{\"method\":\"ping\"}\0", 18),
           std::string("{\"method\":\"pi\0ng\"}", 18), std::string("[" + std::string(64, '1') + "]"),
           std::string(513, '[') + std::string(513, ']'),
       }) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(peek_jsonrpc(body));
    agrees(body);
  }
  EXPECT_TRUE(peek_jsonrpc("[" + std::string(63, '1') + "]"));
  EXPECT_TRUE(peek_jsonrpc(std::string(512, '[') + std::string(512, ']')));
}

// Many inputs: the seeds above, cut, spliced and with bytes changed.
TEST(JsonRpcPeek, AgreesWithTheToolServerOnManyMutatedBodies) {
  std::vector<std::string> seeds = {
      kCall,
      R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_snippet","arguments":{"snippetname":"x"}}}])",
      R"({"jsonrpc":"2.0","id":"a\u00e9\ud83d\ude00","method":"tools\/call","params":{"n\u0061me":"save_snippet","arguments":[1,-2.5e3,true,false,null,{"k":"v"}]}})",
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
      R"({"jsonrpc":"2.0","id":3,"result":{"content":[]}})",
  };
  const std::string alphabet = "{}[]:,\"\\u0123456789abcdefABCDEF-+.eEtrunlsfmhodpa \t\n\r\x01\x7f\xc3\xa9";
  std::mt19937 rng(1234);
  int read = 0, total = 0;
  for (int round = 0; round < 60000; ++round) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 5) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 2: s.erase(at, 1 + rng() % 3); break;
        case 3: {  // splice a piece of another seed
          const std::string& o = seeds[rng() % seeds.size()];
          size_t from = rng() % o.size();
          s.insert(at, o.substr(from, rng() % 40));
          break;
        }
        default: {  // duplicate a piece of itself (repeated keys)
          size_t from = rng() % s.size();
          s.insert(at, s.substr(from, rng() % 60));
        }
      }
    }
    ++total;
    if (agrees(s)) ++read;
    if (HasFailure()) break;
  }
  // the mutations must also produce readable bodies, or the test shows little
  EXPECT_GT(read, total / 50) << read << " of " << total << " read";
}
