// The guard's look into JSON-RPC bodies (peek_jsonrpc) and the scope check
// that follows it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tool_policy.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ToolPolicy policy = [] {
    std::string err;
    auto p = ToolPolicy::parse("tools/call mcp:tools\nsave_snippet mcp:write mcp:read\n", &err);
    if (!p) {
      std::fprintf(stderr, "fuzz: policy: %s\n", err.c_str());
      std::abort();
    }
    return *p;
  }();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto calls = peek_jsonrpc(body))
    for (const auto& c : *calls) (void)missing_scopes(policy.required(c), "mcp:tools");
  return 0;
}
