// The checks a directive gets on its own line (check_setting), and what a
// configuration loads and requires (Config::load / check_use), through the C
// API where the glue uses it.
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

Config base() {
  Config c;
  c.issuer = "https://mcp.example";
  return c;
}

void provider(Config& c) {
  c.provider_issuer = "https://idp.example";
  c.provider_authorization_endpoint = "https://idp.example/authorize";
  c.provider_token_endpoint = "https://idp.example/token";
  c.provider_client_id = "gateway";
}

std::string check(mcpa_check_e kind, const std::string& value, const std::string& directive = "mcp_auth_x") {
  return check_setting(kind, directive, value);
}

TEST(SettingChecks, UrlsMustBeHttpsExceptOnLoopback) {
  EXPECT_EQ(check(MCPA_CHECK_BASE_URL, "https://mcp.example"), "");
  EXPECT_EQ(check(MCPA_CHECK_BASE_URL, "http://127.0.0.1:8080"), "");
  EXPECT_NE(check(MCPA_CHECK_BASE_URL, "http://mcp.example").find("https"), std::string::npos);
  EXPECT_NE(check(MCPA_CHECK_BASE_URL, "ftp://127.0.0.1"), "");
  EXPECT_NE(check(MCPA_CHECK_BASE_URL, "https://idp.example/").find("must not end with"), std::string::npos);
  EXPECT_NE(check(MCPA_CHECK_BASE_URL, "https://idp.example?x=1"), "");
  EXPECT_NE(check(MCPA_CHECK_PROVIDER_URL, "http://idp.example/token"), "");
  EXPECT_EQ(check(MCPA_CHECK_PROVIDER_URL, "http://127.0.0.1:9000/token"), "");
  EXPECT_EQ(check(MCPA_CHECK_PROVIDER_URL, "https://idp.example/token?tenant=a"), "");
  EXPECT_NE(check(MCPA_CHECK_PROVIDER_URL, "https://idp.example/token#f"), "");
}

TEST(SettingChecks, MessagesNameTheDirective) {
  EXPECT_NE(check(MCPA_CHECK_BASE_URL, "nope", "mcp_auth_issuer").find("mcp_auth_issuer"), std::string::npos);
  EXPECT_NE(check(MCPA_CHECK_NOT_EMPTY, "", "mcp_auth_provider_client_id").find("mcp_auth_provider_client_id"),
            std::string::npos);
}

TEST(SettingChecks, PathsScopesAndToolRules) {
  EXPECT_EQ(check(MCPA_CHECK_PATH, "/authorize"), "");
  EXPECT_NE(check(MCPA_CHECK_PATH, "authorize"), "");
  EXPECT_NE(check(MCPA_CHECK_PATH, "/a?b"), "");
  EXPECT_EQ(check(MCPA_CHECK_SCOPES, "mcp:tools mcp:read"), "");
  EXPECT_NE(check(MCPA_CHECK_SCOPES, "mcp\"x"), "");
  EXPECT_NE(check(MCPA_CHECK_PROVIDER_SCOPES, "profile email").find("openid"), std::string::npos);
  EXPECT_EQ(check(MCPA_CHECK_PROVIDER_SCOPES, "openid profile"), "");
  EXPECT_EQ(check(MCPA_CHECK_TOOL_RULE, "save_snippet snippets:write"), "");
  EXPECT_NE(check(MCPA_CHECK_TOOL_RULE, "save_snippet bad\"scope"), "");
}

TEST(EndpointConfig, SecureCookiesFollowTheIssuerUnlessSet) {
  Config c = base();
  EXPECT_EQ(c.load(), "");
  EXPECT_TRUE(c.secure_cookies);
  Config local;
  local.issuer = "http://127.0.0.1:8080";
  EXPECT_EQ(local.load(), "");
  EXPECT_FALSE(local.secure_cookies);
  local.secure_cookies_setting = 1;
  EXPECT_EQ(local.load(), "");
  EXPECT_TRUE(local.secure_cookies);
}

TEST(EndpointConfig, TheKeyFileIsLoadedAndItsErrorsReported) {
  Config c = base();
  c.key_file = write_file("cfg-keys", "# keys\n" + KeyRing::generate_line("new") + "\n");
  EXPECT_EQ(c.load(), "");
  ASSERT_TRUE(c.keys);
  EXPECT_EQ(c.keys->sealing_kid(), "new");

  Config missing = base();
  missing.key_file = "/nonexistent/keys";
  EXPECT_NE(missing.load().find("/nonexistent/keys"), std::string::npos);

  Config bad = base();
  bad.key_file = write_file("cfg-bad", "k1 tooshort\n");
  std::string err = bad.load();
  EXPECT_NE(err.find("mcp_auth_key_file"), std::string::npos) << err;
}

