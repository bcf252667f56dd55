#include "guard.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "claims.hpp"
#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "json.hpp"
#include "provider.hpp"
#include "provider_renewal.hpp"
#include "redirect_uri.hpp"
#include "session.hpp"

namespace mcpauth {
namespace {

// A quoted-string for WWW-Authenticate (RFC 9110 §5.6.4): our values never
// hold quotes or backslashes, but escape them anyway.
std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// RFC 6750 §3 challenge plus the MCP resource_metadata parameter, with a
// JSON body and the CORS headers browser clients need to read them.
Response challenge(const Config& cf, const GuardInput& in, int status, const std::string& error,
                   const std::string& description, const std::string& scope = "") {
  std::string www = "Bearer realm=" + quoted(cf.issuer);
  if (!error.empty()) www += ", error=" + quoted(error);
  if (!description.empty()) www += ", error_description=" + quoted(description);
  if (!scope.empty()) www += ", scope=" + quoted(scope);
  www += ", resource_metadata=" + quoted(protected_resource_metadata_url(cf.resource));
  Response r = oauth_error(status, error.empty() ? "invalid_token" : error, description);
  r.header("WWW-Authenticate", www);
  add_cors(r, cf, std::string(in.origin));
  return r;
}

bool token68(std::string_view t) {
  if (t.empty()) return false;
  size_t i = token68_run(t);
  for (; i < t.size(); ++i)
    if (t[i] != '=') return false;
  return true;
}

bool starts_with_bearer(std::string_view h) {
  static const char kBearer[] = "bearer ";
  if (h.size() < sizeof(kBearer) - 1) return false;
  for (size_t i = 0; i < sizeof(kBearer) - 1; ++i) {
    char c = h[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kBearer[i]) return false;
  }
  return true;
}

using metrics::GuardReason;

GuardOutcome deny(Response r, GuardReason why = GuardReason::server_error) {
  GuardOutcome out;
  out.verdict = GuardOutcome::deny;
  out.response = std::move(r);
  out.reason = why;
  return out;
}

// A body the guard cannot read (peek_jsonrpc): a JSON-RPC parse error, as
// the tool server answers a body it cannot parse.
Response unreadable_body(const Config& cf, const GuardInput& in) {
  Response r = json_response(400,
                             R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":)"
                             R"("Parse error: the body is not JSON-RPC the gateway can read exactly"}})");
  add_cors(r, cf, std::string(in.origin));
  return r;
}

bool query_has_token(std::string_view args) {
  if (args.find("access_token") == std::string_view::npos) return false;  // most requests have no query
  auto params = Params::parse(args);
  return params && params->has("access_token");
}

// Headers that disagree with the body (mirror_headers.hpp): refused before
// the upstream sees them, as the 2026-07-28 revision says (400, -32020).
Response header_mismatch(const Config& cf, const GuardInput& in, const std::string& id, const std::string& why) {
  Response r = json_response(400, R"({"jsonrpc":"2.0","id":)" + (id.empty() ? std::string("null") : id) +
                                      R"(,"error":{"code":-32020,"message":"Header mismatch: )" + why + R"("}})");
  add_cors(r, cf, std::string(in.origin));
  return r;
}

// What the tool rules need of a request, worked out before the session is
// read (it needs nothing of it) and acted on after.  The body is what the
// tool server runs, so the decision is made on the body alone; headers that
// say something else make the request a mismatch, not a different request.
struct ToolNeeds {
  // tool rules, or mcp_auth_filter_tools (whether the body lists tools)
  bool applies = false;
  enum { ok, need_body, unreadable, mismatch } body = ok;
  std::vector<std::string> scopes;
  std::vector<std::string> claim_tools;  // the tools called that claim rules name
  std::string mismatch_why, id;
  int tools[GuardOutcome::kMaxCounted];  // their allowed-calls counters (tool_counter)
  int ntools = 0;
  bool lists_tools = false;  // one tools/list, with mcp_auth_filter_tools
  int64_t quota_calls[kMaxQuotaRules];  // calls counted by each tool quota
};

ToolNeeds tool_needs(const Config& cf, const GuardSettings& gs, const GuardInput& in, std::string* first_tool) {
  ToolNeeds n;
  if (gs.quota_tools) std::fill(n.quota_calls, n.quota_calls + gs.quotas.size(), 0);
  n.applies =
      (!gs.policy.empty() || cf.access.has_tool_rules() || gs.filter_tools || gs.quota_tools) && in.method == "POST";
  if (!n.applies) return n;
  if (!in.body_read) {
    n.body = ToolNeeds::need_body;
    return n;
  }
  bool batch = false;
  auto calls = peek_jsonrpc(in.body, &batch);
  if (!calls) {
    n.body = ToolNeeds::unreadable;
    return n;
  }
  n.mismatch_why = mirror_mismatch(in.mirror, *calls, batch);
  if (!n.mismatch_why.empty()) {
    n.body = ToolNeeds::mismatch;
    if (!batch && calls->size() == 1) n.id = calls->front().id;
    return n;
  }
  // the id, for a 403 the claim rules may give (forbidden) or a 429
  if (!batch && calls->size() == 1 &&
      (cf.access.has_tool_rules() || cf.access.has_scope_rules() || !gs.quotas.empty()))
    n.id = calls->front().id;
  n.lists_tools = gs.filter_tools && !batch && calls->size() == 1 && calls->front().method == "tools/list";
  for (const auto& call : *calls) {
    for (const auto& s : gs.policy.required(call))
      if (std::find(n.scopes.begin(), n.scopes.end(), s) == n.scopes.end()) n.scopes.push_back(s);
    if (std::string_view(call.method) != "tools/call") continue;
    if (cf.access.names_tool(call.name)) n.claim_tools.push_back(call.name);
    if (gs.quota_tools)
      for (size_t i = 0; i < gs.quotas.size(); ++i)
        if (gs.quotas[i].tool == call.name) ++n.quota_calls[i];
    if (n.ntools < GuardOutcome::kMaxCounted) {
      if (n.ntools == 0) first_tool->assign(call.name);
      n.tools[n.ntools++] = gs.tool_counter(call.name);
    }
  }
  return n;
}

// The body's tools/call: their counters, and the first one's name.
void count_tools(GuardOutcome& out, const ToolNeeds& needs, bool allowed, const IdentityCache& cache) {
  for (int i = 0; i < needs.ntools; ++i) out.tool_metrics[i] = needs.tools[i] + (allowed ? 0 : 1);
  out.ntool_metrics = needs.ntools;
  if (needs.ntools) out.tool = cache.scratch_tool;
}

// A call no step-up can allow: a tool rule's claim the user lacks, or a
// scope the user's claims never allow.  403 with a JSON-RPC error that says
// why and no insufficient_scope challenge: re-authorizing cannot help.
Response forbidden(const Config& cf, const GuardInput& in, const std::string& id, const std::string& why) {
  Json msg(must(cJSON_CreateString(("Forbidden: " + why).c_str())));
  Response r = json_response(403, R"({"jsonrpc":"2.0","id":)" + (id.empty() ? std::string("null") : id) +
                                      R"(,"error":{"code":-32001,"message":)" + json_text(msg.get()) + "}}");
  add_cors(r, cf, std::string(in.origin));
  return r;
}

// Over a quota (quota.hpp): 429 with a JSON-RPC error the official
// TypeScript SDK shows, and no challenge: a new token would not help.
// MCP defines no code for it; -32029 is in the server-defined range.
Response rate_limited(const Config& cf, const GuardInput& in, const std::string& id, const QuotaRule& rule,
                      int64_t retry_after) {
  const std::string seconds = std::to_string(retry_after);
  Json msg(must(cJSON_CreateString(
      ("Rate limit exceeded: " + rule.describe() + "; retry after " + seconds + " s").c_str())));
  Response r = json_response(429, R"({"jsonrpc":"2.0","id":)" + (id.empty() ? std::string("null") : id) +
                                      R"(,"error":{"code":-32029,"message":)" + json_text(msg.get()) +
                                      R"(,"data":{"retry_after":)" + seconds + "}}}");
  r.header("Retry-After", seconds);
  add_cors(r, cf, std::string(in.origin));
  for (auto& h : r.headers)  // a browser client may read when to retry
    if (h.first == "Access-Control-Expose-Headers") h.second += ", Retry-After";
  return r;
}

// The words of `a` that are also in `b`, in a's order.
void intersect_scope(std::string_view a, std::string_view b, std::string* out) {
  out->clear();
  for (const auto& w : split_scope(std::string(a))) {
    if (!missing_scopes({w}, b).empty()) continue;
    if (!out->empty()) *out += ' ';
    *out += w;
  }
}

}  // namespace

void GuardSettings::set_tool_slot(size_t i, int slot) {
  if (i < tool_counters.size()) tool_counters[i] = metrics::tool_slot(slot, true);
}

int GuardSettings::tool_counter(std::string_view name) const {
  for (size_t i = 0; i < tools.size(); ++i)
    if (tools[i] == name) return tool_counters[i];
  return metrics::tool_slot(-1, true);
}

std::string GuardSettings::load() {
  std::string err;
  auto p = ToolPolicy::parse(tool_scopes, &err);
  if (!p) return err;
  policy = std::move(*p);
  auto q = parse_quota_rules(limits, &err);
  if (!q) return err;
  quotas = std::move(*q);
  tools = policy.tool_names();
  // the tools quotas count are counted under their own label too
  for (const auto& rule : quotas) {
    if (rule.tool.empty()) continue;
    quota_tools = true;
    if (std::find(tools.begin(), tools.end(), rule.tool) == tools.end()) tools.push_back(rule.tool);
  }
  for (size_t i = 0; i < metrics_tools.size();) {
    size_t j = metrics_tools.find(' ', i);
    if (j == std::string::npos) j = metrics_tools.size();
    std::string name = metrics_tools.substr(i, j - i);
    if (!name.empty() && std::find(tools.begin(), tools.end(), name) == tools.end()) tools.push_back(name);
    i = j + 1;
  }
  tool_counters.assign(tools.size(), metrics::tool_slot(-1, true));
  if (identity_key_file.empty()) return "";
  std::string text;
  err = read_file("mcp_auth_identity_key_file", identity_key_file, &text);
  if (!err.empty()) return err;
  minter = IdentityMinter::create(text, identity_issuer, identity_audience, &err);
  if (!minter) return "mcp_auth_identity_key_file \"" + identity_key_file + "\": " + err;
  return "";
}

std::string GuardSettings::check_use() const {
  return minter ? "" : "mcp_auth_protect needs mcp_auth_identity_key_file";
}

std::string protected_resource_metadata_url(const std::string& resource) {
  std::string why;
  auto uri = parse_uri(resource, &why);
  if (!uri) return resource;
  std::string origin = uri->scheme + "://" + uri->host + (uri->has_port ? ":" + uri->port : "");
  std::string path = uri->path == "/" ? "" : uri->path;
  return origin + "/.well-known/oauth-protected-resource" + path;
}

GuardOutcome guard_check(const Config& cf, const GuardSettings& gs, IdentityCache& cache, Store& store,
                         const GuardInput& in) {
  GuardOutcome out;

  if (in.method == "OPTIONS") {
    Response r = preflight(cf, std::string(in.origin), "GET, POST, DELETE, OPTIONS");
    for (auto& h : r.headers)
      if (h.first == "Access-Control-Allow-Headers")
        h.second = "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, "
                   "Last-Event-ID, Mcp-Method, Mcp-Name";
    return deny(std::move(r), GuardReason::preflight);
  }

  // RFC 6750 §2.3 allows a token in the query; URLs end up in logs and
  // Referer headers, so we refuse it (the MCP spec requires the header).
  if (query_has_token(in.args))
    return deny(challenge(cf, in, 400, "invalid_request", "send the token in the Authorization header, not the URL"),
                GuardReason::token_in_query);

  if (!cf.keys) return deny(oauth_error(500, "server_error", "no key file configured"));

  // Authorization: Bearer <token68>, scheme case-insensitive (RFC 9110 §11.1)
  std::string_view token = in.authorization;
  if (!starts_with_bearer(token))
    return deny(challenge(cf, in, 401, "", "an access token is required"), GuardReason::missing_token);
  token.remove_prefix(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);

  // A token this worker has opened before is not opened again (TokenCache);
  // only well-formed tokens that opened are kept, so a hit is well-formed.
  const AccessClaims* claims = cache.tokens.find(token);
  if (!claims) {
    if (!token68(token))
      return deny(challenge(cf, in, 401, "invalid_token", "the access token is malformed"),
                  GuardReason::malformed_token);
    auto plain = cf.keys->open(seal_purpose::access_token, token);
    auto opened = plain ? decode_access(*plain) : std::nullopt;
    if (!opened)
      return deny(challenge(cf, in, 401, "invalid_token", "the access token was not issued here"),
                  GuardReason::foreign_token);
    claims = cache.tokens.add(token, std::move(*opened));
  }
  if (claims->exp <= in.now)
    return deny(challenge(cf, in, 401, "invalid_token", "the access token has expired"), GuardReason::token_expired);
  if (!claims->resource.empty() && !resource_matches(claims->resource, cf.resource))
    return deny(challenge(cf, in, 401, "invalid_token", "the access token is for another resource"),
                GuardReason::wrong_resource);

  // The worker's buffers: after the first requests nothing here allocates.
  std::string& key = cache.scratch_key;
  key.assign("session:").append(claims->sid);
  // The session's index slot in the zone starts on its way from memory
  // while the body is read for the tool rules: they need nothing of the
  // session until the scopes are compared, below, in the usual order.
  store.prefetch(key);
  ToolNeeds needs = tool_needs(cf, gs, in, &cache.scratch_tool);

  std::string& record = cache.scratch_record;
  StoreStatus st = store.get(key, &record);
  if (st == StoreStatus::not_found)
    return deny(challenge(cf, in, 401, "invalid_token", "the session has ended"), GuardReason::session_ended);
  if (st == StoreStatus::pending) return deny(Response());  // the run is discarded (store.hpp)
  if (st != StoreStatus::ok) {
    Response r = oauth_error(503, "temporarily_unavailable", "the session store is unavailable");
    r.header("Retry-After", "5");
    return deny(std::move(r), GuardReason::store_unavailable);
  }
  Session* session = &cache.scratch_session;
  if (!decode_session_into(record, session) || session->client_id != claims->client_id ||
      session->expires <= in.now)
    return deny(challenge(cf, in, 401, "invalid_token", "the session has ended"), GuardReason::session_ended);

  // The provider's access token has expired (or does within this second:
  // ngx_time() has whole seconds): renew it first, without
  // blocking (the glue makes the call), one renewal at a time per session.
  // A request that finds another renewal under way goes on: the session is
  // still ours, and the provider's answer decides for the next one.
  if (cf.has_provider() && provider_renewal_due(*session, in.now, 1)) {
    st = claim_provider_renewal(store, claims->sid, in.now);
    if (st == StoreStatus::pending) return deny(Response());  // the run is discarded (store.hpp)
    if (st == StoreStatus::ok) {
      ProviderRequest pr = provider_refresh_request(cf, std::string(session->provider_refresh_token), in.now);
      if (pr.ok) {
        GuardOutcome f;
        f.verdict = GuardOutcome::fetch;
        f.response = provider_token_fetch(std::move(pr), claims->sid);  // stays in this process
        return f;
      }
      if (store.del("renewing:" + claims->sid) == StoreStatus::pending) return deny(Response());
    }
  }

  // A refresh may have narrowed the token's scope below the session's, and a
  // renewal at the provider the session's below the token's (claim rules):
  // the request has what both allow.
  std::string_view granted = session->scope;
  if (!claims->scope.empty() && claims->scope != session->scope) {
    intersect_scope(claims->scope, session->scope, &cache.scratch_scope);
    granted = cache.scratch_scope;
  }

  // a refusal once the session is known: who, and the tools refused
  auto denied = [&](GuardOutcome d) {
    cache.scratch_tag = session_log_tag(claims->sid);
    d.subject = session->sub;
    d.client_id = session->client_id;
    d.session_tag = cache.scratch_tag;
    count_tools(d, needs, false, cache);
    return d;
  };

  // Per-tool authorization at the edge (what the body needs was read above).
  if (needs.applies) {
    if (needs.body == ToolNeeds::need_body) {
      out.verdict = GuardOutcome::need_body;
      return out;
    }
    // Not read here exactly as the tool server would read it (invalid
    // JSON, a repeated method/params/name, an escape that does not decode
    // exactly: jsonrpc_peek.hpp), so the scopes it needs are unknown.
    if (needs.body == ToolNeeds::unreadable) return deny(unreadable_body(cf, in), GuardReason::unreadable_body);
    if (needs.body == ToolNeeds::mismatch)
      return deny(header_mismatch(cf, in, needs.id, needs.mismatch_why), GuardReason::header_mismatch);
    const std::vector<std::string>& needed = needs.scopes;
    std::vector<std::string> missing = missing_scopes(needed, granted);
    if (!missing.empty() || !needs.claim_tools.empty()) {
      // the claims the session kept: only read when a rule needs them
      auto kept = ClaimSet::from_record(session->claims);
      if (!kept) kept = ClaimSet();
      for (const auto& tool : needs.claim_tools) {
        const ClaimCondition* failed = nullptr;
        if (!cf.access.may_call(tool, *kept, &failed))
          return denied(deny(forbidden(cf, in, needs.id,
                                       "your account may not call " + tool + ": it requires " + failed->describe()),
                             GuardReason::claim_required));
      }
      for (const auto& s : missing)
        if (!cf.access.may_hold(s, *kept))
          return denied(deny(forbidden(cf, in, needs.id,
                                       "this operation needs the scope " + s +
                                           ", which your account cannot be granted"),
                             GuardReason::scope_not_grantable));
    }
    if (!missing.empty()) {
      // Remember the step-up so that a refresh cannot paper over it: the
      // official TypeScript client refreshes before it re-authorizes.
      store.put("stepup:" + claims->sid, join_scope(needed), session->expires);
      // The challenge names what the token has plus what this operation
      // needs: clients (the official TypeScript SDK among them) re-authorize
      // with exactly the challenged scope, and would otherwise lose the
      // scopes they had.
      std::vector<std::string> wanted = split_scope(std::string(granted));
      for (const auto& s : needed)
        if (std::find(wanted.begin(), wanted.end(), s) == wanted.end()) wanted.push_back(s);
      GuardOutcome d = denied(deny(challenge(cf, in, 403, "insufficient_scope",
                                             "this operation needs the scope " + join_scope(needed),
                                             join_scope(wanted)),
                                   GuardReason::insufficient_scope));
      d.step_up = true;
      return d;
    }
  }

  // Quotas last: a request refused for anything else spends nothing.
  // Every allowed request costs each request rule one, each tools/call of
  // a tool rule's tool costs it one (quota.hpp).
  if (!gs.quotas.empty()) {
    int64_t cost[kMaxQuotaRules];
    for (size_t i = 0; i < gs.quotas.size(); ++i)
      cost[i] = gs.quotas[i].tool.empty() ? 1 : needs.applies ? needs.quota_calls[i] : 0;
    const QuotaOutcome q = quota_spend(store, gs.quotas, cost, session->sub, session->client_id,
                                       in.now_ms ? in.now_ms : in.now * 1000);
    switch (q.verdict) {
      case QuotaOutcome::allowed: break;
      case QuotaOutcome::pending: return deny(Response());  // the run is discarded (store.hpp)
      case QuotaOutcome::unavailable: {
        Response r = oauth_error(503, "temporarily_unavailable", "the session store is unavailable");
        r.header("Retry-After", "5");
        return denied(deny(std::move(r), GuardReason::store_unavailable));
      }
      case QuotaOutcome::limited: {
        const QuotaRule& rule = gs.quotas[size_t(q.rule)];
        GuardOutcome d = denied(deny(rate_limited(cf, in, needs.id, rule, q.retry_after_s), GuardReason::rate_limited));
        d.limited = &rule;
        return d;
      }
    }
  }

  out.verdict = GuardOutcome::allow;
  out.reason = GuardReason::allowed;
  count_tools(out, needs, true, cache);
  out.lists_tools = needs.lists_tools;
  const IdentityCache::Entry& asserted =
      // a session reference only where backends may present the assertion
      cache.assertion(*gs.minter, cf.keys && !cf.exchange_clients.empty() ? &*cf.keys : nullptr, claims->sid,
                      session->sub, session->client_id, granted, session->claims, session->subject_type, in.now);
  out.identity = asserted.jwt;
  out.subject = session->sub;
  out.client_id = session->client_id;
  out.scope = granted;
  out.session_tag = asserted.tag;
  out.session_key = claims->sid;
  out.claims = session->claims;
  if (gs.pass_provider_token) out.provider_token = session->provider_access_token;
  return out;
}

GuardOutcome guard_resume(const Config& cf, const GuardSettings& gs, IdentityCache& cache, Store& store,
                          const GuardInput& in, const std::string& continuation, int fetch_status,
                          const std::string& fetch_body) {
  const RenewalOutcome renewal = apply_provider_renewal(cf, store, continuation, fetch_status, fetch_body, in.now);
  GuardOutcome out;
  switch (renewal) {
    case RenewalOutcome::ended:
      out = deny(challenge(cf, in, 401, "invalid_token", "the sign-in at the identity provider has ended"),
                 GuardReason::provider_session_ended);
      break;
    case RenewalOutcome::pending: return deny(Response());  // the run is discarded (store.hpp)
    case RenewalOutcome::renewed:
    case RenewalOutcome::unavailable:
      // Renewed, or the provider is unavailable (then the request goes on
      // and the next one tries again): decide as usual.
      out = guard_check(cf, gs, cache, store, in);
      break;
  }
  out.renewal = renewal_outcome_word(renewal);
  return out;
}

bool session_alive(Store& store, std::string_view session_key, int64_t now) {
  std::string record;
  StoreStatus st = store.get("session:" + std::string(session_key), &record);
  if (st == StoreStatus::not_found) return false;
  if (st != StoreStatus::ok) return true;  // the store being unwell is no proof of revocation
  auto s = decode_session(record);
  wipe(record);
  return s && s->expires > now;
}

}  // namespace mcpauth
