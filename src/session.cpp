#include "session.hpp"
#include "json.hpp"

#include <cjson/cJSON.h>

#include <memory>
#include <new>

#include "crypto.hpp"
#include "json_string_scan.hpp"

namespace mcpauth {
namespace {


constexpr const char* kVersion = "1";

bool parse_int(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;  // 18 digits and a sign: no overflow
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return false;
  } else if (s.size() > 18) {
    return false;
  }
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return true;
}

// Reads a versioned record; nullopt on any other version.
std::optional<Fields> open_record(std::string_view text) {
  auto f = Fields::decode(text);
  if (!f || f->str("v") != kVersion) return std::nullopt;
  return f;
}

Fields new_record() {
  Fields f;
  f.set("v", kVersion);
  return f;
}

bool get_ints(const Fields& f, std::initializer_list<std::pair<const char*, int64_t*>> items) {
  for (const auto& [name, target] : items) {
    auto v = f.num(name);
    if (!v) return false;
    *target = *v;
  }
  return true;
}

}  // namespace

void put_pending(Fields& f, const PendingAuthz& p) {
  f.set("client_id", p.client_id);
  f.set("redirect_uri", p.redirect_uri);
  f.set_int("redirect_uri_sent", p.redirect_uri_sent ? 1 : 0);
  f.set("state", p.state);
  f.set("code_challenge", p.code_challenge);
  f.set("scope", p.scope);
  f.set("resource", p.resource);
  f.set_int("created", p.created);
}

std::optional<PendingAuthz> get_pending(const Fields& f) {
  PendingAuthz p;
  p.client_id = f.str("client_id");
  p.redirect_uri = f.str("redirect_uri");
  p.state = f.str("state");
  p.code_challenge = f.str("code_challenge");
  p.scope = f.str("scope");
  p.resource = f.str("resource");
  int64_t sent = 0;
  if (!get_ints(f, {{"redirect_uri_sent", &sent}, {"created", &p.created}})) return std::nullopt;
  p.redirect_uri_sent = sent != 0;
  if (p.client_id.empty() || p.redirect_uri.empty() || p.code_challenge.empty()) return std::nullopt;
  return p;
}


std::string Fields::str(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string() : it->second;
}

std::optional<int64_t> Fields::num(const std::string& name) const {
  auto it = values_.find(name);
  int64_t v = 0;
  if (it == values_.end() || !parse_int(it->second, &v)) return std::nullopt;
  return v;
}

