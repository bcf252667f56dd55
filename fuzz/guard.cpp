// The guard in front of /mcp: Authorization header handling, query-string
// token refusal, sealed access-token opening, the session lookup, the
// JSON-RPC peek for per-tool scopes and the Mcp-Method / Mcp-Name headers
// (guard_check with a MemoryStore).
//
// Input: a flag byte, then NUL-separated authorization, args, body,
// Mcp-Method, Mcp-Name, origin.  Flag bits: 0 seals the authorization part
// as an access token's plaintext first ("Bearer <sealed>"); 1 GET instead
// of POST; 2 the body was read; 3 Mcp-Method sent; 4 Mcp-Name sent; 5 one
// of them sent twice; 6 ignores the authorization part and sends a valid
// token of the session (scope mcp:tools), so inputs reach the tool rules;
// 7 adds a claim rule the session cannot meet (hello_mcp needs a group).
//
// Property (aborts when broken): an allowed POST runs, as the tool server
// reads its body (cJSON, tool-server/jsonrpc.cpp), only calls within the
// scope the guard granted, whatever the headers say, and never a tool whose
// claim rule the session fails; and a present Mcp-Method names the body's
// method.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "crypto.hpp"
#include "fuzz_common.hpp"
#include "claims.hpp"
#include "guard.hpp"
#include "json.hpp"
#include "jsonrpc.hpp"
#include "session.hpp"

using namespace mcpauth;

namespace {
constexpr int64_t kNow = 1'800'000'000;

const GuardSettings& settings() {
  static const GuardSettings gs = [] {
    GuardSettings g;
    g.identity_key_file = fuzzutil::temp_file("identity.key", std::string(64, 'a') + "\n");
    g.tool_scopes = "tools/call mcp:tools\nsave_snippet mcp:write\n";
    std::string e = g.load();
    if (e.empty()) e = g.check_use();
    if (!e.empty()) {
      std::fprintf(stderr, "fuzz: guard settings: %s\n", e.c_str());
      std::abort();
    }
    return g;
  }();
  return gs;
}

// The shared configuration plus a tool rule on a claim the session lacks.
const Config& claims_config() {
  static const Config c = [] {
    Config x = fuzzutil::config();
    x.claim_rules = "tool\thello_mcp\tgroups\teditors\n";
    std::string e = x.load();
    if (!e.empty()) {
      std::fprintf(stderr, "fuzz: claim rules: %s\n", e.c_str());
      std::abort();
    }
    return x;
  }();
  return c;
}

// The calls the tool server would run for this body, as it reads them.
std::vector<McpCall> tool_server_calls(const std::string& body) {
  std::vector<McpCall> out;
  toolserver::jsonrpc::Error err;
  JsonPtr doc = toolserver::jsonrpc::parse(body, err);
  if (!doc) return out;
  auto one = [&](const cJSON* msg) {
    McpCall call;
    const cJSON* method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    if (!cJSON_IsString(method)) return;
    call.method = method->valuestring;
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (cJSON_IsObject(params))
      if (const char* name = json_get_string(params, "name")) call.name = name;
    out.push_back(std::move(call));
  };
  if (cJSON_IsObject(doc.get())) one(doc.get());
  if (cJSON_IsArray(doc.get())) {
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc.get()) {
      if (cJSON_IsObject(item)) one(item);
    }
  }
  return out;
}

[[noreturn]] void finding(const char* what, const std::string& body) {
  std::fprintf(stderr, "guard: %s\nbody (%zu bytes): %.*s\n", what, body.size(),
               static_cast<int>(body.size() > 2000 ? 2000 : body.size()), body.data());
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Config& cf = (data[0] & 128) ? claims_config() : fuzzutil::config();
  const GuardSettings& gs = settings();
  // one per input: a cache that grew across inputs would look like a leak
  // to libFuzzer (every run would pay a LeakSanitizer scan)
  IdentityCache cache;
  auto parts = fuzzutil::split(data + 1, size - 1, 6);

  MemoryStore store;
  store.now = kNow;
  Session s;
  s.sid = "sid-1";
  s.sub = "user-42";
  s.client_id = "client-1";
  s.scope = "mcp:tools";
  s.resource = "https://mcp.example/mcp";
  s.created = kNow - 10;
  s.expires = kNow + 3600;
  store.put("session:sid-1", encode_session(s), s.expires);

  GuardInput in;
  in.method = (data[0] & 2) ? "GET" : "POST";
  std::string sealed;  // GuardInput holds views: the text lives here
  if (data[0] & 64) {
    AccessClaims a;
    a.sid = "sid-1";
    a.client_id = "client-1";
    a.resource = "https://mcp.example/mcp";
    a.exp = kNow + 600;
    sealed = "Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a));
  } else if (data[0] & 1) {
    sealed = "Bearer " + cf.keys->seal(seal_purpose::access_token, parts[0]);
  }
  in.authorization = sealed.empty() ? std::string_view(parts[0]) : std::string_view(sealed);
  in.args = parts[1];
  in.body = parts[2];
  in.body_read = (data[0] & 4) != 0;
  in.mirror.has_method = (data[0] & 8) != 0;
  in.mirror.has_name = (data[0] & 16) != 0;
  in.mirror.repeated = (data[0] & 32) != 0;
  in.mirror.method = parts[3];
  in.mirror.name = parts[4];
  in.origin = parts[5];
  in.now = kNow;
  GuardOutcome out = guard_check(cf, gs, cache, store, in);
  if (out.verdict == GuardOutcome::allow) {
    (void)session_alive(store, out.session_key, kNow);
    if (in.method == "POST") {
      const std::string body(parts[2]);
      const auto calls = tool_server_calls(body);
      for (const auto& call : calls)
        if (!missing_scopes(gs.policy.required(call), out.scope).empty())
          finding("allowed a call outside the granted scope", body);
      for (const auto& call : calls)
        if (call.method == "tools/call" && !cf.access.may_call(call.name, ClaimSet()))
          finding("allowed a tool whose claim rule the session fails", body);
      if (in.mirror.has_method && (calls.size() != 1 || calls.front().method != in.mirror.method))
        finding("allowed an Mcp-Method header that does not name the body's method", body);
    }
  }
  return 0;
}
