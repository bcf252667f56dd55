// The store's record format: Fields::decode and every decode_* built on it
// (records come from the shared zone and from the state file on disk).
#include <cstddef>
#include <cstdint>
#include <string>

#include "session.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto f = Fields::decode(text)) {
    // what decodes must encode and decode to the same fields
    auto again = Fields::decode(f->encode());
    if (!again || again->encode() != f->encode()) __builtin_trap();
    (void)f->str("sid");
    (void)f->num("exp");
    (void)get_login(*f);
  }
  // the guard's in-place reading accepts exactly what decode_session does,
  // and reads the same values
  auto session = decode_session(text);
  SessionView view;
  Session owned;
  bool viewed = view_session(text, &view, &owned);
  if (viewed != session.has_value()) __builtin_trap();
  if (session && (view.sid != session->sid || view.sub != session->sub || view.client_id != session->client_id ||
                  view.scope != session->scope || view.expires != session->expires ||
                  view.provider_expires != session->provider_expires ||
                  view.provider_access_token != session->provider_access_token ||
                  view.provider_refresh_token != session->provider_refresh_token))
    __builtin_trap();
  (void)decode_pending(text);
  (void)decode_login(text);
  (void)decode_code(text);
  (void)decode_access(text);
  (void)decode_refresh(text);
  return 0;
}
