// Discovery documents: OAuth 2.0 Authorization Server Metadata (RFC 8414)
// and OAuth 2.0 Protected Resource Metadata (RFC 9728).  Pure functions.
#pragma once

#include <string>
#include <vector>

namespace mcpauth {

struct ServerMetadataConfig {
  std::string issuer, authorization_endpoint, token_endpoint, registration_endpoint,
      revocation_endpoint, resource, resource_name, service_documentation;
  std::vector<std::string> scopes;
  bool cimd_supported = false;  // OAuth Client ID Metadata Documents
  // Backends may exchange tokens (mcp_auth_exchange_client), services get
  // tokens of their own (mcp_auth_service_client): the grants, and
  // private_key_jwt (with the algorithms it is verified with) when one of
  // them authenticates so.  Apps present enterprise assertions
  // (mcp_auth_enterprise_client): the jwt-bearer grant.
  bool token_exchange = false, client_credentials = false, private_key_jwt = false, jwt_bearer = false;
};

// RFC 8414 §2 document, compact JSON, members in a fixed order.
// registration_endpoint, revocation_endpoint (and its auth methods) and
// service_documentation are omitted when empty; scopes_supported is always
// present; client_id_metadata_document_supported only when cimd_supported.
std::string authorization_server_metadata_json(const ServerMetadataConfig& config);

// RFC 9728 §2 document, compact JSON: resource (as configured, no slash
// added), authorization_servers [issuer], scopes_supported,
// bearer_methods_supported ["header"], resource_name when set.
std::string protected_resource_metadata_json(const ServerMetadataConfig& config);

}  // namespace mcpauth
