// src/zone_index.h: the shared-memory store's index (the nginx glue uses it
// on the zone, bench/check_bench.cpp on its model of the zone).
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "zone_index.h"

namespace {

// Entries in an arena as the glue keeps them in the zone: offset / 8 in
// the slots, the hash's low half and the key in the entry.
struct Entry {
  uint32_t hash;
  uint32_t key_len;
  char key[48];
};

struct Arena {
  std::vector<Entry> entries = std::vector<Entry>(1);  // offset 0 is never an entry
  const unsigned char* base() const { return reinterpret_cast<const unsigned char*>(entries.data()); }
  uint32_t add(uint64_t h, const std::string& key) {
    Entry e{};
    e.hash = static_cast<uint32_t>(h);
    e.key_len = static_cast<uint32_t>(key.size());
    std::memcpy(e.key, key.data(), key.size());
    entries.push_back(e);
    return static_cast<uint32_t>((entries.size() - 1) * sizeof(Entry) / 8);
  }
};

const Entry* at(const unsigned char* base, uint32_t off) {
  return reinterpret_cast<const Entry*>(base + static_cast<size_t>(off) * 8);
}

int same(const unsigned char* base, uint32_t off, const void* key, size_t len) {
  const Entry* e = at(base, off);
  return e->key_len == len && std::memcmp(e->key, key, len) == 0;
}

uint32_t home(const unsigned char* base, uint32_t off) { return at(base, off)->hash; }

}  // namespace

// The construction against the SipHash paper's SipHash-2-4 vectors (key
// 00..0f; message 00..0e, and the empty message), and the index's
// SipHash-1-3 against CPython's (its str/bytes hash; PYTHONHASHSEED=0 makes
// the key zero: hash(b"hello") == -2096571579003691106).
TEST(ZoneIndex, SipHashMatchesReferenceValues) {
  uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
  unsigned char msg[64];
  for (int i = 0; i < 64; ++i) msg[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(mcpa_siphash(k0, k1, msg, 15, 2, 4), 0xa129ca6149be45e5ULL);
  EXPECT_EQ(mcpa_siphash(k0, k1, msg, 0, 2, 4), 0x726fdb47dd0e0e31ULL);
  const unsigned char hello[] = "hello";
  EXPECT_EQ(static_cast<int64_t>(mcpa_siphash(0, 0, hello, 5, 1, 3)), -2096571579003691106LL);
  // another key gives another hash: clients cannot aim at a slot
  mcpa_zindex_t a{}, b{};
  a.k0 = 1;
  b.k0 = 2;
  EXPECT_NE(mcpa_zindex_hash(&a, msg, 15), mcpa_zindex_hash(&b, msg, 15));
}

TEST(ZoneIndex, SlotsGrowWithTheZone) {
  EXPECT_EQ(mcpa_zindex_slots_for(0), 64u);
  EXPECT_EQ(mcpa_zindex_slots_for(1 << 20), 8192u);
  EXPECT_EQ(mcpa_zindex_slots_for((1 << 20) + 128), 16384u);
  EXPECT_EQ(mcpa_zindex_slots_for(size_t(1) << 30), 8u << 20);
}

// Random puts and deletes against std::map, on a small table so that probe
// runs wrap around and deletions shift entries back across the end.
TEST(ZoneIndex, FindsWhatWasInsertedAndNothingElseThroughDeletions) {
  std::vector<mcpa_zslot_t> slots(64);
  mcpa_zindex_t ix;
  mcpa_zindex_init(&ix, slots.data(), 64, 1, 2);
  EXPECT_EQ(ix.limit, 56u);
  Arena arena;
  arena.entries.reserve(100000);  // offsets stay valid: no reallocation
  std::map<std::string, uint32_t> model;
  std::mt19937 rng(5);
  for (int step = 0; step < 50000; ++step) {
    uint32_t kid = static_cast<uint32_t>(rng() % 90);
    std::string key = "k" + std::to_string(kid);
    // a hash with few tags and clustered homes: collisions everywhere
    uint64_t h = (uint64_t(kid % 3) << 32) | ((kid * 7u) % 20u + 50u);
    int64_t i = mcpa_zindex_find(&ix, arena.base(), h, key.data(), key.size(), same);
    auto m = model.find(key);
    ASSERT_EQ(i >= 0, m != model.end()) << key;
    if (i >= 0) {
      ASSERT_EQ(slots[static_cast<size_t>(i)].node, m->second);
      ASSERT_EQ(mcpa_zindex_slot_of(&ix, at(arena.base(), m->second)->hash, m->second), i);
    }
    if (rng() % 2) {
      if (i >= 0) {
        mcpa_zindex_remove(&ix, arena.base(), static_cast<uint32_t>(i), home);
        model.erase(m);
      }
    } else if (i < 0) {
      uint32_t off = arena.add(h, key);
      if (mcpa_zindex_insert(&ix, h, off)) {
        model[key] = off;
      } else {
        ASSERT_EQ(ix.used, ix.limit);
      }
    }
    ASSERT_EQ(ix.used, model.size());
    // every live entry is reachable from its home without crossing a gap
    if (step % 1000 == 0) {
      for (const auto& [k, off] : model) {
        ASSERT_GE(mcpa_zindex_slot_of(&ix, at(arena.base(), off)->hash, off), 0) << k;
      }
    }
  }
}
