// URI parsing, redirect-URI registration and matching rules, resource
// indicator comparison.  See redirect_uri.hpp.
#include "redirect_uri.hpp"

namespace mcpauth {

namespace {

bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 §2: unreserved, gen-delims, sub-delims and '%'.  Everything else
// (controls, space, non-ASCII, '"', '<', '>', '\', '^', '`', '{', '|', '}')
// is refused: browsers treat some of them (notably '\') as delimiters, which
// would let the URI we check differ from the one the browser follows.
bool is_uri_char(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  return std::string_view("-._~:/?#[]@!$&'()*+,;=%").find(c) != std::string_view::npos;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool parse_fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

// host [ ":" port ] after the userinfo has been split off.
bool parse_hostport(std::string_view hp, Uri& uri, std::string* error) {
  std::string_view rest;
  if (!hp.empty() && hp.front() == '[') {
    size_t close = hp.find(']');
    if (close == std::string_view::npos) return parse_fail(error, "unterminated IPv6 literal");
    std::string_view inner = hp.substr(1, close - 1);
    if (inner.empty() || inner.find(':') == std::string_view::npos) {
      return parse_fail(error, "invalid IPv6 literal");
    }
    for (char c : inner) {
      // No zone identifiers ("%25eth0") and no IPvFuture.
      if (!(is_hex(c) || c == ':' || c == '.')) return parse_fail(error, "invalid IPv6 literal");
    }
    uri.host = std::string(hp.substr(0, close + 1));
    rest = hp.substr(close + 1);
  } else {
    size_t colon = hp.find(':');
    std::string_view host = hp.substr(0, colon);
    for (char c : host) {
      if (c == '[' || c == ']') return parse_fail(error, "invalid character in host");
      if (c == '%') return parse_fail(error, "host must not contain %-escapes");
    }
    uri.host = std::string(host);
    rest = colon == std::string_view::npos ? std::string_view() : hp.substr(colon);
  }
  if (rest.empty()) return true;
  if (rest.front() != ':') return parse_fail(error, "unexpected characters after host");
  std::string_view port = rest.substr(1);
  if (port.empty()) return parse_fail(error, "empty port");
  if (port.size() > 5) return parse_fail(error, "invalid port");
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return parse_fail(error, "invalid port");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return parse_fail(error, "port out of range");
  uri.has_port = true;
  uri.port = std::string(port);
  return true;
}

bool is_decimal_octet(std::string_view s) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s.front() == '0') return false;  // no octal-looking forms
  unsigned v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 255;
}

}  // namespace

std::optional<Uri> parse_uri(std::string_view text, std::string* error) {
  Uri uri;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (!is_uri_char(c)) {
      if (error) *error = "contains a character not allowed in a URI (control, space, non-ASCII or one of \"<>\\^`{|})";
      return std::nullopt;
    }
    if (c == '%' && (i + 2 >= text.size() || !is_hex(text[i + 1]) || !is_hex(text[i + 2]))) {
      if (error) *error = "malformed %-escape";
      return std::nullopt;
    }
  }

  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"   (RFC 3986 §3.1)
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      text.substr(0, colon).find_first_of("/?#[]@") != std::string_view::npos) {
    if (error) *error = "not an absolute URI (no scheme)";
    return std::nullopt;
  }
  std::string_view scheme = text.substr(0, colon);
  if (!is_alpha(scheme.front())) {
    if (error) *error = "invalid scheme";
    return std::nullopt;
  }
  for (char c : scheme) {
    if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.')) {
      if (error) *error = "invalid scheme";
      return std::nullopt;
    }
  }
  uri.scheme = std::string(scheme);
  std::string_view rest = text.substr(colon + 1);

  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) {
    uri.has_fragment = true;
    uri.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  size_t qmark = rest.find('?');
  if (qmark != std::string_view::npos) {
    uri.has_query = true;
    uri.query = std::string(rest.substr(qmark + 1));
    rest = rest.substr(0, qmark);
  }
  if (rest.substr(0, 2) == "//") {
    uri.has_authority = true;
    rest = rest.substr(2);
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    // Split at the LAST '@', as browsers do, so the host we check is the
    // host they connect to.
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      uri.has_userinfo = true;
      uri.userinfo = std::string(authority.substr(0, at));
      authority = authority.substr(at + 1);
    }
    if (!parse_hostport(authority, uri, error)) return std::nullopt;
  }
  uri.path = std::string(rest);
  // '[' and ']' are only allowed around an IPv6 host (RFC 3986 §3.2.2).
  if (uri.path.find_first_of("[]") != std::string::npos ||
      uri.query.find_first_of("[]") != std::string::npos ||
      uri.fragment.find_first_of("[]") != std::string::npos ||
      uri.userinfo.find_first_of("[]") != std::string::npos) {
    if (error) *error = "'[' or ']' outside an IPv6 host";
    return std::nullopt;
  }
  return uri;
}

