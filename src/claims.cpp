#include "claims.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "encoding.hpp"
#include "json.hpp"
#include "tool_policy.hpp"  // valid_scope_token

namespace mcpauth {
namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) j = s.size();
    out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

// A claim's scalar as the rules compare it; false for anything else.
bool scalar_text(const cJSON* v, std::string* out) {
  if (cJSON_IsString(v)) {
    out->assign(v->valuestring);
    return true;
  }
  if (cJSON_IsBool(v)) {
    out->assign(cJSON_IsTrue(v) ? "true" : "false");
    return true;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    // integers only, within the range a double holds exactly
    if (!(std::fabs(d) <= 9007199254740992.0) || d != std::floor(d)) return false;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRId64, static_cast<int64_t>(d));
    out->assign(buf);
    return true;
  }
  return false;
}

bool one_of(const std::string& text, const std::vector<std::string>& values) {
  return std::find(values.begin(), values.end(), text) != values.end();
}

// Calls f(text) for each scalar the claim holds (itself, or its array's).
template <typename F>
void each_value(const cJSON* v, F f) {
  std::string text;
  if (cJSON_IsArray(v)) {
    for (const cJSON* e = v->child; e; e = e->next)
      if (scalar_text(e, &text)) f(text);
  } else if (scalar_text(v, &text)) {
    f(text);
  }
}

std::string parse_condition(const std::string& directive, const std::vector<std::string>& w, size_t from,
                            ClaimCondition* c) {
  if (w.size() < from + 2) return directive + ": a claim path and at least one value are needed";
  c->path = w[from];
  if (c->path.empty() || c->path.size() > kMaxClaimPathBytes || !printable(c->path) ||
      c->path.front() == '.' || c->path.back() == '.' || c->path.find("..") != std::string::npos)
    return directive + ": \"" + c->path + "\" is not a claim path";
  if (static_cast<size_t>(std::count(c->path.begin(), c->path.end(), '.')) >= kMaxClaimPathDepth)
    return directive + ": \"" + c->path + "\" is nested too deep (at most " + std::to_string(kMaxClaimPathDepth) +
           " names)";
  if (w.size() - from - 1 > kMaxClaimValues)
    return directive + ": at most " + std::to_string(kMaxClaimValues) + " values";
  for (size_t i = from + 1; i < w.size(); ++i) {
    const std::string& v = w[i];
    if (v.empty() || v.size() > kMaxClaimValueBytes || !printable(v))
      return directive + ": \"" + v + "\" is not a claim value (1 to " + std::to_string(kMaxClaimValueBytes) +
             " printable bytes)";
    if (!one_of(v, c->values)) c->values.push_back(v);
  }
  return "";
}

void json_string(std::string* out, std::string_view s) {
  Json str(must(cJSON_CreateString(std::string(s).c_str())));
  out->append(json_text(str.get()));
}

}  // namespace

std::string ClaimCondition::describe() const {
  std::string out = path;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? " or " : " = ") + values[i];
  return out;
}

const cJSON* claim_at(const cJSON* claims, std::string_view path) {
  if (!cJSON_IsObject(claims) || path.empty()) return nullptr;
  // a top-level claim named by the whole path first
  const cJSON* whole = nullptr;
  for (const cJSON* m = claims->child; m; m = m->next)
    if (m->string && path == m->string) whole = m;  // the last of repeated names, as JSON.parse reads them
  if (whole) return whole;
  const cJSON* at = claims;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('.', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view name = path.substr(i, j - i);
    if (!cJSON_IsObject(at)) return nullptr;
    const cJSON* next = nullptr;
    for (const cJSON* m = at->child; m; m = m->next)
      if (m->string && name == m->string) next = m;
    if (!next) return nullptr;
    at = next;
    i = j + 1;
  }
  return at;
}

bool claim_matches(const cJSON* claims, const ClaimCondition& c) {
  const cJSON* v = claim_at(claims, c.path);
  if (!v) return false;
  bool found = false;
  each_value(v, [&](const std::string& text) { found = found || one_of(text, c.values); });
  return found;
}

