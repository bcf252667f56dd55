// filter_tools_list_json / _sse (mcp_auth_filter_tools): what stays of a
// tools/list answer, and that anything the filter cannot read exactly is
// left as it is.
#include <gtest/gtest.h>

#include <string>

#include "mcp_auth.h"
#include "tools_list_filter.hpp"

using namespace mcpauth;

namespace {

// "read" and "search" may be called; everything else not.
bool allowed(std::string_view name) { return name == "read" || name == "search"; }

const char kList[] =
    R"({"jsonrpc":"2.0","id":7,"result":{"tools":[)"
    R"({"name":"read","description":"Reads",)"
    R"("inputSchema":{"type":"object","properties":{"n":{"type":"integer","minimum":1.5}}}},)"
    R"({"name":"delete","description":"Deletes"},)"
    R"({"name":"search","annotations":{"readOnlyHint":true}}],"nextCursor":"c2"},"_extra":[null,false,"x"]})";

const char kFiltered[] =
    R"({"jsonrpc":"2.0","id":7,"result":{"tools":[)"
    R"({"name":"read","description":"Reads",)"
    R"("inputSchema":{"type":"object","properties":{"n":{"type":"integer","minimum":1.5}}}},)"
    R"({"name":"search","annotations":{"readOnlyHint":true}}],"nextCursor":"c2"},"_extra":[null,false,"x"]})";

ToolsListFiltered json(std::string_view body) { return filter_tools_list_json(body, allowed); }
ToolsListFiltered sse(std::string_view body) { return filter_tools_list_sse(body, allowed); }

}  // namespace

TEST(ToolsListFilterJson, RemovesWhatTheUserMayNotCallAndKeepsTheRest) {
  auto r = json(kList);
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, kFiltered);
}

TEST(ToolsListFilterJson, WhitespaceAroundTheDocumentIsFine) {
  auto r = json(std::string("\r\n ") + kList + "\n");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, kFiltered);
}

TEST(ToolsListFilterJson, NothingToRemoveIsUnchanged) {
  auto r = json(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"},{"name":"search"}]}})");
  EXPECT_EQ(r.outcome, ToolsListFiltered::unchanged);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(json(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})").outcome, ToolsListFiltered::unchanged);
}

TEST(ToolsListFilterJson, AllRemovedLeavesAnEmptyList) {
  auto r = json(R"({"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"x"},{"name":"delete"}]}})");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, R"({"jsonrpc":"2.0","id":"a","result":{"tools":[]}})");
}

TEST(ToolsListFilterJson, EntriesWithoutOneStringNameAreRemoved) {
  auto r = json(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[)"
                R"({"name":"read"},{"description":"no name"},{"name":7},"read",null,)"
                R"({"name":"read","name":"delete"},{"name":"search"}]}})");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"},{"name":"search"}]}})");
}

TEST(ToolsListFilterJson, OtherAnswersAreUnchanged) {
  for (const char* body : {
           R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}})",
           R"({"jsonrpc":"2.0","id":1,"result":{}})",
           R"({"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"delete"}]}})",
           R"({"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"delete"}}})",
           R"({"jsonrpc":"2.0","id":1,"result":"tools"})",
           R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})",
           R"({"jsonrpc":"2.0","id":2,"method":"x","result":{"tools":[{"name":"delete"}]}})",
       }) {
    auto r = json(body);
    EXPECT_EQ(r.outcome, ToolsListFiltered::unchanged) << body;
    EXPECT_TRUE(r.body.empty()) << body;
  }
}

TEST(ToolsListFilterJson, WhatCannotBeReadExactlyIsNotFilterable) {
  for (std::string body : {
           std::string(""),
           std::string("not json"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"}]}} trailing)"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"}]})"),  // cut short
           // a batch
           std::string(R"([{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"}]}}])"),
           std::string("42"),
           // members the filter reads, twice
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":[{"name":"delete"}]}})"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"delete"}]}})"),
           // what cJSON would not print back as it was
           std::string(R"({"jsonrpc":"2.0","id":12345678901234567890,"result":{"tools":[{"name":"delete"}]}})"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete","x":1e400}]}})"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete","d":"a\u0000b"}]}})"),
           std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"}]}})") + std::string(1, '\0'),
       }) {
    auto r = json(body);
    EXPECT_EQ(r.outcome, ToolsListFiltered::not_filterable) << body;
    EXPECT_TRUE(r.body.empty()) << body;
  }
}

