// Claim rules (claims.hpp): paths, value types, missing and oversized
// claims, what a session keeps, and the decisions made on it.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "claims.hpp"
#include "json.hpp"

using namespace mcpauth;

namespace {

Json parse(const std::string& text) {
  Json j(cJSON_Parse(text.c_str()));
  EXPECT_TRUE(j) << text;
  return j;
}

AccessRules rules(const std::string& lines) {
  std::string err;
  auto r = AccessRules::parse(lines, &err);
  EXPECT_TRUE(r) << err;
  return r ? *r : AccessRules();
}

std::string parse_error(const std::string& lines) {
  std::string err;
  EXPECT_FALSE(AccessRules::parse(lines, &err)) << lines;
  return err;
}

bool matches(const std::string& claims, const std::string& path, std::vector<std::string> values) {
  Json j = parse(claims);
  return claim_matches(j.get(), ClaimCondition{path, std::move(values)});
}

const char* kKeycloak = R"({"sub":"u1","realm_access":{"roles":["offline_access","mcp-admin"]},
  "resource_access":{"mcp-gateway":{"roles":["editor"]}},"groups":["/staff","editors"],
  "tid":"72f988bf","email_verified":true,"email":"Ann@Example.COM","level":3,"admin":false,
  "https://example.com/roles":["owner"],"https://example":{"com/roles":["nested"]}})";

}  // namespace

TEST(ClaimPath, NamesTopLevelAndNestedMembers) {
  EXPECT_TRUE(matches(kKeycloak, "tid", {"72f988bf"}));
  EXPECT_TRUE(matches(kKeycloak, "realm_access.roles", {"mcp-admin"}));
  EXPECT_TRUE(matches(kKeycloak, "resource_access.mcp-gateway.roles", {"editor"}));
  EXPECT_FALSE(matches(kKeycloak, "realm_access.roles", {"editor"}));
  EXPECT_FALSE(matches(kKeycloak, "realm_access", {"mcp-admin"}));  // an object never matches
}

TEST(ClaimPath, AWholeTopLevelNameWinsOverNesting) {
  // Auth0 names custom claims with URLs, dots and all
  EXPECT_TRUE(matches(kKeycloak, "https://example.com/roles", {"owner"}));
  EXPECT_FALSE(matches(kKeycloak, "https://example.com/roles", {"nested"}));
}

TEST(ClaimPath, MissingClaimsAndPathsThroughScalarsNeverMatch) {
  EXPECT_FALSE(matches(kKeycloak, "roles", {"editor"}));
  EXPECT_FALSE(matches(kKeycloak, "tid.x", {"72f988bf"}));
  EXPECT_FALSE(matches(kKeycloak, "realm_access.roles.x", {"mcp-admin"}));
  EXPECT_FALSE(matches("{}", "groups", {"editors"}));
  EXPECT_FALSE(matches("[]", "groups", {"editors"}));
}

TEST(ClaimValue, StringsCompareExactly) {
  EXPECT_TRUE(matches(kKeycloak, "groups", {"editors"}));
  EXPECT_TRUE(matches(kKeycloak, "groups", {"nobody", "/staff"}));
  EXPECT_FALSE(matches(kKeycloak, "groups", {"Editors"}));
  EXPECT_FALSE(matches(kKeycloak, "groups", {"editor"}));
  EXPECT_FALSE(matches(kKeycloak, "tid", {"72f988bf "}));
}

TEST(ClaimValue, BooleansAndIntegersCompareAsText) {
  EXPECT_TRUE(matches(kKeycloak, "email_verified", {"true"}));
  EXPECT_FALSE(matches(kKeycloak, "email_verified", {"false"}));
  EXPECT_TRUE(matches(kKeycloak, "admin", {"false"}));
  EXPECT_TRUE(matches(kKeycloak, "level", {"3"}));
  EXPECT_FALSE(matches(kKeycloak, "level", {"3.0"}));
  EXPECT_FALSE(matches(R"({"x":3.5})", "x", {"3.5"}));  // only integers
  EXPECT_TRUE(matches(R"({"x":[1,true,"a"]})", "x", {"true"}));
  EXPECT_FALSE(matches(R"({"x":null})", "x", {"null"}));
  EXPECT_FALSE(matches(R"({"x":{"a":1}})", "x", {"a"}));
  EXPECT_FALSE(matches(R"({"x":[["editors"]]})", "x", {"editors"}));  // arrays of arrays are not searched
}

