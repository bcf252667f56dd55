// The extern "C" surface of the core (mcp_auth.h).  Everything here is a
// thin, exception-proof adapter: C strings in, C structs out.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "config.hpp"
#include "deferred_run.hpp"
#include "endpoints.hpp"
#include "client_metadata_document.hpp"
#include "guard.hpp"
#include "metrics.hpp"
#include "mcp_auth.h"
#include "replay_store.hpp"
#include "sealed_store.hpp"
#include "tools_list_filter.hpp"

using mcpauth::Config;
using mcpauth::Request;
using mcpauth::Response;

struct mcpa_config_s {
  Config config;
  mcpauth::GuardSettings guard;
  // per worker process (configurations are copied into each worker by
  // fork), so no locking: a worker is single-threaded
  mutable mcpauth::IdentityCache identity_cache;
};

namespace {

std::string str(mcpa_str_t s) { return s.data ? std::string(s.data, s.len) : std::string(); }
std::string_view view(mcpa_str_t s) { return s.data ? std::string_view(s.data, s.len) : std::string_view(); }

void copy_error(const std::string& msg, char* err, size_t err_len) {
  if (!err || err_len == 0) return;
  size_t n = msg.size() < err_len - 1 ? msg.size() : err_len - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

// Storage behind an mcpa_response_t: the C struct points into it.
struct ResponseStorage {
  Response response;
  std::vector<mcpa_header_t> headers;
  std::vector<mcpa_event_t> events;
  mcpauth::StoreOp op;  // deferred stores: the operation to perform
  std::string replay;
};

Request to_request(const mcpa_request_t* in) {
    Request req;
    req.method = str(in->method);
    req.uri = str(in->uri);
    req.args = str(in->args);
    req.body = str(in->body);
    req.content_type = str(in->content_type);
    req.cookie = str(in->cookie);
    req.origin = str(in->origin);
    req.sec_fetch_site = str(in->sec_fetch_site);
    req.authorization = str(in->authorization);
    req.fetch_cache_control = str(in->fetch_cache_control);
    req.now = in->now;
    req.waits = in->waits;
    req.request_id = str(in->request_id);
    return req;
}

mcpa_str_t c_str(const std::string& s) { return {s.data(), s.size()}; }
mcpa_str_t c_view(std::string_view s) { return {s.data(), s.size()}; }

// Moves a C++ response behind the C struct; the struct points into it.
// Points the C struct into a kept response (all but owner).
void point_at(ResponseStorage& kept, mcpa_response_t* out) {
  const Response& r = kept.response;
  kept.headers.clear();
  kept.headers.reserve(r.headers.size());
  for (const auto& h : r.headers) kept.headers.push_back({c_str(h.first), c_str(h.second)});
  out->status = r.status;
  out->headers = kept.headers.data();
  out->nheaders = kept.headers.size();
  out->body = c_str(r.body);
  out->fetch = r.fetch.target;
  out->fetch_body = c_str(r.fetch.body);
  out->fetch_authorization = c_str(r.fetch.authorization);
  out->continuation = c_str(r.fetch.continuation);
  out->fetch_host = c_str(r.fetch.host);
  out->fetch_port = r.fetch.port;
  out->fetch_path = c_str(r.fetch.path);
  out->wait_ms = r.wait_ms;
  out->store_op.op = kept.op.op;
  out->store_op.key = c_str(kept.op.key);
  out->store_op.value = c_str(kept.op.value);
  out->store_op.expect = c_str(kept.op.expect);
  out->store_op.expires = kept.op.expires;
  out->store_op.mode = kept.op.mode;
  out->replay = c_str(kept.replay);
  kept.events.clear();
  if (!r.events.empty()) kept.events.reserve(r.events.size());
  for (const auto& e : r.events) {
    mcpa_event_t& c = kept.events.emplace_back();
    c.kind = e.kind;
    c.name = {e.name, std::strlen(e.name)};
    c.outcome = c_str(e.outcome);
    c.reason = c_str(e.reason);
    c.grant_type = c_str(e.grant_type);
    c.tool = {nullptr, 0};
    c.subject = c_str(e.subject);
    c.client_id = c_str(e.client_id);
    c.session_tag = c_str(e.session_tag);
    c.audience = c_str(e.audience);
    c.scope = c_str(e.scope);
    std::copy(std::begin(e.metric), std::end(e.metric), c.metric);
    c.audit = e.audit;
  }
  out->events = kept.events.data();
  out->nevents = kept.events.size();
}

void export_response(Response&& r, mcpa_response_t* out) {
  auto storage = std::make_unique<ResponseStorage>();
  storage->response = std::move(r);
  point_at(*storage, out);
  out->owner = storage.release();
}

// Runs an endpoint request over the configured store kind.
template <class F>
int run_endpoint(const mcpa_config_t* cf, const mcpa_store_t* store, const mcpa_request_t* in,
                 mcpa_response_t* out, F&& endpoint) {
  out->owner = nullptr;
  try {
    if (!store->deferred) {
      mcpauth::CStore st(store);
      export_response(endpoint(st), out);
      return MCPA_OK;
    }
    mcpauth::DeferredRun run(cf->config, in->replay, in->now, false, store->confirm_writes != 0);
    if (!run.ok()) return MCPA_ERROR;
    auto storage = std::make_unique<ResponseStorage>();
    Response response;
    switch (run.run([&](mcpauth::Store& st) { response = endpoint(st); }, &storage->op, &storage->replay)) {
      case mcpauth::DeferredRun::End::done: storage->response = std::move(response); break;
      case mcpauth::DeferredRun::End::pending: break;  // only the operation goes back
      case mcpauth::DeferredRun::End::failed: return MCPA_ERROR;
    }
    point_at(*storage, out);
    out->owner = storage.release();
    return MCPA_OK;
  } catch (...) {
    return MCPA_ERROR;
  }
}

}  // namespace

MCPA_API void mcpa_settings_init(mcpa_settings_t* s) noexcept {
  *s = mcpa_settings_t{};
  s->provider_client_auth = -1;
  s->access_token_ttl = s->refresh_token_ttl = s->session_ttl = -1;
  s->code_ttl = s->login_ttl = s->client_ttl = s->session_cache_ttl = -1;
  s->consent_remember = s->secure_cookies = s->pass_provider_token = -1;
  s->client_metadata_documents = s->client_metadata_allow_private = s->client_metadata_fetch = -1;
  s->filter_tools = -1;
  s->filter_tools_max_size = -1;
}

MCPA_API int mcpa_check_setting(mcpa_check_e kind, mcpa_str_t directive, mcpa_str_t value, char* err,
                                size_t err_len) noexcept {
  try {
    std::string msg = mcpauth::check_setting(kind, str(directive), str(value));
    if (msg.empty()) return MCPA_OK;
    copy_error(msg, err, err_len);
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
  }
  return MCPA_ERROR;
}

namespace {

std::vector<std::string> words(mcpa_str_t s) {
  std::vector<std::string> out;
  std::string_view v = view(s);
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && v[i] == ' ') ++i;
    size_t j = v.find(' ', i);
    if (j == std::string_view::npos) j = v.size();
    if (j > i) out.emplace_back(v.substr(i, j - i));
    i = j;
  }
  return out;
}

