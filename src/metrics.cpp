#include "metrics.hpp"

#include <array>
#include <cstdio>

namespace mcpauth::metrics {
namespace {

// Upper bounds of the fetch latency histogram, in microseconds; one more
// bucket past the last holds the slower ones (le="+Inf").
constexpr std::array<int64_t, 11> kBucketsUs = {5000,   10000,   25000,   50000,   100000, 250000,
                                                500000, 1000000, 2500000, 5000000, 10000000};
constexpr const char* kBucketsLe[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                      "0.5",   "1",    "2.5",   "5",    "10"};
constexpr size_t kHistogramSlots = kBucketsUs.size() + 2;  // buckets, +Inf, sum in µs

const GuardReasonName kGuardReasons[] = {
    {"allowed", "none"},
    {"preflight", "none"},
    {"unauthorized", "missing_token"},
    {"unauthorized", "malformed_token"},
    {"unauthorized", "foreign_token"},
    {"unauthorized", "token_expired"},
    {"unauthorized", "wrong_resource"},
    {"bad_request", "token_in_query"},
    {"unauthorized", "session_ended"},
    {"unauthorized", "provider_session_ended"},
    {"forbidden", "insufficient_scope"},
    {"forbidden", "scope_not_grantable"},
    {"forbidden", "claim_required"},
    {"bad_request", "unreadable_body"},
    {"bad_request", "header_mismatch"},
    {"unavailable", "store_unavailable"},
    {"error", "server_error"},
    {"too_many_requests", "rate_limited"},
};
static_assert(sizeof(kGuardReasons) / sizeof(kGuardReasons[0]) == size_t(GuardReason::count));

using Words = std::vector<std::string_view>;

const Words kRegistrationResults = {"ok", "invalid_request", "invalid_redirect_uri", "invalid_client_metadata",
                                    "temporarily_unavailable", "server_error", "other"};
const Words kAuthorizeResults = {"ok", "invalid_request", "invalid_client", "unauthorized_client", "invalid_scope",
                                 "invalid_target", "unsupported_response_type", "access_denied",
                                 "temporarily_unavailable", "server_error", "other"};
const Words kLoginOutcomes = {"completed", "denied", "not_admitted", "client_disabled", "provider_error", "timed_out",
                                "failed"};
const Words kConsentOutcomes = {"allowed", "denied"};
const Words kGrantTypes = {"authorization_code", "refresh_token", "token_exchange", "client_credentials", "jwt_bearer",
                           "other"};
const Words kTokenResults = {"ok", "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                             "unsupported_grant_type", "invalid_scope", "invalid_target",
                             "temporarily_unavailable", "server_error", "other"};
const Words kRevocationResults = {"revoked", "unknown", "error"};
const Words kRenewalOutcomes = {"renewed", "ended", "failed"};
const Words kFetchTargets = {"provider_token", "provider_jwks", "client_metadata", "issuer_jwks"};
const Words kFetchOutcomes = {"ok", "http_error", "unreachable"};
const Words kStoreErrors = {"full", "unavailable"};
const Words kEndpoints = {"authorization_server_metadata", "protected_resource_metadata", "register", "authorize",
                          "consent", "callback", "token", "revoke", "mcp", "status", "metrics", "admin", "account"};
const Words kClasses = {"2xx", "3xx", "4xx", "5xx"};
const Words kToolOutcomes = {"allowed", "denied"};
const Words kAdminActions = {"sessions_listed", "sessions_ended", "clients_listed", "client_disabled",
                              "client_enabled", "refused"};
// in the order of mcpa_filter_e
const Words kFilterOutcomes = {"filtered", "unchanged", "not_filterable", "too_large"};
const Words kExchangeMethods = {"token_exchange", "on_behalf_of", "refresh_token", "none"};
const Words kExchangeOutcomes = {"issued", "cached", "invalid_request", "invalid_client", "invalid_target",
                                 "invalid_scope", "invalid_grant", "provider_refused", "provider_unavailable",
                                 "temporarily_unavailable", "server_error", "other"};
const Words kQuotaPer = {"subject", "client"};
const Words kQuotaCounts = {"requests", "tool_calls"};

// One metric family: its series are the label values in `a` (times those
// in `b`, when it has a second label), each one slot, from `base` on.
struct Family {
  const char* name;
  const char* help;
  const char* label_a = nullptr;
  const Words* a = nullptr;
  const char* label_b = nullptr;
  const Words* b = nullptr;
  size_t base = 0;

