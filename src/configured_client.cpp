#include "configured_client.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cmath>

#include "config.hpp"
#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "id_token.hpp"
#include "json.hpp"

namespace mcpauth {
namespace {

constexpr const char* kServiceDirective = "mcp_auth_service_client";
constexpr const char* kJwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr int64_t kMaxAssertionLifetime = 600;  // a client assertion (RFC 7523)
constexpr int64_t kLeeway = 60;
constexpr int64_t kContinuationSeconds = 120;
constexpr const char* kClientJwksKind = "client_jwks";

std::string client_jwks_key(const std::string& client_id) { return "jwks:client:" + client_id; }

// The keys of a client with a jwks_location: from the store, or a fetch
// (*error) when they are missing or lack `kid` and were not fetched lately.
std::shared_ptr<const std::vector<Jwk>> location_keys(const Config& cf, Store& store, const Request& req,
                                                      const ConfiguredClient& client,
                                                      const std::optional<std::string>& kid, Response* error) {
  std::string raw;
  std::shared_ptr<const std::vector<Jwk>> keys;
  StoreStatus st = store.get(client_jwks_key(client.client_id), &raw);
  if (st == StoreStatus::ok) keys = parse_jwks_cached(raw, nullptr);
  else if (st != StoreStatus::not_found) {
    *error = store_failure_json(st);
    return nullptr;
  }
  if (jwks_covers(keys, kid)) return keys;
  std::string recent;
  st = store.get(jwks_fetched_key("client:" + client.client_id), &recent);
  if (st == StoreStatus::ok) {
    // fetched moments ago: a kid the set lacks is the assertion's fault; no
    // set at all, the location's
    if (keys && !keys->empty()) {
      *error = invalid_client_error(cf, "the client assertion's key is not among the client's keys", false);
    } else {
      *error = oauth_error(503, "temporarily_unavailable", "the client's keys could not be fetched; try again");
      error->header("Retry-After", "5");
    }
    return nullptr;
  }
  if (st != StoreStatus::not_found) {
    *error = store_failure_json(st);
    return nullptr;
  }
  Fields f;
  f.set("v", "1");
  f.set("kind", kClientJwksKind);
  f.set("client_id", client.client_id);
  f.set_int("exp", req.now + kContinuationSeconds);
  Response r;
  r.fetch.target = MCPA_FETCH_ISSUER_JWKS;
  r.fetch.path = client.jwks_location;
  r.fetch.continuation = cf.keys->seal(kContinuationPurpose, f.encode());
  *error = std::move(r);
  return nullptr;
}
constexpr size_t kMaxNameLength = 128;

std::string complaint(const char* directive, const std::string& what) { return std::string(directive) + ": " + what; }

// A display name: printable, no quotes or backslashes (it goes into JSON
// and audit lines as it is).
bool display_name(std::string_view w) {
  if (w.empty() || w.size() > kMaxNameLength) return false;
  for (char c : w)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  return true;
}

// RFC 7523 §3: a client's signed assertion.  The jti is kept until the
// assertion expires, so it is good for one request.
const ConfiguredClient* assertion_client(const Config& cf, Store& store, const Request& req, const Params& form,
                                         ConfiguredClientFinder find, std::string* client_id, bool* unknown,
                                         Response* error) {
  std::string type, assertion, form_id;
  if (form.find("client_assertion_type", &type) != Params::Lookup::one || type != kJwtBearerAssertion ||
      form.find("client_assertion", &assertion) != Params::Lookup::one) {
    *error = oauth_error(400, "invalid_request", "client_assertion_type must be " + std::string(kJwtBearerAssertion) +
                                                     " with one client_assertion");
    return nullptr;
  }
  if (!req.authorization.empty() || form.has("client_secret")) {
    *error = oauth_error(400, "invalid_request", "use one client authentication method");
    return nullptr;
  }
  // Whose keys to verify with: the assertion's own sub, checked below.
  const size_t dot = assertion.find('.');
  const size_t dot2 = dot == std::string::npos ? dot : assertion.find('.', dot + 1);
  auto unverified = dot2 == std::string::npos ? std::nullopt
                                              : b64url_decode(std::string_view(assertion).substr(dot + 1, dot2 - dot - 1));
  Json peek(unverified ? cJSON_ParseWithLength(unverified->data(), unverified->size()) : nullptr);
  const cJSON* sub_item = peek ? cJSON_GetObjectItemCaseSensitive(peek.get(), "sub") : nullptr;
  const std::string claimed = cJSON_IsString(sub_item) ? sub_item->valuestring : "";
  const bool id_sent = form.find("client_id", &form_id) == Params::Lookup::one;
  *client_id = id_sent ? form_id : claimed;
  const ConfiguredClient* client = find(cf, *client_id);
  if (!client || (client->keys.empty() && client->jwks_location.empty()) || (id_sent && form_id != claimed)) {
    *unknown = !client;
    *error = invalid_client_error(cf, "client authentication failed", false);
    return nullptr;
  }
  std::shared_ptr<const std::vector<Jwk>> fetched;
  if (!client->jwks_location.empty()) {
    fetched = location_keys(cf, store, req, *client, jwt_header_kid(assertion), error);
    if (!fetched) return nullptr;
  }
  std::string why;
  auto payload = verify_jws(assertion, fetched ? *fetched : client->keys, &why);
  Json claims(payload ? cJSON_ParseWithLength(payload->data(), payload->size()) : nullptr);
  if (!claims || !cJSON_IsObject(claims.get())) {
    *error = invalid_client_error(cf, "the client assertion does not verify with the client's keys", false);
    return nullptr;
  }
  const auto str = [&](const char* name) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(claims.get(), name);
    return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
  };
  const auto num = [&](const char* name) -> int64_t {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(claims.get(), name);
    return cJSON_IsNumber(v) && std::isfinite(v->valuedouble) && v->valuedouble > 0 && v->valuedouble < 1e12
               ? int64_t(v->valuedouble)
               : 0;
  };
  // aud: the token endpoint's URL, or the issuer (RFC 7523 §3 point 3)
  bool aud_ok = false;
  const cJSON* aud = cJSON_GetObjectItemCaseSensitive(claims.get(), "aud");
  const std::string endpoint = cf.url(cf.token_path);
  const auto ours = [&](const cJSON* v) {
    return cJSON_IsString(v) && (endpoint == v->valuestring || cf.issuer == v->valuestring);
  };
  if (ours(aud)) aud_ok = true;
  if (cJSON_IsArray(aud)) {
    const cJSON* v = nullptr;
    cJSON_ArrayForEach(v, aud) aud_ok = aud_ok || ours(v);
  }
  const int64_t exp = num("exp"), nbf = num("nbf");
  const std::string jti = str("jti");
  const char* bad = nullptr;
  if (str("iss") != client->client_id || claimed != client->client_id) bad = "iss and sub must be the client id";
  else if (!aud_ok) bad = "aud must be the token endpoint or the issuer";
  else if (exp <= req.now) bad = "the client assertion has expired or has no exp";
  else if (exp > req.now + kMaxAssertionLifetime) bad = "the client assertion lives longer than 10 minutes";
  else if (nbf > req.now + kLeeway) bad = "the client assertion is not valid yet";
  else if (jti.empty() || jti.size() > 256) bad = "the client assertion needs a jti";
  if (bad) {
    *error = invalid_client_error(cf, bad, false);
    return nullptr;
  }
  // The jti names the request that used it first: a request that runs
  // again (it waited, or the provider answered) is still that request.
  const std::string jti_key = "clientjti:" + sha256_b64url(client->client_id + "\n" + jti);
  StoreStatus st = store.put_new(jti_key, req.request_id, exp + kLeeway);
  if (st == StoreStatus::exists) {
    std::string first;
    st = store.get(jti_key, &first);
    if (st == StoreStatus::ok && (req.request_id.empty() || !ct_equal(first, req.request_id))) {
      *error = invalid_client_error(cf, "the client assertion was used already", false);
      return nullptr;
    }
  }
  if (st != StoreStatus::ok) {
    *error = store_failure_json(st);
    return nullptr;
  }
  return client;
}

}  // namespace

