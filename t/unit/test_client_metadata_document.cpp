#include <gtest/gtest.h>

#include "client_metadata_document.hpp"

using namespace mcpauth;

TEST(ClientIdDocumentLocation, AcceptsAnHttpsUrlWithAPath) {
  auto loc = client_id_document_location("https://app.example.com:8443/oauth/client.json?v=1");
  ASSERT_TRUE(loc);
  EXPECT_EQ(loc->host, "app.example.com");
  EXPECT_EQ(loc->port, 8443);
  EXPECT_EQ(loc->path, "/oauth/client.json?v=1");
  auto v6 = client_id_document_location("https://[2001:db8::1]/c.json");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 443);
}

TEST(ClientIdDocumentLocation, RefusesWhatTheDraftForbids) {
  for (const char* bad : {"http://app.example.com/c.json", "https://app.example.com", "https://app.example.com/",
                          "https://app.example.com/a/../c.json", "https://app.example.com/./c.json",
                          "https://user:pw@app.example.com/c.json", "https://app.example.com/c.json#x",
                          "my-client-id", ""})
    EXPECT_FALSE(client_id_document_location(bad)) << bad;
}

TEST(ClientIdDocument, AcceptsAPublicClientWhoseIdIsTheUrl) {
  const std::string url = "https://app.example.com/c.json";
  auto r = parse_client_id_document(
      R"({"client_id":"https://app.example.com/c.json","client_name":"App","redirect_uris":["http://127.0.0.1:3000/cb"]})",
      url, {"read"});
  ASSERT_TRUE(std::holds_alternative<ClientMetadata>(r));
  const auto& c = std::get<ClientMetadata>(r);
  EXPECT_EQ(c.client_id, url);
  EXPECT_EQ(c.token_endpoint_auth_method, "none");
  EXPECT_EQ(c.client_name, "App");
}

