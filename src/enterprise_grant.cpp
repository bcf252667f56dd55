#include "enterprise_grant.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cmath>

#include "config.hpp"
#include "configured_client.hpp"
#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "id_token.hpp"
#include "json.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

constexpr const char* kIssuerDirective = "mcp_auth_trusted_issuer";
constexpr const char* kContinuationKind = "idjag_jwks";
constexpr int64_t kContinuationSeconds = 120;
constexpr int64_t kJtiLeeway = 60;

bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// An issuer as the draft names it (RFC 8414 §2): an http(s) URL, compared
// exactly with the assertion's iss.
bool issuer_word(std::string_view w) {
  return plain_word(w) && (w.rfind("https://", 0) == 0 || w.rfind("http://", 0) == 0);
}

std::string str_claim(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
}

// A NumericDate; -1 when absent, -2 when not a plausible one.
int64_t date_claim(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!v) return -1;
  if (!cJSON_IsNumber(v) || !std::isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e12) return -2;
  return static_cast<int64_t>(v->valuedouble);
}

// A string equal to `want`, or an array holding it.
bool names(const cJSON* v, const std::string& want) {
  if (cJSON_IsString(v)) return want == v->valuestring;
  if (!cJSON_IsArray(v)) return false;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, v) if (cJSON_IsString(item) && want == item->valuestring) return true;
  return false;
}

// RFC 8725 §3.11: the media type in typ, "application/" optional, any case.
bool id_jag_typ(const char* typ) {
  if (!typ) return false;
  std::string t = typ;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return t == "oauth-id-jag+jwt" || t == "application/oauth-id-jag+jwt";
}

Response refused(const std::string& why) { return oauth_error(400, "invalid_grant", why); }

Response busy(const std::string& why) {
  Response r = oauth_error(503, "temporarily_unavailable", why);
  r.header("Retry-After", "5");
  return r;
}