std::vector<std::string_view> directive_words(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    const size_t tab = line.find('\t');
    out.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  return out;
}

bool plain_word(std::string_view w) {
  if (w.empty() || w.size() > 512) return false;
  for (char c : w)
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  return true;
}

bool parse_scope_words(std::string_view text, std::vector<std::string>* out) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = text.find(' ', i);
    if (j == std::string_view::npos) j = text.size();
    std::string w(text.substr(i, j - i));
    for (char c : w)
      if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) return false;
    if (std::find(out->begin(), out->end(), w) == out->end()) out->push_back(std::move(w));
    i = j;
  }
  return !out->empty();
}

bool split_setting(std::string_view word, std::string_view* name, std::string_view* value) {
  const size_t eq = word.find('=');
  if (eq == std::string_view::npos) return false;
  *name = word.substr(0, eq);
  *value = word.substr(eq + 1);
  return true;
}

bool take_credential_setting(std::string_view name, std::string_view value, ConfiguredClient* c) {
  if (name == "secret_file" && c->secret_file.empty() && plain_word(value)) {
    c->secret_file = std::string(value);
    return true;
  }
  if (name == "jwks_file" && c->jwks_file.empty() && plain_word(value)) {
    c->jwks_file = std::string(value);
    return true;
  }
  if (name == "jwks_location" && c->jwks_location.empty() && plain_word(value) && value[0] == '/') {
    c->jwks_location = std::string(value);
    return true;
  }
  return false;
}

