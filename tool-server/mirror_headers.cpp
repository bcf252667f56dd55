#include "mirror_headers.hpp"

#include <cstring>

namespace {

constexpr std::string_view kSentinelStart = "=?base64?";
constexpr std::string_view kSentinelEnd = "?=";

jsonrpc::Error mismatch(const std::string& why) { return {jsonrpc::kHeaderMismatch, "Header mismatch: " + why}; }

// RFC 9110 field-value bytes as evhttp hands them over (it trims leading
// and trailing whitespace): visible ASCII, space and tab.
bool valid_field_value(const char* v) {
    for (const unsigned char* p = reinterpret_cast<const unsigned char*>(v); *p; ++p) {
        if (*p != '\t' && (*p < 0x20 || *p > 0x7e)) return false;
    }
    return true;
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Canonical padded standard base64 only: every byte string has exactly one
// accepted spelling, so the gateway and this server cannot read one value
// two ways.
bool decode_base64(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4 != 0) return false;
    for (size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = in[i + static_cast<size_t>(k)];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                ++pad;
                continue;
            }
            if (pad) return false;  // '=' only at the very end
            v[k] = base64_value(c);
            if (v[k] < 0) return false;
        }
        const unsigned bits = static_cast<unsigned>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        if ((pad == 2 && (bits & 0xffff)) || (pad == 1 && (bits & 0xff))) return false;  // stray bits
        out += static_cast<char>(bits >> 16);
        if (pad < 2) out += static_cast<char>((bits >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(bits & 0xff);
    }
    return true;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i <= n) return false;
        for (size_t k = 1; k <= n; ++k) {
            const unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = cp << 6 | (cc & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
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
    const bool sentinel = value.substr(0, kSentinelStart.size()) == kSentinelStart &&
                          value.size() >= kSentinelEnd.size() &&
                          value.substr(value.size() - kSentinelEnd.size()) == kSentinelEnd;
    if (!sentinel) {
        out.assign(value);
        return true;
    }
    if (value.size() < kSentinelStart.size() + kSentinelEnd.size()) return false;  // the markers overlap
    const std::string_view b64 =
        value.substr(kSentinelStart.size(), value.size() - kSentinelStart.size() - kSentinelEnd.size());
    return decode_base64(b64, out) && valid_utf8(out);
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