TEST(ClaimValue, OversizedClaimsKeepTheSessionBounded) {
  // 20,000 groups and a 100 KB string: only what the rules name is kept
  std::string many = R"({"groups":[)";
  for (int i = 0; i < 20000; ++i) many += "\"g" + std::to_string(i) + "\",";
  many += R"("editors"],"huge":")" + std::string(100000, 'a') + "\"}";
  AccessRules r = rules("tool\tsave_snippet\tgroups\teditors\tadmins\ntool\tx\thuge\tb\n");
  Json j = parse(many);
  ClaimSet kept = r.keep(j.get());
  EXPECT_EQ(kept.to_json(), R"({"groups":["editors"]})");
  EXPECT_LT(kept.to_record().size(), 64u);
  // a value longer than a rule may name cannot be one
  EXPECT_FALSE(parse_error("login\thuge\t" + std::string(kMaxClaimValueBytes + 1, 'a') + "\n").empty());
}

TEST(AccessRulesParse, RefusesWhatCannotBeARule) {
  EXPECT_NE(parse_error("login\tgroups\n").find("mcp_auth_require_claim"), std::string::npos);
  EXPECT_NE(parse_error("login\t.groups\tx\n").find("not a claim path"), std::string::npos);
  EXPECT_NE(parse_error("login\ta..b\tx\n").find("not a claim path"), std::string::npos);
  EXPECT_NE(parse_error("login\ta.b.c.d.e.f.g.h.i\tx\n").find("too deep"), std::string::npos);
  EXPECT_NE(parse_error("scope\tbad\"scope\tgroups\tx\n").find("not a valid scope"), std::string::npos);
  EXPECT_NE(parse_error("tool\ta/b\tgroups\tx\n").find("not a tool name"), std::string::npos);
  EXPECT_NE(parse_error("email\tnot a domain\n").find("not a domain"), std::string::npos);
  EXPECT_NE(parse_error("login\tgroups\tx\x01y\n").find("not a claim value"), std::string::npos);
  EXPECT_NE(parse_error("other\tx\ty\n").find("unknown"), std::string::npos);
  std::string many;
  for (size_t i = 0; i <= kMaxClaimRules; ++i) many += "login\tgroups\tx\n";
  EXPECT_NE(parse_error(many).find("at most"), std::string::npos);
  // a value with spaces is one value (the glue separates with tabs)
  EXPECT_TRUE(matches(R"({"g":["Domain Users"]})", "g", {"Domain Users"}));
  AccessRules r = rules("login\tg\tDomain Users\n");
  EXPECT_EQ(r.admit(R"({"g":["Domain Users"]})"), "");
}

TEST(AccessRulesAdmit, EveryDirectiveMustHoldAndAnyOfItsValues) {
  AccessRules r = rules("login\ttid\t72f988bf\tother-tenant\nlogin\trealm_access.roles\tmcp-admin\n");
  EXPECT_EQ(r.admit(kKeycloak), "");
  EXPECT_EQ(r.admit(R"({"tid":"72f988bf"})"), "claim realm_access.roles");
  EXPECT_EQ(r.admit(R"({"tid":"other","realm_access":{"roles":["mcp-admin"]}})"), "claim tid");
  EXPECT_EQ(r.admit("not json"), "claims");
  EXPECT_EQ(rules("").admit(R"({})"), "");
}

TEST(AccessRulesAdmit, EmailDomainIsTheAddressAfterItsLastAtAndMustBeVerified) {
  AccessRules r = rules("email\texample.com\tcorp.example.org\n");
  EXPECT_EQ(r.admit(kKeycloak), "");  // case-insensitive
  EXPECT_EQ(r.admit(R"({"email":"a@corp.example.org"})"), "");  // email_verified absent: believed
  EXPECT_EQ(r.admit(R"({"email":"a@sub.example.com"})"), "email domain");  // not subdomains
  EXPECT_EQ(r.admit(R"({"email":"a@example.com@evil.test"})"), "email domain");
  EXPECT_EQ(r.admit(R"({"email":"a@example.com","email_verified":false})"), "email_verified");
  EXPECT_EQ(r.admit(R"({"email":"a@example.com","email_verified":"true"})"), "email_verified");
  EXPECT_EQ(r.admit(R"({"email":"example.com"})"), "email");
  EXPECT_EQ(r.admit(R"({"upn":"a@example.com"})"), "email");
}