// A set string replaces the default; an unset one (empty) keeps it.
void take(std::string* field, mcpa_str_t s) {
  if (s.len) *field = str(s);
}
void take(int64_t* field, int64_t v) {
  if (v >= 0) *field = v;
}
void take(bool* field, int v) {
  if (v >= 0) *field = v != 0;
}

void fill(Config& c, const mcpa_settings_t& s) {
  take(&c.issuer, s.issuer);
  take(&c.resource, s.resource);
  take(&c.resource_name, s.resource_name);
  if (s.scopes.len) c.scopes = words(s.scopes);
  if (s.cors_origins.len) c.cors_origins = words(s.cors_origins);
  take(&c.authorization_path, s.authorization_path);
  take(&c.token_path, s.token_path);
  take(&c.registration_path, s.registration_path);
  take(&c.revocation_path, s.revocation_path);
  take(&c.consent_path, s.consent_path);
  take(&c.callback_path, s.callback_path);
  take(&c.key_file, s.key_file);
  take(&c.admin_key_file, s.admin_key_file);
  take(&c.provider_issuer, s.provider_issuer);
  take(&c.provider_authorization_endpoint, s.provider_authorization_endpoint);
  take(&c.provider_token_endpoint, s.provider_token_endpoint);
  take(&c.provider_client_id, s.provider_client_id);
  take(&c.provider_client_secret_file, s.provider_client_secret_file);
  if (s.provider_client_auth >= 0) c.provider_client_auth = static_cast<Config::ProviderAuth>(s.provider_client_auth);
  take(&c.provider_private_key_file, s.provider_private_key_file);
  take(&c.provider_key_id, s.provider_key_id);
  take(&c.provider_certificate_file, s.provider_certificate_file);
  if (s.provider_scopes.len) {
    c.provider_scopes.clear();
    for (const auto& w : words(s.provider_scopes)) c.provider_scopes += (c.provider_scopes.empty() ? "" : " ") + w;
  }
  take(&c.access_token_ttl, s.access_token_ttl);
  take(&c.refresh_token_ttl, s.refresh_token_ttl);
  take(&c.session_ttl, s.session_ttl);
  take(&c.code_ttl, s.code_ttl);
  take(&c.login_ttl, s.login_ttl);
  take(&c.client_ttl, s.client_ttl);
  take(&c.session_cache_ttl, s.session_cache_ttl);
  take(&c.consent_remember, s.consent_remember);
  if (s.secure_cookies >= 0) c.secure_cookies_setting = s.secure_cookies != 0;
  take(&c.cimd, s.client_metadata_documents);
  take(&c.cimd_allow_private, s.client_metadata_allow_private);
  take(&c.cimd_fetch, s.client_metadata_fetch);
  if (s.client_metadata_ports_n)
    c.cimd_ports.assign(s.client_metadata_ports, s.client_metadata_ports + s.client_metadata_ports_n);
  take(&c.claim_rules, s.claim_rules);
  take(&c.scope_description_lines, s.scope_descriptions);
  take(&c.provider_param_lines, s.provider_params);
  take(&c.exchange_audience_lines, s.exchange_audiences);
  take(&c.exchange_client_lines, s.exchange_clients);
  take(&c.service_client_lines, s.service_clients);
  take(&c.trusted_issuer_lines, s.trusted_issuers);
  take(&c.enterprise_client_lines, s.enterprise_clients);
}

