// Routes a request to its endpoint handler, and a provider's answer back to
// the handler that asked for it; and the helpers the handlers share.
#include <cjson/cJSON.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "consent_page.hpp"
#include "json.hpp"
#include "crypto.hpp"
#include "csrf.hpp"
#include "encoding.hpp"
#include "client_metadata_document.hpp"
#include "endpoints.hpp"
#include "metrics.hpp"
#include "redirect_uri.hpp"

namespace mcpauth {
// Dispatch by endpoint.
static Response route_endpoint(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req) {
  switch (ep) {
    case MCPA_EP_AUTHORIZATION_SERVER_METADATA:
      return handle_authorization_server_metadata(cf, req);
    case MCPA_EP_PROTECTED_RESOURCE_METADATA:
      return handle_protected_resource_metadata(cf, req);
    case MCPA_EP_REGISTER:
      return handle_register(cf, store, req);
    case MCPA_EP_AUTHORIZE:
      return handle_authorize(cf, store, req);
    case MCPA_EP_CONSENT:
      return handle_consent(cf, store, req);
    case MCPA_EP_CALLBACK:
      return handle_callback(cf, store, req);
    case MCPA_EP_TOKEN:
      return handle_token(cf, store, req);
    case MCPA_EP_REVOKE:
      return handle_revoke(cf, store, req);
    case MCPA_EP_ADMIN:
      return handle_admin(cf, store, req);
    case MCPA_EP_ACCOUNT:
      return handle_account(cf, store, req);
    default:
      return oauth_error(500, "server_error", "this location serves no known endpoint");
  }
}

static Response route_resume(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req,
                      const std::string& continuation, int fetch_status, const std::string& fetch_body) {
  switch (ep) {
    case MCPA_EP_AUTHORIZE:
      return resume_authorize(cf, store, req, continuation, fetch_status, fetch_body);
    case MCPA_EP_CALLBACK:
      return resume_callback(cf, store, req, continuation, fetch_status, fetch_body);
    case MCPA_EP_TOKEN:
      return resume_token(cf, store, req, continuation, fetch_status, fetch_body);
    default:
      return oauth_error(500, "server_error", "unexpected provider answer");
  }
}

namespace {

// Every request that ends in a response says what it did.  The handlers add
// the events they know the details of; a refusal they did not describe
// gets its endpoint's event here, and every event its counters.
void note_events(mcpa_endpoint_e ep, const Request& req, Response& r) {
  if (r.fetch.target != MCPA_FETCH_NONE || req.method == "OPTIONS") return;  // not the end yet
  mcpa_event_e kind = MCPA_EV_NONE;
  const char* name = "";
  switch (ep) {
    case MCPA_EP_REGISTER: kind = MCPA_EV_REGISTRATION, name = "client.registration_refused"; break;
    case MCPA_EP_AUTHORIZE: kind = MCPA_EV_AUTHORIZE, name = "authorize"; break;
    case MCPA_EP_CALLBACK: kind = MCPA_EV_LOGIN, name = "login.failed"; break;
    case MCPA_EP_REVOKE: kind = MCPA_EV_REVOCATION, name = "token.revocation_refused"; break;
    default: break;
  }
  bool described = false;
  for (const auto& e : r.events) described = described || e.kind == kind;
  if (kind != MCPA_EV_NONE && !described) {
    std::string outcome = r.error;
    if (outcome.empty()) outcome = r.status < 400 ? "ok" : r.status >= 500 ? "server_error" : "invalid_request";
    if (kind == MCPA_EV_LOGIN) outcome = "failed";
    if (kind == MCPA_EV_REVOCATION) outcome = "error";
    Event& e = r.event(kind, name, std::move(outcome));
    e.reason = r.error;
    if (kind == MCPA_EV_AUTHORIZE) {
      e.audit = false;  // counted; the login it starts is audited
      auto params = Params::parse(req.args);
      if (params && params->find("client_id", &e.client_id) != Params::Lookup::one) e.client_id.clear();
    }
  }
  for (auto& e : r.events) metrics::attach(e);
}

// Nothing a request changed is told to its client (or acted on through the
// provider) before the store has it safe (Store::sync): over Redis with
// replicas, a redeemed code, a rotated refresh token or an ended session is
// on them first.  Unconfirmed, the answer is the endpoint's 503, and the
// events stay: the change was made, only its safety is not known.
void confirm_changes(mcpa_endpoint_e ep, Store& store, Response& r) {
  const StoreStatus st = store.sync();
  if (st == StoreStatus::ok) return;
  std::vector<Event> events = std::move(r.events);
  const bool page = ep == MCPA_EP_AUTHORIZE || ep == MCPA_EP_CONSENT || ep == MCPA_EP_CALLBACK ||
                    ep == MCPA_EP_ACCOUNT;
  r = page ? store_failure_page(st) : store_failure_json(st);
  r.events = std::move(events);
}

}  // namespace

Response handle_endpoint(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req) {
  Response r = route_endpoint(ep, cf, store, req);
  confirm_changes(ep, store, r);
  note_events(ep, req, r);
  return r;
}

Response resume_endpoint(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req,
                         const std::string& continuation, int fetch_status, const std::string& fetch_body) {
  Response r = route_resume(ep, cf, store, req, continuation, fetch_status, fetch_body);
  confirm_changes(ep, store, r);
  note_events(ep, req, r);
  return r;
}

// --- shared helpers ------------------------------------------------------

Response store_failure_json(StoreStatus st) {
  if (st == StoreStatus::pending) return Response();  // never sent (store.hpp)
  if (st == StoreStatus::unavailable) {
    Response r = oauth_error(503, "temporarily_unavailable", "the session store is unreachable; try again shortly");
    r.header("Retry-After", "2");
    return r;
  }
  if (st == StoreStatus::full) {
    Response r = oauth_error(503, "temporarily_unavailable", "the server is busy; try again shortly");
    r.header("Retry-After", "5");
    return r;
  }
  return oauth_error(500, "server_error", "the server could not reach its store");
}

Response store_failure_page(StoreStatus st) {
  if (st == StoreStatus::pending) return Response();  // never sent (store.hpp)
  if (st == StoreStatus::unavailable) {
    Response r = html_page(503, "Unavailable",
                           "The sign-in service cannot reach its session store. Please try again in a moment.");
    r.header("Retry-After", "2");
    r.error = "temporarily_unavailable";
    return r;
  }
  if (st == StoreStatus::full) {
    Response r = html_page(503, "Busy", "The sign-in service is busy. Please try again in a moment.");
    r.header("Retry-After", "5");
    r.error = "temporarily_unavailable";
    return r;
  }
  return html_page(500, "Server error", "The sign-in service could not complete this request.");
}

void add_form_page_headers(Response& r, const std::string& form_action) {
  add_page_security_headers(r, form_action);
  // "same-origin" still sends nothing (no URL, no origin) to the provider or
  // the client
  for (auto& h : r.headers)
    if (h.first == "Referrer-Policy") h.second = "same-origin";
}

bool form_post_from_gateway(const Config& cf, const Request& req) {
  return req.sec_fetch_site != "cross-site" && (req.origin.empty() || req.origin == url_origin(cf.issuer));
}

void add_page_security_headers(Response& r, const std::string& form_action) {
  r.header("Content-Type", "text/html; charset=utf-8");
  r.header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action " +
                                          form_action + "; frame-ancestors 'none'");
  r.header("X-Frame-Options", "DENY");
  r.header("Cache-Control", "no-store");
  r.header("Referrer-Policy", "no-referrer");
  r.header("X-Content-Type-Options", "nosniff");
}