  size_t size() const { return (a ? a->size() : 1) * (b ? b->size() : 1); }
};

enum FamilyId {
  kRegistrations,
  kAuthorize,
  kLoginsStarted,
  kLogins,
  kConsents,
  kToken,
  kRefreshReuse,
  kRevocations,
  kStepUps,
  kRenewals,
  kFetches,
  kStoreErrorsF,
  kResponses,
  kStreamsClosed,
  kUnavailable,
  kToolsListFilter,
  kAdmin,
  kRateLimited,
  kExchanges,
  kFamilies
};

struct Catalogue {
  std::array<Family, kFamilies> families;
  size_t guard_base = 0;      // the guard's decisions, one slot per reason
  size_t histogram_base = 0;  // per fetch target: kHistogramSlots
  size_t fixed = 0;

  Catalogue() {
    static const Words kSessionEnded = {"session_ended"};
    families = {{
        {"mcp_auth_registrations_total", "Dynamic client registrations (RFC 7591), by result.", "result",
         &kRegistrationResults},
        {"mcp_auth_authorize_requests_total", "Authorization requests at /authorize, by result.", "result",
         &kAuthorizeResults},
        {"mcp_auth_logins_started_total", "Users sent to the identity provider to sign in."},
        {"mcp_auth_logins_total", "Sign-ins that ended, by outcome.", "outcome", &kLoginOutcomes},
        {"mcp_auth_consents_total", "Answers on the consent page.", "outcome", &kConsentOutcomes},
        {"mcp_auth_token_requests_total", "Token requests, by grant type and result (RFC 6749 error code).",
         "grant_type", &kGrantTypes, "result", &kTokenResults},
        {"mcp_auth_refresh_reuse_total",
         "Refresh tokens presented again after they were used: the sign-in is revoked (theft)."},
        {"mcp_auth_revocations_total", "Revocation requests (RFC 7009), by result.", "result", &kRevocationResults},
        {"mcp_auth_step_ups_total", "Requests refused for a scope the token lacks, asking the client to step up."},
        {"mcp_auth_provider_renewals_total", "Renewals of the identity provider's token, by outcome.", "outcome",
         &kRenewalOutcomes},
        {"mcp_auth_fetches_total", "Calls to the identity provider and to client metadata documents.", "target",
         &kFetchTargets, "outcome", &kFetchOutcomes},
        {"mcp_auth_store_errors_total", "Store operations that failed: the zone full, Redis unavailable.", "error",
         &kStoreErrors},
        {"mcp_auth_responses_total", "Responses of the gateway's locations, by endpoint and status class.",
         "endpoint", &kEndpoints, "class", &kClasses},
        {"mcp_auth_streams_closed_total", "Guarded event streams closed by the gateway.", "reason", &kSessionEnded},
        {"mcp_auth_unavailable_total",
         "503 responses (a store or provider out of reach, the zone full), by endpoint; also in responses_total.",
         "endpoint", &kEndpoints},
        {"mcp_auth_tools_list_filter_total",
         "tools/list answers the gateway filtered (mcp_auth_filter_tools), by outcome: tools removed, nothing to "
         "remove, passed as they were (not read exactly, or larger than the limit).",
         "outcome", &kFilterOutcomes},
        {"mcp_auth_admin_actions_total",
         "Requests to the admin API, by action (refused: no or a wrong key).", "action", &kAdminActions},
        {"mcp_auth_rate_limited_total",
         "MCP requests refused with 429 for a quota (mcp_auth_limit), by what the quota is per and what it counts "
         "(every request, or the calls of one tool).",
         "per", &kQuotaPer, "counts", &kQuotaCounts},
        {"mcp_auth_token_exchanges_total",
         "Token exchanges asked for by backends (RFC 8693), by how the provider is asked for the audience (none: "
         "refused before that was known) and outcome: issued by the provider, answered from the cache, refused "
         "(an error code, or the provider's refusal), the provider unreachable.",
         "method", &kExchangeMethods, "outcome", &kExchangeOutcomes},
    }};
    size_t next = 0;
    for (auto& f : families) {
      f.base = next;
      next += f.size();
    }
    guard_base = next;
    next += size_t(GuardReason::count);
    histogram_base = next;
    next += kFetchTargets.size() * kHistogramSlots;
    fixed = next;
  }
};

const Catalogue& catalogue() {
  static const Catalogue c;
  return c;
}

// The index of w in words, else that of "other" when the family has one,
// else -1.
int index_of(const Words& words, std::string_view w) {
  int other = -1;
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == w) return int(i);
    if (words[i] == "other") other = int(i);
  }
  return other;
}

