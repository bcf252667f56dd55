#include <gtest/gtest.h>

#include "tool_policy.hpp"

using namespace mcpauth;

namespace {

McpCall call(const char* method, const char* name) {
  McpCall c;
  c.method = method;
  c.name = name;
  return c;
}

ToolPolicy policy(const char* text) {
  std::string err;
  auto p = ToolPolicy::parse(text, &err);
  EXPECT_TRUE(p) << err;
  return *p;
}

}  // namespace

TEST(ToolPolicy, ToolCallNeedsItsToolsScopes) {
  auto p = policy("save_snippet snippets:write\nget_snippet snippets:read\n");
  EXPECT_EQ(p.required(call("tools/call", "save_snippet")), std::vector<std::string>{"snippets:write"});
  EXPECT_EQ(p.required(call("tools/call", "get_snippet")), std::vector<std::string>{"snippets:read"});
  EXPECT_TRUE(p.required(call("tools/call", "hello_mcp")).empty());
}

TEST(ToolPolicy, MethodRulesAddToToolRules) {
  auto p = policy("tools/call mcp:tools\nsave_snippet snippets:write snippets:read\n");
  EXPECT_EQ(p.required(call("tools/call", "save_snippet")),
            (std::vector<std::string>{"mcp:tools", "snippets:write", "snippets:read"}));
  EXPECT_EQ(p.required(call("tools/list", "")), std::vector<std::string>{});
}

TEST(ToolPolicy, AToolNamedLikeAMethodDoesNotBorrowItsRule) {
  auto p = policy("tools/list admin\n");
  EXPECT_TRUE(p.required(call("tools/call", "tools/list")).empty());
}

TEST(ToolPolicy, InvalidScopeIsRefusedWithItsName) {
  std::string err;
  EXPECT_FALSE(ToolPolicy::parse("save_snippet bad\"scope\n", &err));
  EXPECT_NE(err.find("bad\"scope"), std::string::npos);
}

TEST(PeekJsonRpc, FindsMethodAndToolNameOfOneMessage) {
  auto calls = peek_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"save_snippet","arguments":{}}})");
  ASSERT_TRUE(calls);
  ASSERT_EQ(calls->size(), 1u);
  EXPECT_EQ((*calls)[0].method, "tools/call");
  EXPECT_EQ((*calls)[0].name, "save_snippet");
}

TEST(PeekJsonRpc, FindsEveryCallOfABatch) {
  auto calls = peek_jsonrpc(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}])");
  ASSERT_TRUE(calls);
  ASSERT_EQ(calls->size(), 2u);
  EXPECT_EQ((*calls)[1].name, "x");
}

TEST(PeekJsonRpc, NotJsonIsNullopt) {
  EXPECT_FALSE(peek_jsonrpc("{nope"));
  // JSON but no call in it: nothing to authorize (the tool server answers it)
  auto none = peek_jsonrpc("[1,2]");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(MissingScopes, ListsOnlyWhatIsNotGranted) {
  EXPECT_EQ(missing_scopes({"a", "b", "c"}, "b  a"), std::vector<std::string>{"c"});
  EXPECT_TRUE(missing_scopes({}, "").empty());
  EXPECT_EQ(missing_scopes({"snippets:read"}, "snippets:readwrite"), std::vector<std::string>{"snippets:read"});
}