Response html_page(int status, const std::string& title, const std::string& message) {
  Response r;
  r.status = status;
  r.body = render_message_page(title, message, status);
  add_page_security_headers(r, "'none'");
  return r;
}

// 303 See Other: after the consent POST, a 307 would replay the form to
// the next site (RFC 9700 §4.12); for GET requests 303 and 302 are alike.
Response redirect_to(const std::string& location) {
  Response r;
  r.status = 303;
  r.header("Location", location);
  r.header("Cache-Control", "no-store");
  r.header("Referrer-Policy", "no-referrer");
  return r;
}

std::string add_query(const std::string& uri,
                      const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out = uri;
  bool first = uri.find('?') == std::string::npos;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    out += first ? '?' : '&';
    first = false;
    out += pct_encode(name);
    out += '=';
    out += pct_encode(value);
  }
  return out;
}

Response redirect_error(const Config& cf, const std::string& redirect_uri, const std::string& state,
                        const std::string& error, const std::string& description) {
  Response r = redirect_to(add_query(redirect_uri, {{"error", error},
                                                    {"error_description", description},
                                                    {"state", state},
                                                    {"iss", cf.issuer}}));
  r.error = error;
  return r;
}

std::string cookie_name(const Config& cf, const char* base) {
  return cf.secure_cookies ? std::string("__Host-") + base : std::string(base);
}