bool is_loopback_host(std::string_view host) {
  if (lower(host) == "localhost") return true;
  if (host == "[::1]" || host == "::1") return true;
  // 127.0.0.0/8 as a strict dotted quad (RFC 8252 §7.3 names 127.0.0.1;
  // the whole block is loopback).
  if (host.substr(0, 4) != "127.") return false;
  int parts = 0;
  while (true) {
    size_t dot = host.find('.');
    if (!is_decimal_octet(host.substr(0, dot))) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    host = host.substr(dot + 1);
  }
  return parts == 4;
}

std::optional<std::string> redirect_uri_registration_error(std::string_view uri) {
  if (uri.empty()) return std::string("is empty");
  if (uri.size() > kMaxRedirectUriLength) {
    return "is longer than " + std::to_string(kMaxRedirectUriLength) + " characters";
  }
  std::string why;
  auto parsed = parse_uri(uri, &why);
  if (!parsed) return why;
  // RFC 6749 §3.1.2: the redirection endpoint URI MUST NOT include a
  // fragment component.
  if (parsed->has_fragment) return std::string("must not contain a fragment (RFC 6749 §3.1.2)");
  if (parsed->has_userinfo) return std::string("must not contain user information");
  std::string scheme = lower(parsed->scheme);
  if (scheme == "https") {
    if (!parsed->has_authority || parsed->host.empty()) return std::string("https URI has no host");
    return std::nullopt;
  }
  if (scheme == "http") {
    // OAuth 2.1 §2.3.1 / RFC 8252 §7.3: plain http only for loopback
    // redirects of native apps, where the traffic never leaves the device.
    if (!parsed->has_authority || !is_loopback_host(parsed->host)) {
      return std::string(
          "http is only allowed for loopback hosts (127.0.0.1, [::1], localhost); use https");
    }
    return std::nullopt;
  }
  // Private-use URI schemes for native apps (RFC 8252 §7.1).  The RFC asks
  // for a reverse-domain scheme containing a period ("com.example.app:/cb"),
  // but deployed MCP clients register short schemes such as "cursor:" or
  // "vscode:", so schemes without a period are accepted too.  Schemes that a
  // browser would execute, render or fetch itself instead of handing to an
  // app are refused: javascript, data, file, vbscript, about, blob, ftp,
  // ws, wss.
  static constexpr std::string_view kRefused[] = {"javascript", "data", "file", "vbscript", "about",
                                                  "blob",       "ftp",  "ws",   "wss"};
  for (std::string_view bad : kRefused) {
    if (scheme == bad) return "scheme \"" + scheme + "\" is not allowed for redirect URIs";
  }
  return std::nullopt;
}

bool redirect_uri_matches(std::string_view requested, const std::vector<std::string>& registered) {
  // Exact string comparison (RFC 6749 §3.1.2.3, OAuth 2.1 §4.1.1).
  for (const auto& r : registered) {
    if (r == requested) return true;
  }
  // RFC 8252 §7.3: for loopback redirects the client picks the port at run
  // time, so only the port may differ.
  auto rq = parse_uri(requested, nullptr);
  if (!rq || rq->has_fragment || rq->has_userinfo || !rq->has_authority) return false;
  if (rq->scheme != "http" || !is_loopback_host(rq->host)) return false;
  for (const auto& r : registered) {
    auto reg = parse_uri(r, nullptr);
    if (!reg || reg->has_fragment || reg->has_userinfo || !reg->has_authority) continue;
    if (reg->scheme == rq->scheme && reg->host == rq->host && reg->path == rq->path &&
        reg->has_query == rq->has_query && reg->query == rq->query) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> normalize_resource(std::string_view resource) {
  auto u = parse_uri(resource, nullptr);
  // RFC 8707 §2: an absolute URI that MUST NOT include a fragment.
  if (!u || !u->has_authority || u->host.empty() || u->has_fragment || u->has_userinfo) {
    return std::nullopt;
  }
  std::string out = lower(u->scheme) + "://" + lower(u->host);
  if (u->has_port) out += ":" + u->port;
  std::string_view path = u->path;
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.append(path);
  if (u->has_query) out += "?" + u->query;
  return out;
}

bool resource_matches(std::string_view requested, std::string_view configured) {
  // The guard asks this on every request with the same configured resource
  // (and, nearly always, the same requested one): remember the last
  // normalization of each, per thread.
  struct Last {
    std::string in;
    std::optional<std::string> out;
    bool set = false;
  };
  auto normalized = [](Last& last, std::string_view text) -> const std::optional<std::string>& {
    if (!last.set || last.in != text) {
      last.out = normalize_resource(text);
      last.in.assign(text);
      last.set = true;
    }
    return last.out;
  };
  thread_local Last last_requested, last_configured;
  const auto& a = normalized(last_requested, requested);
  const auto& b = normalized(last_configured, configured);
  return a && b && *a == *b;
}

}  // namespace mcpauth