int slot(FamilyId id, std::string_view a = {}, std::string_view b = {}) {
  const Family& f = catalogue().families[id];
  int ia = f.a ? index_of(*f.a, a) : 0;
  int ib = f.b ? index_of(*f.b, b) : 0;
  if (ia < 0 || ib < 0) return -1;
  return int(f.base + size_t(ia) * (f.b ? f.b->size() : 1) + size_t(ib));
}

int slot_at(FamilyId id, size_t ia, size_t ib = 0) {
  const Family& f = catalogue().families[id];
  if ((f.a && ia >= f.a->size()) || (f.b && ib >= f.b->size())) return -1;
  return int(f.base + ia * (f.b ? f.b->size() : 1) + ib);
}

int fetch_target_index(int target) {
  switch (target) {
    case MCPA_FETCH_PROVIDER_TOKEN: return 0;
    case MCPA_FETCH_PROVIDER_JWKS: return 1;
    case MCPA_FETCH_CLIENT_METADATA: return 2;
    case MCPA_FETCH_ISSUER_JWKS: return 3;
    default: return -1;
  }
}

int endpoint_index(int ep) {
  if (ep >= MCPA_EP_AUTHORIZATION_SERVER_METADATA && ep <= MCPA_EP_REVOKE) return ep - 1;
  switch (ep) {
    case MCPA_M_EP_GUARDED: return 8;
    case MCPA_M_EP_STATUS: return 9;
    case MCPA_M_EP_METRICS: return 10;
    case MCPA_EP_ADMIN: return 11;
    case MCPA_EP_ACCOUNT: return 12;
    default: return -1;
  }
}

// A label value as the text format wants it (backslash, quote, newline).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  out.append(buf, size_t(n));
}

void append_head(std::string& out, const char* name, const char* type, const char* help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// name{la="va",lb="vb"} value
void append_sample(std::string& out, std::string_view name, const char* la, std::string_view va, const char* lb,
                   std::string_view vb, uint64_t value) {
  out.append(name);
  if (la) {
    out.append("{").append(la).append("=\"");
    append_label_value(out, va);
    out.append("\"");
    if (lb) {
      out.append(",").append(lb).append("=\"");
      append_label_value(out, vb);
      out.append("\"");
    }
    out.append("}");
  }
  out.append(" ");
  append_number(out, value);
  out.append("\n");
}

uint64_t at(const uint64_t* slots, size_t n, size_t i) { return i < n ? slots[i] : 0; }

}  // namespace

const GuardReasonName& guard_reason_name(GuardReason r) { return kGuardReasons[size_t(r)]; }

size_t fixed_slots() { return catalogue().fixed; }
size_t all_slots() { return fixed_slots() + (MCPA_METRICS_TOOLS + 1) * kToolOutcomes.size(); }

int guard_slot(GuardReason r) { return int(catalogue().guard_base + size_t(r)); }
int step_up_slot() { return slot(kStepUps); }
int renewal_slot(std::string_view outcome) { return slot(kRenewals, outcome); }
int rate_limited_slot(bool per_client, bool tool_calls) {
  return slot_at(kRateLimited, per_client ? 1 : 0, tool_calls ? 1 : 0);
}