void fill(mcpauth::GuardSettings& g, const mcpa_settings_t& s) {
  take(&g.identity_key_file, s.identity_key_file);
  take(&g.identity_issuer, s.identity_issuer);
  take(&g.identity_audience, s.identity_audience);
  take(&g.tool_scopes, s.tool_scopes);
  take(&g.metrics_tools, s.metrics_tools);
  take(&g.pass_provider_token, s.pass_provider_token);
  take(&g.filter_tools, s.filter_tools);
  take(&g.filter_tools_max_size, s.filter_tools_max_size);
  take(&g.limits, s.limits);
}

}  // namespace

MCPA_API mcpa_config_t* mcpa_config_build(const mcpa_settings_t* s, char* err, size_t err_len) noexcept {
  try {
    auto cf = std::make_unique<mcpa_config_s>();
    fill(cf->config, *s);
    fill(cf->guard, *s);
    std::string msg = cf->config.load();
    if (msg.empty()) msg = cf->guard.load();
    if (cf->guard.minter) cf->config.identity = &*cf->guard.minter;
    // A backend's subject token is an assertion of this key.
    if (msg.empty() && !cf->config.exchange_clients.empty() && !cf->config.identity)
      msg = "mcp_auth_exchange_client needs mcp_auth_identity_key_file";
    if (msg.empty()) return cf.release();
    copy_error(msg, err, err_len);
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
  }
  return nullptr;
}

