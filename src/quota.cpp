#include "quota.hpp"

#include <algorithm>
#include <charconv>

#include "crypto.hpp"

namespace mcpauth {
namespace {

constexpr int64_t kMaxCount = 1000000;  // a rate's N, and burst

// Digits only (from_chars would take a sign), at most 7.
bool parse_count(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string_view::npos) return false;
  std::from_chars(s.data(), s.data() + s.size(), *out);
  return true;
}

// A tool name as MCP clients send them: visible ASCII, no quotes.
bool tool_name_ok(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') return false;
  return true;
}

const char* period_word(int64_t period_ms) {
  return period_ms == 1000 ? "second" : period_ms == 60000 ? "minute" : "hour";
}

}  // namespace

int64_t QuotaRule::interval_us() const { return period_ms * 1000 / count; }

std::string QuotaRule::describe() const {
  std::string s = std::to_string(count);
  if (tool.empty()) s += count == 1 ? " request" : " requests";
  else s += (count == 1 ? " call of " : " calls of ") + tool;
  s += std::string(" per ") + period_word(period_ms) + (per == subject ? " per user" : " per client");
  if (burst) s += " (burst " + std::to_string(burst) + ")";
  return s;
}

std::optional<QuotaRule> QuotaRule::parse(std::string_view words, std::string* err) {
  static const std::string kName = "mcp_auth_limit";
  QuotaRule r;
  bool has_rate = false, has_per = false, has_burst = false, has_tool = false;
  size_t i = 0;
  while (i < words.size()) {
    while (i < words.size() && (words[i] == ' ' || words[i] == '\t')) ++i;
    if (i == words.size()) break;
    size_t j = i;
    while (j < words.size() && words[j] != ' ' && words[j] != '\t') ++j;
    std::string_view w = words.substr(i, j - i);
    i = j;
    size_t eq = w.find('=');
    std::string_view name = eq == std::string_view::npos ? w : w.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : w.substr(eq + 1);
    auto bad = [&](const std::string& why) {
      *err = kName + ": \"" + std::string(w) + "\": " + why;
      return std::nullopt;
    };
    bool* seen = name == "rate" ? &has_rate : name == "per" ? &has_per : name == "burst" ? &has_burst
                 : name == "tool" ? &has_tool : nullptr;
    if (!seen || eq == std::string_view::npos)
      return bad("expected rate=Nr/s|Nr/m|Nr/h, per=subject|client, burst=N or tool=NAME");
    if (*seen) return bad("given twice");
    *seen = true;
    if (name == "rate") {
      // N "r/" unit
      size_t slash = value.find("r/");
      if (slash == std::string_view::npos || slash + 3 != value.size() || !parse_count(value.substr(0, slash), &r.count) ||
          r.count < 1 || r.count > kMaxCount)
        return bad("the rate must be Nr/s, Nr/m or Nr/h with N from 1 to 1000000");
      char unit = value.back();
      r.period_ms = unit == 's' ? 1000 : unit == 'm' ? 60000 : unit == 'h' ? 3600000 : 0;
      if (!r.period_ms) return bad("the rate must be Nr/s, Nr/m or Nr/h with N from 1 to 1000000");
    } else if (name == "per") {
      if (value == "subject") r.per = subject;
      else if (value == "client") r.per = client;
      else return bad("per must be subject or client");
    } else if (name == "burst") {
      if (!parse_count(value, &r.burst) || r.burst > kMaxCount) return bad("burst must be a number from 0 to 1000000");
    } else {
      if (!tool_name_ok(value)) return bad("not a tool name");
      r.tool = std::string(value);
    }
  }
  if (!has_rate) {
    *err = kName + " needs rate=Nr/s, Nr/m or Nr/h";
    return std::nullopt;
  }
  if (!has_per) {
    *err = kName + " needs per=subject or per=client";
    return std::nullopt;
  }
  r.text = "rate=" + std::to_string(r.count) + "r/" + std::string(1, period_word(r.period_ms)[0]) +
           " per=" + (r.per == subject ? "subject" : "client") + " burst=" + std::to_string(r.burst) +
           (r.tool.empty() ? "" : " tool=" + r.tool);
  return r;
}

std::optional<std::vector<QuotaRule>> parse_quota_rules(std::string_view lines, std::string* err) {
  std::vector<QuotaRule> rules;
  size_t i = 0;
  while (i < lines.size()) {
    size_t j = lines.find('\n', i);
    if (j == std::string_view::npos) j = lines.size();
    std::string_view line = lines.substr(i, j - i);
    i = j + 1;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto r = QuotaRule::parse(line, err);
    if (!r) return std::nullopt;
    if (rules.size() == kMaxQuotaRules) {
      *err = "mcp_auth_limit: at most " + std::to_string(kMaxQuotaRules) + " a location";
      return std::nullopt;
    }
    rules.push_back(std::move(*r));
  }
  return rules;
}

