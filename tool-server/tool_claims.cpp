#include "tool_claims.hpp"

#include <cstring>

namespace toolserver {

bool ToolClaims::add(std::string_view flag, std::string& error) {
    const std::string shown = "--tool-claim " + std::string(flag);
    // a tab or a line break would end a field or a rule early
    for (unsigned char c : flag) {
        if (c < 0x20 || c == 0x7f) {
            error = shown + ": has a control character";
            return false;
        }
    }
    // MCP tool names have no ':' and claim names (rarely) '=': the first of
    // each ends the name and the path, so that a path may be a URL
    // ("https://example.com/roles") and a value may hold '='.
    const size_t colon = flag.find(':');
    const size_t eq = colon == std::string_view::npos ? colon : flag.find('=', colon + 1);
    if (eq == std::string_view::npos) {
        error = shown + ": expected NAME:PATH=VALUE[,VALUE...]";
        return false;
    }
    // "NAME:PATH=A,B" is the mcp_auth_tool_claim rule "NAME PATH A B"
    std::string line = "tool\t" + std::string(flag.substr(0, colon)) + "\t" +
                       std::string(flag.substr(colon + 1, eq - colon - 1));
    std::string_view rest = flag.substr(eq + 1);
    for (;;) {
        const size_t comma = rest.find(',');
        line.append("\t").append(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    std::string why;
    auto rules = mcpauth::AccessRules::parse(lines_ + line + "\n", &why);
    if (!rules) {
        // the core names the nginx directive; here the flag is already shown
        const std::string directive = "mcp_auth_tool_claim: ";
        if (why.compare(0, directive.size(), directive) == 0) why.erase(0, directive.size());
        error = shown + ": " + why;
        return false;
    }
    lines_ += line + "\n";
    rules_ = std::move(*rules);
    return true;
}

std::optional<jsonrpc::Error> ToolClaims::check_message(const cJSON* msg, const mcpauth::ClaimSet& claims) const {
    const char* method = json_get_string(msg, "method");
    if (!method || std::strcmp(method, "tools/call") != 0) return std::nullopt;
    const char* tool = json_get_string(cJSON_GetObjectItemCaseSensitive(msg, "params"), "name");
    if (!tool) return std::nullopt;  // runs nothing: tools/call answers Invalid params
    const mcpauth::ClaimCondition* failed = nullptr;
    if (rules_.may_call(tool, claims, &failed)) return std::nullopt;
    return jsonrpc::Error{jsonrpc::kUnauthorized, std::string("Forbidden: ") + tool + " requires " +
                                                      failed->describe() +
                                                      ", which the identity assertion's claims do not show"};
}

std::optional<jsonrpc::Error> ToolClaims::check(const cJSON* doc, const mcpauth::ClaimSet& claims) const {
    if (empty()) return std::nullopt;
    if (!cJSON_IsArray(doc)) return check_message(doc, claims);
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) {
        if (auto err = check_message(item, claims)) return err;
    }
    return std::nullopt;
}

}  // namespace toolserver
