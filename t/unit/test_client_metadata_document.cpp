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
