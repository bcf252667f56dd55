// The plain run of a JSON string: where the bytes that need no decoding end.
// Shared by the two strict one-pass readers on the guard's path, the session
// records' (session.cpp) and the JSON-RPC peek's (jsonrpc_peek.cpp).
#pragma once

#include <cstddef>
#include <string_view>

#if defined(__SSE2__) && !defined(MCPA_NO_SSE2_SCAN)
#include <emmintrin.h>
#endif

namespace mcpauth {

// The bytes that end a plain run: the closing quote, a backslash, and the
// control bytes JSON forbids raw (NUL among them).
struct JsonStringStops {
  bool stop[256] = {};
  constexpr JsonStringStops() {
    for (int c = 0; c < 0x20; ++c) stop[c] = true;
    stop[static_cast<unsigned char>('"')] = stop[static_cast<unsigned char>('\\')] = true;
  }
};
inline constexpr JsonStringStops kJsonStringStops;

// The index of the first stop byte in s[i, size), or size: 16 bytes per step
// where SSE2 is there, never reading past the end.  -DMCPA_NO_SSE2_SCAN
// builds the byte loop alone (bench/guard_savings.sh compares the two).
inline size_t json_string_run(std::string_view s, size_t i) {
  const size_t n = s.size();
#if defined(__SSE2__) && !defined(MCPA_NO_SSE2_SCAN)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  // c < 0x20 (unsigned) <=> max(c, 0x1f) == 0x1f
  const __m128i below = _mm_set1_epi8(0x1f);
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                               _mm_cmpeq_epi8(_mm_max_epu8(v, below), below));
    if (int mask = _mm_movemask_epi8(hit)) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && !kJsonStringStops.stop[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}

}  // namespace mcpauth