MCPA_API int mcpa_config_check_use(const mcpa_config_t* cf, int endpoint, int guard, char* err,
                                   size_t err_len) noexcept {
  try {
    std::string msg = cf->config.check_use(static_cast<mcpa_endpoint_e>(endpoint));
    if (msg.empty() && guard) msg = cf->guard.check_use();
    if (msg.empty()) return MCPA_OK;
    copy_error(msg, err, err_len);
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
  }
  return MCPA_ERROR;
}

MCPA_API void mcpa_config_free(mcpa_config_t* cf) noexcept { delete cf; }


MCPA_API int mcpa_handle(const mcpa_config_t* cf, const mcpa_store_t* store,
                         const mcpa_request_t* in, mcpa_response_t* out) noexcept {
  return run_endpoint(cf, store, in, out, [&](mcpauth::Store& st) {
    return mcpauth::handle_endpoint(in->endpoint, cf->config, st, to_request(in));
  });
}

MCPA_API int mcpa_resume(const mcpa_config_t* cf, const mcpa_store_t* store,
                         const mcpa_request_t* in, mcpa_str_t continuation, int fetch_status,
                         mcpa_str_t fetch_body, mcpa_response_t* out) noexcept {
  return run_endpoint(cf, store, in, out, [&](mcpauth::Store& st) {
    return mcpauth::resume_endpoint(in->endpoint, cf->config, st, to_request(in), str(continuation),
                                    fetch_status, str(fetch_body));
  });
}

MCPA_API void mcpa_response_free(mcpa_response_t* resp) noexcept {
  delete static_cast<ResponseStorage*>(resp->owner);
  resp->owner = nullptr;
}

MCPA_API const char* mcpa_version(void) noexcept { return "0.1.0"; }

// --- the guard ---------------------------------------------------------------

namespace {

struct GuardStorage {
  ResponseStorage response;
  // The worker's guard buffers, wiped when the result is released: the
  // result's views (provider_token among them) point into them until then.
  mcpauth::IdentityCache* scratch = nullptr;
  ~GuardStorage() {
    if (scratch) scratch->wipe_scratch();
  }
};

}  // namespace

