// Unit tests for src/metadata.hpp (RFC 8414, RFC 9728).
#include "metadata.hpp"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using namespace mcpauth;

namespace {

struct JsonDelete {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDelete>;

ServerMetadataConfig full_config() {
  ServerMetadataConfig c;
  c.issuer = "https://auth.example.com";
  c.authorization_endpoint = "https://auth.example.com/oauth/authorize";
  c.token_endpoint = "https://auth.example.com/oauth/token";
  c.registration_endpoint = "https://auth.example.com/oauth/register";
  c.revocation_endpoint = "https://auth.example.com/oauth/revoke";
  c.resource = "https://mcp.example.com/mcp";
  c.resource_name = "Example MCP";
  c.service_documentation = "https://docs.example.com";
  c.scopes = {"mcp:tools", "offline_access"};
  return c;
}

Json parse(const std::string& s) {
  Json j(cJSON_Parse(s.c_str()));
  EXPECT_TRUE(j) << s;
  return j;
}

std::string str(const Json& j, const char* name) {
  const cJSON* s = cJSON_GetObjectItemCaseSensitive(j.get(), name);
  return cJSON_IsString(s) ? s->valuestring : "<missing>";
}

std::vector<std::string> strs(const Json& j, const char* name) {
  std::vector<std::string> out;
  const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j.get(), name);
  if (!cJSON_IsArray(arr)) return {"<missing>"};
  const cJSON* el = nullptr;
  cJSON_ArrayForEach(el, arr) out.push_back(cJSON_IsString(el) ? el->valuestring : "<non-string>");
  return out;
}

bool has(const Json& j, const char* name) { return cJSON_HasObjectItem(j.get(), name) != 0; }

using V = std::vector<std::string>;

}  // namespace

TEST(AuthServerMetadata, ListsEndpointsAndIssuer) {
  auto j = parse(authorization_server_metadata_json(full_config()));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "issuer"), "https://auth.example.com");
  EXPECT_EQ(str(j, "authorization_endpoint"), "https://auth.example.com/oauth/authorize");
  EXPECT_EQ(str(j, "token_endpoint"), "https://auth.example.com/oauth/token");
  EXPECT_EQ(str(j, "registration_endpoint"), "https://auth.example.com/oauth/register");
  EXPECT_EQ(str(j, "revocation_endpoint"), "https://auth.example.com/oauth/revoke");
  EXPECT_EQ(str(j, "service_documentation"), "https://docs.example.com");
}

TEST(AuthServerMetadata, AdvertisesOnlyCodeFlowWithS256Pkce) {
  auto j = parse(authorization_server_metadata_json(full_config()));
  ASSERT_TRUE(j);
  EXPECT_EQ(strs(j, "scopes_supported"), (V{"mcp:tools", "offline_access"}));
  EXPECT_EQ(strs(j, "response_types_supported"), V{"code"});
  EXPECT_EQ(strs(j, "response_modes_supported"), V{"query"});
  EXPECT_EQ(strs(j, "grant_types_supported"), (V{"authorization_code", "refresh_token"}));
  EXPECT_EQ(strs(j, "code_challenge_methods_supported"), V{"S256"});
}

TEST(AuthServerMetadata, AdvertisesClientAuthMethodsForTokenAndRevocation) {
  auto j = parse(authorization_server_metadata_json(full_config()));
  ASSERT_TRUE(j);
  V methods = {"none", "client_secret_basic", "client_secret_post"};
  EXPECT_EQ(strs(j, "token_endpoint_auth_methods_supported"), methods);
  EXPECT_EQ(strs(j, "revocation_endpoint_auth_methods_supported"), methods);
}

TEST(AuthServerMetadata, SupportsIssParameterPerRfc9207) {
  auto j = parse(authorization_server_metadata_json(full_config()));
  ASSERT_TRUE(j);
  EXPECT_TRUE(cJSON_IsTrue(
      cJSON_GetObjectItemCaseSensitive(j.get(), "authorization_response_iss_parameter_supported")));
}

