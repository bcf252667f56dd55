// Byte-level encodings shared by every endpoint: base64url, percent-encoding,
// form/query/cookie parsing and HTML escaping.  Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcpauth {

// RFC 4648 §5 without padding.  Decoding is strict: padding, whitespace or a
// character outside the alphabet makes it fail (returns nullopt).
std::string b64url_encode(std::string_view bytes);
std::optional<std::string> b64url_decode(std::string_view text);

// RFC 4648 §4 (standard alphabet, padding required), for HTTP Basic.
std::optional<std::string> b64_decode(std::string_view text);
// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
// past U+10FFFF).
bool valid_utf8(std::string_view text);
std::string b64_encode(std::string_view bytes);

// Percent-decoding; `plus_is_space` for application/x-www-form-urlencoded.
// Fails on a malformed escape or an embedded NUL.
std::optional<std::string> pct_decode(std::string_view text, bool plus_is_space);
// Encodes everything outside RFC 3986 "unreserved".
std::string pct_encode(std::string_view text);

// An ordered list of decoded name/value pairs from a query string or a form
// body.  OAuth forbids repeating a parameter (RFC 6749 §3.1), so lookups
// report duplicates instead of silently picking one.
class Params {
 public:
  // nullopt when the text is not well-formed (bad escape, NUL byte).
  static std::optional<Params> parse(std::string_view text);

  enum class Lookup { absent, one, repeated };
  Lookup find(std::string_view name, std::string* value) const;
  // The value when present exactly once, else nullopt.
  std::optional<std::string> get(std::string_view name) const;
  bool has(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Value of the named cookie from a Cookie header (RFC 6265 §5.4), or nullopt.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view text);

// How many leading characters of `text` are token68 characters other than
// '=' (RFC 9110 §11.2: A-Z a-z 0-9 - . _ ~ + /); 16 at a time where SSE2 is.
size_t token68_run(std::string_view text);

}  // namespace mcpauth