namespace {

mcpauth::GuardInput to_guard_input(const mcpa_guard_request_t* in) {
  mcpauth::GuardInput gi;
  gi.method = view(in->method);
  gi.authorization = view(in->authorization);
  gi.args = view(in->args);
  gi.origin = view(in->origin);
  gi.mirror.method = view(in->mcp_method);
  gi.mirror.name = view(in->mcp_name);
  gi.mirror.has_method = (in->mirror_headers & MCPA_MIRROR_METHOD) != 0;
  gi.mirror.has_name = (in->mirror_headers & MCPA_MIRROR_NAME) != 0;
  gi.mirror.repeated = (in->mirror_headers & MCPA_MIRROR_REPEATED) != 0;
  gi.body = view(in->body);
  gi.body_read = in->body_read != 0;
  gi.now = in->now;
  gi.now_ms = in->now_ms;
  return gi;
}

// The guard's decision as one event: an audit line for a denial or a tool
// call, and its counters.
void describe_guard(const mcpauth::GuardOutcome& g, mcpa_guard_result_t* out) {
  namespace m = mcpauth::metrics;
  mcpa_event_t& e = out->event;
  if (g.verdict != mcpauth::GuardOutcome::allow && g.verdict != mcpauth::GuardOutcome::deny) {
    e.kind = MCPA_EV_NONE;  // not decided yet
    e.audit = 0;
    e.metric[0] = -1;
    return;
  }
  static constexpr std::string_view kToolCall = "tool.call", kRequest = "mcp.request", kDenied = "guard.denied",
                                    kRateLimited = "guard.rate_limited";
  const bool allowed = g.verdict == mcpauth::GuardOutcome::allow;
  const m::GuardReasonName& why = m::guard_reason_name(g.reason);
  e.kind = MCPA_EV_GUARD;
  e.name = c_view(g.limited ? kRateLimited : !g.tool.empty() ? kToolCall : allowed ? kRequest : kDenied);
  e.outcome = c_view(why.outcome);
  e.reason = allowed ? mcpa_str_t{nullptr, 0} : c_view(why.reason);
  e.grant_type = {nullptr, 0};
  e.tool = c_view(g.tool);
  e.subject = c_view(g.subject);
  e.client_id = c_view(g.client_id);
  e.session_tag = c_view(g.session_tag);
  e.audit = (!allowed && g.reason != m::GuardReason::preflight) || !g.tool.empty();
  int n = 0;
  e.metric[n++] = m::guard_slot(g.reason);
  if (g.step_up) e.metric[n++] = m::step_up_slot();
  if (g.renewal) e.metric[n++] = m::renewal_slot(g.renewal);
  if (g.limited)
    e.metric[n++] = m::rate_limited_slot(g.limited->per == mcpauth::QuotaRule::client, !g.limited->tool.empty());
  for (int i = 0; i < g.ntool_metrics && n < MCPA_EVENT_METRICS; ++i) e.metric[n++] = g.tool_metrics[i];
  if (n < MCPA_EVENT_METRICS) e.metric[n] = -1;  // the list ends here
}

void export_guard(mcpauth::GuardOutcome&& g, mcpa_guard_result_t* out, std::unique_ptr<GuardStorage> storage) {
  // an allowed request has no response (nor its headers) to hand over
  if (g.verdict != mcpauth::GuardOutcome::allow) storage->response.response = std::move(g.response);

  switch (g.verdict) {
    case mcpauth::GuardOutcome::allow: out->verdict = MCPA_GUARD_ALLOW; break;
    case mcpauth::GuardOutcome::need_body: out->verdict = MCPA_GUARD_NEED_BODY; break;
    case mcpauth::GuardOutcome::fetch: out->verdict = MCPA_GUARD_FETCH; break;
    default: out->verdict = MCPA_GUARD_DENY; break;
  }
  if (storage->response.op.op != MCPA_OP_NONE) out->verdict = MCPA_GUARD_STORE;
  point_at(storage->response, &out->response);
  out->response.owner = nullptr;  // freed with the guard result
  // the worker's caches hold these until its next guard call (guard.hpp)
  out->identity = c_view(g.identity);
  out->subject = c_view(g.subject);
  out->client_id = c_view(g.client_id);
  out->scope = c_view(g.scope);
  out->session_tag = c_view(g.session_tag);
  out->session_key = c_view(g.session_key);
  out->provider_token = c_view(g.provider_token);
  out->claims = c_view(g.claims);
  out->lists_tools = g.lists_tools ? 1 : 0;
  describe_guard(g, out);
  out->owner = storage.release();
}

}  // namespace

namespace {

// The guard over the configured store kind (see run_endpoint).
template <class F>
int run_guard(const mcpa_config_t* cf, const mcpa_store_t* store, const mcpa_guard_request_t* in,
              mcpa_guard_result_t* out, F&& check) {
  out->owner = nullptr;
  try {
    auto storage = std::make_unique<GuardStorage>();
    storage->scratch = &cf->identity_cache;
    if (!store->deferred) {
      mcpauth::CStore st(store);
      export_guard(check(st), out, std::move(storage));
      return MCPA_OK;
    }
    mcpauth::DeferredRun run(cf->config, in->replay, in->now, true);
    if (!run.ok()) return MCPA_ERROR;
    mcpauth::GuardOutcome outcome;
    switch (run.run([&](mcpauth::Store& st) { outcome = check(st); }, &storage->response.op,
                    &storage->response.replay)) {
      case mcpauth::DeferredRun::End::done: break;
      case mcpauth::DeferredRun::End::pending: outcome = mcpauth::GuardOutcome(); break;  // only the operation
      case mcpauth::DeferredRun::End::failed: return MCPA_ERROR;
    }
    export_guard(std::move(outcome), out, std::move(storage));
    return MCPA_OK;
  } catch (...) {
    cf->identity_cache.wipe_scratch();
    return MCPA_ERROR;
  }
}

}  // namespace

