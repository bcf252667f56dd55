// Per-tool claim rules, enforced here as well as at the gateway (defence in
// depth): a tools/call runs only when the identity assertion's "claims"
// member satisfies every rule that names its tool. The rules are the
// gateway's mcp_auth_tool_claim rules, given as
// --tool-claim NAME:PATH=VALUE[,VALUE...], and are applied by the gateway's
// own AccessRules (src/claims.hpp): the claim at PATH must hold one of the
// values; the rules for one tool all must hold.
#pragma once

#include "json.hpp"
#include "jsonrpc.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "../src/claims.hpp"

namespace toolserver {

class ToolClaims {
public:
    // Adds the rule of one --tool-claim value. False, with `error` saying
    // what is wrong, when it is malformed.
    bool add(std::string_view flag, std::string& error);
    bool empty() const { return !rules_.has_tool_rules(); }

    // Whether a user with `claims` may call `tool`.
    bool may_call(std::string_view tool, const mcpauth::ClaimSet& claims) const {
        return rules_.may_call(tool, claims);
    }

    // nullopt when `claims` let every tools/call in `doc` (one message or a
    // batch: one refused call refuses the whole body) run; else the error to
    // answer with (HTTP 403), naming the condition that failed.
    std::optional<jsonrpc::Error> check(const cJSON* doc, const mcpauth::ClaimSet& claims) const;

private:
    std::optional<jsonrpc::Error> check_message(const cJSON* msg, const mcpauth::ClaimSet& claims) const;

    std::string lines_;            // the rules so far, as AccessRules lines
    mcpauth::AccessRules rules_;   // parsed from lines_
};

}  // namespace toolserver
