// POST /token: handle_endpoint(MCPA_EP_TOKEN, ...) with a MemoryStore that
// holds a public client, a confidential client, a code grant and
// a live session, so fuzzed form bodies reach the grant handlers.
//
// Input: a flag byte, then NUL-separated body, Authorization, and a value
// that (flag bit 0) is sealed as a refresh token's plaintext and appended
// to the body as refresh_token=...
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "fuzz_common.hpp"
#include "pkce.hpp"
#include "registration.hpp"
#include "session.hpp"

using namespace mcpauth;

namespace {
constexpr int64_t kNow = 1'800'000'000;

void seed(const Config& cf, MemoryStore& store) {
  store.now = kNow;
  // a public and a confidential client ("client-2", secret "secret")
  ClientMetadata pub;
  pub.client_id = "client-1";
  pub.client_name = "Pub";
  pub.redirect_uris = {"https://client.example/cb"};
  pub.grant_types = {"authorization_code", "refresh_token"};
  pub.response_types = {"code"};
  pub.token_endpoint_auth_method = "none";
  pub.scope = "mcp:tools mcp:read";
  pub.client_id_issued_at = kNow - 100;
  ClientMetadata conf = pub;
  conf.client_id = "client-2";
  conf.token_endpoint_auth_method = "client_secret_basic";
  conf.client_secret_hash = sha256_b64url("secret");
  for (const auto& c : {pub, conf}) store.put("client:" + c.client_id, serialize_client(c), kNow + 86400);
  (void)cf;
  Session s;
  s.sid = "sid-1";
  s.sub = "user-42";
  s.client_id = "client-1";
  s.scope = "mcp:tools";
  s.created = kNow - 10;
  s.expires = kNow + 3600;
  store.put("session:sid-1", encode_session(s), s.expires);
  CodeGrant c;
  c.sid = "sid-1";
  c.client_id = "client-1";
  c.redirect_uri = "https://client.example/cb";
  c.redirect_uri_sent = true;
  c.code_challenge = s256_challenge("dBjftJeZ4CVP-mJ92K9ZfXZ1-0jvZ3tN2vZ9Qe0m0aQx");
  c.scope = "mcp:tools";
  c.session_expires = s.expires;
  store.put("code:" + sha256_b64url("code-1"), encode_code(c), kNow + 60);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Config& cf = fuzzutil::config();
  auto parts = fuzzutil::split(data + 1, size - 1, 3);
  MemoryStore store;
  seed(cf, store);

  Request r;
  r.method = (data[0] & 2) ? "GET" : "POST";
  r.body = parts[0];
  if (data[0] & 1)
    r.body += "&refresh_token=" + pct_encode(cf.keys->seal(seal_purpose::refresh_token, parts[2]));
  r.authorization = parts[1];
  r.content_type = (data[0] & 4) ? "application/json" : "application/x-www-form-urlencoded";
  r.now = kNow;
  Response resp = handle_endpoint(MCPA_EP_TOKEN, cf, store, r);
  if (resp.status < 100 || resp.status > 599) __builtin_trap();
  return 0;
}
