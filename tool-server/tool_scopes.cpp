#include "tool_scopes.hpp"

#include <algorithm>
#include <cstring>

namespace {

// RFC 6749 section 3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
bool valid_scope(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) return false;
    }
    return true;
}

// Tool and method names: visible ASCII.
bool valid_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

void add_unique(std::vector<std::string>& out, const std::vector<std::string>& more) {
    for (const auto& s : more) {
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
}

// The words of a scope claim hold `scope` (split as the gateway splits).
bool granted_has(std::string_view granted, std::string_view scope) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
    for (size_t i = 0; i < granted.size();) {
        while (i < granted.size() && space(granted[i])) ++i;
        const size_t start = i;
        while (i < granted.size() && !space(granted[i])) ++i;
        if (granted.substr(start, i - start) == scope) return true;
    }
    return false;
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
    std::vector<std::string> scopes;
    std::string_view rest = flag.substr(eq + 1);
    for (;;) {
        const size_t comma = rest.find(',');
        const std::string_view scope = rest.substr(0, comma);
        if (!valid_scope(scope)) {
            error = shown + ": \"" + std::string(scope) + "\" is not a valid scope (RFC 6749 scope-token)";
            return false;
        }
        scopes.emplace_back(scope);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    add_unique(rules_[std::string(name)], scopes);
    return true;
}

std::vector<std::string> ToolScopes::required(const cJSON* msg) const {
    std::vector<std::string> out;
    const char* method = json_get_string(msg, "method");
    if (!method) return out;  // not a call: nothing runs
    auto m = rules_.find(std::string_view(method));
    if (m != rules_.end()) add_unique(out, m->second);
    if (std::strcmp(method, "tools/call") == 0) {
        const char* tool = json_get_string(cJSON_GetObjectItemCaseSensitive(msg, "params"), "name");
        // a tool name never contains '/', so it cannot borrow a method's rule
        if (tool && !std::strchr(tool, '/')) {
            auto t = rules_.find(std::string_view(tool));
            if (t != rules_.end()) add_unique(out, t->second);
        }
    }
    return out;
}

std::optional<jsonrpc::Error> ToolScopes::check_message(const cJSON* msg, std::string_view granted) const {
    std::string missing;
    for (const std::string& scope : required(msg)) {
        if (granted_has(granted, scope)) continue;
        if (!missing.empty()) missing += ' ';
        missing += scope;
    }
    if (missing.empty()) return std::nullopt;
    const char* method = json_get_string(msg, "method");  // not null: required() found rules for it
    const char* tool = std::strcmp(method, "tools/call") == 0
                           ? json_get_string(cJSON_GetObjectItemCaseSensitive(msg, "params"), "name")
                           : nullptr;
    const std::string what = tool ? std::string("tool \"") + tool + "\"" : std::string("method \"") + method + "\"";
    const bool several = missing.find(' ') != std::string::npos;
    return jsonrpc::Error{jsonrpc::kUnauthorized, "Forbidden: " + what + " needs scope" + (several ? "s " : " ") +
                                                      missing + ", which the identity assertion does not grant"};
}

std::optional<jsonrpc::Error> ToolScopes::check(const cJSON* doc, std::string_view granted) const {
    if (rules_.empty()) return std::nullopt;
    if (!cJSON_IsArray(doc)) return check_message(doc, granted);
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) {
        if (auto err = check_message(item, granted)) return err;
    }
    return std::nullopt;
}