std::string set_cookie(const Config& cf, const std::string& name, const std::string& value,
                       int64_t max_age) {
  std::string c = name + "=" + value + "; Path=/; HttpOnly; SameSite=Lax";
  if (max_age >= 0) c += "; Max-Age=" + std::to_string(max_age);
  if (cf.secure_cookies) c += "; Secure";
  return c;
}

std::string url_origin(const std::string& url) {
  std::string why;
  auto u = parse_uri(url, &why);
  if (!u) return "";
  std::string scheme = u->scheme;
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    for (char c : scheme)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return "";
    return scheme + ":";
  }
  if (u->host.empty()) return "";
  // RFC 3986 reg-names may hold sub-delims (";" ","): never let one reach
  // a CSP header or an Origin comparison.
  for (char c : u->host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '[' && c != ']' &&
        c != ':')
      return "";
  std::string host = u->host;
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string out = scheme + "://" + host;
  if (u->has_port && !((scheme == "https" && u->port == "443") || (scheme == "http" && u->port == "80")))
    out += ":" + u->port;
  return out;
}

std::string media_type(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  size_t b = t.find_first_not_of(" \t");
  t = b == std::string::npos ? std::string() : t.substr(b);
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

StoreStatus load_client(Store& store, const std::string& client_id, ClientMetadata* out) {
  if (client_id.empty() || client_id.size() > 1024) return StoreStatus::not_found;
  // a client metadata document, as fetched and checked (authorize_endpoint)
  const bool document = client_id_document_location(client_id).has_value();
  if (!document && client_id.size() > 256) return StoreStatus::not_found;
  std::string raw;
  StoreStatus st = store.get((document ? "cimd:" : std::string(kClientPrefix)) + client_id, &raw);
  if (st == StoreStatus::not_found && !document)
    st = store.get(std::string(kNewClientPrefix) + client_id, &raw);
  if (st != StoreStatus::ok) return st;
  auto c = deserialize_client(raw);
  if (!c || c->client_id != client_id) return StoreStatus::not_found;
  *out = std::move(*c);
  return StoreStatus::ok;
}

StoreStatus promote_client(const Config& cf, Store& store, const std::string& client_id) {
  if (client_id_document_location(client_id)) return StoreStatus::ok;
  std::string raw;
  StoreStatus st = store.get(std::string(kClientPrefix) + client_id, &raw);
  if (st != StoreStatus::not_found) return st;
  const std::string pending = std::string(kNewClientPrefix) + client_id;
  st = store.get(pending, &raw);
  if (st != StoreStatus::ok) return st;
  auto c = deserialize_client(raw);
  if (!c || c->client_id != client_id) return StoreStatus::not_found;
  st = store.put(std::string(kClientPrefix) + client_id, raw, c->client_id_issued_at + cf.client_ttl);
  if (st != StoreStatus::ok) return st;
  // it expires within a day in any case
  if (store.del(pending) == StoreStatus::pending) return StoreStatus::pending;
  return StoreStatus::ok;
}

std::vector<std::string> split_scope(const std::string& scope) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < scope.size()) {
    size_t j = scope.find(' ', i);
    if (j == std::string::npos) j = scope.size();
    std::string w = scope.substr(i, j - i);
    if (!w.empty() && std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
    i = j + 1;
  }
  return out;
}

std::string join_scope(const std::vector<std::string>& scopes) {
  std::string out;
  for (const auto& s : scopes) out += (out.empty() ? "" : " ") + s;
  return out;
}

std::string csrf_key(const Config& cf) { return cf.keys->derive_key("mcp-auth consent csrf v1"); }
std::string consent_cookie_key(const Config& cf) {
  // v2: entries record the scopes granted; a v1 cookie (client and
  // redirect URI only) does not verify under this key, so it is never taken
  // for a grant of every scope
  return cf.keys->derive_key("mcp-auth remember consent v2");
}

// --- remembered consent ---------------------------------------------------
//
// Cookie value: sign_value(key, JSON array of {"h": sha256_b64url(client_id
// NUL redirect_uri), "exp": N, "scope": "granted scopes"}).  It is set when
// a login allowed with "remember" has completed, so it also says that the
// user approved the client and logged in through it in this browser.  Only
// consent is remembered; the provider still authenticates the user on every
// login.

