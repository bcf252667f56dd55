// POST /revoke: token revocation (RFC 7009).  Either token type ends the
// whole session (§2.1: revoking a refresh token SHOULD revoke its access
// tokens; we also end the grant when an access token is revoked).  The
// answer is 200 whatever the token was (§2.2); only failed client
// authentication is an error.
#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "identity_assertion.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

constexpr const char* kMethods = "POST, OPTIONS";

// The sid and client of a token of either kind, trying the hinted kind first.
bool token_session(const Config& cf, const std::string& token, const std::string& hint, std::string* sid,
                   std::string* client_id) {
  auto try_access = [&] {
    auto plain = cf.keys->open(seal_purpose::access_token, token);
    auto a = plain ? decode_access(*plain) : std::nullopt;
    if (!a) return false;
    *sid = a->sid;
    *client_id = a->client_id;
    return true;
  };
  auto try_refresh = [&] {
    auto plain = cf.keys->open(seal_purpose::refresh_token, token);
    auto r = plain ? decode_refresh(*plain) : std::nullopt;
    if (!r) return false;
    *sid = r->sid;
    *client_id = r->client_id;
    return true;
  };
  if (hint == "refresh_token") return try_refresh() || try_access();
  return try_access() || try_refresh();
}

Response revoke(const Config& cf, Store& store, const Request& req) {
  if (req.method != "POST") return method_not_allowed(kMethods);
  if (!cf.keys) return oauth_error(500, "server_error", "the revocation endpoint is not configured (key file)");
  if (media_type(req.content_type) != "application/x-www-form-urlencoded")
    return oauth_error(400, "invalid_request", "send the request as application/x-www-form-urlencoded");
  auto form = Params::parse(req.body);
  if (!form) return oauth_error(400, "invalid_request", "the request body is malformed");
  ClientAuth auth = authenticate_client(cf, store, req, *form);
  if (!auth.ok) return auth.error;
  std::string token, hint;
  if (form->find("token", &token) != Params::Lookup::one)
    return oauth_error(400, "invalid_request", "token is required (once)");
  (void)form->find("token_type_hint", &hint);

  std::string sid, client_id, subject;
  bool revoked = false;
  if (token_session(cf, token, hint, &sid, &client_id) && client_id == auth.client.client_id) {
    std::string raw;
    StoreStatus st = store.get("session:" + sid, &raw);
    if (st == StoreStatus::ok) {
      auto s = decode_session(raw);
      // A token of another client is not revoked (and not reported: §2.2).
      if (s && s->client_id == auth.client.client_id) {
        st = end_session(store, sid, req.now);
        revoked = st == StoreStatus::ok;
        if (st == StoreStatus::not_found) st = StoreStatus::ok;
        subject = s->sub;
      }
    }
    if (st == StoreStatus::error || st == StoreStatus::unavailable || st == StoreStatus::pending)
      return store_failure_json(st);
  }
  Response r;
  r.status = 200;
  r.header("Cache-Control", "no-store");
  Event& e = r.event(MCPA_EV_REVOCATION, "token.revoked", revoked ? "revoked" : "unknown");
  e.client_id = auth.client.client_id;
  e.subject = subject;
  if (revoked) e.session_tag = session_log_tag(sid);
  return r;
}

}  // namespace

Response handle_revoke(const Config& cf, Store& store, const Request& req) {
  if (req.method == "OPTIONS") return preflight(cf, req.origin, kMethods);
  Response r = revoke(cf, store, req);
  add_cors(r, cf, req.origin);
  return r;
}

}  // namespace mcpauth
