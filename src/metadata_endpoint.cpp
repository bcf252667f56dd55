// GET /.well-known/oauth-authorization-server (RFC 8414),
// /.well-known/openid-configuration (same document, for clients that try
// OIDC discovery first) and /.well-known/oauth-protected-resource[/path]
// (RFC 9728).  Public documents: cacheable, readable from any origin.
#include <algorithm>

#include "endpoints.hpp"
#include "metadata.hpp"

namespace mcpauth {
namespace {

ServerMetadataConfig metadata_config(const Config& cf) {
  ServerMetadataConfig m;
  m.issuer = cf.issuer;
  m.authorization_endpoint = cf.url(cf.authorization_path);
  m.token_endpoint = cf.url(cf.token_path);
  m.registration_endpoint = cf.url(cf.registration_path);
  m.revocation_endpoint = cf.url(cf.revocation_path);
  m.resource = cf.resource;
  m.resource_name = cf.resource_name;
  m.scopes = cf.scopes;
  m.cimd_supported = cf.cimd && cf.cimd_fetch;
  m.token_exchange = !cf.exchange_clients.empty();
  m.client_credentials = !cf.service_clients.empty();
  m.jwt_bearer = !cf.enterprise_clients.empty();
  const auto by_keys = [](const ConfiguredClient& c) { return !c.keys.empty() || !c.jwks_location.empty(); };
  m.private_key_jwt = std::any_of(cf.exchange_clients.begin(), cf.exchange_clients.end(), by_keys) ||
                      std::any_of(cf.service_clients.begin(), cf.service_clients.end(), by_keys) ||
                      std::any_of(cf.enterprise_clients.begin(), cf.enterprise_clients.end(), by_keys);
  return m;
}

Response public_json(std::string body) {
  Response r;
  r.body = std::move(body);
  r.header("Content-Type", "application/json");
  r.header("Cache-Control", "public, max-age=300");
  // Metadata is public: any origin may read it.
  r.header("Access-Control-Allow-Origin", "*");
  return r;
}

Response serve(const Config& cf, const Request& req, std::string (*render)(const ServerMetadataConfig&)) {
  if (req.method == "OPTIONS") {
    Response r;
    r.status = 204;
    r.header("Access-Control-Allow-Origin", "*");
    r.header("Access-Control-Allow-Methods", "GET, OPTIONS");
    r.header("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type, Authorization");
    r.header("Access-Control-Max-Age", "86400");
    return r;
  }
  if (req.method != "GET" && req.method != "HEAD") return method_not_allowed("GET, OPTIONS");
  return public_json(render(metadata_config(cf)));
}

}  // namespace

Response handle_authorization_server_metadata(const Config& cf, const Request& req) {
  return serve(cf, req, authorization_server_metadata_json);
}

Response handle_protected_resource_metadata(const Config& cf, const Request& req) {
  return serve(cf, req, protected_resource_metadata_json);
}

}  // namespace mcpauth
