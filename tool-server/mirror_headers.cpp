#include "mirror_headers.hpp"

#include <cstring>

#include "../src/mirror_headers.hpp"  // decode_mirror_value

namespace toolserver {

namespace {

jsonrpc::Error mismatch(const std::string& why) { return {jsonrpc::kHeaderMismatch, "Header mismatch: " + why}; }

// RFC 9110 field-value bytes as evhttp hands them over (it trims leading
// and trailing whitespace): visible ASCII, space and tab.
bool valid_field_value(const char* v) {
    for (const unsigned char* p = reinterpret_cast<const unsigned char*>(v); *p; ++p) {
        if (*p != '\t' && (*p < 0x20 || *p > 0x7e)) return false;
    }
    return true;
}

// The params key whose value Mcp-Name mirrors, for methods that name a target.
const char* target_key(const char* method) {
    if (std::strcmp(method, "tools/call") == 0 || std::strcmp(method, "prompts/get") == 0) return "name";
    if (std::strcmp(method, "resources/read") == 0) return "uri";
    return nullptr;
}

}  // namespace

bool decode_mcp_name(std::string_view value, std::string& out) {
    // one definition of a header value for the gateway and this server
    auto decoded = mcpauth::decode_mirror_value(value);
    if (!decoded) return false;
    out = std::move(*decoded);
    return true;
}

std::optional<jsonrpc::Error> check_mirror_headers(const MirrorHeaders& h, const cJSON* doc, bool required) {
    if (!h.method && !h.name) {
        if (required) return mismatch("Mcp-Method header is required");
        return std::nullopt;
    }
    if (h.method_count > 1) return mismatch("Mcp-Method is sent more than once");
    if (h.name_count > 1) return mismatch("Mcp-Name is sent more than once");
    if (h.method && !valid_field_value(h.method)) return mismatch("Mcp-Method contains invalid characters");
    if (h.name && !valid_field_value(h.name)) return mismatch("Mcp-Name contains invalid characters");
    if (cJSON_IsArray(doc)) return mismatch("Mcp-Method and Mcp-Name describe one message, not a batch");

    const char* body_method = json_get_string(doc, "method");
    if (!h.method) {
        if (required) return mismatch("Mcp-Method header is required");
    } else if (!body_method || std::strcmp(h.method, body_method) != 0) {
        return mismatch("Mcp-Method does not match the request's method");
    }

    const char* key = body_method ? target_key(body_method) : nullptr;
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(doc, "params");
    const char* body_name = key ? json_get_string(params, key) : nullptr;
    if (!h.name) {
        if (required && body_name) return mismatch("Mcp-Name header is required");
        return std::nullopt;
    }
    if (!key) {
        return mismatch(std::string("Mcp-Name is given but ") + (body_method ? body_method : "the request") +
                        " names no target");
    }
    std::string name;
    if (!decode_mcp_name(h.name, name)) return mismatch("Mcp-Name is not a valid base64 sentinel");
    if (!body_name || std::string_view(body_name) != name) return mismatch("Mcp-Name does not match the request");
    return std::nullopt;
}

}  // namespace toolserver
