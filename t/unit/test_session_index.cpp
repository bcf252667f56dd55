// session_index: the lists beside the session records.
#include <gtest/gtest.h>

#include "crypto.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

class Index : public ::testing::Test {
 protected:
  MemoryStore store;
  int64_t now = 1000;

  Session session(const std::string& sid, const std::string& sub, const std::string& client, int64_t expires) {
    Session s;
    s.sid = sid;
    s.sub = sub;
    s.client_id = client;
    s.created = now;
    s.expires = expires;
    return s;
  }
  // As the callback does: listed, then stored.
  std::vector<std::string> sign_in(const Session& s) {
    std::vector<std::string> ended;
    EXPECT_EQ(index_new_session(store, s, now, &ended), StoreStatus::ok);
    EXPECT_EQ(store.put_new("session:" + s.sid, encode_session(s), s.expires), StoreStatus::ok);
    return ended;
  }
  std::vector<std::string> members(const std::vector<IndexEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.member);
    return out;
  }
  std::vector<std::string> of_subject(const std::string& sub) {
    std::vector<IndexEntry> out;
    EXPECT_EQ(sessions_of_subject(store, sub, now, &out), StoreStatus::ok);
    return members(out);
  }
  std::vector<std::string> of_client(const std::string& client) {
    std::vector<IndexEntry> out;
    EXPECT_EQ(sessions_of_client(store, client, now, &out), StoreStatus::ok);
    return members(out);
  }
};

using Ids = std::vector<std::string>;

TEST_F(Index, SessionsAreFoundByUserAndByClient) {
  store.now = now;
  sign_in(session("s1", "alice", "app-a", 5000));
  sign_in(session("s2", "alice", "app-b", 4000));
  sign_in(session("t1", "bob", "app-a", 6000));
  EXPECT_EQ(of_subject("alice"), (Ids{"s2", "s1"}));  // soonest to expire first
  EXPECT_EQ(of_subject("bob"), Ids{"t1"});
  EXPECT_EQ(of_client("app-a"), (Ids{"s1", "t1"}));
  EXPECT_EQ(of_client("app-b"), Ids{"s2"});
  EXPECT_TRUE(of_subject("carol").empty());
  std::vector<IndexEntry> clients;
  ASSERT_EQ(indexed_clients(store, now, &clients), StoreStatus::ok);
  EXPECT_EQ(members(clients), (Ids{"app-a", "app-b"}));
}

TEST_F(Index, EndingASessionTakesItsRecordAndItsEntries) {
  store.now = now;
  sign_in(session("s1", "alice", "app-a", 5000));
  sign_in(session("s2", "alice", "app-a", 5000));
  Session ended;
  ASSERT_EQ(end_session(store, "s1", now, &ended), StoreStatus::ok);
  EXPECT_EQ(ended.sub, "alice");
  std::string raw;
  EXPECT_EQ(store.get("session:s1", &raw), StoreStatus::not_found);
  EXPECT_EQ(of_subject("alice"), Ids{"s2"});
  EXPECT_EQ(of_client("app-a"), Ids{"s2"});
  EXPECT_EQ(end_session(store, "s1", now), StoreStatus::not_found);
}

TEST_F(Index, EntriesLeaveWithTheirSessionsLifetime) {
  store.now = now;
  sign_in(session("s1", "alice", "app-a", 1500));
  sign_in(session("s2", "alice", "app-a", 9000));
  now = 2000;
  store.now = now;
  EXPECT_EQ(of_subject("alice"), Ids{"s2"});
  EXPECT_EQ(of_client("app-a"), Ids{"s2"});
}

TEST_F(Index, AUsersOldestSessionEndsBeyondTheBound) {
  store.now = now;
  for (size_t i = 0; i < kSessionsPerSubject; ++i)
    EXPECT_TRUE(sign_in(session("s" + std::to_string(i), "alice", "app", 5000 + int64_t(i))).empty());
  // One more sign-in: the oldest session ends rather than escape the list.
  EXPECT_EQ(sign_in(session("new", "alice", "app", 9000)), Ids{"s0"});
  std::string raw;
  EXPECT_EQ(store.get("session:s0", &raw), StoreStatus::not_found);
  EXPECT_EQ(of_subject("alice").size(), kSessionsPerSubject);
  EXPECT_EQ(of_subject("alice").back(), "new");
  // another user is not affected
  EXPECT_TRUE(sign_in(session("b", "bob", "app", 5000)).empty());
}

TEST_F(Index, AClientIdThatIsAUrlRoundTrips) {
  store.now = now;
  const std::string url = "https://app.example/client metadata?x=1&y=%41\n";
  sign_in(session("s1", "alice", url, 5000));
  EXPECT_EQ(of_client(url), Ids{"s1"});
  std::vector<IndexEntry> clients;
  ASSERT_EQ(indexed_clients(store, now, &clients), StoreStatus::ok);
  EXPECT_EQ(members(clients), Ids{url});
}

TEST_F(Index, AnUnreadableListStartsOver) {
  store.now = now;
  ASSERT_EQ(store.put(subject_index_key("alice"), "not a list", 9000), StoreStatus::ok);
  EXPECT_TRUE(of_subject("alice").empty());
  sign_in(session("s1", "alice", "app", 5000));
  EXPECT_EQ(of_subject("alice"), Ids{"s1"});
}

// A store that changes a list between every read and write: the writer
// reads again, and gives up (unavailable, a 503) after a few rounds.
class Meddling final : public Store {
 public:
  MemoryStore inner;
  int meddle = 0;
  StoreStatus get(std::string_view key, std::string* value) override { return inner.get(key, value); }
  StoreStatus take(std::string_view key, std::string* value) override { return inner.take(key, value); }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
    return inner.put(key, value, expires, cls);
  }
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) override {
    return inner.put_new(key, value, expires, cls);
  }
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override {
    if (meddle > 0) {
      --meddle;
      inner.put(key, std::string(expected) + "\n9999 other" + std::to_string(meddle), expires);
    }
    return inner.replace_if(key, expected, value, expires);
  }
  StoreStatus del(std::string_view key) override { return inner.del(key); }
};

TEST(IndexUnderContention, AWriterThatLosesReadsAgainAndKeepsTheOthersEntries) {
  Meddling st;
  st.inner.now = 100;
  ASSERT_EQ(add_to_index(st, "l", {"a", 5000}, 10, 100, nullptr), StoreStatus::ok);
  st.meddle = 2;
  ASSERT_EQ(add_to_index(st, "l", {"b", 6000}, 10, 100, nullptr), StoreStatus::ok);
  std::vector<IndexEntry> out;
  ASSERT_EQ(read_index(st, "l", 100, &out), StoreStatus::ok);
  ASSERT_EQ(out.size(), 4u);  // a, b, both meddlers' entries
  EXPECT_EQ(out[0].member, "a");
  EXPECT_EQ(out[1].member, "b");
  st.meddle = 100;
  EXPECT_EQ(add_to_index(st, "l", {"c", 6000}, 10, 100, nullptr), StoreStatus::unavailable);
}

}  // namespace
}  // namespace mcpauth
