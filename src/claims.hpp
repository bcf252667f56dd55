// Access from the identity provider's claims: who may log in
// (mcp_auth_require_claim, mcp_auth_require_email_domain), which scopes a
// user may hold (mcp_auth_scope_claim) and which tools a user may call
// (mcp_auth_tool_claim).  Pure: the ID token's verified payload in,
// decisions out.  The gateway and the tool server (--tool-claim) share it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct cJSON;

namespace mcpauth {

// A condition on one claim: its value equals one of `values` or, when it
// is an array, holds one of them.  A string compares exactly, a boolean as
// true/false, an integer in decimal; objects, null, other numbers and a
// missing claim never match.
//
// The path names a member of the claims, or of objects nested in them,
// joined by '.' ("realm_access.roles").  A top-level claim whose own name
// is the whole path wins ("https://example.com/roles", as Auth0 names
// custom claims).
struct ClaimCondition {
  std::string path;
  std::vector<std::string> values;

  // "PATH VALUE..." as the directive wrote it; "PATH = VALUE, ..." for the
  // 403 page and the logs.
  std::string describe() const;
};

inline constexpr size_t kMaxClaimPathBytes = 128;
inline constexpr size_t kMaxClaimPathDepth = 8;
inline constexpr size_t kMaxClaimValueBytes = 256;
inline constexpr size_t kMaxClaimRules = 64;
inline constexpr size_t kMaxClaimValues = 64;  // per rule

// The member at `path` (see ClaimCondition), or null.
const cJSON* claim_at(const cJSON* claims, std::string_view path);
// Whether the claims satisfy the condition.
bool claim_matches(const cJSON* claims, const ClaimCondition& c);

// The claims a session keeps and the identity assertion carries: for each
// path a rule names, the user's values that the rules name there (nothing
// else of the user's claims is kept, so its size is bounded by the
// configuration).
class ClaimSet {
 public:
  using Entry = std::pair<std::string, std::vector<std::string>>;

  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  void add(const std::string& path, const std::string& value);
  bool satisfies(const ClaimCondition& c) const;

  // {"groups":["editors"],"realm_access.roles":["admin"]}; "{}" when empty.
  std::string to_json() const;
  // The object to_json writes (paths to arrays of strings), else nullopt.
  // "" is the empty set (a session from before any rule).
  static std::optional<ClaimSet> from_json(std::string_view text);
  static std::optional<ClaimSet> from_cjson(const cJSON* object);
  // As a session record keeps it: "PATH=VALUE,VALUE&PATH=VALUE", every
  // name and value percent-encoded, so the record stays free of escapes
  // (its fast reader, session.cpp); "" when empty.
  std::string to_record() const;
  static std::optional<ClaimSet> from_record(std::string_view text);

 private:
  std::vector<Entry> entries_;  // in the order of the rules
};

// The rules of one configuration.  Every rule must hold (the directives
// are joined by AND; the values of one directive by OR).
class AccessRules {
 public:
  // One rule per line, as the directives wrote them:
  //   login PATH VALUE...          mcp_auth_require_claim
  //   email DOMAIN...              mcp_auth_require_email_domain
  //   scope SCOPE PATH VALUE...    mcp_auth_scope_claim
  //   tool NAME PATH VALUE...      mcp_auth_tool_claim
  // nullopt with a message naming the directive on a bad line.
  static std::optional<AccessRules> parse(std::string_view lines, std::string* error);

  bool empty() const { return login_.empty() && domains_.empty() && scope_.empty() && tool_.empty(); }
  bool has_tool_rules() const { return !tool_.empty(); }
  bool has_scope_rules() const { return !scope_.empty(); }

  // Login admission on the ID token's verified payload (a JSON object):
  // "" when admitted, else the first condition that failed (for the audit
  // log; never shown with the user's values).
  std::string admit(const cJSON* claims) const;
  std::string admit(std::string_view payload) const;
  // What the session keeps of the claims (ClaimSet).
  ClaimSet keep(const cJSON* claims) const;
  ClaimSet keep(std::string_view payload) const;

  // Whether a user with these claims may hold `scope` (no rule: yes).
  bool may_hold(std::string_view scope, const ClaimSet& kept) const;
  // The words of `scope` the user may hold, in order, space-separated.
  std::string holdable(std::string_view scope, const ClaimSet& kept) const;
  // Whether the user may call `tool` (no rule: yes); the first condition
  // that fails in *failed.
  bool may_call(std::string_view tool, const ClaimSet& kept, const ClaimCondition** failed = nullptr) const;
  // Whether a scope rule names `scope` (not every user may hold it).
  bool restricts_scope(std::string_view scope) const;
  // Whether any tool rule names `tool`.
  bool names_tool(std::string_view tool) const;

 private:
  struct Named {
    std::string name;  // scope or tool
    ClaimCondition cond;
  };
  std::vector<ClaimCondition> login_;
  std::vector<std::string> domains_;  // lower case
  std::vector<Named> scope_, tool_;
};

}  // namespace mcpauth
