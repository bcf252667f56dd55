// Unit tests for src/redirect_uri.hpp.
#include "redirect_uri.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mcpauth;

namespace {

bool acceptable(const std::string& uri) { return !redirect_uri_registration_error(uri).has_value(); }

std::string reason(const std::string& uri) {
  return redirect_uri_registration_error(uri).value_or("<accepted>");
}

}  // namespace

TEST(ParseUri, SplitsAllComponents) {
  auto u = parse_uri("https://user:pw@Example.COM:8443/a/b?x=1&y=2#frag", nullptr);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_TRUE(u->has_authority);
  EXPECT_TRUE(u->has_userinfo);
  EXPECT_EQ(u->userinfo, "user:pw");
  EXPECT_EQ(u->host, "Example.COM");
  EXPECT_TRUE(u->has_port);
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->path, "/a/b");
  EXPECT_TRUE(u->has_query);
  EXPECT_EQ(u->query, "x=1&y=2");
  EXPECT_TRUE(u->has_fragment);
  EXPECT_EQ(u->fragment, "frag");
}

TEST(ParseUri, KeepsBracketsOfIpv6Host) {
  auto u = parse_uri("http://[::1]:3000/cb", nullptr);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->host, "[::1]");
  EXPECT_EQ(u->port, "3000");
  EXPECT_EQ(u->path, "/cb");
}

TEST(ParseUri, ParsesUriWithoutAuthority) {
  auto u = parse_uri("com.example.app:/callback", nullptr);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "com.example.app");
  EXPECT_FALSE(u->has_authority);
  EXPECT_EQ(u->path, "/callback");
}

TEST(ParseUri, DistinguishesEmptyQueryAndFragmentFromAbsentOnes) {
  auto u = parse_uri("https://h/p?#", nullptr);
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->has_query);
  EXPECT_TRUE(u->query.empty());
  EXPECT_TRUE(u->has_fragment);
  auto v = parse_uri("https://h/p", nullptr);
  ASSERT_TRUE(v.has_value());
  EXPECT_FALSE(v->has_query);
  EXPECT_FALSE(v->has_fragment);
  EXPECT_FALSE(v->has_port);
}

TEST(ParseUri, SplitsUserinfoAtTheLastAt) {
  auto u = parse_uri("https://good.example@evil.example/cb", nullptr);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->host, "evil.example");
  auto w = parse_uri("https://a@good.example@evil.example/cb", nullptr);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->host, "evil.example");
  EXPECT_EQ(w->userinfo, "a@good.example");
}

TEST(ParseUri, RejectsRelativeReferences) {
  std::string err;
  EXPECT_FALSE(parse_uri("/callback", &err).has_value());
  EXPECT_NE(err.find("absolute"), std::string::npos);
  EXPECT_FALSE(parse_uri("//host/cb", nullptr).has_value());
  EXPECT_FALSE(parse_uri("", nullptr).has_value());
}