TEST(ClientIdDocument, RefusesAnotherClientIdASecretOrASharedSecretMethod) {
  const std::string url = "https://app.example.com/c.json";
  for (const char* body :
       {R"({"client_id":"https://evil.example.com/c.json","redirect_uris":["http://127.0.0.1/cb"]})",
        R"({"client_id":"https://app.example.com/c.json","client_secret":"s","redirect_uris":["http://127.0.0.1/cb"]})",
        R"({"client_id":"https://app.example.com/c.json","token_endpoint_auth_method":"client_secret_post","redirect_uris":["http://127.0.0.1/cb"]})",
        R"({"client_id":"https://app.example.com/c.json"})", R"([1,2])", "not json"}) {
    auto r = parse_client_id_document(body, url, {});
    EXPECT_TRUE(std::holds_alternative<RegistrationError>(r)) << body;
  }
}

// The registration rules apply to documents too (parse_registration_request):
// what a document declares is shown on the consent page and stored.
TEST(ClientIdDocument, FollowsTheRegistrationRulesForTheNameAndTheLimits) {
  const std::string url = "https://app.example.com/c.json";
  auto refused = [&](const std::string& members) {
    auto r = parse_client_id_document(R"({"client_id":"https://app.example.com/c.json",)" + members + "}", url, {});
    return std::holds_alternative<RegistrationError>(r) ? std::get<RegistrationError>(r).description : "";
  };
  const std::string one = R"("redirect_uris":["http://127.0.0.1/cb"])";
  EXPECT_NE(refused(one + ",\"client_name\":\"\xe2\x80\xae" "exe.txt\"").find("U+202E"), std::string::npos);
  EXPECT_NE(refused(one + ",\"client_name\":\"A\xe2\x80\x8b" "B\"").find("invisible"), std::string::npos);
  std::string many, big;
  for (int i = 0; i < 11; ++i) many += (i ? "," : "") + std::string("\"http://127.0.0.1/cb") + std::to_string(i) + "\"";
  EXPECT_NE(refused("\"redirect_uris\":[" + many + "]").find("at most 10"), std::string::npos);
  for (int i = 0; i < 4; ++i)
    big += (i ? "," : "") + std::string("\"http://127.0.0.1/") + std::to_string(i) + std::string(1990, 'x') + "\"";
  EXPECT_NE(refused("\"redirect_uris\":[" + big + "]").find("8 KiB"), std::string::npos);
}

TEST(ClientIdDocumentLifetime, FollowsMaxAgeWithinBounds) {
  EXPECT_EQ(client_id_document_lifetime(""), 3600);
  EXPECT_EQ(client_id_document_lifetime("public, max-age=1200"), 1200);
  EXPECT_EQ(client_id_document_lifetime("max-age=5"), 300);
  EXPECT_EQ(client_id_document_lifetime("max-age=99999999"), 86400);
  EXPECT_EQ(client_id_document_lifetime("no-store"), 300);
}

TEST(FetchAddressAllowed, RefusesPrivateLoopbackAndLinkLocalAddresses) {
  for (const char* bad : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                          "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::",
                          "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "not-an-ip"})
    EXPECT_FALSE(fetch_address_allowed(bad, false)) << bad;
  for (const char* good : {"93.184.216.34", "172.32.0.1", "8.8.8.8", "2001:4860:4860::8888",
                           "::ffff:8.8.8.8"})
    EXPECT_TRUE(fetch_address_allowed(good, false)) << good;
  EXPECT_TRUE(fetch_address_allowed("127.0.0.1", true));
}

// Every non-global range of the IANA special-purpose registries (RFC 6890,
// RFC 8190 and later) and the other non-unicast space: both edges of each
// refused, and the addresses just outside them allowed where those are
// global.  "" where the neighbour does not exist or is not global itself.
struct Range {
  const char* name;
  const char *first, *last, *below, *above;
};

// Both edges of the range refused, the addresses just outside it (when
// given) allowed.
void expect_edges(const Range& r) {
    EXPECT_FALSE(fetch_address_allowed(r.first, false)) << r.name << " " << r.first;
    EXPECT_FALSE(fetch_address_allowed(r.last, false)) << r.name << " " << r.last;
    if (*r.below) {
      EXPECT_TRUE(fetch_address_allowed(r.below, false)) << r.name << " " << r.below;
    }
    if (*r.above) {
      EXPECT_TRUE(fetch_address_allowed(r.above, false)) << r.name << " " << r.above;
    }
}

TEST(FetchAddressAllowed, RefusesBothEdgesOfEveryNonGlobalIpv4Range) {
  const Range ranges[] = {
      {"this network 0/8", "0.0.0.0", "0.255.255.255", "", "1.0.0.0"},
      {"private 10/8", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"},
      {"shared (CGNAT) 100.64/10", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"},
      {"loopback 127/8", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"},
      {"link-local 169.254/16", "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0"},
      {"private 172.16/12", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"},
      {"IETF assignments 192.0.0/24", "192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"},
      {"documentation 192.0.2/24", "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"},
      {"6to4 relay anycast 192.88.99/24", "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0"},
      {"private 192.168/16", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"},
      {"benchmarking 198.18/15", "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0"},
      {"documentation 198.51.100/24", "198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0"},
      {"documentation 203.0.113/24", "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0"},
      {"multicast 224/4", "224.0.0.0", "239.255.255.255", "223.255.255.255", ""},
      {"reserved 240/4 and broadcast", "240.0.0.0", "255.255.255.255", "", ""},
  };
  for (const auto& r : ranges) {
    expect_edges(r);
    // the same addresses mapped into IPv6 (::ffff:a.b.c.d) are judged alike
    EXPECT_FALSE(fetch_address_allowed(std::string("::ffff:") + r.first, false)) << r.name;
    EXPECT_FALSE(fetch_address_allowed(std::string("::ffff:") + r.last, false)) << r.name;
    if (*r.above) {
      EXPECT_TRUE(fetch_address_allowed(std::string("::ffff:") + r.above, false)) << r.name;
    }
  }
}

TEST(FetchAddressAllowed, RefusesBothEdgesOfEveryNonGlobalIpv6Range) {
  const Range ranges[] = {
      // outside 2000::/3, the only global unicast space
      {"unspecified, loopback, IPv4-compatible ::/96", "::", "::ffff:ffff", "", ""},
      {"reserved ::/8 beyond the mapped range", "::1:0:0:0", "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"NAT64 well-known 64:ff9b::/96", "64:ff9b::", "64:ff9b::ffff:ffff", "", ""},
      {"NAT64 local-use 64:ff9b:1::/48", "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"discard-only 100::/64", "100::", "100::ffff:ffff:ffff:ffff", "", ""},
      {"below 2000::/3", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "",
       "2000::"},
      {"above 2000::/3", "4000::", "5fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
      {"unique local fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"link-local fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"site-local fec0::/10", "fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"multicast ff00::/8", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      // inside 2000::/3
      {"IETF assignments 2001::/23 (Teredo 2001::/32, benchmarking, ORCHID)", "2001::",
       "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"},
      {"Teredo 2001::/32", "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
      {"documentation 2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
       "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"},
      {"6to4 2002::/16", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "2003::"},
      {"documentation 3fff::/20", "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
       "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"},
  };
  for (const auto& r : ranges) {
    expect_edges(r);
  }
}

TEST(FetchAddressAllowed, IPv6FormsEmbeddingAPublicIpv4AreRefusedAllTheSameExceptMapped) {
  // NAT64, 6to4, Teredo and IPv4-compatible forms are refused whatever they
  // embed: where they lead is decided by a translator or relay, not by the
  // address.  IPv4-mapped is the IPv4 address itself: its rules apply.
  for (const char* bad : {"64:ff9b::8.8.8.8", "64:ff9b:1::808:808", "2002:808:808::1", "::8.8.8.8",
                          "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "64:ff9b::127.0.0.1", "2002:7f00:1::1",
                          "2002:a00:1::1", "::127.0.0.1", "::ffff:192.168.0.1", "::ffff:100.64.0.1",
                          "::ffff:198.18.0.1", "::ffff:240.0.0.1"})
    EXPECT_FALSE(fetch_address_allowed(bad, false)) << bad;
  EXPECT_TRUE(fetch_address_allowed("::ffff:8.8.8.8", false));
  EXPECT_TRUE(fetch_address_allowed("::ffff:808:808", false));
  EXPECT_TRUE(fetch_address_allowed("2620:4f:8000::1", false));  // AS112, global
  EXPECT_TRUE(fetch_address_allowed("2a00:1450:4001:80b::200e", false));
}

TEST(FetchAddressAllowed, AllowPrivateAllowsEveryAddressButNotGarbage) {
  for (const char* any : {"10.0.0.1", "127.0.0.1", "::1", "fd00::1", "64:ff9b::a00:1", "8.8.8.8"})
    EXPECT_TRUE(fetch_address_allowed(any, true)) << any;
  for (const char* garbage : {"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "[::1]", "::1%lo", "localhost"})
    EXPECT_FALSE(fetch_address_allowed(garbage, true)) << garbage;
}