// The grant, with the issuer's keys when the request fetched them.
Response grant(const Config& cf, Store& store, const Request& req, const Params& form, std::string* client_id,
               std::shared_ptr<const std::vector<Jwk>> fetched) {
  const auto find = [](const Config& c, std::string_view id) -> const ConfiguredClient* {
    return c.enterprise_client(id);
  };
  Response error;
  const auto* client = static_cast<const EnterpriseClient*>(authenticate_for_grant(
      cf, store, req, form, find,
      "identity assertions are for the apps the operator configured (mcp_auth_enterprise_client)", client_id,
      &error));
  if (!client) return error;
  if (!resources_ok(cf, form))
    return oauth_error(400, "invalid_target", "this server issues tokens only for " + cf.resource);
  std::string assertion;
  if (form.find("assertion", &assertion) != Params::Lookup::one || assertion.empty())
    return oauth_error(400, "invalid_request", "assertion is required: the ID-JAG from your identity provider");
  if (assertion.size() > kIdJagMaxBytes) return refused("the assertion is too large");

  auto iss = id_jag_issuer(assertion);
  if (!iss) return refused("the assertion is not a signed JWT");
  const TrustedIssuer* trusted = cf.trusted_issuer(*iss);
  if (!trusted || !has(client->issuers, *iss))
    return refused(trusted ? "this client may not present assertions of issuer " + *iss
                           : "the assertion's issuer is not trusted here");

  // The issuer's keys: cached in the store, fetched once per request when
  // missing, or when the assertion names a key the cache lacks and the set
  // was not fetched in the last kJwksRefetchSeconds (then verifying refuses
  // the unknown kid).
  std::shared_ptr<const std::vector<Jwk>> keys = std::move(fetched);
  if (!keys) {
    std::string raw;
    StoreStatus st = store.get("jwks:" + trusted->issuer, &raw);
    if (st == StoreStatus::ok) keys = parse_jwks_cached(raw, nullptr);
    else if (st != StoreStatus::not_found) return store_failure_json(st);
    bool fetch = !jwks_covers(keys, jwt_header_kid(assertion));
    if (fetch && keys && !keys->empty()) {
      std::string recent;
      st = store.get(jwks_fetched_key(trusted->issuer), &recent);
      if (st == StoreStatus::ok) fetch = false;
      else if (st != StoreStatus::not_found) return store_failure_json(st);
    }
    if (fetch) {
      Fields f;
      f.set("v", "1");
      f.set("kind", kContinuationKind);
      f.set("iss", trusted->issuer);
      f.set_int("exp", req.now + kContinuationSeconds);
      Response r;
      r.fetch.target = MCPA_FETCH_ISSUER_JWKS;
      r.fetch.path = trusted->jwks_location;
      r.fetch.continuation = cf.keys->seal(kContinuationPurpose, f.encode());
      return r;
    }
  }

  IdJagExpectations expect;
  expect.issuer = trusted->issuer;
  expect.audience = cf.issuer;
  expect.resource = cf.resource;
  expect.client_id = client->client_id;
  expect.now = req.now;
  auto verified = verify_id_jag(assertion, *keys, expect);
  if (auto* why = std::get_if<std::string>(&verified)) return refused(*why);
  const IdJagClaims& who = std::get<IdJagClaims>(verified);

  // The claim rules hold as for a sign-in through the browser.
  ClaimSet kept;
  if (!cf.access.empty()) {
    Json payload(cJSON_ParseWithLength(who.payload.data(), who.payload.size()));
    if (!payload) return refused("the assertion's claims are not readable");
    std::string why = cf.access.admit(payload.get());
    if (!why.empty()) return oauth_error(400, "invalid_grant", "the user may not use this server: " + why);
    kept = cf.access.keep(payload.get());
  }

  // RFC 6749 §3.3: what the provider granted (the client's allowance when it
  // names none), within the client's allowance; a scope parameter narrows it.
  std::vector<std::string> base;
  for (const auto& w : who.has_scope ? who.scopes : client->scopes)
    if (has(client->scopes, w) && !has(base, w)) base.push_back(w);
  std::vector<std::string> granted = base;
  std::string scope_param;
  if (form.find("scope", &scope_param) == Params::Lookup::one && !split_scope(scope_param).empty()) {
    granted = split_scope(scope_param);
    for (const auto& w : granted)
      if (!has(base, w))
        return oauth_error(400, "invalid_scope", "scope \"" + w + "\" is beyond what the identity provider granted this client");
  }
  std::string scope = join_scope(granted);
  if (cf.access.has_scope_rules()) scope = cf.access.holdable(scope, kept);
  if (scope.empty()) return oauth_error(400, "invalid_scope", "no scope this client may hold for this user");

  // Single use (RFC 7521 §5.2 allows replay protection; the draft's
  // jti is there for it).  The entry names the request that used it, so
  // the same request running again after a fetch still passes.
  const std::string jti_key = "idjag:" + sha256_b64url(trusted->issuer + "\n" + who.jti);
  StoreStatus st = store.put_new(jti_key, req.request_id, who.exp + kJtiLeeway);
  if (st == StoreStatus::exists) {
    std::string first;
    st = store.get(jti_key, &first);
    if (st == StoreStatus::ok && (req.request_id.empty() || !ct_equal(first, req.request_id)))
      return refused("the assertion was used already");
  }
  if (st != StoreStatus::ok) return store_failure_json(st);

  st = client_disabled(store, client->client_id);
  if (st == StoreStatus::ok) return oauth_error(400, "unauthorized_client", "the client has been disabled by the operator");
  if (st != StoreStatus::not_found) return store_failure_json(st);

  Session s;
  s.sid = random_token(32);
  s.sub = trusted->subject_prefix + who.sub;
  s.name = who.name;
  s.email = who.email;
  s.client_id = client->client_id;
  s.scope = scope;
  s.claims = kept.to_record();
  s.resource = cf.resource;
  s.created = s.rotated_at = req.now;
  // No refresh token: the app asks its provider for a new assertion, and
  // the provider decides again.
  s.expires = req.now + cf.access_token_ttl;
  return open_session_and_issue(cf, store, req, s);
}

}  // namespace

std::optional<TrustedIssuer> parse_trusted_issuer(std::string_view line, std::string* err) {
  const auto words = directive_words(line);
  TrustedIssuer t;
  if (words.empty() || !issuer_word(words[0])) {
    *err = std::string(kIssuerDirective) + ": the first word must be the issuer, an http(s) URL as its assertions' iss";
    return std::nullopt;
  }
  t.issuer = std::string(words[0]);
  bool prefixed = false;
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view name, value;
    const bool pair = split_setting(words[i], &name, &value);
    if (pair && name == "jwks_location" && t.jwks_location.empty() && plain_word(value) && value[0] == '/') {
      t.jwks_location = std::string(value);
    } else if (pair && name == "subject_prefix" && !prefixed && plain_word(value) && value.size() <= 64) {
      prefixed = true;
      t.subject_prefix = std::string(value);
    } else {
      *err = std::string(kIssuerDirective) + ": unknown, repeated or malformed setting \"" + std::string(words[i]) + "\"";
      return std::nullopt;
    }
  }
  if (t.jwks_location.empty()) {
    *err = std::string(kIssuerDirective) + ": jwks_location= is required: an internal location proxied to the issuer's jwks_uri";
    return std::nullopt;
  }
  return t;
}

std::optional<std::string> id_jag_issuer(std::string_view jwt) {
  const size_t a = jwt.find('.');
  const size_t b = a == std::string_view::npos ? a : jwt.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  Json claims = jws_json_segment(jwt.substr(a + 1, b - a - 1));
  if (!claims) return std::nullopt;
  std::string iss = str_claim(claims.get(), "iss");
  if (iss.empty()) return std::nullopt;
  return iss;
}

