// Small helpers over cJSON shared by the files that build or read JSON:
// owning pointers, and allocation failures turned into std::bad_alloc
// (cJSON returns NULL only when an allocation failed).
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <new>
#include <string>

namespace mcpauth {

struct JsonDelete {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDelete>;

struct JsonTextDelete {
  void operator()(char* p) const { cJSON_free(p); }
};

template <typename T>
T* must(T* p) {
  if (!p) throw std::bad_alloc();
  return p;
}

// Compact text of a JSON value.
inline std::string json_text(const cJSON* j) {
  std::unique_ptr<char, JsonTextDelete> text(must(cJSON_PrintUnformatted(j)));
  return std::string(text.get());
}

}  // namespace mcpauth
