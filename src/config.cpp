#include "config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "client_assertion.hpp"
#include "redirect_uri.hpp"

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

// nginx-style duration: "3600", "90s", "10m", "12h", "30d", "2w", or a
// sequence such as "1h30m".  Positive, at most ~68 years.
std::string parse_duration(const std::string& what, const std::string& value, int64_t* out) {
  const std::string msg = what + ": \"" + value + "\" is not a valid duration (seconds, or a number with s, m, h, d or w)";
  if (value.empty()) return msg;
  int64_t total = 0;
  size_t i = 0;
  while (i < value.size()) {
    if (value[i] < '0' || value[i] > '9') return msg;
    int64_t n = 0;
    while (i < value.size() && value[i] >= '0' && value[i] <= '9') {
      n = n * 10 + (value[i] - '0');
      if (n > (int64_t{1} << 31)) return what + ": \"" + value + "\" is too large";
      ++i;
    }
    int64_t unit = 1;
    if (i < value.size()) {
      switch (value[i]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return msg;
      }
      ++i;
    } else if (total != 0) {
      return msg;  // "1h30" is ambiguous
    }
    total += n * unit;
    if (total > (int64_t{1} << 31)) return what + ": \"" + value + "\" is too large";
  }
  if (total <= 0) return what + ": \"" + value + "\" must be positive";
  *out = total;
  return "";
}

std::string parse_flag(const std::string& what, const std::string& value, bool* out) {
  if (value == "on") *out = true;
  else if (value == "off") *out = false;
  else return what + ": \"" + value + "\" must be \"on\" or \"off\"";
  return "";
}

std::string read_file(const std::string& what, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return what + ": cannot open \"" + path + "\": " + std::strerror(errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return what + ": cannot read \"" + path + "\"";
  *out = text.str();
  return "";
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}


}  // namespace

std::string Config::set(const std::string& name, const std::string& value) {
  if (name == "issuer") {
    issuer = value;
    return check_base_url("mcp_auth_issuer", value);
  }
  if (name == "resource") {
    resource = value;
    return check_base_url("mcp_auth_resource", value);
  }
  if (name == "resource_name") {
    resource_name = value;
    return "";
  }
  if (name == "scopes") {
    scopes = split_spaces(value);
    for (const auto& s : scopes)
      for (char c : s)
        // RFC 6749 §3.3 scope-token characters
        if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) return "mcp_auth_scopes: \"" + s + "\" is not a valid scope";
    return "";
  }
  if (name == "cors_origins") {
    cors_origins = split_spaces(value);
    return "";
  }
  if (name == "endpoint") {
    endpoint = value;
    return "";
  }
  struct StringSetting { const char* name; std::string* target; };
  const StringSetting strings[] = {
      {"key_file", &key_file},
      {"provider_issuer", &provider_issuer},
      {"provider_authorization_endpoint", &provider_authorization_endpoint},
      {"provider_token_endpoint", &provider_token_endpoint},
      {"provider_client_id", &provider_client_id},
      {"provider_client_secret_file", &provider_client_secret_file},
      {"provider_private_key_file", &provider_private_key_file},
      {"provider_key_id", &provider_key_id},
      {"provider_certificate_file", &provider_certificate_file},
  };
  for (const auto& p : strings) {
    if (name == p.name) {
      *p.target = value;
      if (value.empty()) return "mcp_auth_" + name + " must not be empty";
      if (name == "provider_issuer") return check_base_url("mcp_auth_provider_issuer", value);
      if (name == "provider_authorization_endpoint" || name == "provider_token_endpoint")
        return check_provider_url("mcp_auth_" + name, value);
      return "";
    }
  }
  if (name == "provider_scopes") {
    auto words = split_spaces(value);
    bool openid = false;
    provider_scopes.clear();
    for (const auto& w : words) {
      for (char c : w)
        if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e)
          return "mcp_auth_provider_scopes: \"" + w + "\" is not a valid scope";
      if (w == "openid") openid = true;
      provider_scopes += (provider_scopes.empty() ? "" : " ") + w;
    }
    if (!openid) return "mcp_auth_provider_scopes must include \"openid\"";
    return "";
  }
  if (name == "provider_client_auth") {
    if (value == "client_secret_basic") provider_client_auth = ProviderAuth::client_secret_basic;
    else if (value == "client_secret_post") provider_client_auth = ProviderAuth::client_secret_post;
    else if (value == "private_key_jwt") provider_client_auth = ProviderAuth::private_key_jwt;
    else
      return "mcp_auth_provider_client_auth: \"" + value +
             "\" is not one of client_secret_basic, client_secret_post, private_key_jwt";
    return "";
  }
  struct DurationSetting { const char* name; int64_t* target; };
  const DurationSetting durations[] = {
      {"access_token_ttl", &access_token_ttl}, {"refresh_token_ttl", &refresh_token_ttl},
      {"session_ttl", &session_ttl},           {"code_ttl", &code_ttl},
      {"login_ttl", &login_ttl},               {"client_ttl", &client_ttl},
      {"session_cache", &session_cache_ttl},
  };
  for (const auto& d : durations) {
    if (name == d.name) {
      std::string err = parse_duration("mcp_auth_" + name, value, d.target);
      if (err.empty() && name == "code_ttl" && code_ttl > 600)
        return "mcp_auth_code_ttl: \"" + value + "\" is longer than the 10 minutes allowed";
      return err;
    }
  }
  if (name == "consent_remember") return parse_flag("mcp_auth_consent_remember", value, &consent_remember);
  if (name == "client_metadata_documents")
    return parse_flag("mcp_auth_client_metadata_documents", value, &cimd);
  if (name == "client_metadata_allow_private")
    return parse_flag("mcp_auth_client_metadata_allow_private", value, &cimd_allow_private);
  if (name == "client_metadata_ports") {
    const std::string what = "mcp_auth_client_metadata_ports";
    std::vector<int> ports;
    for (const auto& w : split_spaces(value)) {
      int port = 0;
      for (char c : w) {
        if (c < '0' || c > '9' || port > 65535) return what + ": \"" + w + "\" is not a port number";
        port = port * 10 + (c - '0');
      }
      if (port < 1 || port > 65535) return what + ": \"" + w + "\" is not a port number (1 to 65535)";
      ports.push_back(port);
    }
    if (ports.empty()) return what + " needs at least one port";
    cimd_ports = std::move(ports);
    return "";
  }
  if (name == "client_metadata_fetch") return parse_flag("mcp_auth_client_metadata_location", value, &cimd_fetch);
  if (name == "secure_cookies") {
    bool on = true;
    std::string err = parse_flag("mcp_auth_secure_cookies", value, &on);
    if (err.empty()) secure_cookies_setting = on ? 1 : 0;
    return err;
  }
  struct PathSetting { const char* name; std::string* target; };
  const PathSetting paths[] = {
      {"authorization_path", &authorization_path}, {"token_path", &token_path},
      {"registration_path", &registration_path},   {"revocation_path", &revocation_path},
      {"consent_path", &consent_path},             {"callback_path", &callback_path},
  };
  for (const auto& p : paths) {
    if (name == p.name) {
      *p.target = value;
      return check_path("mcp_auth_" + name, value);
    }
  }
  return "unknown setting \"mcp_auth_" + name + "\"";
}

