// Quotas of the guard (mcp_auth_limit): a token bucket per user or per
// client, for every MCP request or for the calls of one tool, kept in the
// store so that every worker -- and, with Redis, every node -- spends from
// the same bucket.
//
// The bucket is GCRA (the generic cell rate algorithm): its whole state is
// one number, the theoretical arrival time (TAT) of the next request at the
// steady rate, in microseconds.  A request of cost k is allowed when
//   max(TAT, now) + k*T - now <= tau + T
// with T the interval between requests at the rate and tau = burst*T the
// tolerance; the new TAT is max(TAT, now) + k*T.  It allows burst+1
// requests at once, then one per T: the semantics of nginx's limit_req.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace mcpauth {

struct QuotaRule {
  enum Per { subject, client };

  int64_t count = 0;      // rate: count requests ...
  int64_t period_ms = 0;  // ... per period (1 s, 1 min, 1 h)
  Per per = subject;
  int64_t burst = 0;  // extra requests allowed at once beyond the rate
  std::string tool;   // "": every request; else the tools/call of this tool
  std::string text;   // the rule as written, normalized: names its buckets

  // The interval between two requests at the rate (T), in microseconds.
  int64_t interval_us() const;
  // For people: "10 calls of save_snippet per minute per user".
  std::string describe() const;

  // One directive's words, "rate=10r/m per=subject burst=5 tool=NAME", in
  // any order (tabs or spaces between them).  nullopt with a message
  // naming the problem.
  static std::optional<QuotaRule> parse(std::string_view words, std::string* err);
};

// At most this many rules a location: each one is a store round trip.
constexpr size_t kMaxQuotaRules = 16;

// The rules of a location: one rule a line ("\n"), as the glue keeps them.
std::optional<std::vector<QuotaRule>> parse_quota_rules(std::string_view lines, std::string* err);

// One step of the bucket, pure: the state read (nullopt: no bucket yet, it
// is full), the time, the rule and the cost.
struct QuotaStep {
  bool allowed = false;
  int64_t tat_us = 0;          // allowed: the state to write
  int64_t retry_after_us = 0;  // denied: when this request would pass
  int64_t expires = 0;         // allowed: when the bucket is full again (s, for the store)
};
QuotaStep quota_step(std::optional<int64_t> tat_us, int64_t now_ms, const QuotaRule& rule, int64_t cost);

// The store key of a rule's bucket for one user or client.
std::string quota_key(const QuotaRule& rule, std::string_view who);

// Spends `cost[i]` of every rule i whose cost is not 0, all or nothing as
// far as the store allows: every bucket is read and checked first, so a
// request one rule refuses spends nothing; then each one is written with
// compare-and-set (replace_if, or put_new for a new bucket), read again and
// rechecked on a conflict, at most kQuotaAttempts times.  A bucket that
// two requests race for that long is under a flood: the request is refused
// as over the limit (retry in 1 s).  (Only a race lost after an earlier
// rule was written can leave that rule spent for a refused request.)
constexpr int kQuotaAttempts = 4;

struct QuotaOutcome {
  enum Verdict { allowed, limited, unavailable, pending } verdict = allowed;
  int rule = -1;                // limited: the rule that makes it wait longest
  int64_t retry_after_s = 0;    // limited: whole seconds, at least 1
};
QuotaOutcome quota_spend(Store& store, const std::vector<QuotaRule>& rules, const int64_t* cost,
                         std::string_view subject, std::string_view client_id, int64_t now_ms);

}  // namespace mcpauth
