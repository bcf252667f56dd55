// The request-metadata headers of MCP's Streamable HTTP transport
// (2026-07-28, "Request Metadata"): Mcp-Method mirrors the body's method,
// Mcp-Name its params.name (tools/call, prompts/get) or params.uri
// (resources/read).  Intermediaries route and decide on them, so a request
// whose headers say one thing and whose body another must never run: the
// body is what runs.  Whatever the protocol version, the gateway (where tool
// rules apply) and the tool server hold present headers to the body.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jsonrpc_peek.hpp"

namespace mcpauth {

struct MirrorHeaders {
  bool has_method = false, has_name = false;
  bool repeated = false;  // either header more than once
  std::string_view method, name;
  bool any() const { return has_method || has_name || repeated; }
};

// An Mcp-Name value as sent: visible ASCII (and space, tab) as is, or the
// spec's Base64 sentinel decoded: a value that starts with "=?base64?" and
// ends with "?=" (markers case-sensitive) holds canonical padded standard
// base64 (RFC 4648 §4, unused bits zero) of valid UTF-8 without NUL, so
// that every name has exactly one spelling.  nullopt for anything else (a
// control or non-ASCII byte, a malformed sentinel, markers that overlap).
// The tool server reads header values with this same function.
std::optional<std::string> decode_mirror_value(std::string_view value);

// The body's target that Mcp-Name mirrors, or nullptr when its method has
// none (or the body does not name it as a string).
const std::string* mirror_target(const McpCall& call);

// "" when every present header agrees with the body (one message, not a
// batch); otherwise what disagrees, for the HeaderMismatch (-32020) error.
std::string mirror_mismatch(const MirrorHeaders& h, const std::vector<McpCall>& calls, bool batch);

}  // namespace mcpauth
