// The guard's look into JSON-RPC bodies (peek_jsonrpc), differentially
// against the tool server's own reading of the same bytes
// (tool-server/jsonrpc.cpp's jsonrpc::parse, i.e. cJSON, then the
// cJSON_GetObjectItemCaseSensitive / json_get_string lookups of
// jsonrpc::classify and tools.cpp), then the scope check that follows it.
// params.name and params.uri are what Mcp-Name is held to.
//
// Aborts (a finding) when
//   - peek_jsonrpc reads a body the tool server refuses (it must be the
//     stricter of the two), or
//   - both read it but see different calls (method, tool name, order): the
//     guard would then authorize something other than what runs, or
//   - the tool server reads a body without a repeated method/params/name
//     and peek_jsonrpc refuses even cJSON's strict re-print of it (it would
//     refuse real clients), or reads that re-print differently.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "json.hpp"
#include "jsonrpc.hpp"
#include "jsonrpc_peek.hpp"
#include "tool_policy.hpp"

using namespace mcpauth;

namespace {

// As the tool server reads one message: classify's "method" and "params",
// tools.cpp's json_get_string(params, "name").
McpCall tool_server_call(const cJSON* msg) {
  McpCall call;
  const cJSON* method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  if (cJSON_IsString(method)) {
    call.method = method->valuestring;
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (cJSON_IsObject(params)) {
      if (const char* name = json_get_string(params, "name")) call.name = name;
      if (const char* uri = json_get_string(params, "uri")) call.uri = uri;
    }
  }
  return call;
}

// One call per object, as mcp::Server::handle_body walks a batch.
std::vector<McpCall> tool_server_calls(const cJSON* doc) {
  std::vector<McpCall> out;
  if (cJSON_IsObject(doc)) out.push_back(tool_server_call(doc));
  if (cJSON_IsArray(doc)) {
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) {
      if (cJSON_IsObject(item)) out.push_back(tool_server_call(item));
    }
  }
  return out;
}

int count_key(const cJSON* obj, const char* key) {
  int n = 0;
  for (const cJSON* c = obj->child; c; c = c->next)
    if (c->string && std::strcmp(c->string, key) == 0) ++n;
  return n;
}

bool message_repeats(const cJSON* msg) {
  if (!cJSON_IsObject(msg)) return false;
  if (count_key(msg, "method") > 1 || count_key(msg, "params") > 1) return true;
  const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
  return cJSON_IsObject(params) && (count_key(params, "name") > 1 || count_key(params, "uri") > 1);
}

bool repeats(const cJSON* doc) {
  if (!cJSON_IsArray(doc)) return message_repeats(doc);
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, doc) {
    if (message_repeats(item)) return true;
  }
  return false;
}

int depth_of(const cJSON* j) {
  int d = 0;
  for (const cJSON* c = j->child; c; c = c->next) {
    int cd = depth_of(c);
    if (cd > d) d = cd;
  }
  return (cJSON_IsArray(j) || cJSON_IsObject(j)) ? d + 1 : 0;
}

bool same(const std::vector<McpCall>& a, const std::vector<McpCall>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].method != b[i].method || a[i].name != b[i].name || a[i].uri != b[i].uri) return false;
  return true;
}

[[noreturn]] void finding(const char* what, const std::string& body) {
  std::fprintf(stderr, "peek_jsonrpc: %s\nbody (%zu bytes): %.*s\n", what, body.size(),
               static_cast<int>(body.size() > 2000 ? 2000 : body.size()), body.data());
  std::abort();
}

}  // namespace

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
  std::string body(reinterpret_cast<const char*>(data), size);
  auto peeked = peek_jsonrpc(body);
  toolserver::jsonrpc::Error err;
  JsonPtr doc = toolserver::jsonrpc::parse(body, err);

  if (peeked) {
    if (!doc) finding("read a body the tool server refuses", body);
    if (!same(*peeked, tool_server_calls(doc.get()))) finding("sees other calls than the tool server", body);
    for (const auto& c : *peeked) (void)missing_scopes(policy.required(c), "mcp:tools");
  } else if (doc && !repeats(doc.get()) && depth_of(doc.get()) <= 512) {
    std::string printed = json_print(doc.get());
    auto again = peek_jsonrpc(printed);
    if (!again) finding("refuses cJSON's strict re-print of a body the tool server reads", body);
    if (!same(*again, tool_server_calls(doc.get())))
      finding("reads cJSON's re-print differently from the tool server", body);
  }
  return 0;
}
