// The stored records and sealed payloads (session.hpp).
#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "session.hpp"

namespace {

using namespace mcpauth;

TEST(SessionRecords, ASessionSurvivesARoundTrip) {
  Session s;
  s.sid = "sid";
  s.sub = "user \"42\"";
  s.name = "Ada";
  s.email = "ada@example.com";
  s.client_id = "c";
  s.scope = "a b";
  s.resource = "https://mcp.example/mcp";
  s.provider_access_token = "pa";
  s.provider_refresh_token = "pr";
  s.provider_expires = 1'800'003'600;
  s.created = 1'800'000'000;
  s.expires = 1'802'592'000;
  s.gen = 7;
  s.rotated_at = 1'800'000'100;
  auto back = decode_session(encode_session(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->sub, s.sub);
  EXPECT_EQ(back->provider_expires, s.provider_expires);
  EXPECT_EQ(back->gen, 7);
  EXPECT_EQ(back->rotated_at, s.rotated_at);
  EXPECT_EQ(encode_session(*back), encode_session(s));
}

TEST(SessionRecords, PendingLoginCodeAndTokenPayloadsRoundTrip) {
  LoginState l;
  l.authz = {"client", "https://client.example/cb", true, "st", "challenge", "a", "", 5};
  l.provider_verifier = "v";
  l.nonce = "n";
  l.browser_hash = "h";
  auto lb = decode_login(encode_login(l));
  ASSERT_TRUE(lb);
  EXPECT_TRUE(lb->authz.redirect_uri_sent);
  EXPECT_EQ(lb->authz.created, 5);
  EXPECT_EQ(lb->nonce, "n");
  auto pb = decode_pending(encode_pending(l.authz));
  ASSERT_TRUE(pb);
  EXPECT_EQ(pb->state, "st");

  CodeGrant c{"sid", "client", "https://client.example/cb", "challenge", "r", "s", false, 99};
  auto cb = decode_code(encode_code(c));
  ASSERT_TRUE(cb);
  EXPECT_FALSE(cb->redirect_uri_sent);
  EXPECT_EQ(cb->session_expires, 99);

  auto ab = decode_access(encode_access({"sid", "client", "s", "r", 42}));
  ASSERT_TRUE(ab);
  EXPECT_EQ(ab->exp, 42);
  auto rb = decode_refresh(encode_refresh({"sid", "client", 3, 43}));
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->gen, 3);
}

TEST(SessionRecords, AnotherVersionOrShapeDoesNotDecode) {
  EXPECT_FALSE(decode_session(R"({"v":"2","sid":"s","sub":"u","client_id":"c","provider_expires":"0","created":"0","expires":"0","gen":"0","rotated_at":"0"})"));
  EXPECT_TRUE(decode_session(R"({"v":"1","sid":"s","sub":"u","client_id":"c","provider_expires":"0","created":"0","expires":"0","gen":"0","rotated_at":"0"})"));
  EXPECT_FALSE(decode_session(R"({"v":"1","sid":"s","sub":"u","client_id":"c","provider_expires":"0","created":"0","expires":"0","gen":0,"rotated_at":"0"})"));
  EXPECT_FALSE(decode_session(R"({"v":"1","sid":"s","sub":"u","client_id":"c","provider_expires":"0","created":"0","expires":"0","gen":"x","rotated_at":"0"})"));
  EXPECT_FALSE(decode_session(R"({"v":"1","sid":"","sub":"u","client_id":"c","provider_expires":"0","created":"0","expires":"0","gen":"0","rotated_at":"0"})"));
  EXPECT_FALSE(decode_refresh("not json"));
  EXPECT_FALSE(decode_refresh("[]"));
  EXPECT_FALSE(decode_access(R"({"v":"1","sid":"s","exp":"99999999999999999999"})"));
  // a scope outside RFC 6749's scope characters was never granted here
  EXPECT_TRUE(decode_access(encode_access({"sid", "client", "a:b c/d", "r", 42})));
  EXPECT_FALSE(decode_access(encode_access({"sid", "client", "a\xac", "r", 42})));
  EXPECT_FALSE(decode_access(encode_access({"sid", "client", "a\"b", "r", 42})));
  EXPECT_FALSE(decode_access(encode_access({"sid", "client", "a\nb", "r", 42})));
}

TEST(SessionRecords, FieldsRefuseDuplicateNames) {
  EXPECT_FALSE(Fields::decode(R"({"a":"1","a":"2"})"));
  auto f = Fields::decode(R"({"a":"1","n":"-12"})");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->num("n").value_or(0), -12);
  EXPECT_FALSE(f->num("a1").has_value());
}

