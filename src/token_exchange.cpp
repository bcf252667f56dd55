#include "token_exchange.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <memory>

#include "crypto.hpp"
#include "encoding.hpp"
#include "identity_assertion.hpp"
#include "json.hpp"
#include "provider.hpp"
#include "provider_renewal.hpp"

namespace mcpauth {
namespace {

constexpr const char* kJwtTokenType = "urn:ietf:params:oauth:token-type:jwt";
constexpr const char* kAccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

constexpr int64_t kLockSeconds = 20;        // longer than the provider subrequest may take
constexpr int kWaitMs = 100;                // how often a waiting request looks again
constexpr int kMaxWaits = 120;              // then it gives up (503)
constexpr int64_t kRefusalSeconds = 10;     // a provider's refusal is repeated this long
constexpr int64_t kUnknownLifetime = 60;    // a token without expires_in is kept this long
constexpr int64_t kMaxEarlyRenewal = 60;    // a cached token is replaced this long before it expires
constexpr int64_t kRenewMargin = 30;        // the user's provider token is renewed first this close to expiry
constexpr int64_t kContinuationSeconds = 120;

// What the request is about, as far as it is known: the event's fields.
struct Context {
  std::string client_id, subject, session_tag, audience, scope;
  const char* method = "none";
};

Response refuse(int status, const char* code, const std::string& why) { return oauth_error(status, code, why); }

// The outcome word of a refusal: its error code, or the provider's.
void note(Response& r, const Context& ctx, const char* outcome) {
  if (r.fetch.target != MCPA_FETCH_NONE || r.wait_ms) return;
  const bool ok = r.status == 200;
  std::string word = outcome ? outcome : r.error.empty() ? "server_error" : r.error;
  Event& e = r.event(MCPA_EV_EXCHANGE, ok ? "token.exchanged" : "token.exchange_refused", word);
  e.grant_type = ctx.method;
  e.client_id = ctx.client_id;
  e.subject = ctx.subject;
  e.session_tag = ctx.session_tag;
  e.audience = ctx.audience;
  e.scope = ctx.scope;
}

Response wait_or_give_up(const Request& req) {
  if (req.waits >= kMaxWaits) {
    Response r = refuse(503, "temporarily_unavailable", "an exchange for this audience is still under way; try again");
    r.header("Retry-After", "1");
    return r;
  }
  Response r;
  r.wait_ms = kWaitMs;
  return r;
}

bool listed(const std::vector<std::string>& v, const std::string& w) { return std::find(v.begin(), v.end(), w) != v.end(); }

// The backend, an operator-configured client (configured_client.hpp).
const ExchangeClient* authenticate_backend(const Config& cf, Store& store, const Request& req, const Params& form,
                                           Context& ctx, Response* error) {
  const auto find = [](const Config& c, std::string_view id) -> const ConfiguredClient* { return c.exchange_client(id); };
  bool unknown = false;
  return static_cast<const ExchangeClient*>(
      authenticate_configured_client(cf, store, req, form, find, &ctx.client_id, &unknown, error));
}

// The 200 answer (RFC 8693 §2.2.1).
Response issued(const std::string& token, const std::string& scope, int64_t exp, const Request& req) {
  Json obj(cJSON_CreateObject());
  if (!obj) throw std::bad_alloc();
  cJSON_AddStringToObject(obj.get(), "access_token", token.c_str());
  cJSON_AddStringToObject(obj.get(), "issued_token_type", kAccessTokenType);
  cJSON_AddStringToObject(obj.get(), "token_type", "Bearer");
  if (exp > req.now) cJSON_AddNumberToObject(obj.get(), "expires_in", double(exp - req.now));
  if (!scope.empty()) cJSON_AddStringToObject(obj.get(), "scope", scope.c_str());
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(obj.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  return json_response(200, text.get());
}

std::string seal_step(const Config& cf, const Request& req, const char* kind, const Context& ctx,
                      const std::string& sid) {
  Fields f;
  f.set("v", "1");
  f.set("kind", kind);
  f.set_int("exp", req.now + kContinuationSeconds);
  f.set("client_id", ctx.client_id);
  f.set("sid", sid);
  f.set("audience", ctx.audience);
  f.set("scope", ctx.scope);
  return cf.keys->seal(kContinuationPurpose, f.encode());
}

// The session the request's assertion names, checked: a live session of
// the subject and client the assertion names.  False with *error set when
// there is none.
bool find_session(const Config& cf, Store& store, const Request& req, const std::string& subject_token,
                  Context& ctx, Session* out, Response* error) {
  std::string why;
  auto who = cf.identity->read(subject_token, req.now, &why);
  if (!who) {
    *error = refuse(400, "invalid_grant", "the subject token is not valid: " + why);
    return false;
  }
  auto sid = open_session_ref(*cf.keys, who->session_ref);
  if (!sid) {
    *error = refuse(400, "invalid_grant", "the subject token names no session of this gateway");
    return false;
  }
  ctx.subject = who->sub;
  ctx.session_tag = session_log_tag(*sid);
  std::string raw;
  StoreStatus st = store.get("session:" + *sid, &raw);
  if (st == StoreStatus::ok && (!decode_session_into(raw, out) || out->sid != *sid || out->expires <= req.now))
    st = StoreStatus::not_found;
  if (st != StoreStatus::ok) {
    *error = st == StoreStatus::not_found ? refuse(400, "invalid_grant", "the user's sign-in has ended")
                                          : store_failure_json(st);
    return false;
  }
  if (out->sub != who->sub || out->client_id != who->client_id) {
    *error = refuse(400, "invalid_grant", "the subject token does not match its session");
    return false;
  }
  return true;
}

// The cached answer for this session, audience and scope, if there is one
// (a token, or the provider's recent refusal).
std::optional<Response> cached_answer(Store& store, const Request& req, const std::string& key,
                                      const Context& ctx, const char** outcome, StoreStatus* status) {
  std::string raw;
  *status = store.get(key, &raw);
  if (*status != StoreStatus::ok) return std::nullopt;
  auto f = Fields::decode(raw);
  if (!f || f->str("scope") != ctx.scope) return std::nullopt;
  if (f->str("kind") == "token") {
    *outcome = "cached";
    return issued(f->str("access_token"), f->str("token_scope"), f->num("exp").value_or(0), req);
  }
  if (f->str("kind") == "refused") {
    *outcome = "provider_refused";
    return refuse(400, f->str("error") == "invalid_scope" ? "invalid_scope" : "invalid_target", f->str("description"));
  }
  return std::nullopt;
}

Response exchange(const Config& cf, Store& store, const Request& req, const Params& form, Context& ctx,
                  bool may_renew, const char** outcome) {
  if (!cf.identity) return refuse(500, "server_error", "token exchange is not configured (identity key)");
  Response error;
  const ExchangeClient* client = authenticate_backend(cf, store, req, form, ctx, &error);
  if (!client) return error;

  std::string subject_token, subject_type, audience, scope_param, requested;
  if (form.find("subject_token", &subject_token) != Params::Lookup::one || subject_token.empty())
    return refuse(400, "invalid_request", "subject_token is required: the identity assertion of the request");
  if (form.find("subject_token_type", &subject_type) != Params::Lookup::one || subject_type != kJwtTokenType)
    return refuse(400, "invalid_request", std::string("subject_token_type must be ") + kJwtTokenType);
  if (form.has("actor_token") || form.has("actor_token_type"))
    return refuse(400, "invalid_request", "actor tokens are not accepted");
  if (form.find("requested_token_type", &requested) == Params::Lookup::one && requested != kAccessTokenType)
    return refuse(400, "invalid_request", std::string("only ") + kAccessTokenType + " can be requested");
  if (form.has("resource")) return refuse(400, "invalid_target", "ask for a downstream API by audience, not resource");
  if (form.find("audience", &audience) != Params::Lookup::one || audience.empty())
    return refuse(400, "invalid_request", "audience is required");
  ctx.audience = audience;

  const ExchangeAudience* aud = cf.exchange_audience(audience);
  const ExchangeGrant* grant = client->grant_for(audience);
  if (!aud || !grant) return refuse(400, "invalid_target", "this client may not ask for audience " + audience);
  ctx.method = exchange_method_word(aud->method);
  const std::vector<std::string>& allowed = grant->scopes.empty() ? aud->scopes : grant->scopes;
  std::vector<std::string> asked = allowed;
  if (form.find("scope", &scope_param) == Params::Lookup::one && !scope_param.empty()) asked = split_scope(scope_param);
  for (const auto& w : asked)
    if (!listed(allowed, w))
      return refuse(400, "invalid_scope", "this client may not ask for scope " + w + " at audience " + audience);
  ctx.scope = join_scope(asked);

  Session s;
  if (!find_session(cf, store, req, subject_token, ctx, &s, &error)) return error;
  if (s.subject_type == "client")
    return refuse(400, "invalid_grant", "the subject is a service client, which holds no token of the provider");
  const bool by_refresh = aud->method == ExchangeAudience::Method::refresh_token;
  const std::string& user_token = by_refresh ? s.provider_refresh_token : s.provider_access_token;
  if (user_token.empty())
    return refuse(400, "invalid_grant", by_refresh ? "the user's sign-in holds no refresh token of the provider"
                                                   : "the user's sign-in holds no access token of the provider");

  const std::string akey = exchange_audience_key(audience);
  StoreStatus st;
  if (auto answer = cached_answer(store, req, exchange_cache_key(s.sid, akey), ctx, outcome, &st)) return *answer;
  if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);

  // The provider takes only a live access token as the subject: renew it
  // first when it is about to expire (one renewal at a time per session).
  if (!by_refresh && provider_renewal_due(s, req.now, kRenewMargin)) {
    if (may_renew) {
      st = claim_provider_renewal(store, s.sid, req.now);
      if (st == StoreStatus::exists) return wait_or_give_up(req);
      if (st != StoreStatus::ok) return store_failure_json(st);
      ProviderRequest pr = provider_refresh_request(cf, s.provider_refresh_token, req.now);
      if (!pr.ok) {
        store.del("renewing:" + s.sid);
        return refuse(500, "server_error", pr.error);
      }
      return provider_token_fetch(std::move(pr), seal_step(cf, req, "exchange-renew", ctx, s.sid));
    }
    if (s.provider_expires <= req.now) {
      Response r = refuse(503, "temporarily_unavailable", "the identity provider could not renew the user's token");
      r.header("Retry-After", "5");
      return r;
    }
  }

  st = store.put_new("exchanging:" + s.sid + ":" + akey, "1", req.now + kLockSeconds);
  if (st == StoreStatus::exists) return wait_or_give_up(req);
  if (st != StoreStatus::ok) return store_failure_json(st);
  // The holder before us may have cached its answer and let go between our
  // look at the cache and our lock: look again, holding it.
  if (auto answer = cached_answer(store, req, exchange_cache_key(s.sid, akey), ctx, outcome, &st)) {
    store.del("exchanging:" + s.sid + ":" + akey);
    return *answer;
  }
  if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);
  ProviderRequest pr = provider_exchange_request(cf, *aud, user_token, ctx.scope, req.now);
  if (!pr.ok) {
    store.del("exchanging:" + s.sid + ":" + akey);
    return refuse(500, "server_error", pr.error);
  }
  return provider_token_fetch(std::move(pr), seal_step(cf, req, "exchange", ctx, s.sid));
}

// Keeps the audience's key in the session's list (and, for a refresh-token
// grant, the provider's new refresh token), so that ending the session
// deletes the cached token.
StoreStatus record_in_session(Store& store, const std::string& sid, const std::string& akey,
                              const std::string& new_refresh) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::string raw;
    StoreStatus st = store.get("session:" + sid, &raw);
    if (st != StoreStatus::ok) return st;
    auto s = decode_session(raw);
    if (!s) return StoreStatus::not_found;
    auto keys = split_scope(s->exchanges);
    const bool known = listed(keys, akey);
    if (known && (new_refresh.empty() || new_refresh == s->provider_refresh_token)) return StoreStatus::ok;
    if (!known) keys.push_back(akey);
    // at most one key per configured audience is live; after a reload that
    // removed audiences, the oldest go (their entries expire by themselves)
    if (keys.size() > kMaxExchangeAudiences) keys.erase(keys.begin(), keys.end() - kMaxExchangeAudiences);
    s->exchanges = join_scope(keys);
    if (!new_refresh.empty()) s->provider_refresh_token = new_refresh;
    st = store.replace_if("session:" + sid, raw, encode_session(*s), s->expires);
    if (st != StoreStatus::conflict) return st;
  }
  return StoreStatus::conflict;
}

