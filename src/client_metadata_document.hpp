// OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
// document-00; MCP 2025-11-25 "client registration"): a client_id that is
// an https URL names a JSON document with the client's metadata, which the
// gateway fetches instead of asking the client to register.  Pure
// functions: the glue does the fetching (through an nginx subrequest, to an
// address this file has approved).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "registration.hpp"

namespace mcpauth {

// Larger documents are refused (the draft leaves the limit to the server).
constexpr size_t kMaxClientDocument = 16 * 1024;

// Where a client_id URL is fetched from: nullopt unless it is one (https,
// a host, a path other than "/", no fragment, no userinfo, no "." or ".."
// segment; draft §3).
struct DocumentLocation {
  std::string host;  // IPv6 literals without brackets
  int port = 443;
  std::string path;  // path and query, as written
};
std::optional<DocumentLocation> client_id_document_location(std::string_view client_id);

// Validates the fetched document for client_id (draft §4): a JSON object
// whose client_id equals the URL exactly, with redirect_uris (the same rules
// as registration), public only (no shared secret can exist: auth method
// "none"), and no client_secret.
std::variant<ClientMetadata, RegistrationError> parse_client_id_document(
    std::string_view body, std::string_view client_id, const std::vector<std::string>& supported_scopes);

// Seconds to keep a fetched document, from its Cache-Control header:
// max-age clamped to [300, 86400]; 3600 when absent.  Even "no-store" keeps
// it 300 s, the time a login needs to get from /authorize through consent.
int64_t client_id_document_lifetime(std::string_view cache_control);

// Whether the gateway may connect to this address (dotted IPv4 or IPv6
// text; SSRF): only globally reachable unicast unless allow_private.  IPv4:
// every non-global range of the IANA special-purpose registry (private,
// loopback, link-local, CGNAT, documentation, benchmarking, 192.0.0.0/24,
// ...), multicast and 240/4.  IPv6: 2000::/3 only, without 2001::/23
// (Teredo among them), documentation and 6to4; NAT64 and IPv4-compatible
// forms are refused whatever they embed; IPv4-mapped is judged as IPv4.
bool fetch_address_allowed(std::string_view ip, bool allow_private);

}  // namespace mcpauth
