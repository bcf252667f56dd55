// The gateway's counters (metrics.hpp): which slot each event adds to, the
// histogram's buckets, and the text exposition rendered from the slots.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "metrics.hpp"

namespace {

using namespace mcpauth;
namespace m = mcpauth::metrics;

mcpa_gauges_t no_gauges() {
  mcpa_gauges_t g;
  g.sessions = g.pending_logins = g.guarded_streams = g.zone_bytes_used = g.zone_bytes_total = g.redis_up = -1;
  return g;
}

// The value of the exposition line that starts with `series` (name and
// labels, exactly), or "" when there is none.
std::string sample(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  at += series.size() + 2;
  return text.substr(at, text.find('\n', at) - at);
}

std::string render(const std::vector<uint64_t>& slots, const std::vector<std::string_view>& tools = {},
                   mcpa_gauges_t g = no_gauges()) {
  return m::render(slots.data(), slots.size(), tools, g);
}

TEST(Metrics, EveryFamilyHasHelpAndTypeAndStartsAtZero) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  std::string text = render(slots);
  for (const char* family : {"mcp_auth_registrations_total", "mcp_auth_logins_total", "mcp_auth_token_requests_total",
                             "mcp_auth_refresh_reuse_total", "mcp_auth_guard_decisions_total",
                             "mcp_auth_tool_calls_total", "mcp_auth_fetch_duration_seconds"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
    EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
  }
  EXPECT_EQ(sample(text, "mcp_auth_refresh_reuse_total"), "0");
  EXPECT_EQ(sample(text, R"(mcp_auth_token_requests_total{grant_type="refresh_token",result="invalid_grant"})"), "0");
}

TEST(Metrics, AnEventAddsToItsSeriesAndAnUnknownWordToOther) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  Event token;
  token.kind = MCPA_EV_TOKEN;
  token.grant_type = "password";           // not one we serve
  token.outcome = "unsupported_grant_type";
  m::attach(token);
  Event odd;
  odd.kind = MCPA_EV_REGISTRATION;
  odd.outcome = "made-up-error";
  m::attach(odd);
  Event denied;
  denied.kind = MCPA_EV_CONSENT;
  denied.outcome = "denied";
  m::attach(denied);
  for (const Event* e : {&token, &odd, &denied})
    for (int slot : e->metric)
      if (slot >= 0) slots.at(size_t(slot))++;
  std::string text = render(slots);
  EXPECT_EQ(sample(text, R"(mcp_auth_token_requests_total{grant_type="other",result="unsupported_grant_type"})"),
            "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_registrations_total{result="other"})"), "1");
  // a denial at the consent page ends the login too
  EXPECT_EQ(sample(text, R"(mcp_auth_consents_total{outcome="denied"})"), "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_logins_total{outcome="denied"})"), "1");
}

TEST(Metrics, EverySlotIsOneSeries) {
  std::set<int> seen;
  for (int r = 0; r < int(m::GuardReason::count); ++r)
    EXPECT_TRUE(seen.insert(m::guard_slot(m::GuardReason(r))).second);
  EXPECT_TRUE(seen.insert(m::step_up_slot()).second);
  for (int t = -1; t < MCPA_METRICS_TOOLS; ++t)
    for (bool allowed : {true, false}) {
      int slot = m::tool_slot(t, allowed);
      EXPECT_GE(size_t(slot), m::fixed_slots());
      EXPECT_LT(size_t(slot), m::all_slots());
      EXPECT_TRUE(seen.insert(slot).second) << t;
    }
  // past the table: other
  EXPECT_EQ(m::tool_slot(MCPA_METRICS_TOOLS + 5, true), m::tool_slot(-1, true));
}

TEST(Metrics, ToolNamesAreTheConfigurationsAndEscaped) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  slots[size_t(m::tool_slot(1, false))] = 3;
  slots[size_t(m::tool_slot(-1, true))] = 7;
  std::string text = render(slots, {"hello_mcp", "we\"ird\\na\nme"});
  EXPECT_EQ(sample(text, R"(mcp_auth_tool_calls_total{tool="we\"ird\\na\nme",outcome="denied"})"), "3");
  EXPECT_EQ(sample(text, R"(mcp_auth_tool_calls_total{tool="other",outcome="allowed"})"), "7");
  EXPECT_EQ(sample(text, R"(mcp_auth_tool_calls_total{tool="hello_mcp",outcome="allowed"})"), "0");
}

