// The tool server's helpers around cJSON (its owner type is the core's
// mcpauth::Json), and the printer every response goes through.
#pragma once

#include <cjson/cJSON.h>

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

#include "../src/json.hpp"  // mcpauth::Json, the owner of a cJSON tree

using JsonPtr = mcpauth::Json;

namespace json_detail {

// Bytes cJSON copies as they are: everything from 0x20 up but '"' and '\\'
// (UTF-8 included). NUL ends the string.
struct PlainBytes {
    bool plain[256] = {};
    constexpr PlainBytes() {
        for (int c = 0x20; c < 256; ++c) plain[c] = c != '"' && c != '\\';
    }
};
inline constexpr PlainBytes kPlainBytes{};

// A string as cJSON prints it: '"', '\\' and the control characters
// \b \f \n \r \t escaped by letter, other bytes below 0x20 as \u00xx,
// everything else as is. A null string prints as "".
inline void append_string(std::string& out, const char* s) {
    out += '"';
    if (s) {
        const char* run = s;
        for (;;) {
            const char* p = run;
            while (kPlainBytes.plain[static_cast<unsigned char>(*p)]) ++p;
            out.append(run, static_cast<size_t>(p - run));
            const unsigned char c = static_cast<unsigned char>(*p);
            if (c == 0) break;
            char esc[6] = {'\\', 0, 0, 0, 0, 0};
            size_t n = 2;
            switch (c) {
                case '"': esc[1] = '"'; break;
                case '\\': esc[1] = '\\'; break;
                case '\b': esc[1] = 'b'; break;
                case '\f': esc[1] = 'f'; break;
                case '\n': esc[1] = 'n'; break;
                case '\r': esc[1] = 'r'; break;
                case '\t': esc[1] = 't'; break;
                default:
                    esc[1] = 'u';
                    esc[2] = '0';
                    esc[3] = '0';
                    esc[4] = "0123456789abcdef"[c >> 4];
                    esc[5] = "0123456789abcdef"[c & 15];
                    n = 6;
                    break;
            }
            out.append(esc, n);
            run = p + 1;
        }
    }
    out += '"';
}

// cJSON prints a number with "%1.15g" (or "%1.17g" when that does not read
// back). For an integer of at most 15 digits that is its decimal digits,
// written here without printf; anything else (fractions, larger magnitudes,
// -0, NaN and infinities) is left to cJSON itself.
inline bool append_number(std::string& out, const cJSON* item) {
    const double d = item->valuedouble;
    if (std::fabs(d) < 1e15 && d == std::floor(d) && !(d == 0 && std::signbit(d))) {
        const long long v = static_cast<long long>(d);
        unsigned long long u = v < 0 ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
        char buf[24];
        char* end = buf + sizeof buf;
        char* b = end;
        do {
            *--b = static_cast<char>('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0) *--b = '-';
        out.append(b, static_cast<size_t>(end - b));
        return true;
    }
    char* s = cJSON_PrintUnformatted(item);  // prints this item only, not its siblings
    if (!s) return false;
    out += s;
    cJSON_free(s);
    return true;
}

// cJSON's print_value (unformatted), appending to `out`; false exactly where
// cJSON's printer fails (an item of no valid type, a raw item without text).
inline bool append_value(std::string& out, const cJSON* item) {
    if (!item) return false;
    switch (item->type & 0xFF) {
        case cJSON_NULL: out += "null"; return true;
        case cJSON_False: out += "false"; return true;
        case cJSON_True: out += "true"; return true;
        case cJSON_Number: return append_number(out, item);
        case cJSON_Raw:
            if (!item->valuestring) return false;
            out += item->valuestring;
            return true;
        case cJSON_String: append_string(out, item->valuestring); return true;
        case cJSON_Array:
            out += '[';
            for (const cJSON* c = item->child; c; c = c->next) {
                if (!append_value(out, c)) return false;
                if (c->next) out += ',';
            }
            out += ']';
            return true;
        case cJSON_Object:
            out += '{';
            for (const cJSON* c = item->child; c; c = c->next) {
                append_string(out, c->string);
                out += ':';
                if (!append_value(out, c)) return false;
                if (c->next) out += ',';
            }
            out += '}';
            return true;
        default: return false;
    }
}

}  // namespace json_detail

// Appends `j` printed exactly as cJSON_PrintUnformatted prints it, without
// its allocations and printf calls: cJSON's own printer (or
// cJSON_PrintPreallocated) costs every response noticeably more
// (bench/results.md, "What each optimisation saves"). On failure returns
// false and restores `out`.
inline bool json_append(std::string& out, const cJSON* j) {
    const size_t start = out.size();
    if (json_detail::append_value(out, j)) return true;
    out.resize(start);
    return false;
}

// `j` as cJSON_PrintUnformatted prints it; "null" where cJSON would fail.
inline std::string json_print(const cJSON* j) {
    std::string out;
    if (!json_append(out, j)) return "null";
    return out;
}

// The string member `key` of `obj`, or nullptr when absent or not a string.
inline const char* json_get_string(const cJSON* obj, const char* key) {
    const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : nullptr;
}

// Adds `item` to `obj` taking ownership.
inline void json_add(cJSON* obj, const char* key, JsonPtr item) {
    cJSON_AddItemToObject(obj, key, item.release());
}

// The same for a key that is a string literal: cJSON keeps the pointer
// instead of a copy (one allocation less per member of a response).
inline void json_add_literal_key(cJSON* obj, const char* literal_key, cJSON* item) {
    cJSON_AddItemToObjectCS(obj, literal_key, item);
}