std::string check_credential_settings(const char* directive, const ConfiguredClient& c) {
  const int given = !c.secret_file.empty() + !c.jwks_file.empty() + !c.jwks_location.empty();
  if (given != 1) return complaint(directive, "give exactly one of secret_file=, jwks_file= and jwks_location=");
  return "";
}

std::string load_credential(const std::string& where, ConfiguredClient* c) {
  if (!c->jwks_location.empty()) return "";  // fetched when needed
  if (!c->secret_file.empty()) {
    std::string text;
    std::string err = read_file(where + " secret_file", c->secret_file, &text);
    if (!err.empty()) return err;
    std::string secret = trim_file_text(text);
    wipe(text);
    if (secret.size() < ConfiguredClient::kMinSecretLength || secret.find_first_of(" \t\r\n") != std::string::npos) {
      wipe(secret);
      return where + ": secret_file \"" + c->secret_file + "\" must hold one line of at least " +
             std::to_string(ConfiguredClient::kMinSecretLength) + " characters without spaces";
    }
    c->secret_hash = sha256_b64url(secret);
    wipe(secret);
    return "";
  }
  std::string text, why;
  std::string err = read_file(where + " jwks_file", c->jwks_file, &text);
  if (!err.empty()) return err;
  auto keys = parse_jwks(text, &why);
  if (!keys) return where + ": jwks_file \"" + c->jwks_file + "\": " + why;
  c->keys = std::move(*keys);
  return "";
}

namespace {

constexpr const char* kEnterpriseDirective = "mcp_auth_enterprise_client";

// The line of a service or enterprise client into *c; issuer= words into
// *issuers when the directive takes them (non-null).
bool parse_client_line(const char* directive, std::string_view line, ServiceClient* c,
                       std::vector<std::string>* issuers, std::string* err) {
  const auto words = directive_words(line);
  if (words.empty() || !plain_word(words[0]) || words[0].find('=') != std::string_view::npos) {
    *err = complaint(directive, "the first word must be the client id");
    return false;
  }
  c->client_id = std::string(words[0]);
  bool named = false;
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view name, value;
    if (!split_setting(words[i], &name, &value)) {
      *err = complaint(directive, "\"" + std::string(words[i]) + "\" is not NAME=VALUE");
      return false;
    }
    if (take_credential_setting(name, value, c)) continue;
    if (name == "scope" && c->scopes.empty()) {
      if (!parse_scope_words(value, &c->scopes)) {
        *err = complaint(directive, "scope= must hold scope tokens (RFC 6749); quote the whole word for several: \"scope=a b\"");
        return false;
      }
    } else if (name == "name" && !named && display_name(value)) {
      named = true;
      c->name = std::string(value);
    } else if (issuers && name == "issuer" && plain_word(value) &&
               std::find(issuers->begin(), issuers->end(), value) == issuers->end()) {
      issuers->emplace_back(value);
    } else {
      *err = complaint(directive, "unknown, repeated or malformed setting \"" + std::string(words[i]) +
                                      "\" (a name= is printable, without quotes, at most " +
                                      std::to_string(kMaxNameLength) + " characters)");
      return false;
    }
  }
  std::string why = check_credential_settings(directive, *c);
  if (!why.empty()) {
    *err = why;
    return false;
  }
  if (c->scopes.empty()) {
    *err = complaint(directive, "scope= is required: the scopes this client may ask for");
    return false;
  }
  if (issuers && issuers->empty()) {
    *err = complaint(directive, "issuer= is required: the identity provider whose assertions this client presents");
    return false;
  }
  return true;
}

}  // namespace