namespace {

constexpr size_t kMaxRememberedClients = 10;

struct Remembered {
  std::string hash, scope;
  int64_t exp = 0;
};

std::string consent_pair_hash(const std::string& client_id, const std::string& redirect_uri) {
  return sha256_b64url(client_id + std::string(1, '\0') + redirect_uri);
}

std::string consent_cookie_text(const Config& cf, const std::vector<Remembered>& entries) {
  Json doc(cJSON_CreateArray());
  if (!doc) throw std::bad_alloc();
  for (const auto& e : entries) {
    cJSON* item = cJSON_CreateObject();
    if (!item || !cJSON_AddItemToArray(doc.get(), item)) throw std::bad_alloc();
    if (!cJSON_AddStringToObject(item, "h", e.hash.c_str()) ||
        !cJSON_AddNumberToObject(item, "exp", static_cast<double>(e.exp)) ||
        !cJSON_AddStringToObject(item, "scope", e.scope.c_str()))
      throw std::bad_alloc();
  }
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(doc.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  return sign_value(consent_cookie_key(cf), text.get());
}

// Live entries of the cookie, oldest first.
std::vector<Remembered> remembered_entries(const Config& cf, const Request& req) {
  std::vector<Remembered> out;
  auto cookie = cookie_value(req.cookie, cookie_name(cf, kConsentCookie));
  if (!cookie) return out;
  auto value = verify_signed_value(consent_cookie_key(cf), *cookie);
  if (!value) return out;
  Json doc(cJSON_ParseWithLength(value->data(), value->size()));
  if (!cJSON_IsArray(doc.get())) return out;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, doc.get()) {
    const cJSON* h = cJSON_GetObjectItemCaseSensitive(item, "h");
    const cJSON* exp = cJSON_GetObjectItemCaseSensitive(item, "exp");
    const cJSON* scope = cJSON_GetObjectItemCaseSensitive(item, "scope");
    if (!cJSON_IsString(h) || !cJSON_IsNumber(exp) || !cJSON_IsString(scope)) continue;
    if (static_cast<int64_t>(exp->valuedouble) <= req.now) continue;
    out.push_back({h->valuestring, scope->valuestring, static_cast<int64_t>(exp->valuedouble)});
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> remembered_scopes(const Config& cf, const Request& req,
                                                         const std::string& client_id,
                                                         const std::string& redirect_uri) {
  if (!cf.consent_remember) return std::nullopt;
  const std::string h = consent_pair_hash(client_id, redirect_uri);
  for (const auto& e : remembered_entries(cf, req))
    if (ct_equal(e.hash, h)) return split_scope(e.scope);
  return std::nullopt;
}

bool consent_remembered(const Config& cf, const Request& req, const std::string& client_id,
                        const std::string& redirect_uri) {
  return remembered_scopes(cf, req, client_id, redirect_uri).has_value();
}

int64_t remembered_consent_seconds(const Config& cf) { return std::min<int64_t>(cf.client_ttl, 30 * 86400); }

int64_t remembered_since(const Config& cf, const Request& req, const std::string& client_id,
                         const std::string& redirect_uri) {
  if (!cf.consent_remember) return 0;
  const std::string h = consent_pair_hash(client_id, redirect_uri);
  for (const auto& e : remembered_entries(cf, req))
    if (ct_equal(e.hash, h)) return std::max<int64_t>(e.exp - remembered_consent_seconds(cf), 1);
  return 0;
}

std::string consent_forgot_key(const std::string& sub, const std::string& client_id) {
  return "consentforgot:" + sha256_b64url(sub) + ":" + sha256_b64url(client_id);
}

std::string remember_consent_value(const Config& cf, const Request& req, const std::string& client_id,
                                   const std::string& redirect_uri, const std::string& scope) {
  const std::string h = consent_pair_hash(client_id, redirect_uri);
  auto entries = remembered_entries(cf, req);
  // what this browser approved before for the pair stays approved
  std::vector<std::string> granted = split_scope(scope);
  for (const auto& e : entries)
    if (e.hash == h)
      for (const auto& s : split_scope(e.scope))
        if (std::find(granted.begin(), granted.end(), s) == granted.end()) granted.push_back(s);
  entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const auto& e) { return e.hash == h; }),
                entries.end());
  entries.push_back({h, join_scope(granted), req.now + remembered_consent_seconds(cf)});
  if (entries.size() > kMaxRememberedClients)
    entries.erase(entries.begin(), entries.end() - static_cast<long>(kMaxRememberedClients));
  return consent_cookie_text(cf, entries);
}

