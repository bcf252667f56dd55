// URI parsing and the redirect-URI / resource-indicator rules.
// Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

// The RFC 3986 §3 components of an absolute URI, as written (no decoding,
// no case folding).  `host` keeps the brackets of an IPv6 literal.
struct Uri {
  std::string scheme;
  bool has_authority = false;  // "//" follows the scheme
  bool has_userinfo = false;
  std::string userinfo;
  std::string host;
  bool has_port = false;
  std::string port;            // digits only, value 1..65535
  std::string path;
  bool has_query = false;
  std::string query;
  bool has_fragment = false;
  std::string fragment;
};

// Parses an absolute URI.  Refuses (nullopt, reason in *error) anything
// outside RFC 3986's character set (controls, spaces, non-ASCII, '\', '<',
// '"', ...), malformed %-escapes, a missing or invalid scheme, a malformed
// host or port.
std::optional<Uri> parse_uri(std::string_view text, std::string* error);

constexpr size_t kMaxRedirectUriLength = 2048;

// nullopt when `uri` may be registered as a redirect URI, else a
// human-readable reason (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.1 §2.3.1).
std::optional<std::string> redirect_uri_registration_error(std::string_view uri);

// "localhost" (any case), any 127.0.0.0/8 dotted quad, or "[::1]" / "::1".
bool is_loopback_host(std::string_view host);

// Exact string match against one of the registered URIs, except that for
// http on a loopback host the port may differ (RFC 8252 §7.3); scheme, host,
// path and query must still match exactly.
bool redirect_uri_matches(std::string_view requested, const std::vector<std::string>& registered);

// A resource indicator (RFC 8707 §2): absolute URI with a host and no
// fragment or userinfo.  Normal form: scheme and host lowercased, ONE
// trailing '/' removed from the path; port and query kept as written.
std::optional<std::string> normalize_resource(std::string_view resource);
// Both normalize and the normal forms are equal.
bool resource_matches(std::string_view requested, std::string_view configured);

}  // namespace mcpauth
