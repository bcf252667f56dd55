// Unit tests for src/registration.hpp (RFC 7591).
#include "registration.hpp"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

using namespace mcpauth;

namespace {

const std::vector<std::string> kScopes = {"mcp:tools", "mcp:resources", "offline_access"};

std::variant<ClientMetadata, RegistrationError> reg(const std::string& body) {
  return parse_registration_request(body, kScopes);
}

ClientMetadata ok(const std::string& body) {
  auto r = reg(body);
  if (auto* e = std::get_if<RegistrationError>(&r)) {
    ADD_FAILURE() << e->error << ": " << e->description;
    return {};
  }
  return std::get<ClientMetadata>(r);
}

RegistrationError err(const std::string& body) {
  auto r = reg(body);
  if (!std::holds_alternative<RegistrationError>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<RegistrationError>(r);
}

// Wraps a members snippet with a valid redirect_uris member.
std::string with_redirect(const std::string& members) {
  return R"({"redirect_uris":["https://app.example/cb"])" +
         (members.empty() ? std::string() : "," + members) + "}";
}

struct JsonDelete {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDelete>;

Json parse(const std::string& s) { return Json(cJSON_Parse(s.c_str())); }

std::string str(const Json& j, const char* name) {
  const cJSON* s = cJSON_GetObjectItemCaseSensitive(j.get(), name);
  return cJSON_IsString(s) ? s->valuestring : "<missing>";
}

std::vector<std::string> strs(const Json& j, const char* name) {
  std::vector<std::string> out;
  const cJSON* el = nullptr;
  cJSON_ArrayForEach(el, cJSON_GetObjectItemCaseSensitive(j.get(), name)) {
    out.push_back(cJSON_IsString(el) ? el->valuestring : "<non-string>");
  }
  return out;
}

}  // namespace

TEST(Registration, AcceptsTypicalMcpPublicClient) {
  auto c = ok(R"({"client_name":"Inspector","redirect_uris":["http://localhost:6274/oauth/callback"],
                  "grant_types":["authorization_code","refresh_token"],"response_types":["code"],
                  "token_endpoint_auth_method":"none","scope":"mcp:tools"})");
  EXPECT_EQ(c.client_name, "Inspector");
  EXPECT_EQ(c.redirect_uris, std::vector<std::string>{"http://localhost:6274/oauth/callback"});
  EXPECT_EQ(c.token_endpoint_auth_method, "none");
  EXPECT_EQ(c.scope, "mcp:tools");
  EXPECT_TRUE(c.client_id.empty());
  EXPECT_EQ(c.client_id_issued_at, 0);
  EXPECT_TRUE(c.client_secret_hash.empty());
}

TEST(Registration, AppliesDocumentedDefaults) {
  auto c = ok(with_redirect(""));
  EXPECT_EQ(c.token_endpoint_auth_method, "client_secret_basic");
  EXPECT_EQ(c.grant_types, (std::vector<std::string>{"authorization_code", "refresh_token"}));
  EXPECT_EQ(c.response_types, std::vector<std::string>{"code"});
  EXPECT_TRUE(c.scope.empty());
  EXPECT_TRUE(c.client_name.empty());
}

TEST(Registration, TreatsNullAsAbsentAndIgnoresUnknownFields) {
  auto c = ok(with_redirect(R"("client_uri":null,"jwks_uri":"https://x/j","software_id":7)"));
  EXPECT_TRUE(c.client_uri.empty());
}

TEST(Registration, AcceptsConfidentialAuthMethods) {
  EXPECT_EQ(ok(with_redirect(R"("token_endpoint_auth_method":"client_secret_post")"))
                .token_endpoint_auth_method,
            "client_secret_post");
  EXPECT_EQ(ok(with_redirect(R"("token_endpoint_auth_method":"client_secret_basic")"))
                .token_endpoint_auth_method,
            "client_secret_basic");
}

TEST(Registration, NormalizesScopeAndDropsDuplicates) {
  auto c = ok(with_redirect(R"("scope":" mcp:tools  offline_access mcp:tools ")"));
  EXPECT_EQ(c.scope, "mcp:tools offline_access");
}

TEST(Registration, DropsDuplicateRedirectUris) {
  auto d = ok(R"({"redirect_uris":["https://a/cb","https://a/cb"]})");
  EXPECT_EQ(d.redirect_uris, std::vector<std::string>{"https://a/cb"});
}

std::string redirect_array(int n, size_t length = 0) {
  std::string arr;
  for (int i = 0; i < n; ++i) {
    std::string uri = "https://a/cb" + std::to_string(i);
    if (length > uri.size()) uri += std::string(length - uri.size(), 'x');
    arr += (i ? ",\"" : "\"") + uri + "\"";
  }
  return "[" + arr + "]";
}

TEST(Registration, AcceptsUpTo10RedirectUris) {
  EXPECT_EQ(ok("{\"redirect_uris\":" + redirect_array(10) + "}").redirect_uris.size(), 10u);
}

TEST(Registration, RejectsMoreThan10RedirectUrisNamingTheLimit) {
  auto e = err("{\"redirect_uris\":" + redirect_array(11) + "}");
  EXPECT_EQ(e.error, "invalid_redirect_uri");
  EXPECT_NE(e.description.find("at most 10 redirect_uris"), std::string::npos) << e.description;
}

TEST(Registration, ARedirectUriMayBe2048CharactersButNotMore) {
  EXPECT_EQ(ok("{\"redirect_uris\":" + redirect_array(1, 2048) + "}").redirect_uris.front().size(), 2048u);
  auto e = err("{\"redirect_uris\":" + redirect_array(1, 2049) + "}");
  EXPECT_EQ(e.error, "invalid_redirect_uri");
  EXPECT_NE(e.description.find("2048"), std::string::npos) << e.description;
  EXPECT_LT(e.description.size(), 400u);  // the URI is not echoed whole
}

TEST(Registration, ClientAndLogoUrisMayBe2048CharactersButNotMore) {
  const std::string at = "https://app.example/" + std::string(2048 - 20, 'p');
  ASSERT_EQ(at.size(), 2048u);
  EXPECT_EQ(ok(with_redirect("\"client_uri\":\"" + at + "\"")).client_uri, at);
  EXPECT_EQ(ok(with_redirect("\"logo_uri\":\"" + at + "\"")).logo_uri, at);
  for (const std::string name : {"client_uri", "logo_uri"}) {
    auto e = err(with_redirect("\"" + name + "\":\"" + at + "p\""));
    EXPECT_EQ(e.error, "invalid_client_metadata");
    EXPECT_NE(e.description.find(name), std::string::npos) << e.description;
    EXPECT_NE(e.description.find("2048"), std::string::npos) << e.description;
  }
}

TEST(Registration, AManyDuplicatesArrayIsReadInLinearithmicTime) {
  // 64 KiB of one short URI repeated: deduplicated without a quadratic scan.
  std::string arr;
  for (int i = 0; i < 12000; ++i) arr += (i ? ",\"" : "\"") + std::string("https://a/cb") + "\"";
  EXPECT_EQ(ok("{\"redirect_uris\":[" + arr + "]}").redirect_uris.size(), 1u);
}

TEST(Registration, TheStoredFormOfARegistrationIsAtMost8KiB) {
  // Each field within its own bound, the whole too large to keep.
  const std::string body = "{\"redirect_uris\":" + redirect_array(4, 2000) + "}";
  auto c = ok(body);
  c.client_id = "0123456789012345678901";
  auto e = stored_size_error(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, "invalid_client_metadata");
  EXPECT_NE(e->description.find("8 KiB"), std::string::npos) << e->description;
  auto small = ok("{\"redirect_uris\":" + redirect_array(3, 2000) + "}");
  small.client_id = c.client_id;
  small.client_secret_hash = std::string(43, 'h');
  EXPECT_FALSE(stored_size_error(small).has_value()) << serialize_client(small).size();
  EXPECT_LE(serialize_client(small).size(), kMaxStoredClientBytes);
}

TEST(Registration, RejectsBodyThatIsNotJson) {
  auto e = err("redirect_uris=https://a/cb");
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_EQ(err("").error, "invalid_client_metadata");
}

TEST(Registration, RejectsJsonThatIsNotAnObject) {
  EXPECT_EQ(err(R"(["https://a/cb"])").error, "invalid_client_metadata");
  EXPECT_EQ(err("null").error, "invalid_client_metadata");
}

TEST(Registration, RejectsTrailingGarbageAndNulBytes) {
  EXPECT_EQ(err(with_redirect("") + "x").error, "invalid_client_metadata");
  EXPECT_EQ(err(with_redirect("") + std::string("\0{}", 3)).error, "invalid_client_metadata");
}

TEST(Registration, RejectsDuplicateMembers) {
  auto e = err(R"({"redirect_uris":["https://a/cb"],"redirect_uris":["https://evil/cb"]})");
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("duplicate"), std::string::npos);
}

TEST(Registration, RequiresRedirectUris) {
  auto e = err(R"({"client_name":"x"})");
  EXPECT_EQ(e.error, "invalid_redirect_uri");
  EXPECT_NE(e.description.find("required"), std::string::npos);
  EXPECT_EQ(err(R"({"redirect_uris":null})").error, "invalid_redirect_uri");
}

TEST(Registration, RejectsEmptyRedirectUris) {
  EXPECT_EQ(err(R"({"redirect_uris":[]})").error, "invalid_redirect_uri");
}

TEST(Registration, RejectsRedirectUrisOfWrongType) {
  EXPECT_EQ(err(R"({"redirect_uris":"https://a/cb"})").error, "invalid_client_metadata");
  EXPECT_EQ(err(R"({"redirect_uris":["https://a/cb", 5]})").error, "invalid_client_metadata");
}

TEST(Registration, RejectsInvalidRedirectUriNamingItAndTheReason) {
  auto e = err(R"({"redirect_uris":["https://a/cb","http://evil.example/cb"]})");
  EXPECT_EQ(e.error, "invalid_redirect_uri");
  EXPECT_NE(e.description.find("http://evil.example/cb"), std::string::npos);
  EXPECT_NE(e.description.find("loopback"), std::string::npos);
  auto f = err(R"({"redirect_uris":["https://a/cb#frag"]})");
  EXPECT_EQ(f.error, "invalid_redirect_uri");
  EXPECT_NE(f.description.find("fragment"), std::string::npos);
  EXPECT_EQ(err(R"J({"redirect_uris":["javascript:alert(1)"]})J").error, "invalid_redirect_uri");
}

TEST(Registration, RejectsUnsupportedAuthMethod) {
  auto e = err(with_redirect(R"("token_endpoint_auth_method":"private_key_jwt")"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("private_key_jwt"), std::string::npos);
  EXPECT_EQ(err(with_redirect(R"("token_endpoint_auth_method":1)")).error,
            "invalid_client_metadata");
}

TEST(Registration, RejectsUnsupportedGrantType) {
  auto e = err(with_redirect(R"("grant_types":["authorization_code","client_credentials"])"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("client_credentials"), std::string::npos);
  EXPECT_EQ(err(with_redirect(R"("grant_types":["implicit"])")).error, "invalid_client_metadata");
  EXPECT_EQ(err(with_redirect(R"("grant_types":"authorization_code")")).error,
            "invalid_client_metadata");
}

TEST(Registration, RejectsUnsupportedResponseType) {
  EXPECT_EQ(err(with_redirect(R"("response_types":["code","token"])")).error,
            "invalid_client_metadata");
  EXPECT_EQ(err(with_redirect(R"("response_types":[1])")).error, "invalid_client_metadata");
}

TEST(Registration, RejectsCodeResponseTypeWithoutAuthorizationCodeGrant) {
  auto e = err(with_redirect(R"("grant_types":["refresh_token"])"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("requires grant_type authorization_code"), std::string::npos);
}

TEST(Registration, RejectsAuthorizationCodeGrantWithoutCodeResponseType) {
  auto e = err(with_redirect(R"("response_types":[])"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("requires response_type code"), std::string::npos);
}

TEST(Registration, RejectsEmptyGrantAndResponseTypes) {
  EXPECT_EQ(err(with_redirect(R"("grant_types":[],"response_types":[])")).error,
            "invalid_client_metadata");
}

TEST(Registration, AcceptsClientNameOf200CharactersIncludingMultibyte) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xc3\xa9";  // é, 2 bytes each
  EXPECT_EQ(ok(with_redirect("\"client_name\":\"" + name + "\"")).client_name, name);
}

TEST(Registration, RejectsClientNameLongerThan200Characters) {
  auto e = err(with_redirect("\"client_name\":\"" + std::string(201, 'x') + "\""));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("200"), std::string::npos);
}

TEST(Registration, RejectsClientNameOfWrongTypeOrWithControlCharacters) {
  EXPECT_EQ(err(with_redirect(R"("client_name":["x"])")).error, "invalid_client_metadata");
  for (const char* control : {"\\u0001", "\\n", "\\t", "\\u001f", "\\u007f", "\\u0080", "\\u0085", "\\u009f"}) {
    auto e = err(with_redirect(std::string("\"client_name\":\"a") + control + "b\""));
    EXPECT_EQ(e.error, "invalid_client_metadata") << control;
    EXPECT_NE(e.description.find("control character"), std::string::npos) << control << ": " << e.description;
  }
}

// RFC 7591 §5: the name is self-declared, and it is shown on the consent
// page.  Text that renders differently from what it is -- reordered by
// bidirectional controls, padded or split by invisible characters -- lets
// one client pass for another (a Trojan Source style attack on the user).
std::string utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

RegistrationError name_error(const std::string& name) {
  return err(with_redirect("\"client_name\":\"" + name + "\""));
}

TEST(Registration, RejectsBidirectionalControlsInTheClientName) {
  for (uint32_t cp : {0x202Au, 0x202Bu, 0x202Cu, 0x202Du, 0x202Eu, 0x2066u, 0x2067u, 0x2068u, 0x2069u,
                      0x200Eu, 0x200Fu, 0x061Cu}) {
    auto e = name_error("Good App" + utf8(cp) + "ppA liveE");
    EXPECT_EQ(e.error, "invalid_client_metadata") << std::hex << cp;
    EXPECT_NE(e.description.find("client_name"), std::string::npos);
    EXPECT_NE(e.description.find("bidirectional"), std::string::npos) << e.description;
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", cp);
    EXPECT_NE(e.description.find(code), std::string::npos) << e.description;
  }
}

TEST(Registration, RejectsInvisibleAndFormatCharactersInTheClientName) {
  for (uint32_t cp : {0x200Bu, 0x200Cu, 0x200Du, 0x2060u, 0x2061u, 0x2062u, 0x2063u, 0x2064u, 0xFEFFu, 0x180Eu,
                      0x00ADu, 0x0600u, 0x06DDu, 0x070Fu, 0x08E2u, 0x206Au, 0x206Fu, 0xFFF9u, 0xFFFBu, 0x110BDu,
                      0x13430u, 0x1BCA0u, 0x1D173u, 0x1D17Au, 0xE0001u, 0xE0020u, 0xE0041u, 0xE007Fu,
                      // invisible though not Cf: line/paragraph separators, the
                      // combining grapheme joiner, Hangul fillers, noncharacters
                      0x2028u, 0x2029u, 0x034Fu, 0x115Fu, 0x1160u, 0x3164u, 0xFFA0u, 0xFDD0u, 0xFFFEu, 0x10FFFFu}) {
    auto e = name_error("Good" + utf8(cp) + "App");
    EXPECT_EQ(e.error, "invalid_client_metadata") << std::hex << cp;
    EXPECT_NE(e.description.find("invisible"), std::string::npos) << std::hex << cp << ": " << e.description;
  }
}

TEST(Registration, RejectsInvalidUtf8InTheClientName) {
  for (const char* bad : {"\xff", "\x80", "a\xc3", "\xc0\x80", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xf8\x88\x80\x80\x80"}) {
    auto e = name_error(bad);
    EXPECT_EQ(e.error, "invalid_client_metadata");
    EXPECT_NE(e.description.find("UTF-8"), std::string::npos) << e.description;
  }
}

TEST(Registration, AcceptsNamesInAnyScriptEmojiAndTheirNeighbours) {
  for (const std::string& name :
       {std::string("Zo\xc3\xab's App"), std::string("\xe6\x97\xa5\xe6\x9c\xac"),          // Japanese
        std::string("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"),                              // Hebrew (RTL letters)
        std::string("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"),                      // Arabic
        "Love " + utf8(0x2764) + utf8(0xFE0F) + " App",                         // emoji + variation selector
        "a" + utf8(0x200A) + "b" + utf8(0x2027) + utf8(0x2030) + utf8(0x2070) + utf8(0x205F) + utf8(0xFFFD) +
            utf8(0x1F600) + utf8(0x10FFFD) + utf8(0xE0100)})
    EXPECT_EQ(ok(with_redirect("\"client_name\":\"" + name + "\"")).client_name, name);
}

TEST(Registration, AcceptsHttpsOrLoopbackClientAndLogoUris) {
  auto c = ok(with_redirect(R"("client_uri":"https://app.example","logo_uri":"http://127.0.0.1:5/l.png")"));
  EXPECT_EQ(c.client_uri, "https://app.example");
  EXPECT_EQ(c.logo_uri, "http://127.0.0.1:5/l.png");
}

TEST(Registration, RejectsNonHttpsClientUri) {
  auto e = err(with_redirect(R"("client_uri":"http://app.example")"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("client_uri"), std::string::npos);
  EXPECT_EQ(err(with_redirect(R"("client_uri":5)")).error, "invalid_client_metadata");
  EXPECT_EQ(err(with_redirect(R"("client_uri":"https://user@app.example")")).error,
            "invalid_client_metadata");
  EXPECT_EQ(err(with_redirect(R"("client_uri":"not a url")")).error, "invalid_client_metadata");
}

TEST(Registration, RejectsNonHttpsLogoUri) {
  auto e = err(with_redirect(R"J("logo_uri":"javascript:alert(1)")J"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("logo_uri"), std::string::npos);
  EXPECT_EQ(err(with_redirect(R"("logo_uri":"data:image/png;base64,AAAA")")).error,
            "invalid_client_metadata");
}

TEST(Registration, RejectsUnsupportedScope) {
  auto e = err(with_redirect(R"("scope":"mcp:tools admin")"));
  EXPECT_EQ(e.error, "invalid_client_metadata");
  EXPECT_NE(e.description.find("admin"), std::string::npos);
  EXPECT_EQ(parse_registration_request(with_redirect(R"("scope":"mcp:tools")"), {}).index(), 1u);
}

TEST(Registration, RejectsScopeOfWrongType) {
  EXPECT_EQ(err(with_redirect(R"("scope":["mcp:tools"])")).error, "invalid_client_metadata");
}

TEST(RegistrationResponse, PublicClientHasNoSecret) {
  auto c = ok(R"({"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
                  "client_name":"CLI","scope":"mcp:tools"})");
  c.client_id = "cid-1";
  c.client_id_issued_at = 1764400000;
  std::string secret = "must-not-appear";
  auto j = parse(registration_response_json(c, &secret));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "client_id"), "cid-1");
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(j.get(), "client_id_issued_at")->valuedouble,
            1764400000.0);
  EXPECT_EQ(strs(j, "redirect_uris"), std::vector<std::string>{"http://127.0.0.1/cb"});
  EXPECT_EQ(str(j, "client_name"), "CLI");
  EXPECT_EQ(str(j, "token_endpoint_auth_method"), "none");
  EXPECT_EQ(str(j, "scope"), "mcp:tools");
  EXPECT_EQ(strs(j, "grant_types"),
            (std::vector<std::string>{"authorization_code", "refresh_token"}));
  EXPECT_EQ(strs(j, "response_types"), std::vector<std::string>{"code"});
  EXPECT_FALSE(cJSON_HasObjectItem(j.get(), "client_secret"));
  EXPECT_FALSE(cJSON_HasObjectItem(j.get(), "client_secret_expires_at"));
}

TEST(RegistrationResponse, ConfidentialClientGetsSecretThatNeverExpires) {
  auto c = ok(with_redirect(""));
  c.client_id = "cid-2";
  std::string secret = "s3cret";
  auto j = parse(registration_response_json(c, &secret));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "client_secret"), "s3cret");
  const cJSON* exp = cJSON_GetObjectItemCaseSensitive(j.get(), "client_secret_expires_at");
  ASSERT_TRUE(cJSON_IsNumber(exp));
  EXPECT_EQ(exp->valuedouble, 0.0);
}

TEST(RegistrationResponse, OmitsEmptyOptionalFields) {
  auto c = ok(with_redirect(""));
  auto j = parse(registration_response_json(c, nullptr));
  ASSERT_TRUE(j);
  for (const char* f : {"client_name", "client_uri", "logo_uri", "scope", "client_secret"}) {
    EXPECT_FALSE(cJSON_HasObjectItem(j.get(), f)) << f;
  }
}

TEST(RegistrationResponse, EscapesStringsAsJson) {
  auto c = ok(with_redirect(R"("client_name":"a \"quoted\" <name>")"));
  auto j = parse(registration_response_json(c, nullptr));
  ASSERT_TRUE(j);
  EXPECT_EQ(str(j, "client_name"), "a \"quoted\" <name>");
}

TEST(ClientStore, SerializeThenDeserializeRoundTripsEveryField) {
  ClientMetadata c;
  c.client_id = "abc";
  c.client_name = "Name é";
  c.client_uri = "https://a";
  c.logo_uri = "https://a/l.png";
  c.scope = "mcp:tools";
  c.redirect_uris = {"https://a/cb", "http://127.0.0.1/cb"};
  c.grant_types = {"authorization_code"};
  c.response_types = {"code"};
  c.token_endpoint_auth_method = "client_secret_post";
  c.client_id_issued_at = 4102444800;  // beyond 2^31
  c.client_secret_hash = "hash";
  auto back = deserialize_client(serialize_client(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->client_id, c.client_id);
  EXPECT_EQ(back->client_name, c.client_name);
  EXPECT_EQ(back->client_uri, c.client_uri);
  EXPECT_EQ(back->logo_uri, c.logo_uri);
  EXPECT_EQ(back->scope, c.scope);
  EXPECT_EQ(back->redirect_uris, c.redirect_uris);
  EXPECT_EQ(back->grant_types, c.grant_types);
  EXPECT_EQ(back->response_types, c.response_types);
  EXPECT_EQ(back->token_endpoint_auth_method, c.token_endpoint_auth_method);
  EXPECT_EQ(back->client_id_issued_at, c.client_id_issued_at);
  EXPECT_EQ(back->client_secret_hash, c.client_secret_hash);
}

TEST(ClientStore, SerializedFormIsCompactJson) {
  ClientMetadata c;
  c.client_id = "abc";
  c.redirect_uris = {"https://a/cb"};
  c.token_endpoint_auth_method = "none";
  std::string s = serialize_client(c);
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_EQ(s.rfind("{\"v\":1,", 0), 0u);
}

TEST(ClientStore, DeserializeRejectsGarbageAndMissingFields) {
  EXPECT_FALSE(deserialize_client("").has_value());
  EXPECT_FALSE(deserialize_client("not json").has_value());
  EXPECT_FALSE(deserialize_client("{}").has_value());
  ClientMetadata c;
  c.client_id = "abc";
  c.redirect_uris = {"https://a/cb"};
  c.token_endpoint_auth_method = "none";
  std::string good = serialize_client(c);
  ASSERT_TRUE(deserialize_client(good).has_value());
  std::string wrong_version = good;
  wrong_version.replace(0, 7, "{\"v\":2,");
  EXPECT_FALSE(deserialize_client(wrong_version).has_value());
  c.client_id.clear();
  EXPECT_FALSE(deserialize_client(serialize_client(c)).has_value());
  c.client_id = "abc";
  c.redirect_uris.clear();
  EXPECT_FALSE(deserialize_client(serialize_client(c)).has_value());
}
