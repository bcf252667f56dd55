// GET /.well-known/oauth-authorization-server (RFC 8414),
// /.well-known/openid-configuration (same document, for clients that try
// OIDC discovery first) and /.well-known/oauth-protected-resource[/path]
// (RFC 9728).  Public documents: cacheable, readable from any origin.
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
  for (const auto& c : cf.exchange_clients) m.private_key_jwt = m.private_key_jwt || !c.keys.empty();
  for (const auto& c : cf.service_clients) m.private_key_jwt = m.private_key_jwt || !c.keys.empty();
  m.jwt_bearer = !cf.enterprise_clients.empty();
  for (const auto& c : cf.enterprise_clients) m.private_key_jwt = m.private_key_jwt || !c.keys.empty();
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