std::string Fields::encode() const {
  Json obj(cJSON_CreateObject());
  if (!obj) throw std::bad_alloc();
  for (const auto& [k, v] : values_)
    if (!cJSON_AddStringToObject(obj.get(), k.c_str(), v.c_str())) throw std::bad_alloc();
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(obj.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  return text.get();
}

namespace {

// The records come from Fields::encode (cJSON_PrintUnformatted of a
// std::map of strings): {"k":"v",...}, keys in ascending order, no
// whitespace.  scan_plain reads exactly that shape without building a cJSON
// tree or a map (two records are read on every guarded request: the access
// token's and the session's).  Anything else -- an escape, a control byte,
// whitespace, keys out of order or repeated, trailing text, an empty object
// -- returns false, and the general path (cJSON) decides; so the fast path
// only ever accepts what the general path reads the same way.
struct PlainRecord {
  static constexpr size_t kMax = 32;
  std::string_view key[kMax], value[kMax];
  size_t n = 0;

  // The value of `name`; false when absent.  The mappings below read
  // fields in the records' (sorted) key order, so the field after the
  // previous hit is almost always the one asked for: that compare is inline,
  // the rest (absent fields, reads out of order) is not.
  bool get(std::string_view name, std::string_view* out) const {
    if (hint < n && key[hint] == name) {
      *out = value[hint];
      hint = hint + 1 < n ? hint + 1 : 0;
      return true;
    }
    return get_elsewhere(name, out);
  }
  bool get_elsewhere(std::string_view name, std::string_view* out) const {
    // The keys ascend: a name between the previous hit and the next key is
    // absent (a user's session has no subject_type), without a scan.
    if (hint < n && (hint == 0 || key[hint - 1] < name) && name < key[hint]) return false;
    for (size_t i = 0; i < n; ++i)
      if (key[i] == name) {
        *out = value[i];
        hint = i + 1 < n ? i + 1 : 0;
        return true;
      }
    return false;
  }
  mutable size_t hint = 0;
  std::string str(std::string_view name) const {
    std::string_view v;
    return get(name, &v) ? std::string(v) : std::string();
  }
  // str(name) into *out, reusing its buffer
  void str_into(std::string_view name, std::string* out) const {
    std::string_view v;
    if (get(name, &v)) {
      out->assign(v);
    } else {
      out->clear();
    }
  }
  bool num(std::string_view name, int64_t* out) const {
    std::string_view v;
    return get(name, &v) && parse_int(v, out);
  }
};

// a < b; the first bytes decide almost every pair of field names without a call
bool ascending(std::string_view a, std::string_view b) {
  if (!a.empty() && !b.empty() && a[0] != b[0])
    return static_cast<unsigned char>(a[0]) < static_cast<unsigned char>(b[0]);
  return a < b;
}

bool scan_plain(std::string_view json, PlainRecord* r) {
  size_t n = json.size(), i = 1;
  if (n < 2 || json[0] != '{' || json[n - 1] != '}' || json[1] == '}') return false;
  auto read_string = [&](std::string_view* s) {
    if (i >= n || json[i] != '"') return false;
    size_t start = ++i;
    i = json_string_run(json, i);
    if (i >= n || json[i] != '"') return false;
    *s = json.substr(start, i - start);
    ++i;
    return true;
  };
  r->n = 0;
  while (true) {
    if (r->n == PlainRecord::kMax) return false;
    std::string_view& k = r->key[r->n];
    std::string_view& v = r->value[r->n];
    if (!read_string(&k) || i >= n || json[i++] != ':' || !read_string(&v)) return false;
    if (r->n > 0 && !ascending(r->key[r->n - 1], k)) return false;  // order (and so no repeats)
    ++r->n;
    if (i >= n) return false;
    char c = json[i++];
    if (c == '}') return i == n;
    if (c != ',') return false;
  }
}

// A decoded Fields read the way a PlainRecord is.
struct FieldsRecord {
  const Fields& f;
  std::string str(std::string_view name) const { return f.str(std::string(name)); }
  void str_into(std::string_view name, std::string* out) const { *out = str(name); }
  bool num(std::string_view name, int64_t* out) const {
    auto v = f.num(std::string(name));
    if (v) *out = *v;
    return v.has_value();
  }
};

// One mapping per record, whichever way its text was read.  Every field of
// *s is set (so a reused Session keeps nothing of the previous one); false
// when the record is not a session.
template <typename Record>
bool session_into(const Record& r, Session* s) {
  // in the records' key order (see PlainRecord::get)
  r.str_into("claims", &s->claims);
  r.str_into("client_id", &s->client_id);
  s->created = s->expires = s->gen = s->provider_expires = s->rotated_at = 0;
  bool ints = r.num("created", &s->created);
  r.str_into("email", &s->email);
  r.str_into("exchanges", &s->exchanges);
  ints = r.num("expires", &s->expires) && ints;
  ints = r.num("gen", &s->gen) && ints;
  r.str_into("name", &s->name);
  r.str_into("provider_access_token", &s->provider_access_token);
  ints = r.num("provider_expires", &s->provider_expires) && ints;
  r.str_into("provider_refresh_token", &s->provider_refresh_token);
  r.str_into("redirect_uri", &s->redirect_uri);
  r.str_into("resource", &s->resource);
  ints = r.num("rotated_at", &s->rotated_at) && ints;
  r.str_into("scope", &s->scope);
  r.str_into("sid", &s->sid);
  r.str_into("sub", &s->sub);
  r.str_into("subject_type", &s->subject_type);
  return ints && !s->sid.empty() && !s->sub.empty() && !s->client_id.empty();
}

// Space-separated RFC 6749 §3.3 scope-tokens: every scope the gateway
// grants is one (they are checked at /authorize), and the guard writes the
// token's scope into the identity assertion, a JSON JWT that cannot carry
// other bytes; so claims with anything else were not sealed by us.
bool scope_chars_ok(std::string_view scope) {
  for (char c : scope)
    if (c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e) return false;
  return true;
}

template <typename Record>
std::optional<AccessClaims> access_from(const Record& r) {
  AccessClaims a;  // in the records' key order (see PlainRecord::get)
  a.client_id = r.str("client_id");
  bool exp = r.num("exp", &a.exp);
  a.resource = r.str("resource");
  a.scope = r.str("scope");
  a.sid = r.str("sid");
  if (exp && !a.sid.empty() && scope_chars_ok(a.scope)) return a;
  return std::nullopt;
}

}  // namespace

std::optional<Fields> Fields::decode(std::string_view json) {
  PlainRecord plain;
  if (scan_plain(json, &plain)) {
    Fields f;
    for (size_t i = 0; i < plain.n; ++i)
      f.values_.emplace_hint(f.values_.end(), std::string(plain.key[i]), std::string(plain.value[i]));
    return f;
  }
  Json obj(cJSON_ParseWithLength(json.data(), json.size()));
  if (!obj || !cJSON_IsObject(obj.get())) return std::nullopt;
  Fields f;
  for (cJSON* item = obj->child; item; item = item->next) {
    if (!cJSON_IsString(item) || !item->string || !item->valuestring) return std::nullopt;
    if (f.has(item->string)) return std::nullopt;
    f.values_[item->string] = item->valuestring;
  }
  return f;
}

void put_login(Fields& f, const LoginState& l) {
  put_pending(f, l.authz);
  f.set("provider_verifier", l.provider_verifier);
  f.set("nonce", l.nonce);
  f.set("browser_hash", l.browser_hash);
  if (l.remember) f.set("remember", "1");
  if (l.consent_after) f.set("consent_after", "1");
  if (l.account()) f.set("account", l.account_path);
  if (l.remembered_at > 0) f.set_int("remembered_at", l.remembered_at);
}

std::optional<LoginState> get_login(const Fields& f) {
  LoginState l;
  l.account_path = f.str("account");
  // an account sign-in carries no client's request
  auto p = get_pending(f);
  if (!p && !l.account()) return std::nullopt;
  if (p) l.authz = std::move(*p);
  l.provider_verifier = f.str("provider_verifier");
  l.nonce = f.str("nonce");
  l.browser_hash = f.str("browser_hash");
  l.remember = f.str("remember") == "1";
  l.consent_after = f.str("consent_after") == "1";
  l.remembered_at = f.num("remembered_at").value_or(0);
  if (l.provider_verifier.empty() || l.nonce.empty() || l.browser_hash.empty()) return std::nullopt;
  return l;
}

std::string encode_pending(const PendingAuthz& p) {
  Fields f = new_record();
  put_pending(f, p);
  return f.encode();
}

std::optional<PendingAuthz> decode_pending(std::string_view text) {
  auto f = open_record(text);
  if (!f) return std::nullopt;
  return get_pending(*f);
}

std::string encode_login(const LoginState& l) {
  Fields f = new_record();
  put_login(f, l);
  return f.encode();
}

std::optional<LoginState> decode_login(std::string_view text) {
  auto f = open_record(text);
  if (!f) return std::nullopt;
  return get_login(*f);
}

std::string encode_session(const Session& s) {
  Fields f = new_record();
  f.set("sid", s.sid);
  f.set("sub", s.sub);
  if (!s.subject_type.empty()) f.set("subject_type", s.subject_type);
  f.set("name", s.name);
  f.set("email", s.email);
  f.set("client_id", s.client_id);
  if (!s.claims.empty()) f.set("claims", s.claims);
  if (!s.exchanges.empty()) f.set("exchanges", s.exchanges);
  if (!s.redirect_uri.empty()) f.set("redirect_uri", s.redirect_uri);
  f.set("scope", s.scope);
  f.set("resource", s.resource);
  f.set("provider_access_token", s.provider_access_token);
  f.set("provider_refresh_token", s.provider_refresh_token);
  f.set_int("provider_expires", s.provider_expires);
  f.set_int("created", s.created);
  f.set_int("expires", s.expires);
  f.set_int("gen", s.gen);
  f.set_int("rotated_at", s.rotated_at);
  return f.encode();
}

void Session::wipe_provider_tokens() {
  wipe(provider_access_token);
  wipe(provider_refresh_token);
  provider_access_token.clear();
  provider_refresh_token.clear();
}

bool decode_session_into(std::string_view text, Session* out) {
  // Fast path (every guarded request): the same reads straight from the text.
  PlainRecord r;
  std::string_view version;
  if (scan_plain(text, &r) && r.get("v", &version) && version == kVersion && session_into(r, out)) return true;
  auto f = open_record(text);
  return f && session_into(FieldsRecord{*f}, out);
}

std::optional<Session> decode_session(std::string_view text) {
  Session s;
  if (decode_session_into(text, &s)) return s;
  return std::nullopt;
}

std::string encode_code(const CodeGrant& c) {
  Fields f = new_record();
  f.set("sid", c.sid);
  f.set("client_id", c.client_id);
  f.set("redirect_uri", c.redirect_uri);
  f.set_int("redirect_uri_sent", c.redirect_uri_sent ? 1 : 0);
  f.set("code_challenge", c.code_challenge);
  f.set("resource", c.resource);
  f.set("scope", c.scope);
  f.set_int("session_expires", c.session_expires);
  return f.encode();
}

std::optional<CodeGrant> decode_code(std::string_view text) {
  auto f = open_record(text);
  if (!f) return std::nullopt;
  CodeGrant c;
  c.sid = f->str("sid");
  c.client_id = f->str("client_id");
  c.redirect_uri = f->str("redirect_uri");
  c.code_challenge = f->str("code_challenge");
  c.resource = f->str("resource");
  c.scope = f->str("scope");
  int64_t sent = 0;
  if (!get_ints(*f, {{"redirect_uri_sent", &sent}, {"session_expires", &c.session_expires}}))
    return std::nullopt;
  c.redirect_uri_sent = sent != 0;
  if (c.sid.empty() || c.client_id.empty() || c.code_challenge.empty()) return std::nullopt;
  return c;
}

std::string encode_access(const AccessClaims& a) {
  Fields f = new_record();
  f.set("sid", a.sid);
  f.set("client_id", a.client_id);
  f.set("scope", a.scope);
  f.set("resource", a.resource);
  f.set_int("exp", a.exp);
  return f.encode();
}

std::optional<AccessClaims> decode_access(std::string_view text) {
  PlainRecord r;
  std::string_view version;
  if (scan_plain(text, &r) && r.get("v", &version) && version == kVersion)
    if (auto a = access_from(r)) return a;
  auto f = open_record(text);
  if (!f) return std::nullopt;
  return access_from(FieldsRecord{*f});
}

std::string encode_refresh(const RefreshClaims& r) {
  Fields f = new_record();
  f.set("sid", r.sid);
  f.set("client_id", r.client_id);
  f.set_int("gen", r.gen);
  f.set_int("exp", r.exp);
  return f.encode();
}

std::optional<RefreshClaims> decode_refresh(std::string_view text) {
  auto f = open_record(text);
  if (!f) return std::nullopt;
  RefreshClaims r;
  r.sid = f->str("sid");
  r.client_id = f->str("client_id");
  if (!get_ints(*f, {{"gen", &r.gen}, {"exp", &r.exp}}) || r.sid.empty()) return std::nullopt;
  return r;
}

}  // namespace mcpauth
