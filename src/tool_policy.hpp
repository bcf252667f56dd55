// Per-tool authorization: which scopes an MCP method or tool needs
// (mcp_auth_tool_scope), decided on the calls of the JSON-RPC body.  The
// gateway's guard and the tool server (--tool-scope) both use it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jsonrpc_peek.hpp"  // McpCall, peek_jsonrpc

namespace mcpauth {

class ToolPolicy {
 public:
  // "NAME SCOPE [SCOPE...]" lines; NAME is a tool name or an MCP method
  // (anything with a '/').  Returns nullopt with a message on a bad line.
  static std::optional<ToolPolicy> parse(std::string_view lines, std::string* error);

  bool empty() const { return rules_.empty(); }
  // Every scope the call needs: its method's rule plus, for tools/call,
  // its tool's rule.  Empty when nothing is required.
  std::vector<std::string> required(const McpCall& call) const;
  // The tools the rules name (not the methods).
  std::vector<std::string> tool_names() const;

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> rules_;
};

// An RFC 6749 §3.3 scope-token.
bool valid_scope_token(std::string_view s);

// The scopes from `needed` that `granted` (space-separated) lacks.
std::vector<std::string> missing_scopes(const std::vector<std::string>& needed,
                                        std::string_view granted);

}  // namespace mcpauth