QuotaStep quota_step(std::optional<int64_t> tat_us, int64_t now_ms, const QuotaRule& rule, int64_t cost) {
  const int64_t t = rule.interval_us();
  const int64_t tau = rule.burst * t;
  const int64_t now_us = now_ms * 1000;
  const int64_t tat = std::max(tat_us.value_or(now_us), now_us);
  const int64_t next = tat + cost * t;
  const int64_t allowed_from = next - tau - t;  // when this request fits the bucket
  QuotaStep s;
  if (now_us >= allowed_from) {
    s.allowed = true;
    s.tat_us = next;
    s.expires = (next + 999999) / 1000000 + 1;  // full again by then
  } else {
    s.retry_after_us = allowed_from - now_us;
  }
  return s;
}

std::string quota_key(const QuotaRule& rule, std::string_view who) {
  // the rule as written names its buckets: a changed rule starts afresh,
  // and the same rule in two locations shares them
  return "quota:" + sha256_b64url(rule.text).substr(0, 11) + ":" + sha256_b64url(who);
}

namespace {

bool parse_tat(const std::string& v, int64_t* out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && p == v.data() + v.size() && *out >= 0;
}

int64_t whole_seconds(int64_t us) { return std::max<int64_t>(1, (us + 999999) / 1000000); }

}  // namespace

QuotaOutcome quota_spend(Store& store, const std::vector<QuotaRule>& rules, const int64_t* cost,
                         std::string_view subject, std::string_view client_id, int64_t now_ms) {
  struct Bucket {
    size_t rule;
    std::string key, read;
    bool exists = false;
    QuotaStep step;
  };
  QuotaOutcome out;
  std::vector<Bucket> buckets;

  // Reads the bucket and takes the step; false when the store failed (out set).
  auto look = [&](Bucket& b) {
    StoreStatus st = store.get(b.key, &b.read);
    if (st == StoreStatus::pending) {
      out.verdict = QuotaOutcome::pending;
      return false;
    }
    if (st != StoreStatus::ok && st != StoreStatus::not_found) {
      out.verdict = QuotaOutcome::unavailable;
      return false;
    }
    int64_t tat = 0;
    // a value that does not read is taken for a full bucket
    b.exists = st == StoreStatus::ok;
    bool known = b.exists && parse_tat(b.read, &tat);
    b.step = quota_step(known ? std::optional<int64_t>(tat) : std::nullopt, now_ms, rules[b.rule], cost[b.rule]);
    return true;
  };
  // the rule that makes the client wait longest is the one it is told of
  auto refuse = [&](const Bucket& b) {
    const int64_t s = whole_seconds(b.step.retry_after_us);
    if (out.verdict != QuotaOutcome::limited || s > out.retry_after_s) {
      out.rule = int(b.rule);
      out.retry_after_s = s;
    }
    out.verdict = QuotaOutcome::limited;
  };

  for (size_t i = 0; i < rules.size(); ++i) {
    if (cost[i] <= 0) continue;
    Bucket b;
    b.rule = i;
    b.key = quota_key(rules[i], rules[i].per == QuotaRule::subject ? subject : client_id);
    if (!look(b)) return out;
    if (!b.step.allowed) refuse(b);
    buckets.push_back(std::move(b));
  }
  if (out.verdict == QuotaOutcome::limited) return out;  // nothing spent

  for (auto& b : buckets) {
    for (int attempt = 1;; ++attempt) {
      const std::string value = std::to_string(b.step.tat_us);
      StoreStatus st = b.exists ? store.replace_if(b.key, b.read, value, b.step.expires)
                                : store.put_new(b.key, value, b.step.expires);
      if (st == StoreStatus::ok) break;
      if (st == StoreStatus::pending) {
        out.verdict = QuotaOutcome::pending;
        return out;
      }
      if (st != StoreStatus::conflict && st != StoreStatus::not_found && st != StoreStatus::exists) {
        out.verdict = QuotaOutcome::unavailable;
        return out;
      }
      // another request spent from this bucket first: look again
      if (attempt == kQuotaAttempts) {
        out.verdict = QuotaOutcome::limited;
        out.rule = int(b.rule);
        out.retry_after_s = 1;
        return out;
      }
      if (!look(b)) return out;
      if (!b.step.allowed) {
        refuse(b);
        return out;
      }
    }
  }
  return out;
}

}  // namespace mcpauth