TEST(ParseUri, RejectsBadScheme) {
  EXPECT_FALSE(parse_uri("1http://h/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("ht_tp://h/", nullptr).has_value());
}

TEST(ParseUri, RejectsBadPorts) {
  EXPECT_FALSE(parse_uri("https://h:/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h:0/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h:65536/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h:12a/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h:1:2/", nullptr).has_value());
  EXPECT_TRUE(parse_uri("https://h:65535/", nullptr).has_value());
}

TEST(ParseUri, RejectsMalformedIpv6) {
  EXPECT_FALSE(parse_uri("http://[::1/cb", nullptr).has_value());
  EXPECT_FALSE(parse_uri("http://[]/cb", nullptr).has_value());
  EXPECT_FALSE(parse_uri("http://[::1%25eth0]/cb", nullptr).has_value());
  EXPECT_FALSE(parse_uri("http://[::1]x/cb", nullptr).has_value());
}

TEST(ParseUri, RejectsCharactersBrowsersTreatSpecially) {
  EXPECT_FALSE(parse_uri("https://evil.example\\@good.example/", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/a b", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/a\tb", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/\x7f", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/\xc3\xa9", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/<x>", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/p[0]", nullptr).has_value());
}

TEST(ParseUri, RejectsMalformedPercentEscapes) {
  EXPECT_FALSE(parse_uri("https://h/%zz", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h/%4", nullptr).has_value());
  EXPECT_TRUE(parse_uri("https://h/%41", nullptr).has_value());
  EXPECT_FALSE(parse_uri("https://h%41/", nullptr).has_value());
}

TEST(Loopback, RecognizesLoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("LocalHost"));
}

TEST(Loopback, RejectsLookalikes) {
  EXPECT_FALSE(is_loopback_host("127.0.0.1.evil.example"));
  EXPECT_FALSE(is_loopback_host("localhost.evil.example"));
  EXPECT_FALSE(is_loopback_host("127.0.0"));
  EXPECT_FALSE(is_loopback_host("127.0.0.256"));
  EXPECT_FALSE(is_loopback_host("127.0.0.01"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("[::2]"));
  EXPECT_FALSE(is_loopback_host(""));
}

TEST(RedirectRegistration, AcceptsHttpsWithHost) {
  EXPECT_TRUE(acceptable("https://app.example/callback"));
  EXPECT_TRUE(acceptable("https://app.example:8443/cb?tenant=1"));
  EXPECT_TRUE(acceptable("HTTPS://app.example/cb"));
}

TEST(RedirectRegistration, RejectsHttpsWithoutHost) {
  EXPECT_NE(reason("https:///cb").find("no host"), std::string::npos);
  EXPECT_FALSE(acceptable("https:/cb"));
}

TEST(RedirectRegistration, AcceptsHttpOnLoopbackHosts) {
  EXPECT_TRUE(acceptable("http://127.0.0.1/callback"));
  EXPECT_TRUE(acceptable("http://127.0.0.1:49152/callback"));
  EXPECT_TRUE(acceptable("http://[::1]:8080/cb"));
  EXPECT_TRUE(acceptable("http://localhost:3000/oauth/callback"));
}

TEST(RedirectRegistration, RejectsHttpOnOtherHosts) {
  EXPECT_NE(reason("http://app.example/cb").find("loopback"), std::string::npos);
  EXPECT_FALSE(acceptable("http://127.0.0.1.nip.io/cb"));
  EXPECT_FALSE(acceptable("http://192.168.1.1/cb"));
  EXPECT_FALSE(acceptable("http:/cb"));
}

TEST(RedirectRegistration, AcceptsPrivateUseSchemes) {
  EXPECT_TRUE(acceptable("com.example.app:/callback"));
  EXPECT_TRUE(acceptable("com.example.app://oauth/cb"));
  EXPECT_TRUE(acceptable("cursor://anysphere.cursor-mcp/oauth/callback"));
}

TEST(RedirectRegistration, RejectsDangerousSchemes) {
  for (const char* uri : {"javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x",
                          "file:///etc/passwd", "vbscript:x", "about:blank", "blob:https://a/x",
                          "ftp://a/x", "ws://localhost/x", "wss://a/x"}) {
    EXPECT_NE(reason(uri).find("not allowed"), std::string::npos) << uri;
  }
}

TEST(RedirectRegistration, RejectsFragment) {
  EXPECT_NE(reason("https://app.example/cb#x").find("fragment"), std::string::npos);
  EXPECT_FALSE(acceptable("https://app.example/cb#"));
}

TEST(RedirectRegistration, RejectsUserinfo) {
  EXPECT_NE(reason("https://user@app.example/cb").find("user information"), std::string::npos);
  EXPECT_FALSE(acceptable("http://evil.example@127.0.0.1/cb"));
}

TEST(RedirectRegistration, RejectsRelativeAndEmptyUris) {
  EXPECT_EQ(reason(""), "is empty");
  EXPECT_NE(reason("/callback").find("absolute"), std::string::npos);
}

TEST(RedirectRegistration, RejectsControlCharactersAndSpaces) {
  EXPECT_FALSE(acceptable("https://app.example/c b"));
  EXPECT_FALSE(acceptable("https://app.example/cb\r\nX: y"));
  EXPECT_FALSE(acceptable(std::string("https://app.example/cb\0x", 24)));
}

TEST(RedirectRegistration, EnforcesLengthLimitOf2048) {
  std::string base = "https://app.example/";
  std::string ok = base + std::string(2048 - base.size(), 'a');
  EXPECT_TRUE(acceptable(ok));
  EXPECT_NE(reason(ok + "a").find("2048"), std::string::npos);
}

TEST(RedirectMatch, RequiresExactStringMatch) {
  std::vector<std::string> reg = {"https://app.example/cb"};
  EXPECT_TRUE(redirect_uri_matches("https://app.example/cb", reg));
  EXPECT_FALSE(redirect_uri_matches("https://app.example/cb/", reg));
  EXPECT_FALSE(redirect_uri_matches("https://APP.example/cb", reg));
  EXPECT_FALSE(redirect_uri_matches("https://app.example/cb?x=1", reg));
  EXPECT_FALSE(redirect_uri_matches("https://app.example:443/cb", reg));
  EXPECT_FALSE(redirect_uri_matches("https://app.example/CB", reg));
  EXPECT_FALSE(redirect_uri_matches("", reg));
}

TEST(RedirectMatch, MatchesAnyOfSeveralRegisteredUris) {
  std::vector<std::string> reg = {"https://a.example/cb", "com.example.app:/cb"};
  EXPECT_TRUE(redirect_uri_matches("com.example.app:/cb", reg));
  EXPECT_FALSE(redirect_uri_matches("com.example.app:/cb2", reg));
  EXPECT_FALSE(redirect_uri_matches("https://a.example/cb", {}));
}

TEST(RedirectMatch, LoopbackPortMayDiffer) {
  std::vector<std::string> reg = {"http://127.0.0.1/callback", "http://[::1]:1/cb",
                                  "http://localhost:5000/oauth?x=1"};
  EXPECT_TRUE(redirect_uri_matches("http://127.0.0.1:51234/callback", reg));
  EXPECT_TRUE(redirect_uri_matches("http://[::1]:6274/cb", reg));
  EXPECT_TRUE(redirect_uri_matches("http://[::1]/cb", reg));
  EXPECT_TRUE(redirect_uri_matches("http://localhost:6274/oauth?x=1", reg));
}

TEST(RedirectMatch, LoopbackStillRequiresSameHostPathAndQuery) {
  std::vector<std::string> reg = {"http://127.0.0.1/callback", "http://localhost:5000/oauth?x=1"};
  EXPECT_FALSE(redirect_uri_matches("http://127.0.0.1:5/other", reg));
  EXPECT_FALSE(redirect_uri_matches("http://127.0.0.2:5/callback", reg));
  EXPECT_FALSE(redirect_uri_matches("http://localhost:5/callback", reg));
  EXPECT_FALSE(redirect_uri_matches("http://localhost:5/oauth", reg));
  EXPECT_FALSE(redirect_uri_matches("http://localhost:5/oauth?x=2", reg));
  EXPECT_FALSE(redirect_uri_matches("http://127.0.0.1:5/callback#f", reg));
  EXPECT_FALSE(redirect_uri_matches("http://u@127.0.0.1:5/callback", reg));
}

TEST(RedirectMatch, PortFlexibilityIsOnlyForHttpLoopback) {
  EXPECT_FALSE(redirect_uri_matches("https://127.0.0.1:8443/cb", {"https://127.0.0.1/cb"}));
  EXPECT_FALSE(redirect_uri_matches("https://app.example:8443/cb", {"https://app.example/cb"}));
  EXPECT_FALSE(redirect_uri_matches("http://127.0.0.1:80/cb", {"https://127.0.0.1/cb"}));
}

TEST(Resource, NormalizesSchemeHostAndOneTrailingSlash) {
  EXPECT_EQ(normalize_resource("HTTPS://MCP.Example.COM/Mcp/").value_or("?"),
            "https://mcp.example.com/Mcp");
  EXPECT_EQ(normalize_resource("https://mcp.example.com/").value_or("?"),
            "https://mcp.example.com");
  EXPECT_EQ(normalize_resource("https://mcp.example.com//").value_or("?"),
            "https://mcp.example.com/");
  EXPECT_EQ(normalize_resource("https://h:8443/a?b=1").value_or("?"), "https://h:8443/a?b=1");
}

TEST(Resource, RejectsFragmentsRelativeUrisAndUserinfo) {
  EXPECT_FALSE(normalize_resource("https://h/mcp#x").has_value());
  EXPECT_FALSE(normalize_resource("/mcp").has_value());
  EXPECT_FALSE(normalize_resource("urn:example:mcp").has_value());
  EXPECT_FALSE(normalize_resource("https://u@h/mcp").has_value());
  EXPECT_FALSE(normalize_resource("").has_value());
}

TEST(Resource, MatchesIgnoringCaseOfSchemeAndHostAndOneTrailingSlash) {
  EXPECT_TRUE(resource_matches("https://mcp.example.com/mcp", "https://mcp.example.com/mcp"));
  EXPECT_TRUE(resource_matches("https://MCP.example.com/mcp/", "https://mcp.example.com/mcp"));
  EXPECT_TRUE(resource_matches("https://mcp.example.com", "https://mcp.example.com/"));
}

TEST(Resource, DoesNotMatchOtherPathsPortsOrFragments) {
  EXPECT_FALSE(resource_matches("https://mcp.example.com/MCP", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("https://mcp.example.com/mcp//", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("https://mcp.example.com:8443/mcp", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("http://mcp.example.com/mcp", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("https://mcp.example.com/mcp#", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("https://mcp.example.com/mcp/other", "https://mcp.example.com/mcp"));
  EXPECT_FALSE(resource_matches("", ""));
}