int tool_slot(int tool, bool allowed) {
  size_t i = tool >= 0 && tool < MCPA_METRICS_TOOLS ? size_t(tool) : MCPA_METRICS_TOOLS;
  return int(fixed_slots() + i * kToolOutcomes.size() + (allowed ? 0 : 1));
}

void attach(Event& e) {
  int* m = e.metric;
  switch (e.kind) {
    case MCPA_EV_REGISTRATION: m[0] = slot(kRegistrations, e.outcome); break;
    case MCPA_EV_AUTHORIZE: m[0] = slot(kAuthorize, e.outcome); break;
    case MCPA_EV_LOGIN_STARTED: m[0] = slot(kLoginsStarted); break;
    case MCPA_EV_LOGIN: m[0] = slot(kLogins, e.outcome); break;
    case MCPA_EV_CONSENT:
      m[0] = slot(kConsents, e.outcome);
      if (e.outcome == "denied") m[1] = slot(kLogins, "denied");
      break;
    case MCPA_EV_TOKEN: m[0] = slot(kToken, e.grant_type, e.outcome); break;
    case MCPA_EV_REFRESH_REUSE: m[0] = slot(kRefreshReuse); break;
    case MCPA_EV_REVOCATION: m[0] = slot(kRevocations, e.outcome); break;
    case MCPA_EV_PROVIDER_RENEWAL: m[0] = slot(kRenewals, e.outcome); break;
    case MCPA_EV_ADMIN: m[0] = slot(kAdmin, e.outcome); break;
    case MCPA_EV_EXCHANGE: m[0] = slot(kExchanges, e.grant_type, e.outcome); break;
    default: break;
  }
}

void observe(mcpa_metric_e m, int a, int64_t b, int* slots, int64_t* amounts) {
  for (int i = 0; i < MCPA_EVENT_METRICS; ++i) {
    slots[i] = -1;
    amounts[i] = 1;
  }
  switch (m) {
    case MCPA_M_FETCH: {
      int t = fetch_target_index(a);
      if (t < 0) return;
      size_t outcome = b == 0 ? 2 : (b >= 200 && b < 300) ? 0 : 1;
      slots[0] = slot_at(kFetches, size_t(t), outcome);
      return;
    }
    case MCPA_M_FETCH_SECONDS: {
      int t = fetch_target_index(a);
      if (t < 0) return;
      size_t base = catalogue().histogram_base + size_t(t) * kHistogramSlots;
      size_t bucket = 0;
      while (bucket < kBucketsUs.size() && b > kBucketsUs[bucket]) ++bucket;
      slots[0] = int(base + bucket);
      slots[1] = int(base + kBucketsUs.size() + 1);
      amounts[1] = b < 0 ? 0 : b;
      return;
    }
    case MCPA_M_RESPONSE: {
      int ep = endpoint_index(a);
      if (ep < 0) return;
      size_t cls = b < 300 ? 0 : b < 400 ? 1 : b < 500 ? 2 : 3;
      slots[0] = slot_at(kResponses, size_t(ep), cls);
      if (b == 503) slots[1] = slot_at(kUnavailable, size_t(ep));
      return;
    }
    case MCPA_M_STREAM_CLOSED: slots[0] = slot(kStreamsClosed, "session_ended"); return;
    case MCPA_M_STORE_ERROR: slots[0] = slot_at(kStoreErrorsF, a == MCPA_FULL ? 0 : 1); return;
    case MCPA_M_TOOLS_LIST_FILTER:
      if (a >= 0) slots[0] = slot_at(kToolsListFilter, size_t(a));
      return;
  }
}

int key_class(std::string_view key) {
  if (key.substr(0, 8) == "session:") return 1;
  if (key.substr(0, 5) == "code:") return 2;
  return 0;
}