MCPA_API int mcpa_guard(const mcpa_config_t* cf, const mcpa_store_t* store,
                        const mcpa_guard_request_t* in, mcpa_guard_result_t* out) noexcept {
  return run_guard(cf, store, in, out, [&](mcpauth::Store& st) {
    return mcpauth::guard_check(cf->config, cf->guard, cf->identity_cache, st, to_guard_input(in));
  });
}

MCPA_API int mcpa_guard_resume(const mcpa_config_t* cf, const mcpa_store_t* store,
                               const mcpa_guard_request_t* in, mcpa_str_t continuation,
                               int fetch_status, mcpa_str_t fetch_body,
                               mcpa_guard_result_t* out) noexcept {
  return run_guard(cf, store, in, out, [&](mcpauth::Store& st) {
    return mcpauth::guard_resume(cf->config, cf->guard, cf->identity_cache, st, to_guard_input(in),
                                 str(continuation), fetch_status, str(fetch_body));
  });
}

MCPA_API void mcpa_guard_result_free(mcpa_guard_result_t* res) noexcept {
  delete static_cast<GuardStorage*>(res->owner);
  res->owner = nullptr;
}

MCPA_API int mcpa_session_alive(const mcpa_config_t* cf, const mcpa_store_t* store,
                                mcpa_str_t session_key, int64_t now) noexcept {
  try {
    mcpauth::CStore st(store);
    if (store->deferred && cf->config.keys) {
      // what the glue fetched from Redis is sealed
      mcpauth::SealedStore sealed(st, *cf->config.keys);
      return mcpauth::session_alive(sealed, str(session_key), now) ? 1 : 0;
    }
    return mcpauth::session_alive(st, str(session_key), now) ? 1 : 0;
  } catch (...) {
    return 1;  // an allocation failure is no proof that the session ended
  }
}

// --- the state file ------------------------------------------------------------

MCPA_API int mcpa_config_has_keys(const mcpa_config_t* cf) noexcept {
  return cf->config.keys.has_value() ? 1 : 0;
}

MCPA_API int mcpa_state_seal(const mcpa_config_t* cf, mcpa_str_t plain, mcpa_sink_pt sink,
                             void* sink_ctx) noexcept {
  try {
    if (!cf->config.keys) return MCPA_ERROR;
    std::string sealed = cf->config.keys->seal(mcpauth::seal_purpose::state_file, str(plain));
    sink(sink_ctx, sealed.data(), sealed.size());
    return MCPA_OK;
  } catch (...) {
    return MCPA_ERROR;
  }
}

MCPA_API int mcpa_state_open(const mcpa_config_t* cf, mcpa_str_t sealed, mcpa_sink_pt sink,
                             void* sink_ctx) noexcept {
  try {
    if (!cf->config.keys) return MCPA_ERROR;
    auto plain = cf->config.keys->open(mcpauth::seal_purpose::state_file, str(sealed));
    if (!plain) return MCPA_ERROR;
    sink(sink_ctx, plain->data(), plain->size());
    return MCPA_OK;
  } catch (...) {
    return MCPA_ERROR;
  }
}