std::string forget_consent_cookie(const Config& cf, const Request& req, const std::string& client_id,
                                  const std::string& redirect_uri) {
  const std::string h = consent_pair_hash(client_id, redirect_uri);
  auto entries = remembered_entries(cf, req);
  const size_t before = entries.size();
  entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const auto& e) { return ct_equal(e.hash, h); }),
                entries.end());
  if (entries.size() == before) return "";
  const std::string name = cookie_name(cf, kConsentCookie);
  if (entries.empty()) return set_cookie(cf, name, "", 0);
  // the entries keep their own expiries; the cookie lives as long as the last
  int64_t last = 0;
  for (const auto& e : entries) last = std::max(last, e.exp);
  return set_cookie(cf, name, consent_cookie_text(cf, entries), std::max<int64_t>(last - req.now, 1));
}


// --- outcomes for the client, before the user approved it and logged in ---

Response report_to_client(const Config& cf, const Request& req, const std::string& client_id,
                          const std::string& redirect_uri, const std::string& state, const std::string& error,
                          const std::string& description) {
  // RFC 9700 §4.11.2: redirect automatically only to a client this browser
  // approved and logged in through (remembered consent); otherwise the user
  // sees where the link goes before anything is sent there.
  if (consent_remembered(cf, req, client_id, redirect_uri))
    return redirect_error(cf, redirect_uri, state, error, description);
  const std::string href = add_query(redirect_uri, {{"error", error},
                                                    {"error_description", description},
                                                    {"state", state},
                                                    {"iss", cf.issuer}});
  std::string why;
  auto uri = parse_uri(redirect_uri, &why);
  const std::string destination = uri && !uri->host.empty() ? uri->host : url_origin(redirect_uri);
  const bool denied = error == "access_denied";
  Response r;
  r.status = denied ? 200 : 400;
  r.body = render_return_page(denied ? "Access denied" : "The sign-in request was refused",
                              denied ? "The application was not given access (" + description + ")."
                                     : "The application's sign-in request was refused (" + error + "): " +
                                           description + ".",
                              href, destination, r.status);
  add_page_security_headers(r, "'none'");
  r.error = error;
  return r;
}

// --- what travels sealed instead of being stored ---------------------------
//
// Anyone can start an authorization request, so nothing of it is kept at the
// gateway until the user has logged in: the request travels sealed in the
// consent page's URL and form, the provider login in the state parameter
// sent to the provider (AES-256-GCM with the key file, purpose-bound, with
// an expiry inside).  The browser can neither read nor alter them.

namespace {

std::string seal_fields(const Config& cf, uint8_t purpose, Fields f, int64_t expires) {
  f.set("v", "1");
  f.set_int("exp", expires);
  return cf.keys->seal(purpose, f.encode());
}

std::optional<Fields> open_fields(const Config& cf, uint8_t purpose, std::string_view text, int64_t now) {
  if (text.empty() || text.size() > kMaxSealedFlowLength) return std::nullopt;
  auto plain = cf.keys->open(purpose, text);
  if (!plain) return std::nullopt;
  auto f = Fields::decode(*plain);
  if (!f || f->str("v") != "1") return std::nullopt;
  auto exp = f->num("exp");
  if (!exp || *exp <= now) return std::nullopt;
  return f;
}

}  // namespace

std::string seal_pending(const Config& cf, const PendingAuthz& authz, int64_t expires) {
  Fields f;
  put_pending(f, authz);
  return seal_fields(cf, kPendingPurpose, std::move(f), expires);
}

std::optional<PendingAuthz> open_pending(const Config& cf, std::string_view text, int64_t now) {
  auto f = open_fields(cf, kPendingPurpose, text, now);
  if (!f) return std::nullopt;
  return get_pending(*f);
}

std::string seal_login(const Config& cf, const LoginState& login, int64_t expires) {
  Fields f;
  put_login(f, login);
  return seal_fields(cf, kLoginPurpose, std::move(f), expires);
}

std::optional<LoginState> open_login(const Config& cf, std::string_view text, int64_t now) {
  auto f = open_fields(cf, kLoginPurpose, text, now);
  if (!f) return std::nullopt;
  return get_login(*f);
}

// --- client authentication ------------------------------------------------

