#include "config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "client_assertion.hpp"
#include "quota.hpp"
#include "redirect_uri.hpp"
#include "tool_policy.hpp"

namespace mcpauth {
namespace {

std::vector<std::string> split_spaces(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

// A provider endpoint: an absolute https URL (http on loopback, for tests)
// without a fragment.
std::string check_provider_url(const std::string& what, const std::string& value) {
  std::string why;
  auto uri = parse_uri(value, &why);
  if (!uri) return what + " \"" + value + "\" is not a valid URL: " + why;
  if (uri->host.empty()) return what + " \"" + value + "\" is not an absolute URL";
  if (uri->scheme != "https" && !(uri->scheme == "http" && is_loopback_host(uri->host)))
    return what + " \"" + value + "\" must use https (http is allowed only on loopback)";
  if (uri->has_fragment) return what + " \"" + value + "\" must not have a fragment";
  return "";
}

// An issuer is an https URL (http only on loopback) with no query or
// fragment (RFC 8414 §2); we also refuse a trailing slash so that
// "<issuer>/path" never has a double slash and the issuer stays
// byte-identical everywhere it is published.
std::string check_base_url(const std::string& what, const std::string& value) {
  std::string err = check_provider_url(what, value);
  if (!err.empty()) return err;
  auto uri = parse_uri(value, &err);
  if (uri->has_query)
    return what + " \"" + value + "\" must not have a query or fragment";
  if (!value.empty() && value.back() == '/')
    return what + " \"" + value + "\" must not end with \"/\"";
  return "";
}

std::string check_path(const std::string& what, const std::string& value) {
  if (value.empty() || value[0] != '/') return what + " must be a path starting with \"/\"";
  for (char c : value)
    if (c <= ' ' || c == '?' || c == '#' || c == 0x7f) return what + " \"" + value + "\" is not a plain path";
  return "";
}

// The non-empty lines of a directive list.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// "NAME\tVALUE\n" lines (mcp_auth_scope_description, mcp_auth_provider_param).
std::string parse_pairs(const std::string& directive, const std::string& lines,
                        std::vector<std::pair<std::string, std::string>>* out) {
  size_t i = 0;
  while (i < lines.size()) {
    size_t end = lines.find('\n', i);
    if (end == std::string::npos) end = lines.size();
    std::string line = lines.substr(i, end - i);
    i = end + 1;
    if (line.empty()) continue;
    size_t tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos)
      return directive + " takes a name and one value";
    std::string name = line.substr(0, tab), value = line.substr(tab + 1);
    for (unsigned char c : value)
      if (c < 0x20 || c == 0x7f) return directive + ": the value has a control character";
    if (value.empty() || value.size() > 512) return directive + ": the value must be 1 to 512 bytes";
    if (directive == "mcp_auth_scope_description") {
      if (!valid_scope_token(name)) return directive + ": \"" + name + "\" is not a valid scope";
    } else {
      // the parameters the gateway sets itself are not for the configuration to change
      static const char* const kOwn[] = {"response_type", "client_id", "redirect_uri", "scope", "state",
                                         "nonce", "code_challenge", "code_challenge_method", "request",
                                         "request_uri", "response_mode", "client_assertion",
                                         "client_assertion_type"};
      for (const char* own : kOwn)
        if (name == own) return directive + ": \"" + name + "\" is set by the gateway itself";
      bool ok = !name.empty() && name.size() <= 64;
      for (char c : name)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.');
      if (!ok) return directive + ": \"" + name + "\" is not a parameter name";
    }
    for (auto& [n, v] : *out)
      if (n == name) return directive + ": \"" + name + "\" is given twice";
    out->emplace_back(std::move(name), std::move(value));
  }
  return "";
}

// The name of mcp_auth_endpoint's value, for messages.
const char* endpoint_name(mcpa_endpoint_e endpoint) {
  switch (endpoint) {
    case MCPA_EP_NONE: return "(none)";
    case MCPA_EP_AUTHORIZATION_SERVER_METADATA: return "authorization_server_metadata";
    case MCPA_EP_PROTECTED_RESOURCE_METADATA: return "protected_resource_metadata";
    case MCPA_EP_REGISTER: return "register";
    case MCPA_EP_AUTHORIZE: return "authorize";
    case MCPA_EP_CONSENT: return "consent";
    case MCPA_EP_CALLBACK: return "callback";
    case MCPA_EP_TOKEN: return "token";
    case MCPA_EP_REVOKE: return "revoke";
    case MCPA_EP_ADMIN: return "admin";
    case MCPA_EP_ACCOUNT: return "account";
  }
  return "?";
}

bool is_scope_token(const std::string& s) {
  // RFC 6749 §3.3 scope-token characters
  if (s.empty()) return false;
  for (char c : s)
    if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) return false;
  return true;
}

std::string check_scopes(const std::string& what, const std::string& value, bool openid_required) {
  bool openid = false;
  for (const auto& w : split_spaces(value)) {
    if (!is_scope_token(w)) return what + ": \"" + w + "\" is not a valid scope";
    if (w == "openid") openid = true;
  }
  if (openid_required && !openid) return what + " must include \"openid\"";
  return "";
}

}  // namespace