Response exchange_answer(const Config& cf, Store& store, const Request& req, const Fields& f, int fetch_status,
                         const std::string& fetch_body, Context& ctx, const char** outcome) {
  const ExchangeAudience* aud = cf.exchange_audience(ctx.audience);
  const std::string sid = f.str("sid");
  if (!aud || sid.empty()) return refuse(500, "server_error", "unexpected provider answer");
  ctx.method = exchange_method_word(aud->method);
  ctx.session_tag = session_log_tag(sid);
  const std::string akey = exchange_audience_key(ctx.audience);
  const std::string lock = "exchanging:" + sid + ":" + akey;
  const auto release = [&](Response r) {
    StoreStatus st = store.del(lock);
    if (st == StoreStatus::pending) return store_failure_json(st);
    return r;
  };

  std::string raw;
  StoreStatus st = store.get("session:" + sid, &raw);
  auto s = st == StoreStatus::ok ? decode_session(raw) : std::nullopt;
  if (st == StoreStatus::pending) return store_failure_json(st);
  if (s) ctx.subject = s->sub;
  if (!s || s->expires <= req.now)
    return release(refuse(400, "invalid_grant", "the user's sign-in ended during the exchange"));

  const std::string key = exchange_cache_key(sid, akey);
  if (fetch_status == 200) {
    auto parsed = parse_provider_tokens(fetch_body);
    if (auto* t = std::get_if<ProviderTokens>(&parsed)) {
      const int64_t lifetime = t->expires_in;
      const int64_t exp = lifetime > 0 ? req.now + lifetime : 0;
      const int64_t keep_until =
          lifetime > 0 ? exp - std::min(kMaxEarlyRenewal, lifetime / 4) : req.now + kUnknownLifetime;
      const std::string scope = t->scope.empty() ? ctx.scope : t->scope;
      const bool by_refresh = aud->method == ExchangeAudience::Method::refresh_token;
      st = record_in_session(store, sid, akey, by_refresh ? t->refresh_token : std::string());
      if (st == StoreStatus::pending) return store_failure_json(st);
      if (st == StoreStatus::ok && keep_until > req.now) {
        Fields c;
        c.set("v", "1");
        c.set("kind", "token");
        c.set("scope", ctx.scope);
        c.set("token_scope", scope);
        c.set("access_token", t->access_token);
        c.set_int("exp", exp);
        st = store.put(key, c.encode(), keep_until);
        if (st == StoreStatus::pending) return store_failure_json(st);
      }
      *outcome = "issued";
      return release(issued(t->access_token, scope, exp, req));
    }
  } else if (fetch_status >= 400 && fetch_status < 500) {
    const std::string code = provider_error_code(fetch_body);
    Fields c;
    c.set("v", "1");
    c.set("kind", "refused");
    c.set("scope", ctx.scope);
    c.set("error", code == "invalid_scope" ? code : "invalid_target");
    c.set("description",
          "the identity provider refused a token for audience " + ctx.audience + (code.empty() ? "" : " (" + code + ")"));
    st = store.put(key, c.encode(), req.now + kRefusalSeconds);
    if (st == StoreStatus::pending) return store_failure_json(st);
    *outcome = "provider_refused";
    return release(refuse(400, c.str("error").c_str(), c.str("description")));
  }
  *outcome = "provider_unavailable";
  Response r = refuse(503, "temporarily_unavailable", "the identity provider could not be reached; try again");
  r.header("Retry-After", "5");
  return release(std::move(r));
}

}  // namespace