void ClaimSet::add(const std::string& path, const std::string& value) {
  for (auto& [p, values] : entries_)
    if (p == path) {
      if (!one_of(value, values)) values.push_back(value);
      return;
    }
  entries_.push_back({path, {value}});
}

bool ClaimSet::satisfies(const ClaimCondition& c) const {
  for (const auto& [p, values] : entries_)
    if (p == c.path)
      for (const auto& v : values)
        if (one_of(v, c.values)) return true;
  return false;
}

std::string ClaimSet::to_json() const {
  std::string out = "{";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i) out += ',';
    json_string(&out, entries_[i].first);
    out += ":[";
    for (size_t k = 0; k < entries_[i].second.size(); ++k) {
      if (k) out += ',';
      json_string(&out, entries_[i].second[k]);
    }
    out += ']';
  }
  return out + "}";
}

std::optional<ClaimSet> ClaimSet::from_cjson(const cJSON* object) {
  if (!cJSON_IsObject(object)) return std::nullopt;
  ClaimSet set;
  for (const cJSON* m = object->child; m; m = m->next) {
    if (!m->string || !cJSON_IsArray(m)) return std::nullopt;
    for (const cJSON* e = m->child; e; e = e->next) {
      if (!cJSON_IsString(e)) return std::nullopt;
      set.add(m->string, e->valuestring);
    }
  }
  return set;
}

std::optional<ClaimSet> ClaimSet::from_json(std::string_view text) {
  if (text.empty()) return ClaimSet();
  Json j(cJSON_ParseWithLength(text.data(), text.size()));
  if (!j) return std::nullopt;
  return from_cjson(j.get());
}

std::string ClaimSet::to_record() const {
  std::string out;
  for (const auto& [path, values] : entries_) {
    if (!out.empty()) out += '&';
    out += pct_encode(path);
    for (size_t k = 0; k < values.size(); ++k) out += (k ? ',' : '=') + pct_encode(values[k]);
  }
  return out;
}

std::optional<ClaimSet> ClaimSet::from_record(std::string_view text) {
  ClaimSet set;
  if (text.empty()) return set;
  for (const auto& entry : split(text, '&')) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos) return std::nullopt;
    auto path = pct_decode(std::string_view(entry).substr(0, eq), false);
    if (!path || path->empty()) return std::nullopt;
    for (const auto& v : split(std::string_view(entry).substr(eq + 1), ',')) {
      auto value = pct_decode(v, false);
      if (!value || value->empty()) return std::nullopt;
      set.add(*path, *value);
    }
  }
  return set;
}

std::optional<AccessRules> AccessRules::parse(std::string_view lines, std::string* error) {
  AccessRules r;
  size_t count = 0;
  for (const auto& line : split(lines, '\n')) {
    if (line.empty()) continue;
    std::vector<std::string> w = split(line, '\t');
    const std::string& kind = w[0];
    std::string err;
    if (++count > kMaxClaimRules) {
      *error = "at most " + std::to_string(kMaxClaimRules) + " claim rules";
      return std::nullopt;
    }
    if (kind == "login") {
      ClaimCondition c;
      err = parse_condition("mcp_auth_require_claim", w, 1, &c);
      if (err.empty()) r.login_.push_back(std::move(c));
    } else if (kind == "email") {
      if (w.size() < 2) err = "mcp_auth_require_email_domain: no domain given";
      for (size_t i = 1; i < w.size() && err.empty(); ++i) {
        std::string d = lower(w[i]);
        bool ok = !d.empty() && d.size() <= 253 && d.front() != '.' && d.back() != '.';
        for (char ch : d) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.');
        if (!ok) err = "mcp_auth_require_email_domain: \"" + w[i] + "\" is not a domain name";
        else if (!one_of(d, r.domains_)) r.domains_.push_back(d);
      }
    } else if (kind == "scope" || kind == "tool") {
      const std::string directive = kind == "scope" ? "mcp_auth_scope_claim" : "mcp_auth_tool_claim";
      Named n;
      if (w.size() < 2) {
        err = directive + ": no " + kind + " given";
      } else {
        n.name = w[1];
        if (kind == "scope" && !valid_scope_token(n.name))
          err = directive + ": \"" + n.name + "\" is not a valid scope";
        else if (kind == "tool" && (n.name.empty() || n.name.size() > 128 || !printable(n.name) ||
                                    n.name.find('/') != std::string::npos))
          err = directive + ": \"" + n.name + "\" is not a tool name";
        else
          err = parse_condition(directive, w, 2, &n.cond);
      }
      if (err.empty()) (kind == "scope" ? r.scope_ : r.tool_).push_back(std::move(n));
    } else {
      err = "unknown claim rule \"" + kind + "\"";
    }
    if (!err.empty()) {
      *error = err;
      return std::nullopt;
    }
  }
  return r;
}