TEST(EndpointConfig, StatefulEndpointsNeedTheKeyFileAndTheProvider) {
  Config c = base();
  EXPECT_EQ(c.load(), "");
  EXPECT_NE(c.check_use(MCPA_EP_TOKEN).find("mcp_auth_key_file"), std::string::npos);
  EXPECT_NE(c.check_use(MCPA_EP_REVOKE).find("mcp_auth_key_file"), std::string::npos);
  EXPECT_EQ(c.check_use(MCPA_EP_AUTHORIZATION_SERVER_METADATA), "");
  EXPECT_EQ(c.check_use(MCPA_EP_REGISTER), "");
  c.key_file = write_file("cfg-keys2", KeyRing::generate_line("k") + "\n");
  EXPECT_EQ(c.load(), "");
  EXPECT_NE(c.check_use(MCPA_EP_TOKEN).find("mcp_auth_provider_issuer"), std::string::npos);
  EXPECT_EQ(c.check_use(MCPA_EP_REVOKE), "");
  provider(c);
  EXPECT_NE(c.load().find("mcp_auth_provider_client_secret_file"), std::string::npos);
  c.provider_client_secret_file = write_file("cfg-secret", "  s3cr3t \n");
  EXPECT_EQ(c.load(), "");
  EXPECT_EQ(c.provider_client_secret, "s3cr3t");
  EXPECT_EQ(c.check_use(MCPA_EP_TOKEN), "");
}

TEST(EndpointConfig, APartialProviderIsRefused) {
  Config c = base();
  c.provider_issuer = "https://idp.example";
  EXPECT_NE(c.load().find("mcp_auth_provider_authorization_endpoint"), std::string::npos);
}

TEST(EndpointConfig, PrivateKeyJwtNeedsAUsableKey) {
  Config c = base();
  provider(c);
  c.provider_client_auth = Config::ProviderAuth::private_key_jwt;
  EXPECT_NE(c.load().find("mcp_auth_provider_private_key_file"), std::string::npos);
  c.provider_private_key_file = write_file("cfg-notakey", "hello");
  EXPECT_NE(c.load(), "");
  c.provider_private_key_file = write_file("cfg-key", FakeIdp::get().private_pem);
  EXPECT_EQ(c.load(), "");
}

TEST(EndpointConfig, TheRefreshLifetimeIsCappedBySessions) {
  Config c = base();
  c.session_ttl = 3600;
  c.refresh_token_ttl = 7200;
  EXPECT_EQ(c.load(), "");
  EXPECT_EQ(c.refresh_token_ttl, 3600);
}

// The C API the glue calls: settings as nginx parsed them, unset fields
// keeping the core's defaults, one configuration built from them.
TEST(ConfigBuild, UnsetSettingsKeepTheDefaults) {
  mcpa_settings_t s;
  mcpa_settings_init(&s);
  const std::string issuer = "https://mcp.example";
  s.issuer = {issuer.data(), issuer.size()};
  s.access_token_ttl = 900;
  s.consent_remember = 0;
  const int ports[] = {443, 8443};
  s.client_metadata_ports = ports;
  s.client_metadata_ports_n = 2;
  char err[256] = "";
  mcpa_config_t* cf = mcpa_config_build(&s, err, sizeof(err));
  ASSERT_NE(cf, nullptr) << err;
  EXPECT_EQ(mcpa_config_check_use(cf, MCPA_EP_AUTHORIZATION_SERVER_METADATA, 0, err, sizeof(err)), MCPA_OK);
  EXPECT_EQ(mcpa_config_check_use(cf, MCPA_EP_TOKEN, 0, err, sizeof(err)), MCPA_ERROR);
  EXPECT_NE(std::string(err).find("mcp_auth_key_file"), std::string::npos) << err;
  EXPECT_EQ(mcpa_config_check_use(cf, MCPA_EP_NONE, 1, err, sizeof(err)), MCPA_ERROR);
  EXPECT_NE(std::string(err).find("mcp_auth_identity_key_file"), std::string::npos) << err;
  mcpa_config_free(cf);

  mcpa_settings_init(&s);
  EXPECT_EQ(mcpa_config_build(&s, err, sizeof(err)), nullptr);
  EXPECT_NE(std::string(err).find("mcp_auth_issuer is required"), std::string::npos) << err;
}

}  // namespace
}  // namespace mcpauth_test