std::variant<IdJagClaims, std::string> verify_id_jag(std::string_view jwt, const std::vector<Jwk>& keys,
                                                     const IdJagExpectations& expect) {
  if (jwt.size() > kIdJagMaxBytes) return std::string("the assertion is too large");
  const size_t a = jwt.find('.');
  Json header = a == std::string_view::npos ? nullptr : jws_json_segment(jwt.substr(0, a));
  if (!header) return std::string("the assertion is not a signed JWT");
  const cJSON* typ = cJSON_GetObjectItemCaseSensitive(header.get(), "typ");
  if (!id_jag_typ(cJSON_IsString(typ) ? typ->valuestring : nullptr))
    return std::string("the assertion's typ must be oauth-id-jag+jwt");
  std::string why;
  auto payload = verify_jws(jwt, keys, &why);
  if (!payload) return "the assertion's signature does not verify with the issuer's keys (" + why + ")";
  Json claims(cJSON_ParseWithLength(payload->data(), payload->size()));
  if (!claims || !cJSON_IsObject(claims.get())) return std::string("the assertion's claims are not a JSON object");
  const cJSON* c = claims.get();

  IdJagClaims out;
  out.sub = str_claim(c, "sub");
  out.jti = str_claim(c, "jti");
  const int64_t exp = date_claim(c, "exp"), iat = date_claim(c, "iat"), nbf = date_claim(c, "nbf");
  if (str_claim(c, "iss") != expect.issuer) return std::string("the assertion's iss is not the trusted issuer");
  if (!names(cJSON_GetObjectItemCaseSensitive(c, "aud"), expect.audience))
    return "the assertion's aud must be this server's issuer, " + expect.audience;
  if (!names(cJSON_GetObjectItemCaseSensitive(c, "resource"), expect.resource))
    return "the assertion's resource must be this server's, " + expect.resource;
  if (str_claim(c, "client_id") != expect.client_id) return std::string("the assertion was issued to another client");
  if (exp < 0) return std::string("the assertion has no valid exp");
  if (exp <= expect.now) return std::string("the assertion has expired");
  if (exp > expect.now + kIdJagMaxLifetime) return std::string("the assertion lives longer than an hour");
  if (iat < 0) return std::string("the assertion has no valid iat");
  if (iat > expect.now + expect.leeway) return std::string("the assertion was issued in the future");
  if (nbf == -2 || nbf > expect.now + expect.leeway) return std::string("the assertion is not valid yet");
  if (out.sub.empty() || out.sub.size() > 255 || !plain_word(out.sub))
    return std::string("the assertion's sub is missing or not a plain identifier");
  if (out.jti.empty() || out.jti.size() > 255) return std::string("the assertion needs a jti");
  const cJSON* scope = cJSON_GetObjectItemCaseSensitive(c, "scope");
  if (scope) {
    if (!cJSON_IsString(scope)) return std::string("the assertion's scope must be a string");
    out.has_scope = true;
    out.scopes = split_scope(scope->valuestring);
  }
  out.exp = exp;
  out.name = str_claim(c, "name");
  if (out.name.empty()) out.name = str_claim(c, "preferred_username");
  out.email = str_claim(c, "email");
  out.payload = std::move(*payload);
  return out;
}

Response enterprise_grant(const Config& cf, Store& store, const Request& req, const Params& form) {
  std::string client_id;
  Response r = grant(cf, store, req, form, &client_id, nullptr);
  if (r.status != 200 && r.fetch.target == MCPA_FETCH_NONE) {
    Event& e = r.event(MCPA_EV_TOKEN, "token.refused", r.error.empty() ? "server_error" : r.error);
    e.client_id = client_id;
  }
  return r;
}

bool is_enterprise_continuation(const Fields& f) { return f.str("kind") == kContinuationKind; }

Response resume_enterprise_grant(const Config& cf, Store& store, const Request& req, const Fields& f,
                                 int fetch_status, const std::string& fetch_body) {
  if (fetch_status != 200) return busy("the identity provider's keys could not be fetched; try again");
  std::string why;
  auto keys = parse_jwks_cached(fetch_body, &why);
  if (!keys) return busy("the identity provider's keys are not usable");
  // A cache failure does not stop this request; the next one refetches.
  StoreStatus st = store.put("jwks:" + f.str("iss"), fetch_body, req.now + kJwksCacheSeconds);
  if (st == StoreStatus::ok) st = store.put(jwks_fetched_key(f.str("iss")), "1", req.now + kJwksRefetchSeconds);
  if (st == StoreStatus::pending) return store_failure_json(st);
  auto form = Params::parse(req.body);
  if (!form) return oauth_error(400, "invalid_request", "the request body is malformed");
  std::string client_id;
  Response r = grant(cf, store, req, *form, &client_id, std::move(keys));
  if (r.status != 200 && r.fetch.target == MCPA_FETCH_NONE) {
    Event& e = r.event(MCPA_EV_TOKEN, "token.refused", r.error.empty() ? "server_error" : r.error);
    e.client_id = client_id;
  }
  return r;
}

}  // namespace mcpauth