std::string AccessRules::admit(const cJSON* claims) const {
  for (const auto& c : login_)
    if (!claim_matches(claims, c)) return "claim " + c.path;
  if (!domains_.empty()) {
    const cJSON* email = cJSON_GetObjectItemCaseSensitive(claims, "email");
    if (!cJSON_IsString(email)) return "email";
    // a provider that says the address is unverified is not believed
    const cJSON* verified = cJSON_GetObjectItemCaseSensitive(claims, "email_verified");
    if (verified && !cJSON_IsTrue(verified)) return "email_verified";
    std::string_view e(email->valuestring);
    size_t at = e.rfind('@');
    if (at == std::string_view::npos || at == 0) return "email";
    if (!one_of(lower(std::string(e.substr(at + 1))), domains_)) return "email domain";
  }
  return "";
}

std::string AccessRules::admit(std::string_view payload) const {
  Json j(cJSON_ParseWithLength(payload.data(), payload.size()));
  if (!j || !cJSON_IsObject(j.get())) return "claims";
  return admit(j.get());
}

ClaimSet AccessRules::keep(const cJSON* claims) const {
  ClaimSet set;
  auto take = [&](const ClaimCondition& c) {
    const cJSON* v = claim_at(claims, c.path);
    if (!v) return;
    each_value(v, [&](const std::string& text) {
      if (one_of(text, c.values)) set.add(c.path, text);
    });
  };
  for (const auto& c : login_) take(c);
  for (const auto& n : scope_) take(n.cond);
  for (const auto& n : tool_) take(n.cond);
  return set;
}

ClaimSet AccessRules::keep(std::string_view payload) const {
  Json j(cJSON_ParseWithLength(payload.data(), payload.size()));
  if (!j || !cJSON_IsObject(j.get())) return ClaimSet();
  return keep(j.get());
}

bool AccessRules::may_hold(std::string_view scope, const ClaimSet& kept) const {
  for (const auto& n : scope_)
    if (n.name == scope && !kept.satisfies(n.cond)) return false;
  return true;
}

std::string AccessRules::holdable(std::string_view scope, const ClaimSet& kept) const {
  std::string out;
  for (const auto& w : split(scope, ' ')) {
    if (w.empty() || !may_hold(w, kept)) continue;
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

bool AccessRules::may_call(std::string_view tool, const ClaimSet& kept, const ClaimCondition** failed) const {
  for (const auto& n : tool_)
    if (n.name == tool && !kept.satisfies(n.cond)) {
      if (failed) *failed = &n.cond;
      return false;
    }
  return true;
}

bool AccessRules::restricts_scope(std::string_view scope) const {
  for (const auto& n : scope_)
    if (n.name == scope) return true;
  return false;
}

bool AccessRules::names_tool(std::string_view tool) const {
  for (const auto& n : tool_)
    if (n.name == tool) return true;
  return false;
}

}  // namespace mcpauth
