// POST /token (OAuth 2.1 §3.2, §4.1.3, §4.3; RFC 6749 §5; RFC 7636 §4.6).
//
// Tokens are sealed with the KeyRing (AES-256-GCM, purpose-bound): an
// access token holds {sid, client_id, scope, resource, exp}, a refresh
// token {sid, client_id, gen, exp}.  Neither is stored; the session record
// they point to is, so deleting it revokes both.  A service's token
// (client_credentials) points at a session of the service's own, and comes
// without a refresh token.
//
// Refresh rotation and the race rule: each session has a generation `gen`.
// A refresh token of the current generation rotates the session to gen+1
// (replace_if, so exactly one concurrent request wins) and gets a new pair.
// A refresh token of the previous generation presented within
// kRefreshGraceSeconds of that rotation (a client that sent two refreshes at
// once, or lost the first answer) gets the very pair the winning rotation
// returned -- the same access_token and refresh_token strings -- without
// rotating again.  No token is stored for that: the tokens of a rotation are
// sealed deterministically (KeyRing::seal_deterministic) from plaintexts
// that depend only on the session record, whose expiries count from the
// rotation (Session::rotated_at), not from the request; so the same
// plaintext seals to the same token.  (A retry that asks for another scope
// gets the same refresh token and an access token for that scope.)  Once
// the successor has been used the session is a generation further and the
// old token is reuse of a stolen or leaked token (RFC 9700 §4.14.2), like
// anything older: the whole session is revoked.
#include <cjson/cJSON.h>

#include <algorithm>
#include <memory>

#include "configured_client.hpp"
#include "crypto.hpp"
#include "enterprise_grant.hpp"
#include "json.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "identity_assertion.hpp"
#include "pkce.hpp"
#include "provider.hpp"
#include "provider_renewal.hpp"
#include "redirect_uri.hpp"
#include "session_index.hpp"
#include "token_exchange.hpp"