std::string render(const uint64_t* slots, size_t n, const std::vector<std::string_view>& tools,
                   const mcpa_gauges_t& g) {
  const Catalogue& c = catalogue();
  std::string out;
  out.reserve(16384);

  for (const Family& f : c.families) {
    append_head(out, f.name, "counter", f.help);
    size_t na = f.a ? f.a->size() : 1, nb = f.b ? f.b->size() : 1;
    for (size_t i = 0; i < na; ++i)
      for (size_t j = 0; j < nb; ++j)
        append_sample(out, f.name, f.label_a, f.a ? (*f.a)[i] : "", f.label_b, f.b ? (*f.b)[j] : "",
                      at(slots, n, f.base + i * nb + j));
  }

  append_head(out, "mcp_auth_guard_decisions_total", "counter",
              "Decisions on MCP requests at the guard, by outcome and reason.");
  for (size_t r = 0; r < size_t(GuardReason::count); ++r)
    append_sample(out, "mcp_auth_guard_decisions_total", "outcome", kGuardReasons[r].outcome, "reason",
                  kGuardReasons[r].reason, at(slots, n, c.guard_base + r));

  append_head(out, "mcp_auth_tool_calls_total", "counter",
              "Tool calls seen by the guard, by tool (those of the configuration, else other) and outcome.");
  size_t ntools = tools.size() < MCPA_METRICS_TOOLS ? tools.size() : MCPA_METRICS_TOOLS;
  for (size_t t = 0; t <= ntools; ++t) {
    std::string_view name = t < ntools ? tools[t] : "other";
    size_t i = t < ntools ? t : MCPA_METRICS_TOOLS;
    for (size_t o = 0; o < kToolOutcomes.size(); ++o)
      append_sample(out, "mcp_auth_tool_calls_total", "tool", name, "outcome", kToolOutcomes[o],
                    at(slots, n, c.fixed + i * kToolOutcomes.size() + o));
  }

  const char* h = "mcp_auth_fetch_duration_seconds";
  append_head(out, h, "histogram", "Time the identity provider (or a client metadata document's host) took to answer.");
  for (size_t t = 0; t < kFetchTargets.size(); ++t) {
    size_t base = c.histogram_base + t * kHistogramSlots;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kBucketsUs.size(); ++b) {
      cumulative += at(slots, n, base + b);
      append_sample(out, "mcp_auth_fetch_duration_seconds_bucket", "target", kFetchTargets[t], "le",
                    b < kBucketsUs.size() ? kBucketsLe[b] : "+Inf", cumulative);
    }
    uint64_t us = at(slots, n, base + kBucketsUs.size() + 1);
    char sum[48];
    std::snprintf(sum, sizeof sum, "%llu.%06llu", static_cast<unsigned long long>(us / 1000000),
                  static_cast<unsigned long long>(us % 1000000));
    out.append(h).append("_sum{target=\"").append(kFetchTargets[t]).append("\"} ").append(sum).append("\n");
    append_sample(out, std::string(h) + "_count", "target", kFetchTargets[t], nullptr, "", cumulative);
  }

  struct Gauge {
    const char* name;
    const char* help;
    int64_t value;
  };
  const Gauge gauges[] = {
      {"mcp_auth_sessions", "Live sessions in the store.", g.sessions},
      {"mcp_auth_pending_logins", "Sign-ins finished at the gateway whose code the client has not redeemed yet.",
       g.pending_logins},
      {"mcp_auth_guarded_streams", "Guarded event streams open now.", g.guarded_streams},
      {"mcp_auth_zone_used_bytes", "Bytes of the shared-memory zone in use.", g.zone_bytes_used},
      {"mcp_auth_zone_size_bytes", "Size of the shared-memory zone.", g.zone_bytes_total},
      {"mcp_auth_redis_up", "0 when the last attempt of a worker to reach Redis failed, else 1.", g.redis_up},
  };
  for (const Gauge& gg : gauges) {
    if (gg.value < 0) continue;
    append_head(out, gg.name, "gauge", gg.help);
    append_sample(out, gg.name, nullptr, "", nullptr, "", uint64_t(gg.value));
  }
  return out;
}

}  // namespace mcpauth::metrics