TEST(Metrics, TheFetchHistogramIsCumulativeWithItsSumInSeconds) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  auto observe = [&](mcpa_metric_e what, int a, int64_t b) {
    int s[MCPA_EVENT_METRICS];
    int64_t amounts[MCPA_EVENT_METRICS];
    m::observe(what, a, b, s, amounts);
    for (int i = 0; i < MCPA_EVENT_METRICS && s[i] >= 0; ++i) slots.at(size_t(s[i])) += uint64_t(amounts[i]);
  };
  observe(MCPA_M_FETCH_SECONDS, MCPA_FETCH_PROVIDER_TOKEN, 5000);      // le 0.005
  observe(MCPA_M_FETCH_SECONDS, MCPA_FETCH_PROVIDER_TOKEN, 5001);      // le 0.01
  observe(MCPA_M_FETCH_SECONDS, MCPA_FETCH_PROVIDER_TOKEN, 12000000);  // past 10 s
  observe(MCPA_M_FETCH, MCPA_FETCH_PROVIDER_TOKEN, 200);
  observe(MCPA_M_FETCH, MCPA_FETCH_PROVIDER_TOKEN, 0);
  observe(MCPA_M_FETCH, MCPA_FETCH_PROVIDER_JWKS, 503);
  std::string text = render(slots);
  const std::string b = R"(mcp_auth_fetch_duration_seconds_bucket{target="provider_token",le=")";
  EXPECT_EQ(sample(text, b + R"(0.005"})"), "1");
  EXPECT_EQ(sample(text, b + R"(0.01"})"), "2");
  EXPECT_EQ(sample(text, b + R"(10"})"), "2");
  EXPECT_EQ(sample(text, b + R"(+Inf"})"), "3");
  EXPECT_EQ(sample(text, R"(mcp_auth_fetch_duration_seconds_count{target="provider_token"})"), "3");
  EXPECT_EQ(sample(text, R"(mcp_auth_fetch_duration_seconds_sum{target="provider_token"})"), "12.010001");
  EXPECT_EQ(sample(text, R"(mcp_auth_fetches_total{target="provider_token",outcome="ok"})"), "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_fetches_total{target="provider_token",outcome="unreachable"})"), "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_fetches_total{target="provider_jwks",outcome="http_error"})"), "1");
}

TEST(Metrics, ResponsesByEndpointAndClass) {
  int s[MCPA_EVENT_METRICS];
  int64_t amounts[MCPA_EVENT_METRICS];
  m::observe(MCPA_M_RESPONSE, MCPA_M_EP_GUARDED, 502, s, amounts);
  std::vector<uint64_t> slots(m::all_slots(), 0);
  slots.at(size_t(s[0]))++;
  EXPECT_EQ(s[1], -1);
  m::observe(MCPA_M_RESPONSE, MCPA_EP_TOKEN, 503, s, amounts);  // a 5xx, and a 503
  slots.at(size_t(s[0]))++;
  slots.at(size_t(s[1]))++;
  EXPECT_EQ(sample(render(slots), R"(mcp_auth_unavailable_total{endpoint="token"})"), "1");
  EXPECT_EQ(sample(render(slots), R"(mcp_auth_responses_total{endpoint="token",class="5xx"})"), "1");
  m::observe(MCPA_M_RESPONSE, 9999, 200, s, amounts);  // not an endpoint: nothing
  EXPECT_EQ(s[0], -1);
  EXPECT_EQ(sample(render(slots), R"(mcp_auth_responses_total{endpoint="mcp",class="5xx"})"), "1");
}

TEST(Metrics, GaugesOnlyWhenKnown) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  mcpa_gauges_t g = no_gauges();
  g.sessions = 4;
  g.redis_up = 0;
  std::string text = render(slots, {}, g);
  EXPECT_EQ(sample(text, "mcp_auth_sessions"), "4");
  EXPECT_EQ(sample(text, "mcp_auth_redis_up"), "0");
  EXPECT_EQ(text.find("mcp_auth_zone_size_bytes"), std::string::npos);
  EXPECT_NE(text.find("# TYPE mcp_auth_sessions gauge"), std::string::npos);
}

TEST(Metrics, KeyClasses) {
  EXPECT_EQ(m::key_class("session:abc"), 1);
  EXPECT_EQ(m::key_class("code:xyz"), 2);
  EXPECT_EQ(m::key_class("sessio"), 0);
  EXPECT_EQ(m::key_class("stepup:abc"), 0);
}

}  // namespace

TEST(Metrics, ToolsListFilterOutcomes) {
  std::vector<uint64_t> slots(m::all_slots(), 0);
  int s[MCPA_EVENT_METRICS];
  int64_t amounts[MCPA_EVENT_METRICS];
  for (int outcome : {MCPA_FILTER_FILTERED, MCPA_FILTER_FILTERED, MCPA_FILTER_UNCHANGED, MCPA_FILTER_NOT_FILTERABLE,
                      MCPA_FILTER_TOO_LARGE}) {
    m::observe(MCPA_M_TOOLS_LIST_FILTER, outcome, 0, s, amounts);
    ASSERT_GE(s[0], 0);
    EXPECT_EQ(s[1], -1);
    slots.at(size_t(s[0]))++;
  }
  m::observe(MCPA_M_TOOLS_LIST_FILTER, 99, 0, s, amounts);  // no such outcome: nothing
  EXPECT_EQ(s[0], -1);
  std::string text = render(slots);
  EXPECT_NE(text.find("# TYPE mcp_auth_tools_list_filter_total counter"), std::string::npos);
  EXPECT_EQ(sample(text, R"(mcp_auth_tools_list_filter_total{outcome="filtered"})"), "2");
  EXPECT_EQ(sample(text, R"(mcp_auth_tools_list_filter_total{outcome="unchanged"})"), "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_tools_list_filter_total{outcome="not_filterable"})"), "1");
  EXPECT_EQ(sample(text, R"(mcp_auth_tools_list_filter_total{outcome="too_large"})"), "1");
}
