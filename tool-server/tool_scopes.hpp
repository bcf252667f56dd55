// Per-tool scopes, enforced here as well as at the gateway (defence in
// depth): a call runs only when the identity assertion's "scope" claim holds
// every scope its rules name. The rules are the gateway's
// mcp_auth_tool_scope rules, given as --tool-scope NAME=SCOPE[,SCOPE...],
// and are applied by the gateway's own ToolPolicy (src/tool_policy.hpp):
// NAME is a tool name, or an MCP method when it contains '/'; a tools/call
// needs its method's rule plus its tool's rule.
#pragma once

#include "json.hpp"
#include "jsonrpc.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "../src/tool_policy.hpp"

namespace toolserver {

class ToolScopes {
public:
    // Adds the rule of one --tool-scope value. False, with `error` saying
    // what is wrong, when it is malformed. Rules for one NAME add up.
    bool add(std::string_view flag, std::string& error);
    bool empty() const { return policy_.empty(); }

    // nullopt when `granted` (the space-separated scope claim) covers every
    // call in `doc` (one message or a batch: any element that lacks a scope
    // refuses the whole body); else the error to answer with (HTTP 403).
    std::optional<jsonrpc::Error> check(const cJSON* doc, std::string_view granted) const;
    // Whether `granted` holds every scope a tools/call of `tool` needs.
    bool may_call(std::string_view tool, std::string_view granted) const;

private:
    std::optional<jsonrpc::Error> check_message(const cJSON* msg, std::string_view granted) const;

    std::string lines_;            // the rules so far, as mcp_auth_tool_scope lines
    mcpauth::ToolPolicy policy_;   // parsed from lines_
};

}  // namespace toolserver