TEST(ToolsListFilterJson, LongDigitRunsInStringsAreFine) {
  auto r = json(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete","d":"12345678901234567890\"1"}]}})");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})");
}

TEST(ToolsListFilterJson, EscapesSurviveThePrinting) {
  auto r = json(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read","description":"a\nb \"q\" \u00e9 \\"},)"
                R"({"name":"delete"}]}})");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"read\",\"description\":"
                    "\"a\\nb \\\"q\\\" \xC3\xA9 \\\\\"}]}}");
}

TEST(ToolsListFilterSse, FiltersTheResponseEventAndKeepsTheOthersByteForByte) {
  std::string body = std::string(": keep-alive\n\n") +
                     "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n" +
                     "event: message\nid: 2\ndata: " + kList + "\nretry: 1000\n\n";
  auto r = sse(body);
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, std::string(": keep-alive\n\n") +
                        "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n" +
                        "event: message\nid: 2\ndata: " + kFiltered + "\nretry: 1000\n\n");
}

TEST(ToolsListFilterSse, CrlfAndDataOverSeveralLines) {
  // the JSON split over three data lines (joined with "\n"), no space
  // after one colon, CRLF endings
  std::string body =
      "event: message\r\n"
      "data:{\"jsonrpc\":\"2.0\",\"id\":7,\r\n"
      "data: \"result\":{\"tools\":[{\"name\":\"delete\"},\r\n"
      "data: {\"name\":\"read\"}]}}\r\n"
      "\r\n"
      "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\r\n\r\n";
  auto r = sse(body);
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body,
            "event: message\r\n"
            "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"read\"}]}}\r\n"
            "\r\n"
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\r\n\r\n");
}

TEST(ToolsListFilterSse, SeveralResponsesAndBareCrEndings) {
  std::string one = R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete"},{"name":"search"}]}})";
  std::string body = "data: " + one + "\r\rdata: " + one + "\n\n";
  auto r = sse(body);
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  std::string kept = R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}})";
  EXPECT_EQ(r.body, "data: " + kept + "\r\rdata: " + kept + "\n\n");
}

TEST(ToolsListFilterSse, NothingToRemoveIsUnchanged) {
  EXPECT_EQ(sse("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"read\"}]}}\n\n")
                .outcome,
            ToolsListFiltered::unchanged);
  // an error, a priming event with no data, a comment, an empty stream
  EXPECT_EQ(sse("id: p1\ndata:\n\n: hi\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,"
                "\"error\":{\"code\":-32603,\"message\":\"x\"}}\n\n")
                .outcome,
            ToolsListFiltered::unchanged);
  EXPECT_EQ(sse("").outcome, ToolsListFiltered::unchanged);
}

TEST(ToolsListFilterSse, AnEventTheStreamDoesNotEndIsLeftAsItIs) {
  std::string whole = std::string("data: ") + kList + "\n\n";
  std::string cut = std::string("data: ") + kList + "\n";  // no blank line: clients drop it
  auto r = sse(whole + cut);
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, std::string("data: ") + kFiltered + "\n\n" + cut);
  EXPECT_EQ(sse(cut).outcome, ToolsListFiltered::unchanged);
}

TEST(ToolsListFilterSse, UnreadableDataIsNotFilterableAndLeftAsItIs) {
  EXPECT_EQ(sse("data: not json\n\n").outcome, ToolsListFiltered::not_filterable);
  EXPECT_EQ(sse(std::string("data: [") + kList + "]\n\n").outcome, ToolsListFiltered::not_filterable);
  // what can be read is filtered all the same
  auto r = sse(std::string("data: garbage\n\ndata: ") + kList + "\n\n");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, std::string("data: garbage\n\ndata: ") + kFiltered + "\n\n");
}

TEST(ToolsListFilterSse, ABomAtTheStartIsKept) {
  auto r = sse(std::string("\xEF\xBB\xBF") + "data: " + kList + "\n\n");
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, std::string("\xEF\xBB\xBF") + "data: " + kFiltered + "\n\n");
}

TEST(ToolsListFilterSse, AJsonBodyIsNotAStream) {
  // a JSON document read as a stream has no event that ends
  EXPECT_EQ(sse(kList).outcome, ToolsListFiltered::unchanged);
}

