// What a deferred store (Redis) hands back: the replay log the glue carries
// between runs, and sealed values as Redis returns them (anyone with write
// access to Redis chooses those bytes).
//
// Input: a flag byte, then the bytes.  Flag bit 0: the bytes are a replay
// log (decode, and what decodes re-encodes identically); else a value read
// through SealedStore under a fixed key, plus a compare-and-set against it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "replay_store.hpp"
#include "sealed_store.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    ReplayLog log;
    if (ReplayLog::decode(bytes, &log)) {
      std::string again = log.encode();
      ReplayLog back;
      if (!ReplayLog::decode(again, &back) || back.encode() != again) __builtin_trap();
    }
    return 0;
  }
  const Config& cf = fuzzutil::config();
  MemoryStore backing;
  backing.put("session:s", bytes, 100);
  SealedStore st(backing, *cf.keys);
  std::string v;
  if (st.get("session:s", &v) == StoreStatus::ok) {
    // only a value sealed with our key for this very key opens
    if (st.replace_if("session:s", v, "next", 100) != StoreStatus::ok) __builtin_trap();
  }
  return 0;
}
