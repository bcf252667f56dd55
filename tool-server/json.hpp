// Small RAII helpers around cJSON.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>

struct CJsonDeleter {
    void operator()(cJSON* p) const noexcept { cJSON_Delete(p); }
};
using JsonPtr = std::unique_ptr<cJSON, CJsonDeleter>;

inline std::string json_print(const cJSON* j) {
    char* s = cJSON_PrintUnformatted(j);
    std::string out = s ? s : "null";
    cJSON_free(s);
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
