#include "provider.hpp"
#include "json.hpp"

#include <cjson/cJSON.h>

#include <cctype>
#include <cstdlib>
#include <memory>

#include "client_assertion.hpp"
#include "encoding.hpp"

namespace mcpauth {
namespace {


void append(std::string& out, const char* name, const std::string& value) {
  if (!out.empty()) out += '&';
  out += name;
  out += '=';
  out += pct_encode(value);
}

// Adds the gateway's client authentication (OIDC Core §9) to a token request.
bool authenticate(const Config& cf, ProviderRequest& r, int64_t now) {
  switch (cf.provider_client_auth) {
    case Config::ProviderAuth::client_secret_basic:
      // RFC 6749 §2.3.1: form-urlencode id and secret, then Base64.
      r.authorization = "Basic " + b64_encode(pct_encode(cf.provider_client_id) + ":" +
                                              pct_encode(cf.provider_client_secret));
      return true;
    case Config::ProviderAuth::client_secret_post:
      append(r.body, "client_id", cf.provider_client_id);
      append(r.body, "client_secret", cf.provider_client_secret);
      return true;
    case Config::ProviderAuth::private_key_jwt: {
      auto a = make_client_assertion(cf.provider_private_key, cf.provider_client_id,
                                     cf.provider_token_endpoint, now, cf.provider_key_id, cf.provider_x5t);
      if (!a.ok) {
        r.error = "cannot sign the client assertion: " + a.value_or_error;
        return false;
      }
      append(r.body, "client_id", cf.provider_client_id);
      append(r.body, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      append(r.body, "client_assertion", a.value_or_error);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string provider_authorization_url(const Config& cf, const std::string& state,
                                       const std::string& nonce, const std::string& code_challenge) {
  std::string q;
  append(q, "response_type", "code");
  append(q, "client_id", cf.provider_client_id);
  append(q, "redirect_uri", cf.url(cf.callback_path));
  append(q, "scope", cf.provider_scopes);
  append(q, "state", state);
  append(q, "nonce", nonce);
  append(q, "code_challenge", code_challenge);
  append(q, "code_challenge_method", "S256");
  // provider-specific ones (mcp_auth_provider_param), never the above
  for (const auto& [name, value] : cf.provider_params) append(q, name.c_str(), value);
  const std::string& ep = cf.provider_authorization_endpoint;
  return ep + (ep.find('?') == std::string::npos ? "?" : "&") + q;
}

ProviderRequest provider_code_request(const Config& cf, const std::string& code,
                                      const std::string& code_verifier, int64_t now) {
  ProviderRequest r;
  append(r.body, "grant_type", "authorization_code");
  append(r.body, "code", code);
  append(r.body, "redirect_uri", cf.url(cf.callback_path));
  append(r.body, "code_verifier", code_verifier);
  r.ok = authenticate(cf, r, now);
  return r;
}

ProviderRequest provider_refresh_request(const Config& cf, const std::string& refresh_token, int64_t now) {
  ProviderRequest r;
  append(r.body, "grant_type", "refresh_token");
  append(r.body, "refresh_token", refresh_token);
  r.ok = authenticate(cf, r, now);
  return r;
}

ProviderRequest provider_exchange_request(const Config& cf, const ExchangeAudience& audience,
                                          const std::string& user_token, const std::string& scope, int64_t now) {
  ProviderRequest r;
  switch (audience.method) {
    case ExchangeAudience::Method::token_exchange:
      append(r.body, "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
      append(r.body, "subject_token", user_token);
      append(r.body, "subject_token_type", "urn:ietf:params:oauth:token-type:access_token");
      append(r.body, "requested_token_type", "urn:ietf:params:oauth:token-type:access_token");
      if (!audience.provider_audience.empty()) append(r.body, "audience", audience.provider_audience);
      if (!audience.provider_resource.empty()) append(r.body, "resource", audience.provider_resource);
      break;
    case ExchangeAudience::Method::on_behalf_of:
      append(r.body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
      append(r.body, "assertion", user_token);
      append(r.body, "requested_token_use", "on_behalf_of");
      break;
    case ExchangeAudience::Method::refresh_token:
      append(r.body, "grant_type", "refresh_token");
      append(r.body, "refresh_token", user_token);
      break;
  }
  if (!scope.empty()) append(r.body, "scope", scope);
  r.ok = authenticate(cf, r, now);
  return r;
}

Response provider_token_fetch(ProviderRequest pr, std::string continuation) {
  Response r;
  r.fetch.target = MCPA_FETCH_PROVIDER_TOKEN;
  r.fetch.body = std::move(pr.body);
  r.fetch.authorization = std::move(pr.authorization);
  r.fetch.continuation = std::move(continuation);
  return r;
}

std::variant<ProviderTokens, std::string> parse_provider_tokens(const std::string& body) {
  Json obj(cJSON_ParseWithLength(body.data(), body.size()));
  if (!obj || !cJSON_IsObject(obj.get())) return std::string("the token response is not a JSON object");
  ProviderTokens t;
  auto str = [&](const char* name, std::string* out) {
    cJSON* v = cJSON_GetObjectItemCaseSensitive(obj.get(), name);
    if (!v) return true;
    if (!cJSON_IsString(v) || !v->valuestring) return false;
    *out = v->valuestring;
    return true;
  };
  std::string token_type;
  if (!str("access_token", &t.access_token) || !str("id_token", &t.id_token) ||
      !str("refresh_token", &t.refresh_token) || !str("scope", &t.scope) || !str("token_type", &token_type))
    return std::string("a token response field has the wrong type");
  if (t.access_token.empty()) return std::string("the token response has no access_token");
  std::string lower;
  for (char c : token_type) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "bearer") return std::string("the token response's token_type is not Bearer");
  cJSON* exp = cJSON_GetObjectItemCaseSensitive(obj.get(), "expires_in");
  if (exp) {
    if (cJSON_IsNumber(exp) && exp->valuedouble > 0 && exp->valuedouble < 1e9)
      t.expires_in = static_cast<int64_t>(exp->valuedouble);
    else if (cJSON_IsString(exp) && exp->valuestring)  // some providers send a string
      t.expires_in = std::atoll(exp->valuestring) > 0 && std::atoll(exp->valuestring) < 1000000000
                         ? static_cast<int64_t>(std::atoll(exp->valuestring))
                         : 0;
  }
  return t;
}

std::string provider_error_code(const std::string& body) {
  Json obj(cJSON_ParseWithLength(body.data(), body.size()));
  if (!obj) return "";
  cJSON* e = cJSON_GetObjectItemCaseSensitive(obj.get(), "error");
  if (!cJSON_IsString(e) || !e->valuestring) return "";
  std::string out;
  for (const char* p = e->valuestring; *p && out.size() < 64; ++p)
    // RFC 6749 §5.2: error is %x20-21 / %x23-5B / %x5D-7E; we keep a safer
    // subset so the text can go anywhere.
    if (std::isalnum(static_cast<unsigned char>(*p)) || *p == '_' || *p == '-' || *p == '.') out += *p;
  return out;
}

}  // namespace mcpauth
