// Query strings, form bodies and Cookie headers: Params::parse, its
// lookups, cookie_value, and the percent / base64url decoders under them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "encoding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto p = mcpauth::Params::parse(in)) {
    std::string v;
    for (const char* name : {"client_id", "code", "state", "redirect_uri", "", "a"}) {
      (void)p->find(name, &v);
      (void)p->get(name);
      (void)p->has(name);
    }
    for (const auto& [k, val] : p->items()) (void)p->find(k, &v);
  }
  for (const char* name : {"__Host-mcp_login", "mcp_login", "a", ""}) (void)mcpauth::cookie_value(in, name);
  (void)mcpauth::pct_decode(in, true);
  (void)mcpauth::pct_decode(in, false);
  if (auto d = mcpauth::b64url_decode(in)) {
    if (mcpauth::b64url_encode(*d) != in) __builtin_trap();  // canonical round trip
  }
  (void)mcpauth::b64_decode(in);
  (void)mcpauth::html_escape(in);
  (void)mcpauth::pct_encode(in);
  return 0;
}
