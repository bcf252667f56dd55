// Redirect-URI and resource validation: parse_uri,
// redirect_uri_registration_error, redirect_uri_matches (first NUL-separated
// part requested, the rest registered), normalize_resource, resource_matches.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "redirect_uri.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzzutil::split(data, size, 4);
  std::string why;
  for (const auto& p : parts) {
    (void)parse_uri(p, &why);
    (void)redirect_uri_registration_error(p);
    (void)is_loopback_host(p);
    (void)normalize_resource(p);
  }
  std::vector<std::string> registered(parts.begin() + 1, parts.end());
  (void)redirect_uri_matches(parts[0], registered);
  // a URI that registration accepts must match itself
  if (!redirect_uri_registration_error(parts[0]) && !redirect_uri_matches(parts[0], {parts[0]})) __builtin_trap();
  (void)resource_matches(parts[0], parts[1]);
  (void)resource_matches(parts[0], "https://mcp.example/mcp");
  return 0;
}
