// The claim rules (claims.hpp) on any claims object a provider could send,
// and the session's and the assertion's forms of what is kept.  Properties:
// deciding on the kept claims is deciding on the whole ID token; what is
// kept names only values the rules name; both forms read back the same.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "claims.hpp"
#include "json.hpp"

using namespace mcpauth;

namespace {

const AccessRules& rules() {
  static const AccessRules r = [] {
    std::string err;
    auto p = AccessRules::parse(
        "login\ttid\tt1\tt2\n"
        "scope\twrite\tgroups\teditors\tadmins\n"
        "scope\twrite\trealm_access.roles\tw\n"
        "tool\tsave\thttps://x.example/roles\towner\n"
        "tool\tsave\ta.b.c\ttrue\t3\n",
        &err);
    if (!p) __builtin_trap();
    return *p;
  }();
  return r;
}

const std::vector<ClaimCondition>& conditions() {
  static const std::vector<ClaimCondition> c = {{"tid", {"t1", "t2"}},
                                                {"groups", {"editors", "admins"}},
                                                {"realm_access.roles", {"w"}},
                                                {"https://x.example/roles", {"owner"}},
                                                {"a.b.c", {"true", "3"}}};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Json claims(cJSON_ParseWithLength(text.data(), text.size()));
  if (claims && cJSON_IsObject(claims.get())) {
    (void)rules().admit(claims.get());
    ClaimSet kept = rules().keep(claims.get());
    for (const auto& c : conditions())
      if (kept.satisfies(c) != claim_matches(claims.get(), c)) __builtin_trap();
    for (const auto& [path, values] : kept.entries())
      for (const auto& v : values) {
        bool named = false;
        for (const auto& c : conditions())
          for (const auto& w : c.values) named = named || (c.path == path && w == v);
        if (!named) __builtin_trap();
      }
    auto back = ClaimSet::from_record(kept.to_record());
    if (!back || back->to_json() != kept.to_json()) __builtin_trap();
    auto json = ClaimSet::from_json(kept.to_json());
    if (!json || json->to_record() != kept.to_record()) __builtin_trap();
    (void)rules().holdable("read write other", kept);
    (void)rules().may_call("save", kept);
  }
  // the record form, as a session could hold it
  if (auto r = ClaimSet::from_record(text)) {
    auto again = ClaimSet::from_record(r->to_record());
    if (!again || again->to_record() != r->to_record()) __builtin_trap();
  }
  (void)ClaimSet::from_json(text);
  return 0;
}
