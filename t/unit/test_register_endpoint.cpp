// POST /register (RFC 7591).
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

using Register = Gateway;

const std::string kPublic = R"({"client_name":"Inspector","token_endpoint_auth_method":"none","redirect_uris":["https://client.example/cb"]})";

TEST_F(Register, APublicClientIsRegisteredAndStoredWithoutSecret) {
  Response r = call(MCPA_EP_REGISTER, request("POST", "", kPublic, "application/json; charset=utf-8"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  std::string id = json_string(r.body, "client_id");
  EXPECT_EQ(id.size(), 22u);
  EXPECT_EQ(r.body.find("client_secret\""), std::string::npos) << r.body;
  ClientMetadata c;
  ASSERT_EQ(load_client(store, id, &c), StoreStatus::ok);
  EXPECT_EQ(c.client_id_issued_at, kT0);
  EXPECT_TRUE(c.client_secret_hash.empty());
}

TEST_F(Register, AConfidentialClientGetsASecretAndOnlyItsHashIsStored) {
  std::string secret;
  std::string id = register_client(R"({"redirect_uris":["https://client.example/cb"]})", &secret);
  ASSERT_EQ(secret.size(), 43u);
  std::string raw;
  ASSERT_EQ(store.get("newclient:" + id, &raw), StoreStatus::ok);
  EXPECT_EQ(raw.find(secret), std::string::npos);
  ClientMetadata c;
  ASSERT_EQ(load_client(store, id, &c), StoreStatus::ok);
  EXPECT_EQ(c.client_secret_hash, sha256_b64url(secret));
}

TEST_F(Register, TwoRegistrationsGetDifferentIds) {
  EXPECT_NE(public_client(), public_client());
}

TEST_F(Register, ARegistrationNeverUsedForALoginExpiresWithinADay) {
  std::string id = public_client();
  ClientMetadata c;
  store.now = kT0 + 86400 - 1;
  EXPECT_EQ(load_client(store, id, &c), StoreStatus::ok);
  store.now = kT0 + 86400;
  EXPECT_EQ(load_client(store, id, &c), StoreStatus::not_found);
}

TEST_F(Register, ARegistrationUsedForALoginLivesTheRestOfClientTtl) {
  std::string id = public_client();
  store.now = kT0 + 3600;  // the first login, an hour later
  ASSERT_EQ(promote_client(cf, store, id), StoreStatus::ok);
  std::string raw;
  EXPECT_EQ(store.get("newclient:" + id, &raw), StoreStatus::not_found);
  ClientMetadata c;
  store.now = kT0 + cf.client_ttl - 1;
  EXPECT_EQ(load_client(store, id, &c), StoreStatus::ok);
  EXPECT_EQ(promote_client(cf, store, id), StoreStatus::ok);  // a second login changes nothing
  store.now = kT0 + cf.client_ttl;
  EXPECT_EQ(load_client(store, id, &c), StoreStatus::not_found);
}

TEST_F(Register, UnusedRegistrationsAreUnauthenticatedEntriesAndTheOldestMakeRoom) {
  store.unauthenticated_capacity = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(public_client());
  ClientMetadata c;
  EXPECT_EQ(load_client(store, ids[0], &c), StoreStatus::not_found);
  EXPECT_EQ(load_client(store, ids[1], &c), StoreStatus::not_found);
  for (int i = 2; i < 5; ++i) EXPECT_EQ(load_client(store, ids[i], &c), StoreStatus::ok);
  // a used one is no longer in the budget
  ASSERT_EQ(promote_client(cf, store, ids[2]), StoreStatus::ok);
  for (int i = 0; i < 3; ++i) public_client();
  EXPECT_EQ(load_client(store, ids[2], &c), StoreStatus::ok);
  EXPECT_EQ(load_client(store, ids[3], &c), StoreStatus::not_found);
}

// Everything a registration stores is bounded; past a bound, the RFC 7591
// error names the limit and nothing is stored.
TEST_F(Register, ARegistrationPastAnyBoundGetsItsErrorAndStoresNothing) {
  auto uris = [](int n, size_t len) {
    std::string arr;
    for (int i = 0; i < n; ++i) {
      std::string u = "https://client.example/" + std::to_string(i);
      arr += (i ? ",\"" : "\"") + u + std::string(len > u.size() ? len - u.size() : 0, 'x') + "\"";
    }
    return "[" + arr + "]";
  };
  const std::string long_url = "https://client.example/" + std::string(2048, 'u');
  const struct {
    std::string body, error, limit;
  } cases[] = {
      {"{\"redirect_uris\":" + uris(11, 0) + "}", "invalid_redirect_uri", "10"},
      {"{\"redirect_uris\":" + uris(1, 2049) + "}", "invalid_redirect_uri", "2048"},
      {"{\"redirect_uris\":" + uris(1, 0) + ",\"client_name\":\"" + std::string(201, 'n') + "\"}",
       "invalid_client_metadata", "200"},
      {"{\"redirect_uris\":" + uris(1, 0) + ",\"client_uri\":\"" + long_url + "\"}", "invalid_client_metadata",
       "2048"},
      {"{\"redirect_uris\":" + uris(1, 0) + ",\"logo_uri\":\"" + long_url + "\"}", "invalid_client_metadata",
       "2048"},
      {"{\"redirect_uris\":" + uris(4, 2000) + "}", "invalid_client_metadata", "8 KiB"},
      {"{\"redirect_uris\":" + uris(1, 0) + ",\"client_name\":\"\xe2\x80\xae" "evil\"}", "invalid_client_metadata",
       "U+202E"},
  };
  for (const auto& c : cases) {
    Response r = call(MCPA_EP_REGISTER, request("POST", "", c.body, "application/json"));
    EXPECT_EQ(r.status, 400) << c.limit;
    EXPECT_EQ(json_string(r.body, "error"), c.error) << r.body;
    EXPECT_NE(r.body.find(c.limit), std::string::npos) << r.body;  // in error_description
  }
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(Register, ANonJsonContentTypeIsRefusedWithInvalidClientMetadata) {
  Response r = call(MCPA_EP_REGISTER, request("POST", "", kPublic, "application/x-www-form-urlencoded"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json_string(r.body, "error"), "invalid_client_metadata");
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(Register, AnInvalidRedirectUriIsRefusedWithTheRegistrationError) {
  Response r = call(MCPA_EP_REGISTER,
                    request("POST", "", R"({"redirect_uris":["http://evil.example/cb"]})", "application/json"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json_string(r.body, "error"), "invalid_redirect_uri");
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(Register, OptionsIsAPreflightAndOtherMethodsAre405) {
  Request pre = request("OPTIONS");
  pre.origin = "https://inspector.example";
  Response r = call(MCPA_EP_REGISTER, pre);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(header(r, "Access-Control-Allow-Origin"), "*");
  r = call(MCPA_EP_REGISTER, request("GET"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "POST, OPTIONS");
}

TEST_F(Register, ResponsesCarryCorsForBrowserClients) {
  Request req = request("POST", "", kPublic, "application/json");
  req.origin = "https://inspector.example";
  Response r = call(MCPA_EP_REGISTER, req);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(header(r, "Access-Control-Allow-Origin"), "*");
}

TEST_F(Register, AFullStoreAnswers503WithRetryAfter) {
  store.capacity = 0;
  Response r = call(MCPA_EP_REGISTER, request("POST", "", kPublic, "application/json"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json_string(r.body, "error"), "temporarily_unavailable");
  EXPECT_FALSE(header(r, "Retry-After").empty());
}

}  // namespace
}  // namespace mcpauth_test
