// JWKS documents from the provider's jwks_uri: parse_jwks and
// jwk_allows_alg on every key it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "jwks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string err;
  auto keys = mcpauth::parse_jwks(json, &err);
  if (keys) {
    if (keys->size() > mcpauth::kJwksMaxKeys) __builtin_trap();
    for (const auto& k : *keys)
      for (const char* alg : {"RS256", "ES256", "PS256", "HS256", "none", ""}) (void)mcpauth::jwk_allows_alg(k, alg);
  }
  return 0;
}