TEST(AccessRulesScopes, AScopeWithRulesIsHeldOnlyByThoseWhoMeetThemAll) {
  AccessRules r = rules("scope\tsnippets:write\tgroups\teditors\tadmins\nscope\tadmin\tgroups\tadmins\n"
                        "scope\tadmin\ttid\tt1\n");
  Json demo = parse(R"({"groups":["editors"],"tid":"t1"})");
  Json boss = parse(R"({"groups":["admins"],"tid":"t1"})");
  Json viewer = parse(R"({"groups":[],"tid":"t1"})");
  ClaimSet d = r.keep(demo.get()), b = r.keep(boss.get()), v = r.keep(viewer.get());
  EXPECT_EQ(r.holdable("snippets:read snippets:write admin", d), "snippets:read snippets:write");
  EXPECT_EQ(r.holdable("snippets:read snippets:write admin", b), "snippets:read snippets:write admin");
  EXPECT_EQ(r.holdable("snippets:read snippets:write admin", v), "snippets:read");
  EXPECT_EQ(r.holdable("", v), "");
  EXPECT_TRUE(r.restricts_scope("admin"));
  EXPECT_FALSE(r.restricts_scope("snippets:read"));
}

TEST(AccessRulesTools, AToolRuleNamesTheConditionThatFailed) {
  AccessRules r = rules("tool\tsave_snippet\tgroups\teditors\n");
  Json demo = parse(R"({"groups":["editors","other"]})");
  ClaimSet d = r.keep(demo.get());
  EXPECT_TRUE(r.may_call("save_snippet", d));
  EXPECT_TRUE(r.may_call("get_snippet", ClaimSet()));
  const ClaimCondition* failed = nullptr;
  EXPECT_FALSE(r.may_call("save_snippet", ClaimSet(), &failed));
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->describe(), "groups = editors");
  EXPECT_TRUE(r.names_tool("save_snippet"));
  EXPECT_FALSE(r.names_tool("get_snippet"));
}

TEST(ClaimSetRecord, RoundTripsAnyValueWithoutJsonEscapes) {
  ClaimSet s;
  s.add("groups", "editors");
  s.add("groups", "a,b&c=d \"quoted\" \\ é");
  s.add("https://example.com/roles", "owner");
  s.add("groups", "editors");  // once
  std::string rec = s.to_record();
  EXPECT_EQ(rec.find('"'), std::string::npos);
  EXPECT_EQ(rec.find('\\'), std::string::npos);
  auto back = ClaimSet::from_record(rec);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->to_json(), s.to_json());
  EXPECT_EQ(s.entries().front().second.size(), 2u);
  EXPECT_TRUE(ClaimSet::from_record("")->empty());
  EXPECT_FALSE(ClaimSet::from_record("groups"));
  EXPECT_FALSE(ClaimSet::from_record("=x"));
  EXPECT_FALSE(ClaimSet::from_record("groups=a,,b"));
  EXPECT_FALSE(ClaimSet::from_record("groups=%zz"));
}

TEST(ClaimSetJson, AcceptsOnlyPathsToArraysOfStrings) {
  EXPECT_EQ(ClaimSet::from_json(R"({"groups":["editors"],"tid":["t1"]})")->to_json(),
            R"({"groups":["editors"],"tid":["t1"]})");
  EXPECT_TRUE(ClaimSet::from_json("")->empty());
  EXPECT_TRUE(ClaimSet::from_json("{}")->empty());
  EXPECT_FALSE(ClaimSet::from_json(R"({"groups":"editors"})"));
  EXPECT_FALSE(ClaimSet::from_json(R"({"groups":[1]})"));
  EXPECT_FALSE(ClaimSet::from_json(R"(["groups"])"));
  EXPECT_FALSE(ClaimSet::from_json("{"));
}
