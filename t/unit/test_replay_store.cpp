// The deferred store: the replay log, the random tape, and the per-worker
// session cache in front of it.
#include <gtest/gtest.h>

#include "crypto.hpp"
#include "replay_store.hpp"
#include "session_cache.hpp"

namespace mcpauth_test {
namespace {

using namespace mcpauth;

TEST(ReplayLog, RoundTripsAnswersPendingDigestAndTape) {
  ReplayLog log;
  log.pending = 7;
  log.answer(MCPA_OK, std::string("va\0lue", 6));
  log.pending = 9;
  log.answer(MCPA_NOT_FOUND, "ignored");
  log.pending = 11;
  log.tape.bytes = "random";
  ReplayLog back;
  ASSERT_TRUE(ReplayLog::decode(log.encode(), &back));
  ASSERT_EQ(back.answers.size(), 2u);
  EXPECT_EQ(back.answers[0].digest, 7u);
  EXPECT_EQ(back.answers[0].status, StoreStatus::ok);
  EXPECT_EQ(back.answers[0].value, std::string("va\0lue", 6));
  EXPECT_EQ(back.answers[1].status, StoreStatus::not_found);
  EXPECT_EQ(back.answers[1].value, "");  // only a found value is kept
  EXPECT_EQ(back.pending, 11u);
  EXPECT_EQ(back.tape.bytes, "random");
}

TEST(ReplayLog, RefusesDamagedText) {
  ReplayLog log;
  log.pending = 1;
  log.answer(MCPA_OK, "x");
  std::string wire = log.encode();
  ReplayLog back;
  EXPECT_FALSE(ReplayLog::decode(wire.substr(0, wire.size() - 1), &back));
  EXPECT_FALSE(ReplayLog::decode(wire + "z", &back));
  EXPECT_FALSE(ReplayLog::decode("XXXX" + wire.substr(4), &back));
  EXPECT_TRUE(ReplayLog::decode("", &back));
  EXPECT_TRUE(back.answers.empty());
}

TEST(ReplayLog, UnavailableBecomesItsOwnStatus) {
  ReplayLog log;
  log.answer(MCPA_UNAVAILABLE, "");
  EXPECT_EQ(log.answers[0].status, StoreStatus::unavailable);
}

// One "request": take a code, then write a session under a random id.
std::string request(Store& st) {
  std::string code;
  if (st.take("code:1", &code) != StoreStatus::ok) return "no code";
  std::string sid = random_token(16);
  if (st.put_new("session:" + sid, code, 100) != StoreStatus::ok) return "no session";
  return sid;
}

TEST(ReplayStore, ReplaysEarlierAnswersAndTheSameRandomBytes) {
  MemoryStore backing;
  ASSERT_EQ(backing.put("code:1", "grant", 100), StoreStatus::ok);
  ReplayLog log;
  std::string result;
  int runs = 0;
  for (;;) {
    ++runs;
    ReplayStore rs(log);
    {
      ReplayScope scope(log);
      result = request(rs);
    }
    if (!rs.stopped()) break;
    const StoreOp& op = rs.pending_op();
    std::string value;
    StoreStatus st = op.op == MCPA_OP_TAKE ? backing.take(op.key, &value) : backing.put_new(op.key, op.value, op.expires);
    log.answer(st == StoreStatus::ok ? MCPA_OK : MCPA_ERROR, value);
  }
  EXPECT_EQ(runs, 3);
  std::string stored;
  // The session the last run reports is the one the second run wrote: the
  // random id came back from the tape.
  ASSERT_EQ(backing.get("session:" + result, &stored), StoreStatus::ok) << result;
  EXPECT_EQ(stored, "grant");
  EXPECT_EQ(backing.get("code:1", &stored), StoreStatus::not_found);  // taken once
}

TEST(ReplayStore, AnOperationTheLogCannotAnswerIsPendingAndSoIsEveryOneAfterIt) {
  ReplayLog log;
  ReplayStore rs(log);
  std::string v = "stale";
  EXPECT_EQ(rs.get("a", &v), StoreStatus::pending);
  EXPECT_EQ(v, "");
  EXPECT_TRUE(rs.stopped());
  EXPECT_FALSE(rs.out_of_step());
  EXPECT_EQ(rs.pending_op().op, MCPA_OP_GET);
  EXPECT_EQ(rs.pending_op().key, "a");
  // later operations change nothing: the one to perform is still the first
  EXPECT_EQ(rs.put("b", "1", 100), StoreStatus::pending);
  EXPECT_EQ(rs.del("c"), StoreStatus::pending);
  bool from_store = true;
  const std::string known = "cached";
  EXPECT_EQ(rs.get_known("session:d", &v, &known, &from_store), StoreStatus::pending);
  EXPECT_FALSE(from_store);
  EXPECT_EQ(rs.pending_op().key, "a");
  EXPECT_TRUE(log.answers.empty());  // nothing logged after the stop
  EXPECT_EQ(log.pending, op_digest(rs.pending_op()));
}

TEST(ReplayStore, ARerunThatAsksForAnotherOperationIsOutOfStep) {
  ReplayLog log;
  {
    ReplayStore rs(log);
    std::string v;
    EXPECT_EQ(rs.get("a", &v), StoreStatus::pending);
  }
  log.answer(MCPA_OK, "1");
  ReplayStore rs(log);
  std::string v;
  EXPECT_EQ(rs.get("b", &v), StoreStatus::pending);
  EXPECT_TRUE(rs.out_of_step());
  EXPECT_TRUE(rs.stopped());
}

TEST(ReplayStore, RandomBytesDrawnAfterTheStopAreNotKept) {
  ReplayLog log;
  std::string before, after;
  {
    ReplayStore rs(log);
    ReplayScope scope(log);
    before = random_bytes(8);
    std::string v;
    ASSERT_EQ(rs.get("a", &v), StoreStatus::pending);
    after = random_bytes(16);  // discarded with the run
  }
  EXPECT_EQ(log.tape.bytes, before);
  log.answer(MCPA_NOT_FOUND, "");
  ReplayLog back;
  ASSERT_TRUE(ReplayLog::decode(log.encode(), &back));
  ReplayStore rs(back);
  ReplayScope scope(back);
  EXPECT_EQ(random_bytes(8), before);
  std::string v;
  EXPECT_EQ(rs.get("a", &v), StoreStatus::not_found);
  // past the stop the rerun draws afresh, and in any size
  EXPECT_EQ(random_bytes(32).size(), 32u);
  EXPECT_EQ(back.tape.bytes.size(), 40u);
}

TEST(ReplayLog, CarriesTheMemo) {
  ReplayLog log;
  log.memo.keep("k1", "v1");
  log.memo.keep("k2", std::string("v\0" "2", 3));
  ReplayLog back;
  ASSERT_TRUE(ReplayLog::decode(log.encode(), &back));
  ASSERT_NE(back.memo.find("k2"), nullptr);
  EXPECT_EQ(*back.memo.find("k2"), std::string("v\0" "2", 3));
  EXPECT_EQ(*back.memo.find("k1"), "v1");
  EXPECT_EQ(back.memo.find("k3"), nullptr);
  EXPECT_EQ(back.encode(), log.encode());
}

TEST(ReplayLog, RefusesAPendingAnswer) {
  ReplayLog log;
  log.answer(MCPA_OK, "x");
  log.answers[0].status = StoreStatus::pending;
  ReplayLog back;
  EXPECT_FALSE(ReplayLog::decode(log.encode(), &back));
}

TEST(RunMemo, KeysDifferWhenAnyPartDoes) {
  EXPECT_EQ(MemoKey("p").add("ab").add("c").digest(), MemoKey("p").add("ab").add("c").digest());
  EXPECT_NE(MemoKey("p").add("ab").add("c").digest(), MemoKey("p").add("a").add("bc").digest());
  EXPECT_NE(MemoKey("p").add("x").digest(), MemoKey("q").add("x").digest());
  EXPECT_NE(MemoKey("p").add(int64_t{1}).digest(), MemoKey("p").add(int64_t{2}).digest());
  EXPECT_EQ(MemoKey("p").digest().size(), 32u);
}

TEST(RunMemo, IsInstalledPerRunAndBounded) {
  EXPECT_EQ(current_run_memo(), nullptr);
  ReplayLog log;
  {
    ReplayScope scope(log);
    EXPECT_EQ(current_run_memo(), &log.memo);
  }
  EXPECT_EQ(current_run_memo(), nullptr);
  for (size_t i = 0; i < RunMemo::kMaxEntries + 3; ++i) log.memo.keep("k" + std::to_string(i), "v");
  EXPECT_EQ(log.memo.entries.size(), RunMemo::kMaxEntries);
  log.memo.keep("k0", "other");  // a key is kept once
  EXPECT_EQ(*log.memo.find("k0"), "v");
}

TEST(SessionRecordCache, HitsWithinTheLifetimeOnly) {
  SessionRecordCache c;
  c.remember("session:a", "rec", 100, 5);
  ASSERT_NE(c.find("session:a", 104, 5), nullptr);
  EXPECT_EQ(c.find("session:a", 105, 5), nullptr);  // the revocation bound
  EXPECT_EQ(c.find("session:a", 99, 5), nullptr);   // a clock that went back
  c.forget("session:a");
  EXPECT_EQ(c.find("session:a", 101, 5), nullptr);
}

TEST(SessionRecordCache, StaysWithinItsCapacity) {
  SessionRecordCache c(4);
  for (int i = 0; i < 20; ++i) c.remember("session:" + std::to_string(i), "r", 100, 5);
  EXPECT_LE(c.size(), 4u);
}

TEST(CachingStore, AGuardReadIsServedFromTheCacheAndLoggedForReruns) {
  SessionRecordCache cache;
  cache.remember("session:s", "cached", 100, 5);
  ReplayLog log;
  ReplayStore rs(log);
  CachingStore cs(rs, cache, 102, 5, true);
  std::string v;
  ASSERT_EQ(cs.get("session:s", &v), StoreStatus::ok);  // not pending: no round trip
  EXPECT_EQ(v, "cached");
  ASSERT_EQ(log.answers.size(), 1u);
  EXPECT_TRUE(log.answers[0].local);

  // A rerun after the entry is gone still sees what the first run saw.
  cache.forget("session:s");
  ReplayStore rs2(log);
  CachingStore cs2(rs2, cache, 102, 5, true);
  ASSERT_EQ(cs2.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "cached");
  EXPECT_EQ(cache.find("session:s", 102, 5), nullptr);  // a local answer is not re-cached
}

TEST(CachingStore, EndpointsReadTheStoreAndTheirWritesUpdateTheCache) {
  SessionRecordCache cache;
  cache.remember("session:s", "old", 100, 5);
  ReplayLog log;
  {
    ReplayStore rs(log);
    CachingStore cs(rs, cache, 101, 5, false);
    std::string v;
    EXPECT_EQ(cs.get("session:s", &v), StoreStatus::pending);  // not served from the cache
  }
  EXPECT_NE(cache.find("session:s", 101, 5), nullptr);  // nor dropped by a pending read
  log.answer(MCPA_OK, "current");
  {
    ReplayStore rs(log);
    CachingStore cs(rs, cache, 101, 5, false);
    std::string v;
    ASSERT_EQ(cs.get("session:s", &v), StoreStatus::ok);
    EXPECT_EQ(v, "current");
    EXPECT_EQ(cs.del("session:s"), StoreStatus::pending);
  }
  // The delete dropped this worker's entry before it was even sent.
  EXPECT_EQ(cache.find("session:s", 101, 5), nullptr);
}

TEST(CachingStore, OnlySessionRecordsAreCached) {
  SessionRecordCache cache;
  cache.remember("client:c", "x", 100, 5);
  ReplayLog log;
  ReplayStore rs(log);
  CachingStore cs(rs, cache, 101, 5, true);
  std::string v;
  EXPECT_EQ(cs.get("client:c", &v), StoreStatus::pending);
}

TEST(CachingStore, APendingAnswerIsNeverCached) {
  SessionRecordCache cache;
  ReplayLog log;
  ReplayStore rs(log);
  CachingStore cs(rs, cache, 101, 5, true);
  std::string v;
  EXPECT_EQ(cs.get("session:new", &v), StoreStatus::pending);
  EXPECT_EQ(cs.put("session:w", "rec", 200), StoreStatus::pending);
  EXPECT_EQ(cs.put_new("session:x", "rec", 200), StoreStatus::pending);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace mcpauth_test
