// Dynamic client registration (RFC 7591): request validation, response and
// the stored form of a client.  Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mcpauth {

struct ClientMetadata {
  std::string client_id;  // assigned by the server, not by the request
  std::string client_name, client_uri, logo_uri, scope;
  std::vector<std::string> redirect_uris, grant_types, response_types;
  std::string token_endpoint_auth_method;
  int64_t client_id_issued_at = 0;
  std::string client_secret_hash;  // sha256_b64url(secret); empty for public clients
};

// RFC 7591 §3.2.2: `error` is invalid_redirect_uri or invalid_client_metadata.
struct RegistrationError {
  std::string error;
  std::string description;
};

// Bounds on what a registration (or a metadata document) stores; anyone
// may register, so nothing a client sends is kept unbounded.
constexpr size_t kMaxRedirectUris = 10;
constexpr size_t kMaxClientNameChars = 200;
constexpr size_t kMaxStoredClientBytes = 8 * 1024;  // serialize_client()

// Validates a registration request body.  On success the returned metadata
// has client_id, client_id_issued_at and client_secret_hash empty/zero: the
// caller assigns them.  Defaults when a field is absent:
//   token_endpoint_auth_method: "client_secret_basic" (RFC 7591 §2); MCP
//     public clients send "none" explicitly.
//   grant_types: ["authorization_code", "refresh_token"] (RFC 7591 says
//     ["authorization_code"], but MCP clients need refresh tokens).
//   response_types: ["code"].
// Unknown fields are ignored; duplicate values in arrays are dropped; the
// scope is re-joined with single spaces.
std::variant<ClientMetadata, RegistrationError> parse_registration_request(
    std::string_view json_body, const std::vector<std::string>& supported_scopes);

// RFC 7591 §3.2.1 response body (compact JSON).  client_secret and
// client_secret_expires_at: 0 are included only when a secret is given and
// the auth method is not "none".
std::string registration_response_json(const ClientMetadata& client,
                                       const std::string* plaintext_secret_or_null);

// invalid_client_metadata when the stored form of `client` (client_id and
// secret hash assigned) would exceed kMaxStoredClientBytes.
std::optional<RegistrationError> stored_size_error(const ClientMetadata& client);

// Compact JSON for the client store ("v":1 plus every field) and back.
std::string serialize_client(const ClientMetadata& client);
std::optional<ClientMetadata> deserialize_client(std::string_view json);

}  // namespace mcpauth
