// The extern "C" surface of the core (mcp_auth.h).  Everything here is a
// thin, exception-proof adapter: C strings in, C structs out.
#include <cstring>
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
#include "mcp_auth.h"
#include "replay_store.hpp"
#include "sealed_store.hpp"

using mcpauth::Config;
using mcpauth::Request;
using mcpauth::Response;

struct mcpa_config_s {
  Config config;
  mcpauth::GuardSettings guard;
  bool protecting = false;
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
  out->store_op.op = kept.op.op;
  out->store_op.key = c_str(kept.op.key);
  out->store_op.value = c_str(kept.op.value);
  out->store_op.expect = c_str(kept.op.expect);
  out->store_op.expires = kept.op.expires;
  out->store_op.mode = kept.op.mode;
  out->replay = c_str(kept.replay);
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
    mcpauth::DeferredRun run(cf->config, in->replay, in->now, false);
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

MCPA_API mcpa_config_t* mcpa_config_new(void) noexcept {
  return new (std::nothrow) mcpa_config_s();
}

MCPA_API int mcpa_config_set(mcpa_config_t* cf, const char* name, mcpa_str_t value, char* err,
                             size_t err_len) noexcept {
  try {
    std::string msg;
    if (std::strcmp(name, "protect") == 0) {
      cf->protecting = str(value) == "on";
      return MCPA_OK;
    }
    if (cf->guard.set(name, str(value), &msg)) {
      if (msg.empty()) return MCPA_OK;
      copy_error(msg, err, err_len);
      return MCPA_ERROR;
    }
    msg = cf->config.set(name, str(value));
    if (msg.empty()) return MCPA_OK;
    copy_error(msg, err, err_len);
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
  }
  return MCPA_ERROR;
}

MCPA_API int mcpa_config_finish(mcpa_config_t* cf, char* err, size_t err_len) noexcept {
  try {
    std::string msg = cf->config.finish();
    if (msg.empty()) msg = cf->guard.finish(cf->protecting);
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
  return gi;
}

void export_guard(mcpauth::GuardOutcome&& g, mcpa_guard_result_t* out,
                  std::unique_ptr<GuardStorage> storage = std::make_unique<GuardStorage>()) {
  storage->response.response = std::move(g.response);

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
    if (!store->deferred) {
      mcpauth::CStore st(store);
      export_guard(check(st), out);
      return MCPA_OK;
    }
    mcpauth::DeferredRun run(cf->config, in->replay, in->now, true);
    if (!run.ok()) return MCPA_ERROR;
    auto storage = std::make_unique<GuardStorage>();
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
  return cf->guard.policy.empty() ? 0 : 1;
}
