// The gateway's static configuration, built once from nginx directives and
// shared read-only by every request of a worker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "claims.hpp"
#include "configured_client.hpp"
#include "crypto.hpp"
#include "enterprise_grant.hpp"
#include "exchange_policy.hpp"
#include "mcp_auth.h"

namespace mcpauth {

class IdentityMinter;

struct Config {
  // Public identity of the authorization server (RFC 8414 "issuer") and of
  // the protected MCP resource (RFC 9728 "resource").
  std::string issuer;
  std::string resource;
  std::string resource_name = "MCP server";
  std::vector<std::string> scopes;

  // Endpoint paths, published in the metadata relative to the issuer.
  std::string authorization_path = "/authorize";
  std::string token_path = "/token";
  std::string registration_path = "/register";
  std::string revocation_path = "/revoke";
  std::string consent_path = "/consent";
  std::string callback_path = "/oauth-callback";

  // Browser origins allowed to call the JSON endpoints (CORS); "*" = any.
  std::vector<std::string> cors_origins = {"*"};

  // The KeyRing that seals tokens and keys cookies/CSRF tokens
  // (mcp_auth_key_file, loaded by load()).  Absent: only the metadata
  // endpoints work; the others answer 500 server_error.
  std::string key_file;
  std::optional<KeyRing> keys;

  // The admin API's bearer key (mcp_auth_admin_key_file): only its SHA-256
  // is kept, compared in constant time.
  std::string admin_key_file;
  std::string admin_key_hash;
  static constexpr size_t kMinAdminKeyLength = 32;

  // The upstream OpenID provider the user logs in at.
  enum class ProviderAuth { client_secret_basic, client_secret_post, private_key_jwt };
  std::string provider_issuer;
  std::string provider_authorization_endpoint;
  std::string provider_token_endpoint;
  std::string provider_client_id;
  std::string provider_client_secret_file;
  std::string provider_client_secret;  // file content, trimmed
  ProviderAuth provider_client_auth = ProviderAuth::client_secret_basic;
  std::string provider_private_key_file;
  std::string provider_private_key;  // PEM, for private_key_jwt
  std::string provider_key_id;
  std::string provider_certificate_file;
  std::string provider_x5t;  // from the certificate, for private_key_jwt
  std::string provider_scopes = "openid profile email offline_access";

  // Lifetimes, seconds.
  int64_t access_token_ttl = 3600;
  int64_t refresh_token_ttl = 30 * 86400;
  int64_t session_ttl = 30 * 86400;  // absolute: no token outlives it
  int64_t code_ttl = 60;             // at most 600 (RFC 6749 §4.1.2)
  int64_t login_ttl = 600;           // a pending sign-in (consent + provider)
  int64_t client_ttl = 90 * 86400;   // a dynamic registration
  // With a networked store: how long a worker may trust a session record
  // it read (mcp_auth_redis cache=); 0 reads it on every request.
  int64_t session_cache_ttl = 0;

  bool consent_remember = true;

  // Access from the provider's claims (claims.hpp): the directives' lines
  // (mcp_auth_require_claim, _require_email_domain, _scope_claim,
  // _tool_claim) and the rules load() makes of them.
  std::string claim_rules;
  AccessRules access;
  // What each scope means, for the consent page (mcp_auth_scope_description).
  std::string scope_description_lines;
  std::vector<std::pair<std::string, std::string>> scope_descriptions;
  std::string scope_description(const std::string& scope) const;
  // More parameters on the login request to the provider
  // (mcp_auth_provider_param), e.g. Google's access_type=offline.
  std::string provider_param_lines;
  std::vector<std::pair<std::string, std::string>> provider_params;

  // Client ID Metadata Documents: accepted when on and the glue can fetch
  // them (mcp_auth_client_metadata_location); private addresses refused
  // unless allowed.
  bool cimd = true;
  bool cimd_fetch = false;
  bool cimd_allow_private = false;
  // The only ports a document URL may name (mcp_auth_client_metadata_ports):
  // a client-chosen URL must not reach any other service a host runs.
  std::vector<int> cimd_ports = {443};
  // -1: not set, then on exactly when the issuer is https.
  int secure_cookies_setting = -1;
  bool secure_cookies = true;

  // Token exchange for backends (exchange_policy.hpp): the directives'
  // lines, and what load() makes of them.
  std::string exchange_audience_lines, exchange_client_lines;
  std::vector<ExchangeAudience> exchange_audiences;
  std::vector<ExchangeClient> exchange_clients;
  const ExchangeAudience* exchange_audience(std::string_view name) const;
  const ExchangeClient* exchange_client(std::string_view client_id) const;
  // Services that get tokens of their own with grant_type=client_credentials
  // (configured_client.hpp): the directive's lines, and what load() makes
  // of them.
  std::string service_client_lines;
  std::vector<ServiceClient> service_clients;
  const ServiceClient* service_client(std::string_view client_id) const;
  // Enterprise-managed authorization (enterprise_grant.hpp).
  std::string trusted_issuer_lines, enterprise_client_lines;
  std::vector<TrustedIssuer> trusted_issuers;
  std::vector<EnterpriseClient> enterprise_clients;
  const TrustedIssuer* trusted_issuer(std::string_view issuer) const;
  const EnterpriseClient* enterprise_client(std::string_view client_id) const;
  // The guard's identity key (mcp_auth_identity_key_file), which reads the
  // assertions backends present back; set by mcpa_config_build.
  const IdentityMinter* identity = nullptr;

  std::string url(const std::string& path) const { return issuer + path; }
  bool has_provider() const { return !provider_client_id.empty(); }

  // Reads the files the settings name (keys, provider credentials) and
  // derives what depends on several settings; "" or a message for nginx -t.
  std::string load();
  // What a location serving `endpoint` needs of this configuration (the key
  // file for endpoints that keep state, the provider for the login and
  // token endpoints); "" or a message.
  std::string check_use(mcpa_endpoint_e endpoint) const;
};

// The checks a directive's value gets on its own line (mcp_auth.h's
// mcpa_check_e); "" or a message that names the directive.
std::string check_setting(mcpa_check_e kind, const std::string& directive, const std::string& value);

// Reads a whole file; "" or a message naming `what` and the path.
std::string read_file(const std::string& what, const std::string& path, std::string* out);
// A file's text without the whitespace around it (a key or secret file).
std::string trim_file_text(const std::string& s);

}  // namespace mcpauth
