// Small HTTP helpers shared by the server glue and the transports.
#pragma once

#include "json.hpp"
#include "jsonrpc.hpp"

#include <cctype>
#include <cstring>
#include <string>

namespace toolserver {

// A single error response with a null id: the request could not be read
// well enough to be answered in-band, so it becomes an HTTP 400.
inline bool is_unanswerable_error(const cJSON* resp) {
    return cJSON_IsObject(resp) && cJSON_HasObjectItem(resp, "error") &&
           cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(resp, "id"));
}

// The message's id when an error can echo it (a single message with a
// usable id); else null.
inline const cJSON* usable_id(const cJSON* doc) {
    jsonrpc::Message m;
    jsonrpc::classify(doc, m);
    return m.id;
}

// `haystack` contains the lower-case `needle`, ignoring ASCII case (false
// for a null haystack).
inline bool ascii_icontains(const char* haystack, const char* needle) {
    if (!haystack) return false;
    const size_t n = std::strlen(needle);
    for (const char* h = haystack; *h; ++h) {
        size_t i = 0;
        while (i < n && h[i] && static_cast<char>(std::tolower(static_cast<unsigned char>(h[i]))) == needle[i]) ++i;
        if (i == n) return true;
    }
    return n == 0;
}

// ASCII lower-case copy; header values and media types compare case-insensitively.
inline std::string ascii_lower(const char* s) {
    std::string out = s ? s : "";
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace toolserver
