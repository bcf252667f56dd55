// Dynamic client registration (RFC 7591).  See registration.hpp.
#include "registration.hpp"

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <new>
#include <set>

#include "redirect_uri.hpp"

#include "json.hpp"

namespace mcpauth {

namespace {


std::string print(const cJSON* j) {
  std::unique_ptr<char, JsonTextDelete> text(must(cJSON_PrintUnformatted(j)));
  return std::string(text.get());
}

// Parses exactly one JSON value; trailing garbage and NUL bytes fail.
Json parse_json(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return nullptr;
  std::string copy(text);
  const char* end = nullptr;
  return Json(cJSON_ParseWithOpts(copy.c_str(), &end, 1));
}

void add_string(cJSON* obj, const char* name, const std::string& value) {
  must(cJSON_AddStringToObject(obj, name, value.c_str()));
}

void add_string_array(cJSON* obj, const char* name, const std::vector<std::string>& values) {
  cJSON* arr = must(cJSON_AddArrayToObject(obj, name));
  for (const auto& v : values) {
    cJSON* s = must(cJSON_CreateString(v.c_str()));
    cJSON_AddItemToArray(arr, s);
  }
}

void add_int(cJSON* obj, const char* name, int64_t v) {
  must(cJSON_AddNumberToObject(obj, name, static_cast<double>(v)));
}

// A member, with JSON null treated as absent.
const cJSON* member(const cJSON* obj, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
  return (item && !cJSON_IsNull(item)) ? item : nullptr;
}

// Array of strings -> vector without duplicates (order kept).  False when
// the value is not an array or holds a non-string.  A set finds the
// duplicates: a 64 KiB body of one short string repeated is no quadratic
// scan.
bool string_array(const cJSON* item, std::vector<std::string>* out) {
  if (!cJSON_IsArray(item)) return false;
  out->clear();
  std::set<std::string_view> seen;
  const cJSON* el = nullptr;
  cJSON_ArrayForEach(el, item) {
    if (!cJSON_IsString(el) || !el->valuestring) return false;
    if (seen.insert(el->valuestring).second) out->emplace_back(el->valuestring);
  }
  return true;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

struct CodePointRange {
  uint32_t first, last;
};

// Bidirectional controls (Unicode UAX #9): embeddings, overrides, isolates
// and the implicit marks.  They reorder what is displayed, so "Good App"
// can be made to show as another name (Trojan Source, CVE-2021-42574).
constexpr CodePointRange kBidiControls[] = {
    {0x061C, 0x061C},  // ARABIC LETTER MARK
    {0x200E, 0x200F},  // LRM, RLM
    {0x202A, 0x202E},  // LRE, RLE, PDF, LRO, RLO
    {0x2066, 0x2069},  // LRI, RLI, FSI, PDI
};

// Characters that display as nothing, or not as themselves (Unicode 15.1):
// general category Cf (format), Zl and Zp (line and paragraph separators),
// and Default_Ignorable_Code_Point (DerivedCoreProperties.txt) -- which adds
// the combining grapheme joiner, the Hangul fillers and unassigned
// ignorable ranges -- except the variation selectors (U+180B-180D, U+180F,
// U+FE00-FE0F, U+E0100-E01EF), which only choose a glyph (an emoji's
// colour form).  Generated from the Unicode data and checked against it.
constexpr CodePointRange kInvisible[] = {
    {0x00AD, 0x00AD},    // SOFT HYPHEN
    {0x034F, 0x034F},    // COMBINING GRAPHEME JOINER
    {0x0600, 0x0605},    // Arabic number signs
    {0x06DD, 0x06DD},    // ARABIC END OF AYAH
    {0x070F, 0x070F},    // SYRIAC ABBREVIATION MARK
    {0x0890, 0x0891},    // Arabic pound and piastre marks above
    {0x08E2, 0x08E2},    // ARABIC DISPUTED END OF AYAH
    {0x115F, 0x1160},    // Hangul choseong and jungseong fillers
    {0x17B4, 0x17B5},    // Khmer inherent vowels
    {0x180E, 0x180E},    // MONGOLIAN VOWEL SEPARATOR
    {0x200B, 0x200D},    // zero width space, non-joiner, joiner
    {0x2028, 0x2029},    // LINE SEPARATOR, PARAGRAPH SEPARATOR
    {0x2060, 0x2065},    // word joiner, invisible operators, (unassigned)
    {0x206A, 0x206F},    // deprecated format characters
    {0x3164, 0x3164},    // HANGUL FILLER
    {0xFEFF, 0xFEFF},    // ZERO WIDTH NO-BREAK SPACE (BOM)
    {0xFFA0, 0xFFA0},    // HALFWIDTH HANGUL FILLER
    {0xFFF0, 0xFFFB},    // (unassigned), interlinear annotation controls
    {0x110BD, 0x110BD},  // KAITHI NUMBER SIGN
    {0x110CD, 0x110CD},  // KAITHI NUMBER SIGN ABOVE
    {0x13430, 0x1343F},  // Egyptian hieroglyph format controls
    {0x1BCA0, 0x1BCA3},  // shorthand format controls
    {0x1D173, 0x1D17A},  // musical symbol format controls
    {0xE0000, 0xE00FF},  // tags (U+E0001, U+E0020-E007F) and unassigned ignorables
    {0xE01F0, 0xE0FFF},  // unassigned ignorables
};

template <size_t N>
bool in_ranges(uint32_t cp, const CodePointRange (&ranges)[N]) {
  for (const auto& r : ranges)
    if (cp >= r.first && cp <= r.last) return true;
  return false;
}

std::string code_point_name(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// Checks self-declared text that a person will read (the client name on the
// consent page, RFC 7591 §5): valid UTF-8, and nothing that displays other
// than it is -- control characters, bidirectional controls, invisible or
// format characters, noncharacters.  Returns the code point count, or the
// reason in *why (for "<field> must ...").
std::optional<size_t> display_text(std::string_view s, std::string* why) {
  size_t count = 0;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      valid = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    // no overlong forms, nothing past U+10FFFF, no surrogates (RFC 3629 §3)
    if (!valid || cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *why = "be valid UTF-8";
      return std::nullopt;
    }
    const auto at = [&] { return " (" + code_point_name(cp) + " at character " + std::to_string(count + 1) + ")"; };
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
      *why = "not contain control characters" + at();
      return std::nullopt;
    }
    if (in_ranges(cp, kBidiControls)) {
      *why = "not contain bidirectional control characters, which reorder what is shown" + at();
      return std::nullopt;
    }
    // noncharacters: U+FDD0-FDEF and the last two code points of each plane
    if (in_ranges(cp, kInvisible) || (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
      *why = "not contain invisible or format characters" + at();
      return std::nullopt;
    }
    i += len;
    ++count;
  }
  return count;
}

// client_uri / logo_uri: an https URL, or http on a loopback host.
std::optional<std::string> web_url_error(std::string_view url) {
  if (url.size() > kMaxRedirectUriLength)
    return "is longer than " + std::to_string(kMaxRedirectUriLength) + " characters";
  std::string why;
  auto u = parse_uri(url, &why);
  if (!u) return why;
  if (u->has_userinfo) return std::string("must not contain user information");
  std::string scheme = u->scheme;
  for (char& ch : scheme) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
  if (scheme == "https" && u->has_authority && !u->host.empty()) return std::nullopt;
  if (scheme == "http" && u->has_authority && is_loopback_host(u->host)) return std::nullopt;
  return std::string("must be an https URL");
}

std::string quoted_for_message(std::string_view s) {
  constexpr size_t kMax = 100;
  std::string out = "\"" + std::string(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

RegistrationError metadata_error(std::string description) {
  return RegistrationError{"invalid_client_metadata", std::move(description)};
}

RegistrationError redirect_error(std::string description) {
  return RegistrationError{"invalid_redirect_uri", std::move(description)};
}

// Optional string member: absent/null -> true with *out untouched.
bool optional_string(const cJSON* obj, const char* name, std::string* out) {
  const cJSON* item = member(obj, name);
  if (!item) return true;
  if (!cJSON_IsString(item) || !item->valuestring) return false;
  *out = item->valuestring;
  return true;
}

}  // namespace

std::variant<ClientMetadata, RegistrationError> parse_registration_request(
    std::string_view json_body, const std::vector<std::string>& supported_scopes) {
  Json root = parse_json(json_body);
  if (!root || !cJSON_IsObject(root.get())) {
    return metadata_error("request body must be a JSON object");
  }
  const cJSON* req = root.get();
  {
    // A repeated member could be read differently by another parser.
    std::set<std::string> names;
    const cJSON* m = nullptr;
    cJSON_ArrayForEach(m, req) {
      if (!m->string || !names.insert(m->string).second) {
        return metadata_error("duplicate member " + quoted_for_message(m->string ? m->string : ""));
      }
    }
  }

  ClientMetadata c;

  // redirect_uris: REQUIRED for the authorization_code grant (RFC 7591 §2).
  const cJSON* ru = member(req, "redirect_uris");
  if (!ru) return redirect_error("redirect_uris is required");
  if (!string_array(ru, &c.redirect_uris)) {
    return metadata_error("redirect_uris must be an array of strings");
  }
  if (c.redirect_uris.empty()) return redirect_error("redirect_uris must not be empty");
  if (c.redirect_uris.size() > kMaxRedirectUris) {
    return redirect_error("at most " + std::to_string(kMaxRedirectUris) +
                          " redirect_uris are allowed");
  }
  for (const auto& uri : c.redirect_uris) {
    if (auto why = redirect_uri_registration_error(uri)) {
      return redirect_error("redirect_uri " + quoted_for_message(uri) + " " + *why);
    }
  }

  // token_endpoint_auth_method (RFC 7591 §2): default client_secret_basic.
  c.token_endpoint_auth_method = "client_secret_basic";
  if (!optional_string(req, "token_endpoint_auth_method", &c.token_endpoint_auth_method)) {
    return metadata_error("token_endpoint_auth_method must be a string");
  }
  if (c.token_endpoint_auth_method != "none" &&
      c.token_endpoint_auth_method != "client_secret_basic" &&
      c.token_endpoint_auth_method != "client_secret_post") {
    return metadata_error("token_endpoint_auth_method " +
                          quoted_for_message(c.token_endpoint_auth_method) +
                          " is not supported (none, client_secret_basic, client_secret_post)");
  }

  c.grant_types = {"authorization_code", "refresh_token"};
  if (const cJSON* gt = member(req, "grant_types")) {
    if (!string_array(gt, &c.grant_types)) {
      return metadata_error("grant_types must be an array of strings");
    }
    for (const auto& g : c.grant_types) {
      if (g != "authorization_code" && g != "refresh_token") {
        return metadata_error("grant_type " + quoted_for_message(g) +
                              " is not supported (authorization_code, refresh_token)");
      }
    }
  }
  c.response_types = {"code"};
  if (const cJSON* rt = member(req, "response_types")) {
    if (!string_array(rt, &c.response_types)) {
      return metadata_error("response_types must be an array of strings");
    }
    for (const auto& r : c.response_types) {
      if (r != "code") {
        return metadata_error("response_type " + quoted_for_message(r) + " is not supported (code)");
      }
    }
  }
  // RFC 7591 §2.1: grant_types and response_types must be consistent.
  bool has_ac = contains(c.grant_types, "authorization_code");
  bool has_code = contains(c.response_types, "code");
  if (has_ac && !has_code) {
    return metadata_error("grant_type authorization_code requires response_type code");
  }
  if (has_code && !has_ac) {
    return metadata_error("response_type code requires grant_type authorization_code");
  }
  if (!has_ac) return metadata_error("grant_types must include authorization_code");

  if (!optional_string(req, "client_name", &c.client_name)) {
    return metadata_error("client_name must be a string");
  }
  std::string name_problem;
  auto chars = display_text(c.client_name, &name_problem);
  if (!chars) return metadata_error("client_name must " + name_problem);
  if (*chars > kMaxClientNameChars) {
    return metadata_error("client_name must be at most " + std::to_string(kMaxClientNameChars) +
                          " characters");
  }

  for (auto [name, field] : {std::pair<const char*, std::string*>{"client_uri", &c.client_uri},
                             std::pair<const char*, std::string*>{"logo_uri", &c.logo_uri}}) {
    if (!optional_string(req, name, field)) return metadata_error(std::string(name) + " must be a string");
    if (field->empty()) continue;
    if (auto why = web_url_error(*field)) {
      return metadata_error(std::string(name) + " " + quoted_for_message(*field) + " " + *why);
    }
  }

  std::string scope;
  if (!optional_string(req, "scope", &scope)) return metadata_error("scope must be a string");
  {
    // scope = scope-token *( SP scope-token )  (RFC 6749 §3.3, RFC 7591 §2)
    std::vector<std::string> tokens;
    size_t pos = 0;
    while (pos <= scope.size()) {
      size_t sp = scope.find(' ', pos);
      std::string tok = scope.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
      if (!tok.empty()) {
        if (!contains(supported_scopes, tok)) {
          return metadata_error("scope " + quoted_for_message(tok) + " is not supported");
        }
        if (!contains(tokens, tok)) tokens.push_back(tok);
      }
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    for (const auto& t : tokens) c.scope += (c.scope.empty() ? "" : " ") + t;
  }
  return c;
}

std::string registration_response_json(const ClientMetadata& client,
                                       const std::string* plaintext_secret_or_null) {
  Json out(must(cJSON_CreateObject()));
  cJSON* o = out.get();
  add_string(o, "client_id", client.client_id);
  add_int(o, "client_id_issued_at", client.client_id_issued_at);
  if (plaintext_secret_or_null && client.token_endpoint_auth_method != "none") {
    add_string(o, "client_secret", *plaintext_secret_or_null);
    add_int(o, "client_secret_expires_at", 0);  // RFC 7591 §3.2.1: 0 = never
  }
  add_string_array(o, "redirect_uris", client.redirect_uris);
  if (!client.client_name.empty()) add_string(o, "client_name", client.client_name);
  if (!client.client_uri.empty()) add_string(o, "client_uri", client.client_uri);
  if (!client.logo_uri.empty()) add_string(o, "logo_uri", client.logo_uri);
  add_string_array(o, "grant_types", client.grant_types);
  add_string_array(o, "response_types", client.response_types);
  add_string(o, "token_endpoint_auth_method", client.token_endpoint_auth_method);
  if (!client.scope.empty()) add_string(o, "scope", client.scope);
  return print(o);
}

std::optional<RegistrationError> stored_size_error(const ClientMetadata& client) {
  const size_t size = serialize_client(client).size();
  if (size <= kMaxStoredClientBytes) return std::nullopt;
  return metadata_error("the registration is too large to keep: " + std::to_string(size) +
                        " bytes stored, at most " + std::to_string(kMaxStoredClientBytes / 1024) +
                        " KiB (fewer or shorter redirect_uris, client_uri, logo_uri or client_name)");
}

std::string serialize_client(const ClientMetadata& client) {
  Json out(must(cJSON_CreateObject()));
  cJSON* o = out.get();
  add_int(o, "v", 1);
  add_string(o, "client_id", client.client_id);
  add_int(o, "client_id_issued_at", client.client_id_issued_at);
  add_string(o, "client_secret_hash", client.client_secret_hash);
  add_string(o, "token_endpoint_auth_method", client.token_endpoint_auth_method);
  add_string_array(o, "redirect_uris", client.redirect_uris);
  add_string_array(o, "grant_types", client.grant_types);
  add_string_array(o, "response_types", client.response_types);
  add_string(o, "client_name", client.client_name);
  add_string(o, "client_uri", client.client_uri);
  add_string(o, "logo_uri", client.logo_uri);
  add_string(o, "scope", client.scope);
  return print(o);
}

std::optional<ClientMetadata> deserialize_client(std::string_view json) {
  Json root = parse_json(json);
  if (!root || !cJSON_IsObject(root.get())) return std::nullopt;
  const cJSON* o = root.get();
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, "v");
  if (!cJSON_IsNumber(v) || v->valuedouble != 1.0) return std::nullopt;

  ClientMetadata c;
  const cJSON* iat = cJSON_GetObjectItemCaseSensitive(o, "client_id_issued_at");
  if (!cJSON_IsNumber(iat)) return std::nullopt;
  double d = iat->valuedouble;
  // Integral and within +-2^53, where doubles hold integers exactly.
  if (!(std::fabs(d) <= 9007199254740992.0) || std::floor(d) != d) return std::nullopt;
  c.client_id_issued_at = static_cast<int64_t>(d);

  const std::pair<const char*, std::string*> strings[] = {
      {"client_id", &c.client_id},
      {"client_secret_hash", &c.client_secret_hash},
      {"token_endpoint_auth_method", &c.token_endpoint_auth_method},
      {"client_name", &c.client_name},
      {"client_uri", &c.client_uri},
      {"logo_uri", &c.logo_uri},
      {"scope", &c.scope}};
  for (const auto& [name, field] : strings) {
    const cJSON* s = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(s) || !s->valuestring) return std::nullopt;
    *field = s->valuestring;
  }
  const std::pair<const char*, std::vector<std::string>*> arrays[] = {
      {"redirect_uris", &c.redirect_uris},
      {"grant_types", &c.grant_types},
      {"response_types", &c.response_types}};
  for (const auto& [name, field] : arrays) {
    if (!string_array(cJSON_GetObjectItemCaseSensitive(o, name), field)) return std::nullopt;
  }
  if (c.client_id.empty() || c.redirect_uris.empty() || c.token_endpoint_auth_method.empty()) {
    return std::nullopt;
  }
  return c;
}

}  // namespace mcpauth