TEST(ToolsListFilterSse, TheResponsesEndInAStreamStillArriving) {
  const std::string head =
      ": hi\n\nid: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n";
  const std::string answer = std::string("event: message\r\ndata: ") + kList + "\r\n\r\n";
  const std::string stream = head + answer + ": keep-alive\n\n";
  size_t from = 0;
  // not whole yet: nothing, and the next look starts after the whole events
  EXPECT_EQ(sse_response_end(std::string_view(stream).substr(0, head.size() + 20), &from), 0u);
  EXPECT_EQ(from, head.size());
  // a CR at the end may be half a CRLF
  EXPECT_EQ(sse_response_end(std::string_view(stream).substr(0, head.size() + answer.size() - 1), &from), 0u);
  EXPECT_EQ(sse_response_end(stream, &from), head.size() + answer.size());
  EXPECT_EQ(from, head.size() + answer.size());
  // an error is an answer too; a request from the server is not
  from = 0;
  const std::string error = R"(data: {"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}})"
                            "\n\n";
  EXPECT_EQ(sse_response_end(error, &from), error.size());
  from = 0;
  EXPECT_EQ(sse_response_end(R"(data: {"jsonrpc":"2.0","id":9,"method":"sampling/createMessage"})"
                             "\n\ndata: x\n\n",
                             &from),
            0u);
  // what comes before the end filters alone
  from = 0;
  size_t end = sse_response_end(stream, &from);
  auto r = sse(std::string_view(stream).substr(0, end));
  ASSERT_EQ(r.outcome, ToolsListFiltered::filtered);
  EXPECT_EQ(r.body, head + "event: message\r\ndata: " + kFiltered + "\r\n\r\n");
}

// Through the C API: the tools a tools/call of would pass the guard stay.
TEST(ToolsListFilterCapi, KeepsWhatTheGuardWouldAllow) {
  const std::string issuer = "https://mcp.example", tools = "tools/call mcp:tools\nsave mcp:write\n",
                    claims = "tool\tsave\tgroups\teditors\ntool\tadmin\tgroups\tadmins\n";
  mcpa_settings_t s;
  mcpa_settings_init(&s);
  s.issuer = {issuer.data(), issuer.size()};
  s.tool_scopes = {tools.data(), tools.size()};
  s.claim_rules = {claims.data(), claims.size()};
  char err[256] = "";
  mcpa_config_t* cf = mcpa_config_build(&s, err, sizeof err);
  ASSERT_NE(cf, nullptr) << err;

  const std::string body = R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"},{"name":"save"},)"
                           R"({"name":"admin"}]}})";
  auto kept = [&](const std::string& scope, const std::string& record) {
    std::string out;
    int rc = mcpa_filter_tools_list(
        cf, {body.data(), body.size()}, 0, {scope.data(), scope.size()}, {record.data(), record.size()},
        [](void* ctx, const char* p, size_t n) { static_cast<std::string*>(ctx)->assign(p, n); }, &out);
    if (rc == MCPA_FILTER_UNCHANGED) return std::string("unchanged");
    EXPECT_EQ(rc, MCPA_FILTER_FILTERED);
    return out;
  };
  const std::string prefix = R"({"jsonrpc":"2.0","id":1,"result":{"tools":[)";
  EXPECT_EQ(kept("mcp:tools mcp:write", "groups=editors"), prefix + R"({"name":"read"},{"name":"save"}]}})");
  EXPECT_EQ(kept("mcp:tools mcp:write", "groups=admins,editors"), "unchanged");
  // a scope missing, for the tool or for every tools/call
  EXPECT_EQ(kept("mcp:tools", "groups=editors"), prefix + R"({"name":"read"}]}})");
  EXPECT_EQ(kept("mcp:write", "groups=admins,editors"), prefix + "]}}");
  // no claims, or claims that do not read: the claim rules' tools go
  EXPECT_EQ(kept("mcp:tools mcp:write", ""), prefix + R"({"name":"read"}]}})");
  EXPECT_EQ(kept("mcp:tools mcp:write", "groups=%zz"), prefix + R"({"name":"read"}]}})");
  // what cannot be read is not filterable
  std::string out;
  EXPECT_EQ(mcpa_filter_tools_list(cf, {"{", 1}, 0, {"", 0}, {"", 0}, nullptr, &out), MCPA_FILTER_NOT_FILTERABLE);
  mcpa_config_free(cf);
}
