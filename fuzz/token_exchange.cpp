// POST /token with grant_type token-exchange (token_exchange.cpp), and the
// provider's answer to the exchange it asks for: a configured backend, two
// audiences, a live session and the identity key, so that fuzzed forms,
// assertions and provider answers reach every check.
//
// Input: a flag byte, then NUL-separated extra form fields, the subject
// token (flag bit 0: minted with the right key from this part's "sub|sid"
// instead), the Authorization header (flag bit 1: the backend's own), and
// the provider's answer body (status from the flag's high bits).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "fuzz_common.hpp"
#include "identity_assertion.hpp"
#include "session.hpp"

using namespace mcpauth;

namespace {
constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret(40, 's');

struct Setup {
  Config cf;
  std::optional<IdentityMinter> minter;
};

const Setup& setup() {
  static const Setup s = [] {
    Setup out;
    out.cf = fuzzutil::config();
    out.cf.exchange_audience_lines =
        "api\tmethod=token_exchange\tscope=read write\n"
        "graph\tmethod=on_behalf_of\tscope=https://graph.microsoft.com/User.Read\n";
    out.cf.exchange_client_lines = "backend\tsecret_file=" + fuzzutil::temp_file("backend", kSecret) +
                                   "\taudience=api\tscope=read\taudience=graph\n";
    if (!out.cf.load().empty()) __builtin_trap();
    std::string err;
    out.minter = IdentityMinter::create(std::string(40, 'i'), "ngx_mcp_auth", "mcp-tool-server", &err);
    if (!out.minter) __builtin_trap();
    return out;
  }();
  return s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Setup& s = setup();
  Config cf = s.cf;
  cf.identity = &*s.minter;
  auto parts = fuzzutil::split(data + 1, size - 1, 4);
  MemoryStore store;
  store.now = kNow;
  Session session;
  session.sid = "sid-1";
  session.sub = "user-42";
  session.client_id = "client-1";
  session.provider_access_token = "idp-access";
  session.provider_refresh_token = "idp-refresh";
  session.provider_expires = (data[0] & 4) ? kNow + 5 : kNow + 3600;
  session.created = kNow - 10;
  session.expires = kNow + 3600;
  store.put("session:sid-1", encode_session(session), session.expires);

  std::string subject = parts[1];
  if (data[0] & 1) {
    const size_t bar = parts[1].find('|');
    // a subject as an ID token gives it: JSON text (libjwt refuses the rest)
    std::string sub;
    for (char c : parts[1].substr(0, bar))
      if (c >= 0x20 && c < 0x7f) sub += c;
    Identity who{sub, "client-1", "", "",
                 seal_session_ref(*cf.keys, bar == std::string::npos ? "sid-1" : parts[1].substr(bar + 1)), ""};
    subject = s.minter->mint(who, kNow, 300);
  }
  Request r;
  r.method = "POST";
  r.content_type = "application/x-www-form-urlencoded";
  r.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type="
           "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=" + pct_encode(subject) + "&" + parts[0];
  r.authorization = (data[0] & 2) ? "Basic " + b64_encode("backend:" + kSecret) : parts[2];
  r.now = kNow;
  r.request_id = "fuzz";
  Response resp = handle_endpoint(MCPA_EP_TOKEN, cf, store, r);
  if (resp.status < 100 || resp.status > 599) __builtin_trap();
  if (resp.fetch.target != MCPA_FETCH_NONE) {
    static const int kStatuses[] = {200, 400, 401, 500, 0, 200, 403, 503};
    Response answer = resume_endpoint(MCPA_EP_TOKEN, cf, store, r, resp.fetch.continuation,
                                      kStatuses[(data[0] >> 5) & 7], parts[3]);
    if (answer.status < 100 || answer.status > 599) __builtin_trap();
  }
  return 0;
}