std::string exchange_audience_key(const std::string& audience) { return sha256_b64url("audience|" + audience).substr(0, 16); }

std::string exchange_cache_key(const std::string& sid, const std::string& audience_key) {
  return "exchange:" + sid + ":" + audience_key;
}

Response token_exchange_grant(const Config& cf, Store& store, const Request& req, const Params& form) {
  Context ctx;
  const char* outcome = nullptr;
  Response r = exchange(cf, store, req, form, ctx, true, &outcome);
  note(r, ctx, outcome);
  return r;
}

bool is_exchange_continuation(const Fields& f) {
  return f.str("kind") == "exchange" || f.str("kind") == "exchange-renew";
}

Response resume_token_exchange(const Config& cf, Store& store, const Request& req, const Fields& f, int fetch_status,
                               const std::string& fetch_body) {
  Context ctx;
  ctx.client_id = f.str("client_id");
  ctx.audience = f.str("audience");
  ctx.scope = f.str("scope");
  const char* outcome = nullptr;
  Response r;
  if (f.str("kind") == "exchange") {
    r = exchange_answer(cf, store, req, f, fetch_status, fetch_body, ctx, &outcome);
  } else {
    // The user's provider token was renewed (or not): the exchange itself
    // now, without renewing again.
    const std::string sid = f.str("sid");
    const RenewalOutcome renewal = apply_provider_renewal(cf, store, sid, fetch_status, fetch_body, req.now);
    if (renewal == RenewalOutcome::pending) return store_failure_json(StoreStatus::pending);
    if (renewal == RenewalOutcome::ended) {
      r = refuse(400, "invalid_grant", "the user's sign-in at the identity provider has ended");
    } else {
      auto form = Params::parse(req.body);
      if (!form) return refuse(400, "invalid_request", "the request body is malformed");
      ctx = Context();
      r = exchange(cf, store, req, *form, ctx, false, &outcome);
    }
    if (r.fetch.target == MCPA_FETCH_NONE && !r.wait_ms) {
      Event& e = r.event(MCPA_EV_PROVIDER_RENEWAL, "provider.renewal", renewal_outcome_word(renewal));
      e.client_id = ctx.client_id;
      e.session_tag = session_log_tag(sid);
    }
  }
  note(r, ctx, outcome);
  return r;
}

}  // namespace mcpauth
