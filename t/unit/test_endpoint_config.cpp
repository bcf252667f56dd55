// Config::set / finish for the endpoint settings.
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

Config base() {
  Config c;
  EXPECT_EQ(c.set("issuer", "https://mcp.example"), "");
  return c;
}

void provider(Config& c) {
  EXPECT_EQ(c.set("provider_issuer", "https://idp.example"), "");
  EXPECT_EQ(c.set("provider_authorization_endpoint", "https://idp.example/authorize"), "");
  EXPECT_EQ(c.set("provider_token_endpoint", "https://idp.example/token"), "");
  EXPECT_EQ(c.set("provider_client_id", "gateway"), "");
}

TEST(EndpointConfig, DurationsAcceptSecondsAndNginxSuffixes) {
  Config c = base();
  EXPECT_EQ(c.set("access_token_ttl", "900"), "");
  EXPECT_EQ(c.access_token_ttl, 900);
  EXPECT_EQ(c.set("access_token_ttl", "15m"), "");
  EXPECT_EQ(c.access_token_ttl, 900);
  EXPECT_EQ(c.set("session_ttl", "30d"), "");
  EXPECT_EQ(c.session_ttl, 30 * 86400);
  EXPECT_EQ(c.set("refresh_token_ttl", "1h30m"), "");
  EXPECT_EQ(c.refresh_token_ttl, 5400);
  EXPECT_EQ(c.set("client_ttl", "2w"), "");
  EXPECT_EQ(c.client_ttl, 14 * 86400);
}

TEST(EndpointConfig, BadDurationsAreNamedPrecisely) {
  Config c = base();
  EXPECT_NE(c.set("access_token_ttl", "").find("mcp_auth_access_token_ttl"), std::string::npos);
  EXPECT_NE(c.set("access_token_ttl", "10x"), "");
  EXPECT_NE(c.set("access_token_ttl", "-5"), "");
  EXPECT_NE(c.set("access_token_ttl", "0"), "");
  EXPECT_NE(c.set("access_token_ttl", "1h30"), "");
  EXPECT_NE(c.set("access_token_ttl", "99999999999999"), "");
  EXPECT_NE(c.set("code_ttl", "11m").find("10 minutes"), std::string::npos);
  EXPECT_EQ(c.set("code_ttl", "10m"), "");
}

TEST(EndpointConfig, FlagsAreOnOrOff) {
  Config c = base();
  EXPECT_EQ(c.set("consent_remember", "off"), "");
  EXPECT_FALSE(c.consent_remember);
  EXPECT_NE(c.set("consent_remember", "yes"), "");
  EXPECT_NE(c.set("provider_client_auth", "tls_client_auth"), "");
  EXPECT_NE(c.set("provider_scopes", "profile email"), "");  // openid is required
}

TEST(EndpointConfig, SecureCookiesFollowTheIssuerUnlessSet) {
  Config c = base();
  EXPECT_EQ(c.finish(), "");
  EXPECT_TRUE(c.secure_cookies);
  Config local;
  EXPECT_EQ(local.set("issuer", "http://127.0.0.1:8080"), "");
  EXPECT_EQ(local.finish(), "");
  EXPECT_FALSE(local.secure_cookies);
  EXPECT_EQ(local.set("secure_cookies", "on"), "");
  EXPECT_EQ(local.finish(), "");
  EXPECT_TRUE(local.secure_cookies);
}

TEST(EndpointConfig, TheKeyFileIsLoadedAndItsErrorsReported) {
  Config c = base();
  EXPECT_EQ(c.set("key_file", write_file("cfg-keys", "# keys\n" + KeyRing::generate_line("new") + "\n")), "");
  EXPECT_EQ(c.finish(), "");
  ASSERT_TRUE(c.keys);
  EXPECT_EQ(c.keys->sealing_kid(), "new");

  Config missing = base();
  EXPECT_EQ(missing.set("key_file", "/nonexistent/keys"), "");
  EXPECT_NE(missing.finish().find("/nonexistent/keys"), std::string::npos);

  Config bad = base();
  EXPECT_EQ(bad.set("key_file", write_file("cfg-bad", "k1 tooshort\n")), "");
  std::string err = bad.finish();
  EXPECT_NE(err.find("mcp_auth_key_file"), std::string::npos) << err;
}

TEST(EndpointConfig, StatefulEndpointsNeedTheKeyFileAndTheProvider) {
  Config c = base();
  EXPECT_EQ(c.set("endpoint", "token"), "");
  EXPECT_NE(c.finish().find("mcp_auth_key_file"), std::string::npos);
  EXPECT_EQ(c.set("key_file", write_file("cfg-keys2", KeyRing::generate_line("k") + "\n")), "");
  EXPECT_NE(c.finish().find("mcp_auth_provider_issuer"), std::string::npos);
  provider(c);
  EXPECT_NE(c.finish().find("mcp_auth_provider_client_secret_file"), std::string::npos);
  EXPECT_EQ(c.set("provider_client_secret_file", write_file("cfg-secret", "  s3cr3t \n")), "");
  EXPECT_EQ(c.finish(), "");
  EXPECT_EQ(c.provider_client_secret, "s3cr3t");

  Config meta = base();
  EXPECT_EQ(meta.set("endpoint", "authorization_server_metadata"), "");
  EXPECT_EQ(meta.finish(), "");
}

TEST(EndpointConfig, PrivateKeyJwtNeedsAUsableKey) {
  Config c = base();
  provider(c);
  EXPECT_EQ(c.set("provider_client_auth", "private_key_jwt"), "");
  EXPECT_NE(c.finish().find("mcp_auth_provider_private_key_file"), std::string::npos);
  EXPECT_EQ(c.set("provider_private_key_file", write_file("cfg-notakey", "hello")), "");
  EXPECT_NE(c.finish(), "");
  EXPECT_EQ(c.set("provider_private_key_file", write_file("cfg-key", FakeIdp::get().private_pem)), "");
  EXPECT_EQ(c.finish(), "");
}

TEST(EndpointConfig, ProviderUrlsMustBeHttps) {
  Config c = base();
  EXPECT_NE(c.set("provider_token_endpoint", "http://idp.example/token"), "");
  EXPECT_EQ(c.set("provider_token_endpoint", "http://127.0.0.1:9000/token"), "");
  EXPECT_NE(c.set("provider_issuer", "https://idp.example/"), "");
}

}  // namespace
}  // namespace mcpauth_test
