// The gateway's counters: where each one lives in the flat array of slots
// the glue keeps in shared memory, which of them an event adds to, and the
// Prometheus text exposition of them all.  Every label value is a word of
// the core or a tool name of the configuration, so no client can add a
// series.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mcp_auth.h"
#include "response.hpp"

namespace mcpauth::metrics {

// Why the guard decided what it did; each is one series of
// mcp_auth_guard_decisions_total{outcome, reason}.
enum class GuardReason {
  allowed,
  preflight,
  missing_token,
  malformed_token,
  foreign_token,
  token_expired,
  wrong_resource,
  token_in_query,
  session_ended,
  provider_session_ended,
  insufficient_scope,
  scope_not_grantable,  // the scope is one the user's claims never allow
  claim_required,       // a tool rule's claim the user lacks
  unreadable_body,
  header_mismatch,
  store_unavailable,
  server_error,
  rate_limited,  // over a quota (mcp_auth_limit)
  count
};

struct GuardReasonName {
  std::string_view outcome;  // allowed, unauthorized, forbidden, bad_request, ...
  std::string_view reason;
};
const GuardReasonName& guard_reason_name(GuardReason r);

// Slots of the fixed counters, then the tool counters: two per tool name of
// the zone's table (allowed, denied), then two for "other".
size_t fixed_slots();
size_t all_slots();

int guard_slot(GuardReason r);
int step_up_slot();
int renewal_slot(std::string_view outcome);
// mcp_auth_rate_limited_total{per, counts}: per subject or client, counting
// requests or a tool's calls.
int rate_limited_slot(bool per_client, bool tool_calls);
// A tool's slot in the zone's table (-1: "other").
int tool_slot(int tool, bool allowed);

// Sets e.metric for an endpoint's event from its kind and labels.
void attach(Event& e);

// What the glue observed itself (mcpa_metrics_observe).
void observe(mcpa_metric_e m, int a, int64_t b, int* slots, int64_t* amounts);

// 1 a session, 2 an authorization code not yet redeemed, 0 anything else.
int key_class(std::string_view key);

std::string render(const uint64_t* slots, size_t nslots, const std::vector<std::string_view>& tools,
                   const mcpa_gauges_t& gauges);

}  // namespace mcpauth::metrics
