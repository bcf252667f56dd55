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
  // the guard's reading into its reused Session (left holding another
  // session's fields) accepts exactly what decode_session does, and reads
  // the same record
  auto session = decode_session(text);
  static Session reused = [] {
    Session s;
    s.sid = s.sub = s.name = s.email = s.client_id = s.scope = s.resource = s.claims = "left over";
    s.provider_access_token = s.provider_refresh_token = "left over";
    s.provider_expires = s.created = s.expires = s.gen = s.rotated_at = 7;
    return s;
  }();
  bool read = decode_session_into(text, &reused);
  if (read != session.has_value()) __builtin_trap();
  if (session && encode_session(reused) != encode_session(*session)) __builtin_trap();
  (void)decode_pending(text);
  (void)decode_login(text);
  (void)decode_code(text);
  (void)decode_access(text);
  (void)decode_refresh(text);
  return 0;
}
