// GET /authorize with a client_id that names a client metadata document:
// which documents are fetched at all (mcp_auth_client_metadata_ports), and
// what the browser is told when the fetch fails.
#include "test_endpoint_fixture.hpp"

namespace mcpauth_test {
namespace {

class DocumentAuthorize : public Gateway {
 protected:
  void SetUp() override {
    Gateway::SetUp();
    cf.cimd_fetch = true;
  }
  Response start(const std::string& client_id) {
    return call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id)));
  }
  static void expect_page_without_fetch(const Response& r) {
    EXPECT_EQ(r.fetch.target, MCPA_FETCH_NONE);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(header(r, "Location"), "");
    EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  }
};

TEST_F(DocumentAuthorize, ADocumentOnPort443IsFetched) {
  for (const char* url : {"https://app.example.com/c.json", "https://app.example.com:443/c.json"}) {
    Response r = start(url);
    EXPECT_EQ(r.fetch.target, MCPA_FETCH_CLIENT_METADATA) << url << " " << r.body;
    EXPECT_EQ(r.fetch.host, "app.example.com");
    EXPECT_EQ(r.fetch.port, 443);
  }
}

TEST_F(DocumentAuthorize, ADocumentOnAnotherPortIsRefusedWithoutFetching) {
  for (const char* url : {"https://app.example.com:8443/c.json", "https://app.example.com:22/c.json",
                          "https://10.0.0.1:6379/c.json", "https://[2001:db8::1]:80/c.json"}) {
    Response r = start(url);
    expect_page_without_fetch(r);
    EXPECT_NE(r.body.find("port"), std::string::npos) << r.body;
  }
}

TEST_F(DocumentAuthorize, TheOperatorChoosesThePorts) {
  cf.cimd_ports = {8443, 9443};
  Response r = start("https://app.example.com:8443/c.json");
  EXPECT_EQ(r.fetch.target, MCPA_FETCH_CLIENT_METADATA) << r.body;
  EXPECT_EQ(r.fetch.port, 8443);
  expect_page_without_fetch(start("https://app.example.com/c.json"));  // 443 no longer listed
}

TEST_F(DocumentAuthorize, TheFetchedStatusIsNotShownToTheBrowser) {
  Response asked = start("https://app.example.com/c.json");
  ASSERT_EQ(asked.fetch.target, MCPA_FETCH_CLIENT_METADATA);
  for (int status : {404, 301, 500, 418}) {
    Response r = resume(MCPA_EP_AUTHORIZE, asked, status, "<html>secret intranet page</html>");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body.find(std::to_string(status)), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("secret intranet"), std::string::npos);
    EXPECT_NE(r.body.find("could not be fetched"), std::string::npos);
  }
}

// The port numbers themselves are parsed by nginx on the directive's line
// (t/test_cimd.py, t/test_foundation.py).
TEST(ClientMetadataPorts, AreOnly443UnlessConfigured) {
  Config c;
  EXPECT_EQ(c.cimd_ports, std::vector<int>{443});
}

}  // namespace
}  // namespace mcpauth_test