std::string read_file(const std::string& what, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return what + ": cannot open \"" + path + "\": " + std::strerror(errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return what + ": cannot read \"" + path + "\"";
  *out = text.str();
  return "";
}

std::string trim_file_text(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

std::string check_setting(mcpa_check_e kind, const std::string& directive, const std::string& value) {
  switch (kind) {
    case MCPA_CHECK_BASE_URL:
      return check_base_url(directive, value);
    case MCPA_CHECK_PROVIDER_URL:
      return check_provider_url(directive, value);
    case MCPA_CHECK_PATH:
      return check_path(directive, value);
    case MCPA_CHECK_SCOPES:
      return check_scopes(directive, value, false);
    case MCPA_CHECK_PROVIDER_SCOPES:
      return check_scopes(directive, value, true);
    case MCPA_CHECK_NOT_EMPTY:
      return value.empty() ? directive + " must not be empty" : "";
    case MCPA_CHECK_TOOL_RULE: {
      std::string err;
      if (!ToolPolicy::parse(value + "\n", &err)) return err;
      return "";
    }
    case MCPA_CHECK_CLAIM_RULE: {
      std::string err;
      if (!AccessRules::parse(value + "\n", &err)) return err;
      return "";
    }
    case MCPA_CHECK_SCOPE_DESCRIPTION: {
      std::vector<std::pair<std::string, std::string>> out;
      return parse_pairs(directive, value + "\n", &out);
    }
    case MCPA_CHECK_PROVIDER_PARAM: {
      std::vector<std::pair<std::string, std::string>> out;
      return parse_pairs(directive, value + "\n", &out);
    }
    case MCPA_CHECK_LIMIT: {
      std::string err;
      if (!QuotaRule::parse(value, &err)) return err;
      return "";
    }
    case MCPA_CHECK_EXCHANGE_AUDIENCE: {
      std::string err;
      if (!parse_exchange_audience(value, &err)) return err;
      return "";
    }
    case MCPA_CHECK_EXCHANGE_CLIENT: {
      std::string err;
      if (!parse_exchange_client(value, &err)) return err;
      return "";
    }
    case MCPA_CHECK_SERVICE_CLIENT: {
      std::string err;
      if (!parse_service_client(value, &err)) return err;
      return "";
    }
    case MCPA_CHECK_TRUSTED_ISSUER: {
      std::string err;
      if (!parse_trusted_issuer(value, &err)) return err;
      return "";
    }
    case MCPA_CHECK_ENTERPRISE_CLIENT: {
      std::string err;
      if (!parse_enterprise_client(value, &err)) return err;
      return "";
    }
  }
  return directive + ": unknown check";
}

std::string Config::scope_description(const std::string& scope) const {
  for (const auto& [name, text] : scope_descriptions)
    if (name == scope) return text;
  return "";
}

const ExchangeAudience* Config::exchange_audience(std::string_view name) const {
  for (const auto& a : exchange_audiences)
    if (a.name == name) return &a;
  return nullptr;
}

const ExchangeClient* Config::exchange_client(std::string_view client_id) const {
  for (const auto& c : exchange_clients)
    if (c.client_id == client_id) return &c;
  return nullptr;
}

const ServiceClient* Config::service_client(std::string_view client_id) const {
  for (const auto& c : service_clients)
    if (c.client_id == client_id) return &c;
  return nullptr;
}

const TrustedIssuer* Config::trusted_issuer(std::string_view issuer_url) const {
  for (const auto& t : trusted_issuers)
    if (t.issuer == issuer_url) return &t;
  return nullptr;
}

const EnterpriseClient* Config::enterprise_client(std::string_view client_id) const {
  for (const auto& c : enterprise_clients)
    if (c.client_id == client_id) return &c;
  return nullptr;
}

namespace {

// The lines of mcp_auth_exchange_audience and _client, the files they name
// read, and every client's audiences and scopes checked against the
// audiences'.
std::string load_exchange(Config& cf) {
  cf.exchange_audiences.clear();
  cf.exchange_clients.clear();
  std::string err;
  for (const auto& line : lines_of(cf.exchange_audience_lines)) {
    auto a = parse_exchange_audience(line, &err);
    if (!a) return err;
    if (cf.exchange_audience(a->name)) return "mcp_auth_exchange_audience " + a->name + " is repeated";
    cf.exchange_audiences.push_back(std::move(*a));
  }
  if (cf.exchange_audiences.size() > kMaxExchangeAudiences)
    return "at most " + std::to_string(kMaxExchangeAudiences) + " mcp_auth_exchange_audience directives";
  for (const auto& line : lines_of(cf.exchange_client_lines)) {
    auto c = parse_exchange_client(line, &err);
    if (!c) return err;
    const std::string where = "mcp_auth_exchange_client " + c->client_id;
    if (cf.exchange_client(c->client_id)) return where + " is repeated";
    for (const auto& g : c->grants) {
      const ExchangeAudience* a = cf.exchange_audience(g.audience);
      if (!a) return where + ": audience " + g.audience + " has no mcp_auth_exchange_audience";
      for (const auto& w : g.scopes)
        if (std::find(a->scopes.begin(), a->scopes.end(), w) == a->scopes.end())
          return where + ": scope " + w + " is not among audience " + g.audience + "'s";
    }
    err = load_credential(where, &*c);
    if (!err.empty()) return err;
    cf.exchange_clients.push_back(std::move(*c));
  }
  if (cf.exchange_clients.size() > kMaxExchangeClients)
    return "at most " + std::to_string(kMaxExchangeClients) + " mcp_auth_exchange_client directives";
  return "";
}

// The lines of mcp_auth_service_client, the files they name read, and
// every client's scopes checked: among mcp_auth_scopes, and none that claim
// rules keep for users with some claim (a client has no claims).
std::string load_service_clients(Config& cf) {
  cf.service_clients.clear();
  std::string err;
  for (const auto& line : lines_of(cf.service_client_lines)) {
    auto c = parse_service_client(line, &err);
    if (!c) return err;
    const std::string where = "mcp_auth_service_client " + c->client_id;
    if (cf.service_client(c->client_id)) return where + " is repeated";
    for (const auto& w : c->scopes) {
      if (std::find(cf.scopes.begin(), cf.scopes.end(), w) == cf.scopes.end())
        return where + ": scope " + w + " is not among mcp_auth_scopes";
      if (!cf.access.may_hold(w, ClaimSet()))
        return where + ": scope " + w + " needs claims (mcp_auth_scope_claim), and a client has none";
    }
    err = load_credential(where, &*c);
    if (!err.empty()) return err;
    cf.service_clients.push_back(std::move(*c));
  }
  if (cf.service_clients.size() > kMaxServiceClients)
    return "at most " + std::to_string(kMaxServiceClients) + " mcp_auth_service_client directives";
  return "";
}

// The lines of mcp_auth_trusted_issuer and mcp_auth_enterprise_client, the
// files they name read, and every client's issuers and scopes checked.  A
// configured client id belongs to one kind of client only: which secret
// authenticates it must not depend on the grant it asks for.
std::string load_enterprise(Config& cf) {
  cf.trusted_issuers.clear();
  cf.enterprise_clients.clear();
  std::string err;
  for (const auto& line : lines_of(cf.trusted_issuer_lines)) {
    auto t = parse_trusted_issuer(line, &err);
    if (!t) return err;
    if (cf.trusted_issuer(t->issuer)) return "mcp_auth_trusted_issuer " + t->issuer + " is repeated";
    cf.trusted_issuers.push_back(std::move(*t));
  }
  if (cf.trusted_issuers.size() > kMaxTrustedIssuers)
    return "at most " + std::to_string(kMaxTrustedIssuers) + " mcp_auth_trusted_issuer directives";
  for (const auto& line : lines_of(cf.enterprise_client_lines)) {
    auto c = parse_enterprise_client(line, &err);
    if (!c) return err;
    const std::string where = "mcp_auth_enterprise_client " + c->client_id;
    if (cf.enterprise_client(c->client_id)) return where + " is repeated";
    if (cf.service_client(c->client_id) || cf.exchange_client(c->client_id))
      return where + ": the id is a service or exchange client's already";
    for (const auto& i : c->issuers)
      if (!cf.trusted_issuer(i)) return where + ": issuer " + i + " has no mcp_auth_trusted_issuer";
    for (const auto& w : c->scopes)
      if (std::find(cf.scopes.begin(), cf.scopes.end(), w) == cf.scopes.end())
        return where + ": scope " + w + " is not among mcp_auth_scopes";
    err = load_credential(where, &*c);
    if (!err.empty()) return err;
    cf.enterprise_clients.push_back(std::move(*c));
  }
  if (cf.enterprise_clients.size() > kMaxEnterpriseClients)
    return "at most " + std::to_string(kMaxEnterpriseClients) + " mcp_auth_enterprise_client directives";
  if (!cf.enterprise_clients.empty() && cf.trusted_issuers.empty())
    return "mcp_auth_enterprise_client needs a mcp_auth_trusted_issuer";
  return "";
}

}  // namespace

std::string Config::load() {
  if (issuer.empty()) return "mcp_auth_issuer is required";
  {
    std::string err;
    auto rules = AccessRules::parse(claim_rules, &err);
    if (!rules) return err;
    access = std::move(*rules);
    scope_descriptions.clear();
    provider_params.clear();
    err = parse_pairs("mcp_auth_scope_description", scope_description_lines, &scope_descriptions);
    if (err.empty()) err = parse_pairs("mcp_auth_provider_param", provider_param_lines, &provider_params);
    if (!err.empty()) return err;
  }
  {
    std::string err = load_exchange(*this);
    if (err.empty()) err = load_service_clients(*this);
    if (err.empty()) err = load_enterprise(*this);
    if (!err.empty()) return err;
  }
  if (resource.empty()) resource = issuer + "/mcp";
  secure_cookies = secure_cookies_setting < 0 ? issuer.compare(0, 8, "https://") == 0
                                              : secure_cookies_setting == 1;
  if (refresh_token_ttl > session_ttl) refresh_token_ttl = session_ttl;

  if (!key_file.empty()) {
    std::string text, why;
    std::string err = read_file("mcp_auth_key_file", key_file, &text);
    if (!err.empty()) return err;
    keys = KeyRing::parse(text, &why);
    if (!keys) return "mcp_auth_key_file \"" + key_file + "\": " + why;
  }

  if (!admin_key_file.empty()) {
    std::string text;
    std::string err = read_file("mcp_auth_admin_key_file", admin_key_file, &text);
    if (!err.empty()) return err;
    std::string key = trim_file_text(text);
    // A guessable key would open every session to whoever can reach the API.
    if (key.size() < kMinAdminKeyLength)
      return "mcp_auth_admin_key_file \"" + admin_key_file + "\" holds fewer than " +
             std::to_string(Config::kMinAdminKeyLength) + " characters";
    if (key.find_first_of(" \t\r\n") != std::string::npos)
      return "mcp_auth_admin_key_file \"" + admin_key_file + "\" must hold one line without spaces";
    admin_key_hash = sha256(key);
    wipe(key);
    wipe(text);
  }

  const bool any_provider = !provider_issuer.empty() || !provider_authorization_endpoint.empty() ||
                            !provider_token_endpoint.empty() || !provider_client_id.empty();
  if (!any_provider) return "";
  if (provider_issuer.empty()) return "mcp_auth_provider_issuer is required";
  if (provider_authorization_endpoint.empty()) return "mcp_auth_provider_authorization_endpoint is required";
  if (provider_token_endpoint.empty()) return "mcp_auth_provider_token_endpoint is required";
  if (provider_client_id.empty()) return "mcp_auth_provider_client_id is required";
  if (provider_client_auth == ProviderAuth::private_key_jwt) {
    if (provider_private_key_file.empty())
      return "mcp_auth_provider_client_auth private_key_jwt needs mcp_auth_provider_private_key_file";
    std::string err = read_file("mcp_auth_provider_private_key_file", provider_private_key_file,
                                &provider_private_key);
    if (!err.empty()) return err;
    if (!provider_certificate_file.empty()) {
      std::string pem;
      err = read_file("mcp_auth_provider_certificate_file", provider_certificate_file, &pem);
      if (!err.empty()) return err;
      auto x5t = x5t_from_certificate_pem(pem);
      if (!x5t) return "mcp_auth_provider_certificate_file \"" + provider_certificate_file +
                       "\" holds no PEM certificate";
      provider_x5t = *x5t;
    }
    // Sign once now so that a bad key fails `nginx -t`, not a login.
    auto probe = make_client_assertion(provider_private_key, provider_client_id,
                                       provider_token_endpoint, 1, provider_key_id, provider_x5t);
    if (!probe.ok)
      return "mcp_auth_provider_private_key_file \"" + provider_private_key_file + "\": " + probe.value_or_error;
    return "";
  }
  if (provider_client_secret_file.empty())
    return "mcp_auth_provider_client_auth " +
           std::string(provider_client_auth == ProviderAuth::client_secret_post ? "client_secret_post"
                                                                              : "client_secret_basic") +
           " needs mcp_auth_provider_client_secret_file";
  std::string text;
  std::string err = read_file("mcp_auth_provider_client_secret_file", provider_client_secret_file, &text);
  if (!err.empty()) return err;
  provider_client_secret = trim_file_text(text);
  if (provider_client_secret.empty())
    return "mcp_auth_provider_client_secret_file \"" + provider_client_secret_file + "\" is empty";
  return "";
}

std::string Config::check_use(mcpa_endpoint_e endpoint) const {
  const char* name = endpoint_name(endpoint);
  switch (endpoint) {
    case MCPA_EP_NONE:
    case MCPA_EP_AUTHORIZATION_SERVER_METADATA:
    case MCPA_EP_PROTECTED_RESOURCE_METADATA:
    case MCPA_EP_REGISTER:
      return "";
    case MCPA_EP_REVOKE:
      break;
    case MCPA_EP_ADMIN:
      return admin_key_hash.empty() ? "mcp_auth_endpoint admin needs mcp_auth_admin_key_file" : "";
    case MCPA_EP_AUTHORIZE:
    case MCPA_EP_CONSENT:
    case MCPA_EP_CALLBACK:
    case MCPA_EP_TOKEN:
    case MCPA_EP_ACCOUNT:
      if (!keys) break;
      if (!has_provider()) return std::string("mcp_auth_endpoint ") + name + " needs mcp_auth_provider_issuer";
      return "";
  }
  if (!keys) return std::string("mcp_auth_key_file is required by mcp_auth_endpoint ") + name;
  return "";
}

}  // namespace mcpauth