std::string Config::finish() {
  if (issuer.empty()) return "mcp_auth_issuer is required";
  if (resource.empty()) resource = issuer + "/mcp";
  secure_cookies = secure_cookies_setting < 0 ? issuer.compare(0, 8, "https://") == 0
                                              : secure_cookies_setting == 1;

  const bool metadata_only = endpoint.empty() || endpoint.find("metadata") != std::string::npos ||
                             endpoint.find("well-known") != std::string::npos;
  const bool needs_provider =
      endpoint == "authorize" || endpoint == "consent" || endpoint == "callback" || endpoint == "token";

  if (!key_file.empty()) {
    std::string text, why;
    std::string err = read_file("mcp_auth_key_file", key_file, &text);
    if (!err.empty()) return err;
    keys = KeyRing::parse(text, &why);
    if (!keys) return "mcp_auth_key_file \"" + key_file + "\": " + why;
  } else if (!metadata_only && endpoint != "register") {
    return "mcp_auth_key_file is required by mcp_auth_endpoint " + endpoint;
  }

  const bool any_provider = !provider_issuer.empty() || !provider_authorization_endpoint.empty() ||
                            !provider_token_endpoint.empty() || !provider_client_id.empty();
  if (any_provider || needs_provider) {
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
        return "mcp_auth_provider_private_key_file \"" + provider_private_key_file +
               "\": " + probe.value_or_error;
    } else {
      if (provider_client_secret_file.empty())
        return "mcp_auth_provider_client_auth " +
               std::string(provider_client_auth == ProviderAuth::client_secret_post ? "client_secret_post"
                                                                                  : "client_secret_basic") +
               " needs mcp_auth_provider_client_secret_file";
      std::string text;
      std::string err = read_file("mcp_auth_provider_client_secret_file", provider_client_secret_file, &text);
      if (!err.empty()) return err;
      provider_client_secret = trim(text);
      if (provider_client_secret.empty())
        return "mcp_auth_provider_client_secret_file \"" + provider_client_secret_file + "\" is empty";
    }
  }
  if (refresh_token_ttl > session_ttl) refresh_token_ttl = session_ttl;
  return "";
}

}  // namespace mcpauth
