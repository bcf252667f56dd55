// The session-to-token check that runs on every MCP request
// (mcp_auth_protect): bearer token -> sealed claims -> live session ->
// per-tool scopes -> the identity asserted to the tool server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"
#include "identity_assertion.hpp"
#include "metrics.hpp"
#include "mirror_headers.hpp"
#include "quota.hpp"
#include "response.hpp"
#include "store.hpp"
#include "tool_policy.hpp"

namespace mcpauth {

// Settings of the guard (directives mcp_auth_identity_*, mcp_auth_tool_scope).
struct GuardSettings {
  std::string identity_key_file;
  std::string identity_issuer = "ngx_mcp_auth";
  std::string identity_audience = "mcp-tool-server";
  std::string tool_scopes;
  std::string metrics_tools;  // more tool names counted under their own label
  // Pass the provider's access token upstream (X-MCP-Provider-Token); off
  // by default: it widens what a compromised tool server can do.
  bool pass_provider_token = false;
  // Filter tools/list answers to the tools the user may call
  // (mcp_auth_filter_tools); answers larger than the limit pass untouched.
  bool filter_tools = false;
  int64_t filter_tools_max_size = 256 * 1024;
  // Quotas (mcp_auth_limit): one rule a line, and the rules load() makes
  // of them; whether one counts the calls of a tool (the body is read).
  std::string limits;
  std::vector<QuotaRule> quotas;
  bool quota_tools = false;

  std::optional<IdentityMinter> minter;
  ToolPolicy policy;
  // The tool names the metrics count under their own label (the rules' and
  // metrics_tools), and the counter of each one's allowed calls (its denied
  // calls' follows), from its place in the zone's table of names, which the
  // glue sets before workers start (set_tool_slot; "other" until then).
  std::vector<std::string> tools;
  std::vector<int> tool_counters;
  void set_tool_slot(size_t i, int slot);
  int tool_counter(std::string_view name) const;

  // Parses the rules and loads the identity key file when one is named;
  // "" or a message for nginx -t.
  std::string load();
  // What a location that guards MCP traffic needs: the identity key.
  std::string check_use() const;
};

// Views of the request: the caller keeps them alive for the call (the glue's
// request memory), so nothing is copied on the way in.
struct GuardInput {
  std::string_view method, authorization, args, origin, body;
  MirrorHeaders mirror;  // Mcp-Method, Mcp-Name
  bool body_read = false;
  int64_t now = 0;
  int64_t now_ms = 0;  // the quotas' clock; 0: now in whole seconds
};

struct GuardOutcome {
  // fetch: renew the provider's token first (response.fetch), then
  // guard_resume() with its answer.
  enum Verdict { allow, deny, need_body, fetch } verdict = deny;
  Response response;  // deny, fetch
  // allow: views of the worker's caches (IdentityCache), valid until the
  // next guard_check with the same cache; the glue copies them at once.
  // subject, client_id and session_tag also for a denial once the session
  // is known.
  std::string_view identity, subject, client_id, scope, session_tag, session_key;
  std::string_view provider_token;  // allow, with pass_provider_token
  std::string_view claims;          // allow: the session's kept claims (ClaimSet::to_record)
  // allow: the body is one tools/list and filter_tools is on, so the glue
  // filters the answer
  bool lists_tools = false;

  // For the audit log and the metrics: why, the tool called (a single
  // tools/call, else the first), the counter slot of each tools/call of the
  // body (GuardSettings::tool_counter; a batch's first kMaxCounted), whether a
  // step-up was asked for, and the provider renewal's outcome.
  static constexpr int kMaxCounted = 8;
  metrics::GuardReason reason = metrics::GuardReason::server_error;
  std::string_view tool;
  int tool_metrics[kMaxCounted];
  int ntool_metrics = 0;
  bool step_up = false;
  const char* renewal = nullptr;
  const QuotaRule* limited = nullptr;  // the quota that refused (rate_limited)
};

// The guard keeps one identity cache per worker process.
GuardOutcome guard_check(const Config& cf, const GuardSettings& gs, IdentityCache& cache, Store& store,
                         const GuardInput& in);

// The provider answered the renewal that guard_check asked for.
GuardOutcome guard_resume(const Config& cf, const GuardSettings& gs, IdentityCache& cache, Store& store,
                          const GuardInput& in, const std::string& continuation, int fetch_status,
                          const std::string& fetch_body);

// False once the session has ended (expired, revoked, or gone).
bool session_alive(Store& store, std::string_view session_key, int64_t now);

// RFC 9728 §3.1: the metadata URL for a resource, with the well-known
// segment inserted before the resource's path.
std::string protected_resource_metadata_url(const std::string& resource);

}  // namespace mcpauth