namespace mcpauth {
namespace {

constexpr const char* kMethods = "POST, OPTIONS";
constexpr int64_t kRefreshGraceSeconds = 30;
constexpr int64_t kProviderRenewMargin = 60;  // renew the provider's token this close to expiry
constexpr int64_t kContinuationSeconds = 120;


Response invalid_grant(const std::string& why) { return oauth_error(400, "invalid_grant", why); }

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

// RFC 6749 §5.1 success response.  Lifetimes count from issued_at; a
// rotation's tokens are sealed deterministically (see the top of the file)
// so that a grace answer repeats them exactly.
Response issue_tokens(const Config& cf, const Request& req, const Session& s, const std::string& scope,
                      bool with_refresh, int64_t gen, int64_t issued_at, bool deterministic) {
  const auto seal = [&](uint8_t purpose, const std::string& plain) {
    return deterministic ? cf.keys->seal_deterministic(purpose, plain) : cf.keys->seal(purpose, plain);
  };
  AccessClaims a;
  a.sid = s.sid;
  a.client_id = s.client_id;
  a.scope = scope;
  a.resource = cf.resource;
  // Never beyond the session's absolute end.
  a.exp = std::min(issued_at + cf.access_token_ttl, s.expires);
  const std::string access = seal(seal_purpose::access_token, encode_access(a));

  Json obj(cJSON_CreateObject());
  if (!obj) throw std::bad_alloc();
  cJSON_AddStringToObject(obj.get(), "access_token", access.c_str());
  cJSON_AddStringToObject(obj.get(), "token_type", "Bearer");
  cJSON_AddNumberToObject(obj.get(), "expires_in", static_cast<double>(a.exp - req.now));
  if (!scope.empty()) cJSON_AddStringToObject(obj.get(), "scope", scope.c_str());
  if (with_refresh) {
    RefreshClaims r;
    r.sid = s.sid;
    r.client_id = s.client_id;
    r.gen = gen;
    r.exp = std::min(issued_at + cf.refresh_token_ttl, s.expires);
    const std::string refresh = seal(seal_purpose::refresh_token, encode_refresh(r));
    cJSON_AddStringToObject(obj.get(), "refresh_token", refresh.c_str());
  }
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(obj.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  Response out = json_response(200, text.get());
  Event& e = out.event(MCPA_EV_TOKEN, "token.issued", "ok");
  e.subject = s.sub;
  e.client_id = s.client_id;
  e.session_tag = session_log_tag(s.sid);
  return out;
}

Response open_session_and_issue(const Config& cf, Store& store, const Request& req, const Session& s) {
  // Listed first, so that no stored session escapes the kill switch.
  std::vector<std::string> ended;
  StoreStatus st = index_new_session(store, s, req.now, &ended);
  if (st != StoreStatus::ok) return store_failure_json(st);
  st = store.put_new("session:" + s.sid, encode_session(s), s.expires);
  if (st != StoreStatus::ok) return store_failure_json(st == StoreStatus::exists ? StoreStatus::error : st);
  return issue_tokens(cf, req, s, s.scope, false, 0, req.now, false);
}

bool resources_ok(const Config& cf, const Params& form) {
  for (const auto& [name, value] : form.items())
    if (name == "resource" && !resource_matches(value, cf.resource)) return false;
  return true;
}

namespace {

Response authorization_code_grant(const Config& cf, Store& store, const Request& req, const ClientMetadata& client,
                                  const Params& form) {
  std::string code, verifier, redirect_uri;
  if (form.find("code", &code) != Params::Lookup::one || code.empty())
    return oauth_error(400, "invalid_request", "code is required");
  if (form.find("code_verifier", &verifier) != Params::Lookup::one || verifier.empty())
    return oauth_error(400, "invalid_request", "code_verifier is required (PKCE)");
  const auto redirect_lookup = form.find("redirect_uri", &redirect_uri);
  if (!resources_ok(cf, form)) return oauth_error(400, "invalid_target", "this server issues tokens only for " + cf.resource);

  // Single use (OAuth 2.1 §4.1.3, RFC 9700 §4.5).  The code is checked
  // first -- client, redirect URI, PKCE -- and only a presentation that
  // would succeed may consume it: someone who merely saw the code (a log, a
  // Referer) gets invalid_grant and changes nothing, so the rightful client
  // can still redeem it.  Consuming turns the record into a "used" one
  // (compare-and-set, so of two redemptions at once, even on two nodes,
  // exactly one wins), kept for the session's lifetime.  A code that passes
  // the checks but is already used was presented twice by its own client:
  // whoever redeemed it first may be an attacker, so the session it started
  // ends.
  static constexpr std::string_view kUsed = "used\n";
  const std::string key = "code:" + sha256_b64url(code);
  std::string raw;
  StoreStatus st = store.get(key, &raw);
  if (st == StoreStatus::not_found) return invalid_grant("the authorization code is invalid, expired or already used");
  if (st != StoreStatus::ok) return store_failure_json(st);
  const bool used = raw.compare(0, kUsed.size(), kUsed) == 0;
  auto grant = decode_code(std::string_view(raw).substr(used ? kUsed.size() : 0));
  if (!grant) return invalid_grant("the authorization code is invalid");

  if (grant->client_id != client.client_id) return invalid_grant("the code was issued to another client");
  // RFC 6749 §4.1.3: redirect_uri must repeat the authorization request's.
  if (grant->redirect_uri_sent || redirect_lookup != Params::Lookup::absent) {
    if (redirect_lookup != Params::Lookup::one || redirect_uri != grant->redirect_uri)
      return invalid_grant("redirect_uri does not match the authorization request");
  }
  if (!verify_s256(verifier, grant->code_challenge)) return invalid_grant("PKCE verification failed");

  if (!used) {
    st = store.replace_if(key, raw, std::string(kUsed) + raw, std::max(grant->session_expires, req.now + cf.code_ttl));
    if (st == StoreStatus::not_found) return invalid_grant("the authorization code is invalid, expired or already used");
    if (st != StoreStatus::ok && st != StoreStatus::conflict) return store_failure_json(st);
  }
  if (used || st == StoreStatus::conflict) {
    // conflict: another redemption of this very code won meanwhile.
    if (end_session(store, grant->sid, req.now) == StoreStatus::pending) return store_failure_json(StoreStatus::pending);
    return invalid_grant("the authorization code is invalid, expired or already used");
  }

  st = store.get("session:" + grant->sid, &raw);
  if (st == StoreStatus::not_found) return invalid_grant("the sign-in has ended");
  if (st != StoreStatus::ok) return store_failure_json(st);
  auto session = decode_session(raw);
  if (!session || session->client_id != client.client_id) return invalid_grant("the sign-in has ended");
  return issue_tokens(cf, req, *session, grant->scope, has(client.grant_types, "refresh_token"), session->gen,
                      req.now, false);
}

// grant_type=client_credentials (RFC 6749 §4.4; the MCP OAuth Client
// Credentials extension): a service the operator configured
// (mcp_auth_service_client) gets an access token of its own.  Its subject is
// the client, "client:<ID>", with a session record like a sign-in's --
// listed, so the admin API finds and ends it, and read by the guard as any
// other -- that lives as long as the token: no refresh token, the service
// asks again.  *client_id: who the request claims to be, for its event.
Response client_credentials_grant(const Config& cf, Store& store, const Request& req, const Params& form,
                                  std::string* client_id) {
  const auto find = [](const Config& c, std::string_view id) -> const ConfiguredClient* {
    return c.service_client(id);
  };
  Response error;
  const auto* client = static_cast<const ServiceClient*>(authenticate_for_grant(
      cf, store, req, form, find,
      "client credentials are for the services the operator configured (mcp_auth_service_client)", client_id,
      &error));
  if (!client) return error;
  if (!resources_ok(cf, form)) return oauth_error(400, "invalid_target", "this server issues tokens only for " + cf.resource);
  std::vector<std::string> asked = client->scopes;
  std::string scope_param;
  if (form.find("scope", &scope_param) == Params::Lookup::one && !split_scope(scope_param).empty())
    asked = split_scope(scope_param);
  for (const auto& w : asked)
    if (!has(client->scopes, w)) return oauth_error(400, "invalid_scope", "this client may not ask for scope \"" + w + "\"");
  // The admin API's kill switch holds for services too.
  StoreStatus st = client_disabled(store, client->client_id);
  if (st == StoreStatus::ok) return oauth_error(400, "unauthorized_client", "the client has been disabled by the operator");
  if (st != StoreStatus::not_found) return store_failure_json(st);

  Session s;
  s.sid = random_token(32);
  s.sub = std::string(kClientSubjectPrefix) + client->client_id;
  s.subject_type = "client";
  s.name = client->name.empty() ? client->client_id : client->name;
  s.client_id = client->client_id;
  s.scope = join_scope(asked);
  s.resource = cf.resource;
  s.created = s.rotated_at = req.now;
  s.expires = req.now + cf.access_token_ttl;
  return open_session_and_issue(cf, store, req, s);
}

std::string seal_renewal(const Config& cf, const Request& req, const std::string& client_id,
                         const std::string& refresh_token, const std::string* scope) {
  Fields f;
  f.set("v", "1");
  f.set("kind", "renew");
  f.set_int("exp", req.now + kContinuationSeconds);
  f.set("client_id", client_id);
  f.set("refresh_token", refresh_token);
  if (scope) f.set("scope", *scope);
  return cf.keys->seal(kContinuationPurpose, f.encode());
}

Response refresh_grant(const Config& cf, Store& store, const Request& req, const ClientMetadata& client,
                       const std::string& refresh_token, const std::string* scope_param, bool may_renew) {
  if (!has(client.grant_types, "refresh_token"))
    return oauth_error(400, "unauthorized_client", "this client did not register for refresh tokens");
  auto plain = cf.keys->open(seal_purpose::refresh_token, refresh_token);
  std::optional<RefreshClaims> claims;
  if (plain) claims = decode_refresh(*plain);
  if (!claims) return invalid_grant("the refresh token is invalid");
  if (claims->exp <= req.now) return invalid_grant("the refresh token has expired");
  if (claims->client_id != client.client_id) return invalid_grant("the refresh token was issued to another client");

  for (int attempt = 0; attempt < 4; ++attempt) {
    std::string raw;
    StoreStatus st = store.get("session:" + claims->sid, &raw);
    if (st == StoreStatus::not_found) return invalid_grant("the sign-in has ended or was revoked");
    if (st != StoreStatus::ok) return store_failure_json(st);
    auto s = decode_session(raw);
    if (!s || s->expires <= req.now) return invalid_grant("the sign-in has ended");
    if (s->client_id != client.client_id) return invalid_grant("the refresh token was issued to another client");

    // RFC 6749 §6: a refresh may narrow the scope, never widen it.
    std::string scope = s->scope;
    if (scope_param) {
      const auto granted = split_scope(s->scope);
      const auto asked = split_scope(*scope_param);
      for (const auto& w : asked)
        if (!has(granted, w)) return oauth_error(400, "invalid_scope", "scope \"" + w + "\" was not granted");
      if (!asked.empty()) scope = join_scope(asked);
    }

    // The grace lasts kRefreshGraceSeconds, and never past the winner's
    // tokens: a grace answer repeats them and must not be expired.  (A
    // negative `since` is another node's clock running ahead: concurrent.)
    const bool current = claims->gen == s->gen;
    const int64_t since = req.now - s->rotated_at;
    const bool grace = claims->gen + 1 == s->gen && since <= kRefreshGraceSeconds &&
                       since < std::min(cf.access_token_ttl, cf.refresh_token_ttl);
    if (!current && !grace) {
      // a failure here leaves entries the lists skip and drop later
      if (store.del("session:" + s->sid) == StoreStatus::ok) unlist_session(store, *s, req.now);
      Response r = invalid_grant("the refresh token was already used; the sign-in is revoked");
      Event& e = r.event(MCPA_EV_REFRESH_REUSE, "refresh.reuse_detected", "revoked");
      e.subject = s->sub;
      e.client_id = s->client_id;
      e.session_tag = session_log_tag(s->sid);
      return r;
    }

    // Step-up: the guard refused this sign-in an operation for want of a
    // scope (403 insufficient_scope).  The official TypeScript client answers
    // that by refreshing -- without the new scope -- and retrying once; a
    // refresh that worked would only repeat the 403.  Refusing it sends the
    // client back to /authorize, where the user can grant the wider scope.
    std::string stepup;
    st = store.get("stepup:" + s->sid, &stepup);
    if (st == StoreStatus::ok)
      return invalid_grant("this sign-in lacks the scope \"" + stepup + "\"; sign in again to grant it");
    if (st == StoreStatus::pending) return store_failure_json(st);

    // Keep the provider's session alive (and learn if it ended) before
    // handing out more tokens; one renewal at a time per session.
    if (may_renew && provider_renewal_due(*s, req.now, kProviderRenewMargin)) {
      st = claim_provider_renewal(store, s->sid, req.now);
      if (st == StoreStatus::pending) return store_failure_json(st);
      if (st == StoreStatus::ok) {
        ProviderRequest pr = provider_refresh_request(cf, s->provider_refresh_token, req.now);
        if (pr.ok) {
          return provider_token_fetch(std::move(pr),
                                      seal_renewal(cf, req, client.client_id, refresh_token, scope_param));
        }
        st = store.del("renewing:" + s->sid);
        if (st == StoreStatus::pending) return store_failure_json(st);
      }
    }

    if (grace) return issue_tokens(cf, req, *s, scope, true, s->gen, s->rotated_at, true);
    Session next = *s;
    next.gen = s->gen + 1;
    next.rotated_at = req.now;
    st = store.replace_if("session:" + s->sid, raw, encode_session(next), s->expires);
    if (st == StoreStatus::ok) return issue_tokens(cf, req, next, scope, true, next.gen, next.rotated_at, true);
    if (st == StoreStatus::conflict || st == StoreStatus::not_found) continue;  // someone else changed it
    return store_failure_json(st);
  }
  return oauth_error(503, "temporarily_unavailable", "the sign-in is busy; try again");
}

Response token(const Config& cf, Store& store, const Request& req) {
  if (req.method != "POST") return method_not_allowed(kMethods);
  if (!cf.keys) return oauth_error(500, "server_error", "the token endpoint is not configured (key file)");
  if (media_type(req.content_type) != "application/x-www-form-urlencoded")
    return oauth_error(400, "invalid_request", "send the request as application/x-www-form-urlencoded");
  auto form = Params::parse(req.body);
  if (!form) return oauth_error(400, "invalid_request", "the request body is malformed");
  if (form->items().size() > 32) return oauth_error(400, "invalid_request", "too many parameters");
  // RFC 6749 §3.2: parameters must not repeat (resource may, RFC 8707).
  for (size_t i = 0; i < form->items().size(); ++i)
    for (size_t j = i + 1; j < form->items().size(); ++j)
      if (form->items()[i].first == form->items()[j].first && form->items()[i].first != "resource")
        return oauth_error(400, "invalid_request", form->items()[i].first + " is repeated");

  std::string grant_type;
  // Backends authenticate as operator-configured clients, not registered ones.
  if (form->find("grant_type", &grant_type) == Params::Lookup::one && grant_type == kTokenExchangeGrant)
    return token_exchange_grant(cf, store, req, *form);

  // So do the apps that present their users' enterprise assertions.
  if (grant_type == kJwtBearerGrant && !cf.enterprise_clients.empty())
    return enterprise_grant(cf, store, req, *form);

  // Services authenticate as operator-configured clients too.
  if (grant_type == "client_credentials" && !cf.service_clients.empty()) {
    std::string client_id;
    Response r = client_credentials_grant(cf, store, req, *form, &client_id);
    if (r.status != 200 && r.fetch.target == MCPA_FETCH_NONE) {
      Event& e = r.event(MCPA_EV_TOKEN, "token.refused", r.error.empty() ? "server_error" : r.error);
      e.client_id = client_id;
    }
    return r;
  }

  ClientAuth auth = authenticate_client(cf, store, req, *form);
  if (!auth.ok) return auth.error;

  if (form->find("grant_type", &grant_type) != Params::Lookup::one)
    return oauth_error(400, "invalid_request", "grant_type is required");
  if (grant_type == "authorization_code") {
    if (!has(auth.client.grant_types, "authorization_code"))
      return oauth_error(400, "unauthorized_client", "this client did not register for this grant");
    return authorization_code_grant(cf, store, req, auth.client, *form);
  }
  if (grant_type == "refresh_token") {
    std::string refresh, scope;
    if (form->find("refresh_token", &refresh) != Params::Lookup::one || refresh.empty())
      return oauth_error(400, "invalid_request", "refresh_token is required");
    if (!resources_ok(cf, *form))
      return oauth_error(400, "invalid_target", "this server issues tokens only for " + cf.resource);
    const bool scoped = form->find("scope", &scope) == Params::Lookup::one;
    return refresh_grant(cf, store, req, auth.client, refresh, scoped ? &scope : nullptr, true);
  }
  std::string supported = "supported: authorization_code, refresh_token";
  if (!cf.service_clients.empty()) supported += ", client_credentials";
  if (!cf.enterprise_clients.empty()) supported += ", " + std::string(kJwtBearerGrant);
  return oauth_error(400, "unsupported_grant_type", supported);
}

Response renewal_answer(const Config& cf, Store& store, const Request& req, const std::string& continuation,
                        int fetch_status, const std::string& fetch_body) {
  auto plain = cf.keys->open(kContinuationPurpose, continuation);
  std::optional<Fields> f;
  if (plain) f = Fields::decode(*plain);
  if (!f || f->str("v") != "1" || f->str("kind") != "renew" || f->num("exp").value_or(0) <= req.now)
    return oauth_error(500, "server_error", "unexpected provider answer");
  ClientMetadata client;
  StoreStatus st = load_client(store, f->str("client_id"), &client);
  if (st == StoreStatus::not_found) return oauth_error(401, "invalid_client", "unknown client");
  if (st != StoreStatus::ok) return store_failure_json(st);
  const std::string refresh = f->str("refresh_token");
  const std::string scope = f->str("scope");
  const std::string* scope_param = f->has("scope") ? &scope : nullptr;

  auto opened = cf.keys->open(seal_purpose::refresh_token, refresh);
  std::optional<RefreshClaims> claims;
  if (opened) claims = decode_refresh(*opened);
  if (!claims) return invalid_grant("the refresh token is invalid");
  const std::string key = "session:" + claims->sid;

  // Unreachable or 5xx: our tokens stay valid; the next refresh tries the
  // provider again.
  const RenewalOutcome renewal = apply_provider_renewal(cf, store, claims->sid, fetch_status, fetch_body, req.now);
  Response r;
  switch (renewal) {
    case RenewalOutcome::ended: r = invalid_grant("the sign-in at the identity provider has ended"); break;
    case RenewalOutcome::pending: return store_failure_json(StoreStatus::pending);
    case RenewalOutcome::renewed:
    case RenewalOutcome::unavailable: r = refresh_grant(cf, store, req, client, refresh, scope_param, false); break;
  }
  Event& e = r.event(MCPA_EV_PROVIDER_RENEWAL, "provider.renewal", renewal_outcome_word(renewal));
  e.client_id = client.client_id;
  e.session_tag = session_log_tag(claims->sid);
  return r;
}

// The token request's event: the one issue_tokens made, or one for the
// refusal, with the grant type the client asked for.
// form: the request's, parsed (nullopt when it is not a form).
void note_grant(Response& r, const std::optional<Params>& form, std::string grant_type) {
  if (r.fetch.target != MCPA_FETCH_NONE) return;
  Event* token = nullptr;
  for (auto& e : r.events)
    if (e.kind == MCPA_EV_TOKEN) token = &e;
  if (!token) {
    token = &r.event(MCPA_EV_TOKEN, "token.refused", r.error.empty() ? "server_error" : r.error);
    for (auto& e : r.events)
      if (e.kind == MCPA_EV_EXCHANGE) {
        // counted here too; the exchange's own event is the audit line
        if (r.status == 200) {
          token->name = "token.issued";
          token->outcome = "ok";
        }
        token->audit = false;
      }
    if (form) form->find("client_id", &token->client_id);
    for (auto& e : r.events)
      if (e.kind == MCPA_EV_REFRESH_REUSE || e.kind == MCPA_EV_PROVIDER_RENEWAL) {
        token->subject = e.subject;
        token->client_id = e.client_id;
        token->session_tag = e.session_tag;
      }
  }
  token->grant_type = std::move(grant_type);
}

}  // namespace

Response handle_token(const Config& cf, Store& store, const Request& req) {
  if (req.method == "OPTIONS") return preflight(cf, req.origin, kMethods);
  Response r = token(cf, store, req);
  if (r.fetch.target == MCPA_FETCH_NONE) add_cors(r, cf, req.origin);
  std::string grant_type;
  auto form = Params::parse(req.body);
  if (form && form->find("grant_type", &grant_type) != Params::Lookup::one) grant_type.clear();
  if (r.wait_ms) return r;
  note_grant(r, form,
             grant_type == "authorization_code" || grant_type == "refresh_token" ||
                     (grant_type == "client_credentials" && !cf.service_clients.empty())
                 ? grant_type
             : grant_type == kTokenExchangeGrant                                ? "token_exchange"
             : (grant_type == kJwtBearerGrant && !cf.enterprise_clients.empty()) ? "jwt_bearer"
                                                                                 : "other");
  return r;
}

Response resume_token(const Config& cf, Store& store, const Request& req, const std::string& continuation,
                      int fetch_status, const std::string& fetch_body) {
  if (!cf.keys) return oauth_error(500, "server_error", "the token endpoint is not configured (key file)");
  auto plain = cf.keys->open(kContinuationPurpose, continuation);
  std::optional<Fields> f;
  if (plain) f = Fields::decode(*plain);
  if (f && is_exchange_continuation(*f) && f->num("exp").value_or(0) > req.now) {
    Response r = resume_token_exchange(cf, store, req, *f, fetch_status, fetch_body);
    if (r.fetch.target == MCPA_FETCH_NONE) add_cors(r, cf, req.origin);
    if (!r.wait_ms) note_grant(r, Params::parse(req.body), "token_exchange");
    return r;
  }
  if (f && is_client_jwks_continuation(*f) && f->num("exp").value_or(0) > req.now) {
    // a configured client's keys: cached, and the request runs again
    Response answer;
    if (resume_client_jwks(store, req, *f, fetch_status, fetch_body, &answer)) return handle_token(cf, store, req);
    add_cors(answer, cf, req.origin);
    std::string grant_type;
    auto form = Params::parse(req.body);
    if (form) form->find("grant_type", &grant_type);
    note_grant(answer, form, grant_type == kTokenExchangeGrant ? "token_exchange"
                             : grant_type == kJwtBearerGrant   ? "jwt_bearer"
                                                               : "client_credentials");
    return answer;
  }
  if (f && is_enterprise_continuation(*f) && f->num("exp").value_or(0) > req.now) {
    Response r = resume_enterprise_grant(cf, store, req, *f, fetch_status, fetch_body);
    if (r.fetch.target == MCPA_FETCH_NONE) add_cors(r, cf, req.origin);
    note_grant(r, Params::parse(req.body), "jwt_bearer");
    return r;
  }
  Response r = renewal_answer(cf, store, req, continuation, fetch_status, fetch_body);
  if (r.fetch.target == MCPA_FETCH_NONE) add_cors(r, cf, req.origin);
  note_grant(r, Params::parse(req.body), "refresh_token");
  return r;
}

}  // namespace mcpauth
