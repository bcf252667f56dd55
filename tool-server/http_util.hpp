// Small HTTP helpers shared by the server glue and the transports.
#pragma once

#include "json.hpp"

#include <cctype>
#include <cstring>
#include <string>

// A single error response with a null id: the request could not be read
// well enough to be answered in-band, so it becomes an HTTP 400.
inline bool is_unanswerable_error(const cJSON* resp) {
    return cJSON_IsObject(resp) && cJSON_HasObjectItem(resp, "error") &&
           cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(resp, "id"));
}

// ASCII lower-case copy; header values and media types compare case-insensitively.
inline std::string ascii_lower(const char* s) {
    std::string out = s ? s : "";
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}
