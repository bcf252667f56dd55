// Values in a networked store are sealed and bound to their key.
#include <gtest/gtest.h>

#include "crypto.hpp"
#include "sealed_store.hpp"

namespace mcpauth_test {
namespace {

using namespace mcpauth;

KeyRing keys() {
  std::string err;
  auto k = KeyRing::parse(KeyRing::generate_line("k1") + "\n", &err);
  EXPECT_TRUE(k) << err;
  return std::move(*k);
}

TEST(SealedStore, StoresNothingInTheClearAndReadsItBack) {
  KeyRing k = keys();
  MemoryStore backing;
  SealedStore st(backing, k);
  ASSERT_EQ(st.put("session:s", "provider-refresh-token-xyz", 100), StoreStatus::ok);
  std::string raw, v;
  ASSERT_EQ(backing.get("session:s", &raw), StoreStatus::ok);
  EXPECT_EQ(raw.find("provider-refresh-token-xyz"), std::string::npos);
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "provider-refresh-token-xyz");
}

TEST(SealedStore, AValueMovedToAnotherKeyOrAlteredReadsAsAbsent) {
  KeyRing k = keys();
  MemoryStore backing;
  SealedStore st(backing, k);
  ASSERT_EQ(st.put("session:a", "alice", 100), StoreStatus::ok);
  std::string raw, v;
  ASSERT_EQ(backing.get("session:a", &raw), StoreStatus::ok);
  ASSERT_EQ(backing.put("session:b", raw, 100), StoreStatus::ok);
  EXPECT_EQ(st.get("session:b", &v), StoreStatus::not_found);
  raw[raw.size() - 3] = raw[raw.size() - 3] == 'A' ? 'B' : 'A';
  ASSERT_EQ(backing.put("session:a", raw, 100), StoreStatus::ok);
  EXPECT_EQ(st.get("session:a", &v), StoreStatus::not_found);
  ASSERT_EQ(backing.put("session:c", "plain text", 100), StoreStatus::ok);
  EXPECT_EQ(st.get("session:c", &v), StoreStatus::not_found);
}

// Every read opens what the store holds now: nothing opened is kept
// between reads.
TEST(SealedStore, EveryReadOpensTheValueStoredNow) {
  KeyRing k = keys();
  MemoryStore backing;
  SealedStore st(backing, k);
  ASSERT_EQ(st.put("session:s", "first", 100), StoreStatus::ok);
  std::string first_sealed, v;
  ASSERT_EQ(backing.get("session:s", &first_sealed), StoreStatus::ok);
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "first");
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "first");
  ASSERT_EQ(st.put("session:s", "second", 100), StoreStatus::ok);
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "second");
  ASSERT_EQ(backing.put("session:s", first_sealed, 100), StoreStatus::ok);
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "first");
  // the same sealed text under a key ring that cannot open it reads as absent
  KeyRing other = keys();
  SealedStore stranger(backing, other);
  EXPECT_EQ(stranger.get("session:s", &v), StoreStatus::not_found);
}

TEST(SealedStore, ReplaceIfComparesWithWhatThisRequestRead) {
  KeyRing k = keys();
  MemoryStore backing;
  {
    SealedStore writer(backing, k);
    ASSERT_EQ(writer.put("session:s", "gen1", 100), StoreStatus::ok);
  }
  SealedStore st(backing, k);
  // never read here: no blind compare-and-set
  EXPECT_EQ(st.replace_if("session:s", "gen1", "gen2", 100), StoreStatus::conflict);
  std::string v;
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(st.replace_if("session:s", "other", "gen2", 100), StoreStatus::conflict);
  ASSERT_EQ(st.replace_if("session:s", "gen1", "gen2", 100), StoreStatus::ok);
  ASSERT_EQ(st.get("session:s", &v), StoreStatus::ok);
  EXPECT_EQ(v, "gen2");

  // another writer got in between: the store's own compare refuses
  SealedStore other(backing, k);
  ASSERT_EQ(other.get("session:s", &v), StoreStatus::ok);
  ASSERT_EQ(st.replace_if("session:s", "gen2", "gen3", 100), StoreStatus::ok);
  EXPECT_EQ(other.replace_if("session:s", "gen2", "gen3-too", 100), StoreStatus::conflict);
}

}  // namespace
}  // namespace mcpauth_test
