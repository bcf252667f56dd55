#include "tool_scopes.hpp"

#include <cstring>

namespace toolserver {

namespace {

// Tool and method names: visible ASCII.
bool valid_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

}  // namespace

bool ToolScopes::add(std::string_view flag, std::string& error) {
    const std::string shown = "--tool-scope " + std::string(flag);
    const size_t eq = flag.find('=');
    if (eq == std::string_view::npos) {
        error = shown + ": expected NAME=SCOPE[,SCOPE...]";
        return false;
    }
    const std::string_view name = flag.substr(0, eq);
    if (!valid_name(name)) {
        error = shown + ": \"" + std::string(name) + "\" is not a tool or method name";
        return false;
    }
    // "NAME=A,B" is the mcp_auth_tool_scope line "NAME A B"
    std::string line(name);
    std::string_view rest = flag.substr(eq + 1);
    for (;;) {
        const size_t comma = rest.find(',');
        const std::string_view scope = rest.substr(0, comma);
        if (!mcpauth::valid_scope_token(scope)) {
            error = shown + ": \"" + std::string(scope) + "\" is not a valid scope (RFC 6749 scope-token)";
            return false;
        }
        line.append(" ").append(scope);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    std::string why;
    auto policy = mcpauth::ToolPolicy::parse(lines_ + line + "\n", &why);
    if (!policy) {
        error = shown + ": " + why;
        return false;
    }
    lines_ += line + "\n";
    policy_ = std::move(*policy);
    return true;
}

std::optional<jsonrpc::Error> ToolScopes::check_message(const cJSON* msg, std::string_view granted) const {
    const char* method = json_get_string(msg, "method");
    if (!method) return std::nullopt;  // not a call: nothing runs
    mcpauth::McpCall call;
    call.method = method;
    const char* tool = std::strcmp(method, "tools/call") == 0
                           ? json_get_string(cJSON_GetObjectItemCaseSensitive(msg, "params"), "name")
                           : nullptr;
    if (tool) call.name = tool;
    const auto missing = mcpauth::missing_scopes(policy_.required(call), granted);
    if (missing.empty()) return std::nullopt;
    std::string list;
    for (const auto& scope : missing) list += (list.empty() ? "" : " ") + scope;
    const std::string what = tool ? std::string("tool \"") + tool + "\"" : std::string("method \"") + method + "\"";
    return jsonrpc::Error{jsonrpc::kUnauthorized, "Forbidden: " + what + " needs scope" +
                                                      (missing.size() > 1 ? "s " : " ") + list +
                                                      ", which the identity assertion does not grant"};
}

bool ToolScopes::may_call(std::string_view tool, std::string_view granted) const {
    if (policy_.empty()) return true;
    mcpauth::McpCall call;
    call.method = "tools/call";
    call.name = tool;
    return mcpauth::missing_scopes(policy_.required(call), granted).empty();
}

std::optional<jsonrpc::Error> ToolScopes::check(const cJSON* doc, std::string_view granted) const {
    if (policy_.empty()) return std::nullopt;
    if (!cJSON_IsArray(doc)) return check_message(doc, granted);
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) {
        if (auto err = check_message(item, granted)) return err;
    }
    return std::nullopt;
}

}  // namespace toolserver
