// RFC 8414 and RFC 9728 discovery documents.  See metadata.hpp.
#include "metadata.hpp"

#include <cjson/cJSON.h>

#include <memory>
#include <new>

#include "json.hpp"

namespace mcpauth {

namespace {


void add_string(cJSON* obj, const char* name, const std::string& value) {
  must(cJSON_AddStringToObject(obj, name, value.c_str()));
}

void add_strings(cJSON* obj, const char* name, const std::vector<std::string>& values) {
  cJSON* arr = must(cJSON_AddArrayToObject(obj, name));
  for (const auto& v : values) cJSON_AddItemToArray(arr, must(cJSON_CreateString(v.c_str())));
}

void add_bool(cJSON* obj, const char* name, bool value) {
  must(cJSON_AddBoolToObject(obj, name, value ? 1 : 0));
}

std::string print(const Json& j) {
  std::unique_ptr<char, JsonTextDelete> text(must(cJSON_PrintUnformatted(j.get())));
  return std::string(text.get());
}

}  // namespace

std::string authorization_server_metadata_json(const ServerMetadataConfig& config) {
  // Client authentication methods accepted at the token and revocation
  // endpoints; "none" is for public clients that rely on PKCE.
  const std::vector<std::string> auth_methods = {"none", "client_secret_basic", "client_secret_post"};
  std::vector<std::string> token_auth_methods = auth_methods;
  if (config.private_key_jwt) token_auth_methods.push_back("private_key_jwt");
  std::vector<std::string> grants = {"authorization_code", "refresh_token"};
  if (config.token_exchange) grants.push_back("urn:ietf:params:oauth:grant-type:token-exchange");
  if (config.client_credentials) grants.push_back("client_credentials");
  if (config.jwt_bearer) grants.push_back("urn:ietf:params:oauth:grant-type:jwt-bearer");
  Json doc(must(cJSON_CreateObject()));
  cJSON* o = doc.get();
  add_string(o, "issuer", config.issuer);
  add_string(o, "authorization_endpoint", config.authorization_endpoint);
  add_string(o, "token_endpoint", config.token_endpoint);
  if (!config.registration_endpoint.empty()) {
    add_string(o, "registration_endpoint", config.registration_endpoint);
  }
  add_strings(o, "scopes_supported", config.scopes);
  add_strings(o, "response_types_supported", {"code"});
  add_strings(o, "response_modes_supported", {"query"});
  add_strings(o, "grant_types_supported", grants);
  add_strings(o, "token_endpoint_auth_methods_supported", token_auth_methods);
  // what a client assertion is verified with (id_token.hpp's verify_jws)
  if (config.private_key_jwt)
    add_strings(o, "token_endpoint_auth_signing_alg_values_supported",
                {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"});
  if (!config.revocation_endpoint.empty()) {
    add_string(o, "revocation_endpoint", config.revocation_endpoint);
    add_strings(o, "revocation_endpoint_auth_methods_supported", auth_methods);
  }
  // OAuth 2.1 and MCP require PKCE with S256; "plain" is never offered.
  add_strings(o, "code_challenge_methods_supported", {"S256"});
  // RFC 9207: the authorization response carries "iss" (mix-up defence).
  add_bool(o, "authorization_response_iss_parameter_supported", true);
  if (!config.service_documentation.empty()) {
    add_string(o, "service_documentation", config.service_documentation);
  }
  if (config.cimd_supported) add_bool(o, "client_id_metadata_document_supported", true);
  return print(doc);
}

std::string protected_resource_metadata_json(const ServerMetadataConfig& config) {
  Json doc(must(cJSON_CreateObject()));
  cJSON* o = doc.get();
  // RFC 9728 §3.3: the resource value must be identical to the one the
  // client used to build the metadata URL, so it is emitted as configured.
  add_string(o, "resource", config.resource);
  add_strings(o, "authorization_servers", {config.issuer});
  add_strings(o, "scopes_supported", config.scopes);
  // RFC 6750 §2.1 only: no form-body or query-string tokens.
  add_strings(o, "bearer_methods_supported", {"header"});
  if (!config.resource_name.empty()) add_string(o, "resource_name", config.resource_name);
  return print(doc);
}

}  // namespace mcpauth
