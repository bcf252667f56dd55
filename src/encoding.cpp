// Byte-level encodings: base64url (RFC 4648 §5), base64 (RFC 4648 §4),
// percent-encoding (RFC 3986 §2.1), form/query parsing, cookie parsing
// (RFC 6265 §5.4) and HTML escaping.  Pure functions, no I/O.
#include "encoding.hpp"

#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mcpauth {

namespace {

constexpr char kB64urlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kB64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Value of a base64 digit in the given alphabet, or -1.
int b64_digit(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (url) {
    if (c == '-') return 62;
    if (c == '_') return 63;
  } else {
    if (c == '+') return 62;
    if (c == '/') return 63;
  }
  return -1;
}

std::string encode_with(std::string_view bytes, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                 static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) out.append("==");
  } else if (rest == 2) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.push_back('=');
  }
  return out;
}

// Decodes unpadded digits.  Strict: a length of 1 mod 4 and non-zero unused
// trailing bits are refused, so every byte string has exactly one encoding
// (a token cannot be altered by flipping bits the decoder ignores).
std::optional<std::string> decode_digits(std::string_view text, bool url) {
  if (text.size() % 4 == 1) return std::nullopt;
  // Table of digit values for this alphabet (-1: not a digit); the same
  // values as b64_digit, without a branch per character (the guard decodes
  // a sealed token on every request).
  struct Table {
    signed char v[256];
    explicit Table(bool u) {
      for (int c = 0; c < 256; ++c) v[c] = static_cast<signed char>(b64_digit(static_cast<char>(c), u));
    }
  };
  static const Table kUrl(true), kStd(false);
  const signed char* t = (url ? kUrl : kStd).v;
  const size_t groups = text.size() / 4, rest = text.size() % 4;
  std::string out(groups * 3 + (rest ? rest - 1 : 0), '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  char* o = &out[0];
  // Four digits make three bytes; a non-digit (-1) sets the sign of `bad`.
  int bad = 0;
  for (size_t g = 0; g < groups; ++g, in += 4, o += 3) {
    const int a = t[in[0]], b = t[in[1]], c = t[in[2]], d = t[in[3]];
    bad |= a | b | c | d;
    const uint32_t v = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 |
                       static_cast<uint32_t>(c) << 6 | static_cast<uint32_t>(d);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>(v >> 8);
    o[2] = static_cast<char>(v);
  }
  // Two or three digits left: one or two bytes, the unused low bits zero.
  uint32_t v = 0;
  for (size_t i = 0; i < rest; ++i) {
    const int d = t[in[i]];
    bad |= d;
    v = v << 6 | static_cast<uint32_t>(d);
  }
  if (bad < 0) return std::nullopt;
  if (rest == 2) {
    if (v & 0xF) return std::nullopt;
    o[0] = static_cast<char>(v >> 4);
  } else if (rest == 3) {
    if (v & 0x3) return std::nullopt;
    o[0] = static_cast<char>(v >> 10);
    o[1] = static_cast<char>(v >> 2);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string b64url_encode(std::string_view bytes) {
  return encode_with(bytes, kB64urlAlphabet, false);
}

std::optional<std::string> b64url_decode(std::string_view text) {
  return decode_digits(text, true);
}

std::string b64_encode(std::string_view bytes) { return encode_with(bytes, kB64Alphabet, true); }

std::optional<std::string> b64_decode(std::string_view text) {
  // Padding is required: the length is a multiple of 4 and at most two '='
  // end the text.
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  std::string_view digits = text.substr(0, text.size() - pad);
  // A third '=' (or one in the middle) is not a digit and fails below.
  return decode_digits(digits, false);
}

bool valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || text.size() - i < len) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::optional<std::string> pct_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (text.size() - i < 3) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::string pct_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<Params> Params::parse(std::string_view text) {
  Params p;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view seg = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (seg.empty()) continue;
    size_t eq = seg.find('=');
    std::string_view raw_name = seg.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : seg.substr(eq + 1);
    auto name = pct_decode(raw_name, true);
    auto value = pct_decode(raw_value, true);
    if (!name || !value) return std::nullopt;
    p.items_.emplace_back(std::move(*name), std::move(*value));
  }
  return p;
}

Params::Lookup Params::find(std::string_view name, std::string* value) const {
  const std::string* found = nullptr;
  for (const auto& item : items_) {
    if (item.first != name) continue;
    if (found) return Lookup::repeated;
    found = &item.second;
  }
  if (!found) return Lookup::absent;
  if (value) *value = *found;
  return Lookup::one;
}

std::optional<std::string> Params::get(std::string_view name) const {
  std::string value;
  if (find(name, &value) != Lookup::one) return std::nullopt;
  return value;
}

bool Params::has(std::string_view name) const { return find(name, nullptr) != Lookup::absent; }

std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name) {
  // RFC 6265 §5.4 serializes cookies as "name=value" pairs joined by "; ".
  // Split on ';' and trim optional whitespace so a sloppy "a=1;b=2" also
  // works; the first pair with the name wins (the most specific path comes
  // first per §5.4 step 2).
  if (name.empty()) return std::nullopt;
  while (!cookie_header.empty()) {
    size_t semi = cookie_header.find(';');
    std::string_view pair = trim_ows(cookie_header.substr(0, semi));
    cookie_header = semi == std::string_view::npos ? std::string_view()
                                                   : cookie_header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim_ows(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim_ows(pair.substr(eq + 1));
    // cookie-value may be wrapped in DQUOTEs (RFC 6265 §4.1.1).
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return std::nullopt;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out.append("&amp;"); break;
      case '<': out.append("&lt;"); break;
      case '>': out.append("&gt;"); break;
      case '"': out.append("&quot;"); break;
      case '\'': out.append("&#39;"); break;
      default: out.push_back(c);
    }
  }
  return out;
}

size_t token68_run(std::string_view text) {
  // A table rather than a chain of ranges: the characters of a sealed token
  // are random, so per-character branches mispredict (every request).
  struct Table {
    bool ok[256] = {};
    constexpr Table() {
      for (int c = 0; c < 256; ++c)
        ok[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    }
  };
  static constexpr Table kToken68{};
  size_t i = 0;
#if defined(__SSE2__)
  // signed byte compares: bytes >= 0x80 are negative and fall in no range
  const __m128i dash_1 = _mm_set1_epi8('-' - 1), nine1 = _mm_set1_epi8('9' + 1);  // "-./0-9"
  const __m128i a_up1 = _mm_set1_epi8('A' - 1), z_up1 = _mm_set1_epi8('Z' + 1);
  const __m128i a_lo1 = _mm_set1_epi8('a' - 1), z_lo1 = _mm_set1_epi8('z' + 1);
  const __m128i plus = _mm_set1_epi8('+'), under = _mm_set1_epi8('_'), tilde = _mm_set1_epi8('~');
  for (; i + 16 <= text.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, dash_1), _mm_cmplt_epi8(v, nine1));
    ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, a_up1), _mm_cmplt_epi8(v, z_up1)));
    ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, a_lo1), _mm_cmplt_epi8(v, z_lo1)));
    ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(v, plus),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, under), _mm_cmpeq_epi8(v, tilde))));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(ok));
    if (mask != 0xFFFF) return i + static_cast<size_t>(__builtin_ctz(~mask));
  }
#endif
  while (i < text.size() && kToken68.ok[static_cast<unsigned char>(text[i])]) ++i;
  return i;
}

}  // namespace mcpauth