TEST(AuthServerMetadata, AdvertisesCimdOnlyWhenEnabled) {
  auto c = full_config();
  auto off = parse(authorization_server_metadata_json(c));
  ASSERT_TRUE(off);
  EXPECT_FALSE(has(off, "client_id_metadata_document_supported"));
  c.cimd_supported = true;
  auto on = parse(authorization_server_metadata_json(c));
  ASSERT_TRUE(on);
  EXPECT_TRUE(
      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(on.get(), "client_id_metadata_document_supported")));
}

TEST(AuthServerMetadata, OmitsUnconfiguredOptionalEndpoints) {
  auto c = full_config();
  c.registration_endpoint.clear();
  c.revocation_endpoint.clear();
  c.service_documentation.clear();
  auto j = parse(authorization_server_metadata_json(c));
  ASSERT_TRUE(j);
  EXPECT_FALSE(has(j, "registration_endpoint"));
  EXPECT_FALSE(has(j, "revocation_endpoint"));
  EXPECT_FALSE(has(j, "revocation_endpoint_auth_methods_supported"));
  EXPECT_FALSE(has(j, "service_documentation"));
}

TEST(AuthServerMetadata, NeverAdvertisesPlainPkceOrImplicitFlow) {
  std::string s = authorization_server_metadata_json(full_config());
  EXPECT_EQ(s.find("\"plain\""), std::string::npos);
  EXPECT_EQ(s.find("implicit"), std::string::npos);
  EXPECT_EQ(s.find("\"token\""), std::string::npos);
}

TEST(AuthServerMetadata, IsDeterministicCompactJson) {
  auto c = full_config();
  std::string a = authorization_server_metadata_json(c);
  EXPECT_EQ(a, authorization_server_metadata_json(c));
  EXPECT_EQ(a.find('\n'), std::string::npos);
  EXPECT_EQ(a.rfind("{\"issuer\":\"https://auth.example.com\",", 0), 0u);
}

TEST(AuthServerMetadata, EscapesConfiguredStrings) {
  auto c = full_config();
  c.scopes = {"a\"b"};
  auto j = parse(authorization_server_metadata_json(c));
  ASSERT_TRUE(j);
  EXPECT_EQ(strs(j, "scopes_supported"), V{"a\"b"});
}

TEST(ProtectedResourceMetadata, NamesResourceAndIssuer) {
  auto j = parse(protected_resource_metadata_json(full_config()));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "resource"), "https://mcp.example.com/mcp");
  EXPECT_EQ(strs(j, "authorization_servers"), V{"https://auth.example.com"});
  EXPECT_EQ(strs(j, "scopes_supported"), (V{"mcp:tools", "offline_access"}));
  EXPECT_EQ(strs(j, "bearer_methods_supported"), V{"header"});
  EXPECT_EQ(str(j, "resource_name"), "Example MCP");
}

TEST(ProtectedResourceMetadata, KeepsResourceExactlyAsConfigured) {
  auto c = full_config();
  c.resource = "https://mcp.example.com";
  auto j = parse(protected_resource_metadata_json(c));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "resource"), "https://mcp.example.com");
  c.resource = "https://mcp.example.com/";
  auto k = parse(protected_resource_metadata_json(c));
  ASSERT_TRUE(k);
  EXPECT_EQ(str(k, "resource"), "https://mcp.example.com/");
}

TEST(ProtectedResourceMetadata, OmitsResourceNameWhenUnset) {
  auto c = full_config();
  c.resource_name.clear();
  auto j = parse(protected_resource_metadata_json(c));
  ASSERT_TRUE(j);
  EXPECT_FALSE(has(j, "resource_name"));
}

TEST(ProtectedResourceMetadata, IsDeterministicCompactJson) {
  auto c = full_config();
  std::string a = protected_resource_metadata_json(c);
  EXPECT_EQ(a, protected_resource_metadata_json(c));
  EXPECT_EQ(a.rfind("{\"resource\":\"https://mcp.example.com/mcp\",", 0), 0u);
}
