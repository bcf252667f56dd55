// The admin API: handle_endpoint(MCPA_EP_ADMIN, ...) with the right key, a
// fuzzed method, path and query, over a store whose session lists hold
// fuzzed bytes (a list is read back from the store, which Redis's operator
// can write).  Every answer must be JSON with a known status, and a
// listing never carries a session's tokens.
//
// Input: NUL-separated method selector, path, query, and the bytes stored
// as the user's and a client's session lists.
#include <cstddef>
#include <cstdint>
#include <string>

#include "endpoints.hpp"
#include "fuzz_common.hpp"
#include "session_index.hpp"

using namespace mcpauth;

namespace {
constexpr int64_t kNow = 1'800'000'000;
const char* kKey = "fuzz-admin-key-0123456789abcdef0123456789";

const Config& admin_config() {
  static const Config cf = [] {
    Config c = fuzzutil::config();
    c.admin_key_file = fuzzutil::temp_file("admin.key", std::string(kKey) + "\n");
    if (!c.load().empty()) std::abort();
    return c;
  }();
  return cf;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzzutil::split(data, size, 4);
  const Config& cf = admin_config();
  MemoryStore store;
  store.now = kNow;
  Session s;
  s.sid = "sid-1";
  s.sub = "user-42";
  s.client_id = "client-1";
  s.scope = "mcp:tools";
  s.provider_access_token = "PROVIDER-SECRET";
  s.created = kNow - 10;
  s.expires = kNow + 3600;
  std::vector<std::string> ended;
  index_new_session(store, s, kNow, &ended);
  store.put("session:sid-1", encode_session(s), s.expires);
  if (!parts[3].empty()) {
    store.put(subject_index_key("user-42"), parts[3], kNow + 3600);
    store.put(client_index_key("client-1", "sid-1"), parts[3], kNow + 3600);
  }

  static const char* kMethods[] = {"GET", "DELETE", "POST", "PUT"};
  Request req;
  req.method = kMethods[parts[0].empty() ? 0 : static_cast<unsigned char>(parts[0][0]) % 4];
  req.uri = "/_mcp_auth/admin/" + parts[1];
  req.args = parts[2];
  req.authorization = std::string("Bearer ") + kKey;
  req.now = kNow;
  Response r = handle_endpoint(MCPA_EP_ADMIN, cf, store, req);
  switch (r.status) {
    case 200: case 400: case 401: case 404: case 405: case 500: case 503: break;
    default: __builtin_trap();
  }
  if (r.status != 401 && r.body.find('{') != 0) __builtin_trap();
  // the session's provider token never shows (unless the request itself
  // carried those bytes, which an answer may echo, e.g. as a client id)
  if (r.body.find("PROVIDER-SECRET") != std::string::npos &&
      (req.uri + req.args).find("PROVIDER-SECRET") == std::string::npos)
    __builtin_trap();
  return 0;
}