MCPA_API int mcpa_fetch_address_allowed(const mcpa_config_t* cf, mcpa_str_t ip) noexcept {
  try {
    return mcpauth::fetch_address_allowed(str(ip), cf->config.cimd_allow_private) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

MCPA_API int mcpa_guard_reads_body(const mcpa_config_t* cf) noexcept {
  return cf->guard.policy.empty() && !cf->config.access.has_tool_rules() && !cf->guard.filter_tools &&
                 !cf->guard.quota_tools
             ? 0
             : 1;
}

// --- observability --------------------------------------------------------

MCPA_API size_t mcpa_metrics_slots(void) noexcept {
  try {
    return mcpauth::metrics::all_slots();
  } catch (...) {
    return 0;
  }
}

MCPA_API void mcpa_metrics_observe(mcpa_metric_e m, int a, int64_t b, int* slots, int64_t* amounts) noexcept {
  try {
    mcpauth::metrics::observe(m, a, b, slots, amounts);
  } catch (...) {
    slots[0] = -1;
  }
}

MCPA_API size_t mcpa_config_tools(const mcpa_config_t* cf, mcpa_str_t* names, size_t n) noexcept {
  const auto& tools = cf->guard.tools;
  for (size_t i = 0; i < n && i < tools.size(); ++i) names[i] = c_str(tools[i]);
  return tools.size();
}

MCPA_API void mcpa_config_set_tool_slot(mcpa_config_t* cf, size_t i, int slot) noexcept {
  cf->guard.set_tool_slot(i, slot);
}

MCPA_API int mcpa_metrics_key_class(mcpa_str_t key) noexcept { return mcpauth::metrics::key_class(view(key)); }

MCPA_API int mcpa_metrics_render(const uint64_t* slots, size_t nslots, const mcpa_str_t* tools, size_t ntools,
                                 const mcpa_gauges_t* gauges, mcpa_sink_pt sink, void* sink_ctx) noexcept {
  try {
    std::vector<std::string_view> names;
    for (size_t i = 0; i < ntools; ++i) names.push_back(view(tools[i]));
    std::string text = mcpauth::metrics::render(slots, nslots, names, *gauges);
    sink(sink_ctx, text.data(), text.size());
    return MCPA_OK;
  } catch (...) {
    return MCPA_ERROR;
  }
}

// --- tools/list filtering ---------------------------------------------------

MCPA_API int mcpa_filter_tools_list(const mcpa_config_t* cf, mcpa_str_t body, int event_stream, mcpa_str_t scope,
                                    mcpa_str_t claims, mcpa_sink_pt sink, void* sink_ctx) noexcept {
  try {
    // claims that do not read as a kept set are none: the tools that
    // claim rules name are then hidden, never shown
    auto kept = mcpauth::ClaimSet::from_record(view(claims));
    const mcpauth::ClaimSet none;
    const mcpauth::ClaimSet& held = kept ? *kept : none;
    const std::string_view granted = view(scope);
    // what the guard would decide on a tools/call of the tool
    mcpauth::McpCall call;
    call.method = "tools/call";
    call.has_name = true;
    auto allowed = [&](std::string_view name) {
      call.name.assign(name);
      return mcpauth::missing_scopes(cf->guard.policy.required(call), granted).empty() &&
             cf->config.access.may_call(name, held);
    };
    auto r = event_stream ? mcpauth::filter_tools_list_sse(view(body), allowed)
                          : mcpauth::filter_tools_list_json(view(body), allowed);
    switch (r.outcome) {
      case mcpauth::ToolsListFiltered::filtered:
        sink(sink_ctx, r.body.data(), r.body.size());
        return MCPA_FILTER_FILTERED;
      case mcpauth::ToolsListFiltered::unchanged: return MCPA_FILTER_UNCHANGED;
      case mcpauth::ToolsListFiltered::not_filterable: break;
    }
  } catch (...) {
  }
  return MCPA_FILTER_NOT_FILTERABLE;
}

MCPA_API size_t mcpa_sse_response_end(mcpa_str_t stream, size_t* from) noexcept {
  try {
    return mcpauth::sse_response_end(view(stream), from);
  } catch (...) {
    return 0;  // looked at again with more of the stream, or at its end
  }
}
