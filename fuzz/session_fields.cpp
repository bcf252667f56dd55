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
  (void)decode_session(text);
  (void)decode_pending(text);
  (void)decode_login(text);
  (void)decode_code(text);
  (void)decode_access(text);
  (void)decode_refresh(text);
  return 0;
}