namespace {

Response invalid_client(const std::string& description, bool basic_used, const Config& cf) {
  Response r = oauth_error(401, "invalid_client", description);
  // RFC 6749 §5.2: 401 with the scheme the client tried.
  if (basic_used) r.header("WWW-Authenticate", "Basic realm=\"" + cf.issuer + "\"");
  return r;
}

bool iequals_prefix(const std::string& s, const char* prefix) {
  size_t n = std::char_traits<char>::length(prefix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

}  // namespace

ClientCredentials read_client_credentials(const Config& cf, const Request& req, const Params& form) {
  ClientCredentials out;
  if (!req.authorization.empty()) {
    if (!iequals_prefix(req.authorization, "Basic ")) {
      out.error = invalid_client("only HTTP Basic client authentication is supported", true, cf);
      return out;
    }
    out.basic = true;
    auto decoded = b64_decode(req.authorization.substr(6));
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (!decoded || colon == std::string::npos) {
      out.error = invalid_client("malformed HTTP Basic credentials", true, cf);
      return out;
    }
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic.
    auto id = pct_decode(decoded->substr(0, colon), true);
    auto secret = pct_decode(decoded->substr(colon + 1), true);
    if (!id || !secret) {
      out.error = invalid_client("malformed HTTP Basic credentials", true, cf);
      return out;
    }
    out.client_id = *id;
    out.secret = *secret;
  }
  std::string form_id, form_secret;
  const auto id_lookup = form.find("client_id", &form_id);
  const auto secret_lookup = form.find("client_secret", &form_secret);
  if (id_lookup == Params::Lookup::repeated || secret_lookup == Params::Lookup::repeated) {
    out.error = oauth_error(400, "invalid_request", "client_id or client_secret is repeated");
    return out;
  }
  if (out.basic && secret_lookup != Params::Lookup::absent) {
    // RFC 6749 §2.3: one authentication method per request.
    out.error = oauth_error(400, "invalid_request", "use either HTTP Basic or client_secret, not both");
    return out;
  }
  if (out.basic && id_lookup == Params::Lookup::one && form_id != out.client_id) {
    out.error = invalid_client("client_id does not match the HTTP Basic credentials", true, cf);
    return out;
  }
  if (!out.basic) {
    out.client_id = form_id;
    out.secret = form_secret;
  }
  if (out.client_id.empty()) {
    out.error = invalid_client("client authentication is required (client_id)", out.basic, cf);
    return out;
  }
  out.ok = true;
  return out;
}

Response invalid_client_error(const Config& cf, const std::string& description, bool basic_used) {
  return invalid_client(description, basic_used, cf);
}

ClientAuth authenticate_client(const Config& cf, Store& store, const Request& req, const Params& form) {
  ClientAuth out;
  ClientCredentials cred = read_client_credentials(cf, req, form);
  if (!cred.ok) {
    out.error = std::move(cred.error);
    return out;
  }
  const bool basic = cred.basic;
  const std::string& client_id = cred.client_id;
  const std::string& secret = cred.secret;
  StoreStatus st = load_client(store, client_id, &out.client);
  if (st == StoreStatus::not_found && cf.cimd && client_id_document_location(client_id)) {
    // A client known by its metadata document is public by construction
    // (no secret can exist); its document only matters at /authorize, where
    // the redirect URI is checked against it, so it need not be cached here.
    out.client = ClientMetadata();
    out.client.client_id = client_id;
    out.client.token_endpoint_auth_method = "none";
    out.client.grant_types = {"authorization_code", "refresh_token"};
    out.client.response_types = {"code"};
    st = StoreStatus::ok;
  }
  if (st == StoreStatus::not_found) {
    out.error = invalid_client("unknown client", basic, cf);
    return out;
  }
  if (st != StoreStatus::ok) {
    out.error = store_failure_json(st);
    return out;
  }
  if (out.client.token_endpoint_auth_method == "none" || out.client.client_secret_hash.empty()) {
    if (!secret.empty()) {
      out.error = invalid_client("this client is registered without a secret", basic, cf);
      return out;
    }
  } else {
    // Compare hashes in constant time; the secret itself is never stored.
    if (secret.empty() || !ct_equal(sha256_b64url(secret), out.client.client_secret_hash)) {
      out.error = invalid_client("client authentication failed", basic, cf);
      return out;
    }
  }
  out.ok = true;
  return out;
}

}  // namespace mcpauth
