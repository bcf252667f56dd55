// The guard in front of /mcp: Authorization header handling, query-string
// token refusal, sealed access-token opening, the session lookup and the
// JSON-RPC peek for per-tool scopes (guard_check with a MemoryStore).
//
// Input: a flag byte, then NUL-separated authorization, args, body,
// Mcp-Method, Mcp-Name, origin.  With flag bit 0 the authorization part is
// sealed as an access token's plaintext first ("Bearer <sealed>").
#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto.hpp"
#include "fuzz_common.hpp"
#include "guard.hpp"
#include "session.hpp"

using namespace mcpauth;

namespace {
constexpr int64_t kNow = 1'800'000'000;

const GuardSettings& settings() {
  static const GuardSettings gs = [] {
    GuardSettings g;
    std::string err;
    g.set("identity_key_file", fuzzutil::temp_file("identity.key", std::string(64, 'a') + "\n"), &err);
    g.set("tool_scopes", "tools/call mcp:tools\nsave_snippet mcp:write\n", &err);
    std::string e = g.finish(true);
    if (!e.empty()) {
      std::fprintf(stderr, "fuzz: guard settings: %s\n", e.c_str());
      std::abort();
    }
    return g;
  }();
  return gs;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Config& cf = fuzzutil::config();
  const GuardSettings& gs = settings();
  static IdentityCache cache;
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
  if (data[0] & 1) sealed = "Bearer " + cf.keys->seal(seal_purpose::access_token, parts[0]);
  in.authorization = (data[0] & 1) ? std::string_view(sealed) : std::string_view(parts[0]);
  in.args = parts[1];
  in.body = parts[2];
  in.body_read = (data[0] & 4) != 0;
  in.mcp_method = parts[3];
  in.mcp_name = parts[4];
  in.origin = parts[5];
  in.now = kNow;
  GuardOutcome out = guard_check(cf, gs, cache, store, in);
  if (out.verdict == GuardOutcome::allow) (void)session_alive(store, out.session_key, kNow);
  return 0;
}