std::optional<ServiceClient> parse_service_client(std::string_view line, std::string* err) {
  ServiceClient c;
  if (!parse_client_line(kServiceDirective, line, &c, nullptr, err)) return std::nullopt;
  return c;
}

std::optional<EnterpriseClient> parse_enterprise_client(std::string_view line, std::string* err) {
  EnterpriseClient c;
  if (!parse_client_line(kEnterpriseDirective, line, &c, &c.issuers, err)) return std::nullopt;
  return c;
}

const ConfiguredClient* authenticate_configured_client(const Config& cf, Store& store, const Request& req,
                                                       const Params& form, ConfiguredClientFinder find,
                                                       std::string* client_id, bool* unknown, Response* error) {
  *unknown = false;
  if (form.has("client_assertion") || form.has("client_assertion_type"))
    return assertion_client(cf, store, req, form, find, client_id, unknown, error);
  ClientCredentials cred = read_client_credentials(cf, req, form);
  if (!cred.ok) {
    *error = std::move(cred.error);
    return nullptr;
  }
  *client_id = cred.client_id;
  const ConfiguredClient* client = find(cf, cred.client_id);
  // The same answer for an unknown client and a wrong secret; the hash is
  // compared in constant time.
  if (!client || client->secret_hash.empty() || cred.secret.empty() ||
      !ct_equal(sha256_b64url(cred.secret), client->secret_hash)) {
    *unknown = !client;
    *error = invalid_client_error(cf, "client authentication failed", cred.basic);
    return nullptr;
  }
  return client;
}

const ConfiguredClient* authenticate_for_grant(const Config& cf, Store& store, const Request& req,
                                               const Params& form, ConfiguredClientFinder find,
                                               const std::string& who_may, std::string* client_id, Response* error) {
  bool unknown = false;
  const ConfiguredClient* client = authenticate_configured_client(cf, store, req, form, find, client_id, &unknown, error);
  if (client || !unknown || form.has("client_assertion") || form.has("client_assertion_type")) return client;
  ClientAuth auth = authenticate_client(cf, store, req, form);
  *error = auth.ok ? oauth_error(400, "unauthorized_client", who_may) : std::move(auth.error);
  return nullptr;
}

bool is_client_jwks_continuation(const Fields& f) { return f.str("kind") == kClientJwksKind; }

bool resume_client_jwks(Store& store, const Request& req, const Fields& f, int fetch_status,
                        const std::string& fetch_body, Response* answer) {
  const std::string client_id = f.str("client_id");
  // Fetched now, whatever came back: no second fetch for a while.
  StoreStatus st = store.put(jwks_fetched_key("client:" + client_id), "1", req.now + kJwksRefetchSeconds);
  if (st == StoreStatus::pending) {
    *answer = store_failure_json(st);
    return false;
  }
  std::string why;
  if (fetch_status != 200 || !parse_jwks_cached(fetch_body, &why)) {
    *answer = oauth_error(503, "temporarily_unavailable", "the client's keys could not be fetched; try again");
    answer->header("Retry-After", "5");
    return false;
  }
  st = store.put(client_jwks_key(client_id), fetch_body, req.now + kJwksCacheSeconds);
  if (st != StoreStatus::ok) {
    *answer = store_failure_json(st);
    return false;
  }
  return true;
}

}  // namespace mcpauth