// Fields::decode reads records of the plain shape without cJSON (16 bytes
// at a time where it can): on many records cut and changed around quotes,
// backslashes, control bytes and the 16-byte block edges,
// it must read exactly what cJSON reads, or refuse what cJSON refuses.
TEST(SessionRecords, TheFastRecordReadingAgreesWithCJson) {
  Session s;
  s.sid = "Zy0_aB3kLm9QpRs7TuVwXyZ012345678901234567ab";
  s.sub = "user-42";
  s.name = "Demo User";
  s.email = "demo@example.com";
  s.client_id = "cl-0123456789abcdef";
  s.scope = "snippets:read snippets:write";
  s.resource = "http://127.0.0.1:8080/mcp";
  s.provider_access_token = std::string(200, 'A');
  s.provider_refresh_token = "r";
  const std::string base = encode_session(s);
  const std::string alphabet = "\"\\:,{}a \x01\x1f\x7f\xc3";
  std::mt19937 rng(99);
  int read = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string t = base;
    if (round % 3 == 0) t.resize(std::min(t.size(), size_t(16 + rng() % 200)));
    int edits = static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !t.empty(); ++e) {
      size_t at = rng() % t.size();
      if (rng() % 2) {
        t[at] = alphabet[rng() % alphabet.size()];
      } else {
        t.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    if (round % 3 == 0 && !t.empty() && t.back() != '}') t += "\"}";
    auto f = Fields::decode(t);
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> doc(cJSON_ParseWithLength(t.data(), t.size()), cJSON_Delete);
    bool plain = doc && cJSON_IsObject(doc.get());
    Fields expected;
    for (cJSON* item = plain ? doc->child : nullptr; item; item = item->next) {
      if (!cJSON_IsString(item) || expected.has(item->string)) {
        plain = false;
        break;
      }
      expected.set(item->string, item->valuestring);
    }
    ASSERT_EQ(f.has_value(), plain) << t;
    if (f) {
      ASSERT_EQ(f->encode(), expected.encode()) << t;
      ++read;
    }
  }
  EXPECT_GT(read, 1000);
}

}  // namespace

// decode_session_into is the one reader of session records (the guard's,
// into a reused Session, and decode_session's): the same acceptance and the
// same values on the plain path and on the general (cJSON) path that escapes
// and odd layouts take.
TEST(SessionRecords, TheOneReaderReadsBothPathsAlike) {
  mcpauth::Session s;
  s.sid = "sid-1";
  s.sub = "user";
  s.client_id = "client";
  s.scope = "a b";
  s.provider_access_token = "pat";
  s.provider_refresh_token = "prt";
  s.provider_expires = 50;
  s.expires = 100;
  mcpauth::Session reused;
  for (bool plain : {true, false}) {
    if (plain) s.sub = "user";
    else s.sub = "user \"quoted\"";
    std::string rec = mcpauth::encode_session(s);
    ASSERT_TRUE(mcpauth::decode_session_into(rec, &reused)) << rec;
    EXPECT_EQ(reused.sid, "sid-1");
    EXPECT_EQ(reused.sub, s.sub);
    EXPECT_EQ(reused.client_id, "client");
    EXPECT_EQ(reused.scope, "a b");
    EXPECT_EQ(reused.provider_access_token, "pat");
    EXPECT_EQ(reused.provider_refresh_token, "prt");
    EXPECT_EQ(reused.provider_expires, 50);
    EXPECT_EQ(reused.expires, 100);
  }
  for (const char* bad : {"", "{}", "{\"v\":\"1\"}", "{\"v\":\"2\",\"sid\":\"s\"}", "not json",
                          R"({"client_id":"c","created":"x","expires":"1","gen":"0","provider_expires":"0","rotated_at":"0","sid":"s","sub":"u","v":"1"})",
                          R"({"client_id":"c","created":"1","expires":"1","gen":"0","provider_expires":"0","rotated_at":"0","sid":"","sub":"u","v":"1"})"}) {
    EXPECT_FALSE(mcpauth::decode_session_into(bad, &reused)) << bad;
    EXPECT_FALSE(mcpauth::decode_session(bad)) << bad;
  }
  const char* good =
      R"({"client_id":"c","created":"1","expires":"1","gen":"0","provider_expires":"0","rotated_at":"0","sid":"s","sub":"u","v":"1"})";
  EXPECT_TRUE(mcpauth::decode_session_into(good, &reused));
  EXPECT_TRUE(mcpauth::decode_session(good));
}

TEST(SessionRecords, WipingTheProviderTokensOverwritesAndEmptiesThem) {
  mcpauth::Session s;
  s.sid = "sid-1";
  s.provider_access_token = std::string(40, 'a');
  s.provider_refresh_token = std::string(40, 'r');
  const char* bytes = s.provider_access_token.data();
  s.wipe_provider_tokens();
  EXPECT_TRUE(s.provider_access_token.empty());
  EXPECT_TRUE(s.provider_refresh_token.empty());
  EXPECT_EQ(s.sid, "sid-1");
  EXPECT_EQ(std::string(bytes, 40), std::string(40, '\0'));
  // moves still move (the destructor that wipes does not turn them into copies)
  mcpauth::Session a;
  a.provider_access_token = std::string(40, 'a');
  const char* moved = a.provider_access_token.data();
  mcpauth::Session b(std::move(a));
  EXPECT_EQ(b.provider_access_token.data(), moved);
}
