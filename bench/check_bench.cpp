// Google Benchmark of the guard's per-request check (issue 8, item 2):
// open a sealed access token, find its session in a store, decide
// (mcpauth::guard_check), at 1,000 .. 1,000,000 live sessions.
//
// Stores:
//   Zone      a model of the nginx shared-memory zone as the module keeps
//             it: one shared anonymous mapping (as ngx_shm_alloc makes it,
//             so no transparent huge pages), entries in power-of-two chunks
//             as the slab allocator carves them, the module's entry layout,
//             the module's index code itself (src/zone_index.h: keyed
//             SipHash, open addressing), a compare-and-swap lock taken and
//             released around every access as ngx_shmtx_lock/unlock do, and
//             the value copied out as the glue's sink does.
//   Tree      the previous zone index: a red-black tree keyed by a 32-bit
//             hash of the key, full compare on collision (ngx_rbtree keyed
//             by ngx_crc32_short), minus the mutex.
//   Hash      std::unordered_map: a process-memory hash table.
//   Memory    the core's MemoryStore (std::map<std::string>): the unit tests'
//             reference store, for comparison (two sizes only).
//
// Each iteration checks one of 4,096 pre-sealed tokens whose sessions are
// spread at random over the N live sessions, so the store lookup misses the
// CPU caches as in a busy gateway; the identity assertion is served from the
// per-worker cache (as for every request but the first of a session in five
// minutes), which BM_IdentityMint prices separately.  BM_GuardCheck finds the
// token in the worker's TokenCache (as for every request but a token's first
// in a worker); BM_GuardCheckColdToken empties it before every check.  The
// record is read from the store and decoded in both.  BM_StoreGet and
// BM_StoreFind time the zone's part alone (with and without the value copy),
// for the breakdown of where the time goes at a million sessions.
//
// `check-bench --callgrind-loop N` runs guard_check N times on 1,000
// sessions (Zone) and nothing else, for `valgrind --tool=callgrind` (item 6);
// `--callgrind-loop-cold N` the same with the TokenCache emptied each time.

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config.hpp"
#include "crypto.hpp"
#include "guard.hpp"
#include "identity_assertion.hpp"
#include "mcp_auth.h"
#include "sealed_store.hpp"
#include "session.hpp"
#include "store.hpp"
#include "zone_index.h"

using namespace mcpauth;

namespace {

constexpr int64_t kNow = 1'900'000'000;

// Only get() is on the guard's allow path; the rest is here to satisfy
// the interface (and the step-up put on a 403, never taken here).
class MapStoreBase : public Store {
 public:
  StoreStatus take(std::string_view, std::string*) override { return StoreStatus::error; }
  StoreStatus put_new(std::string_view k, std::string_view v, int64_t e, StoreClass = StoreClass::normal) override {
    return put(k, v, e);
  }
  StoreStatus replace_if(std::string_view, std::string_view, std::string_view, int64_t) override {
    return StoreStatus::error;
  }
  StoreStatus del(std::string_view) override { return StoreStatus::error; }
};

struct Entry {
  std::string value;
  int64_t expires;
};

uint32_t hash32(std::string_view s) {
  // FNV-1a: stands in for ngx_crc32_short (same role: a 32-bit tree key)
  // in the Tree model
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// The previous zone index (an rbtree keyed by a 32-bit hash).
class TreeStore final : public MapStoreBase {
 public:
  StoreStatus get(std::string_view key, std::string* value) override {
    auto it = map_.find(Key{hash32(key), key});
    if (it == map_.end() || it->second.expires <= kNow) return StoreStatus::not_found;
    *value = it->second.value;
    return StoreStatus::ok;
  }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass = StoreClass::normal) override {
    map_[Key{hash32(key), std::string(key)}] = Entry{std::string(value), expires};
    return StoreStatus::ok;
  }

 private:
  struct Key {
    uint32_t hash;
    std::string_view text;  // points into owned_ for stored keys
    std::string owned_;
    Key(uint32_t h, std::string_view t) : hash(h), text(t) {}
    Key(uint32_t h, std::string t) : hash(h), owned_(std::move(t)) { text = owned_; }
    Key(Key&& o) noexcept : hash(o.hash), owned_(std::move(o.owned_)) {
      text = owned_.empty() ? o.text : std::string_view(owned_);
    }
    Key(const Key&) = delete;
  };
  struct Less {
    bool operator()(const Key& a, const Key& b) const {
      return a.hash != b.hash ? a.hash < b.hash : a.text < b.text;
    }
  };
  std::map<Key, Entry, Less> map_;
};

// The module's zone, modelled (see the top of this file).
class ZoneStore final : public MapStoreBase {
 public:
  explicit ZoneStore(size_t entries) {
    // room for the entries in 1 KiB chunks (a session record takes one),
    // a quarter more, and the pool's own pages
    size_ = entries * 1024 + entries * 256 + (4u << 20);
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    base_ = static_cast<unsigned char*>(m);
    next_ = 4096;  // the pool's header, as in ngx_slab_pool_t
    lock_ = new (base_) std::atomic<uint64_t>(0);
    uint32_t nslots = mcpa_zindex_slots_for(size_);
    auto* slots = static_cast<mcpa_zslot_t*>(alloc(nslots * sizeof(mcpa_zslot_t)));
    std::mt19937_64 seed(std::random_device{}());
    mcpa_zindex_init(&ix_, slots, nslots, seed(), seed());
  }
  ~ZoneStore() override { munmap(base_, size_); }
  ZoneStore(const ZoneStore&) = delete;
  ZoneStore& operator=(const ZoneStore&) = delete;

  StoreStatus get(std::string_view key, std::string* value) override {
    lock();
    Node* n = find(key);
    if (!n) {
      unlock();
      return StoreStatus::not_found;
    }
    value->clear();  // CStore::get, then the glue's sink appends
    value->append(reinterpret_cast<const char*>(n->data) + n->key_len, n->value_len);
    unlock();
    return StoreStatus::ok;
  }

  // The glue's ngx_http_mcp_auth_store_prefetch.
  void prefetch(std::string_view key) override {
    if (!prefetching_) return;
    uint64_t h = mcpa_zindex_hash(&ix_, key.data(), key.size());
    __builtin_prefetch(&ix_.slots[static_cast<uint32_t>(h) & ix_.mask]);
    prefetched_.assign(key);
    prefetched_hash_ = h;
  }
  std::string prefetched_;
  uint64_t prefetched_hash_ = 0;
  uint64_t key_hash(std::string_view key) {
    if (!key.empty() && key == prefetched_) return prefetched_hash_;
    return mcpa_zindex_hash(&ix_, key.data(), key.size());
  }
  bool prefetching_ = std::getenv("MCPA_BENCH_NO_PREFETCH") == nullptr;

  // The lookup alone (no value copy): BM_StoreFind.
  bool has(std::string_view key) {
    lock();
    Node* n = find(key);
    unlock();
    return n != nullptr;
  }

  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass = StoreClass::normal) override {
    lock();
    uint64_t h = mcpa_zindex_hash(&ix_, key.data(), key.size());
    int64_t i = mcpa_zindex_find(&ix_, base_, h, key.data(), key.size(), same);
    if (i >= 0) mcpa_zindex_remove(&ix_, base_, static_cast<uint32_t>(i), home);  // (chunk not reused)
    auto* n = static_cast<Node*>(alloc(offsetof(Node, data) + key.size() + value.size()));
    n->hash = static_cast<uint32_t>(h);
    n->key_len = static_cast<uint16_t>(key.size());
    n->value_len = static_cast<uint32_t>(value.size());
    n->expires = expires;
    std::memcpy(n->data, key.data(), key.size());
    std::memcpy(n->data + key.size(), value.data(), value.size());
    bool ok = mcpa_zindex_insert(&ix_, h, static_cast<uint32_t>((reinterpret_cast<unsigned char*>(n) - base_) >> 3));
    unlock();
    return ok ? StoreStatus::ok : StoreStatus::full;
  }

 private:
  // ngx_http_mcp_auth_node_t
  struct Node {
    uint32_t hash;
    uint16_t key_len, reserved;
    uint32_t value_len;
    int64_t expires;
    void* queue[2];
    unsigned char data[1];
  };

  static const Node* at(const unsigned char* base, uint32_t off) {
    return reinterpret_cast<const Node*>(base + (static_cast<size_t>(off) << 3));
  }
  static int same(const unsigned char* base, uint32_t off, const void* key, size_t len) {
    const Node* n = at(base, off);
    return n->key_len == len && std::memcmp(n->data, key, len) == 0;
  }
  static uint32_t home(const unsigned char* base, uint32_t off) { return at(base, off)->hash; }

  Node* find(std::string_view key) {
    uint64_t h = key_hash(key);
    int64_t i = mcpa_zindex_find(&ix_, base_, h, key.data(), key.size(), same);
    if (i < 0) return nullptr;
    Node* n = const_cast<Node*>(at(base_, ix_.slots[i].node));
    return n->expires <= kNow ? nullptr : n;  // (the module also deletes it)
  }

  // the slab allocator's placement: power-of-two chunks up to a page,
  // aligned to their size; whole pages beyond
  void* alloc(size_t n) {
    size_t chunk = 8;
    while (chunk < n && chunk < 4096) chunk <<= 1;
    if (n > 4096) chunk = (n + 4095) & ~size_t(4095);
    size_t align = chunk < 4096 ? chunk : 4096;
    next_ = (next_ + align - 1) & ~(align - 1);
    if (next_ + chunk > size_) {
      std::fprintf(stderr, "zone model: out of room\n");
      std::exit(1);
    }
    void* p = base_ + next_;
    next_ += chunk;
    return p;
  }

  // ngx_shmtx_lock / ngx_shmtx_unlock: a compare-and-swap each
  void lock() {
    uint64_t free_ = 0;
    while (!lock_->compare_exchange_weak(free_, 1, std::memory_order_acquire)) free_ = 0;
  }
  void unlock() {
    uint64_t held = 1;
    lock_->compare_exchange_strong(held, 0, std::memory_order_release);
  }

  unsigned char* base_ = nullptr;
  size_t size_ = 0, next_ = 0;
  std::atomic<uint64_t>* lock_ = nullptr;
  mcpa_zindex_t ix_{};
};

class HashStore final : public MapStoreBase {
 public:
  StoreStatus get(std::string_view key, std::string* value) override {
    auto it = map_.find(std::string(key));
    if (it == map_.end() || it->second.expires <= kNow) return StoreStatus::not_found;
    *value = it->second.value;
    return StoreStatus::ok;
  }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass = StoreClass::normal) override {
    map_[std::string(key)] = Entry{std::string(value), expires};
    return StoreStatus::ok;
  }

 private:
  std::unordered_map<std::string, Entry> map_;
};

struct Fixture {
  Config cf;
  GuardSettings gs;
  IdentityCache cache;
  std::unique_ptr<Store> store;
  std::vector<std::string> authorizations;  // "Bearer <sealed token>"
  std::vector<std::string> keys;            // their sessions' store keys

  Fixture(std::unique_ptr<Store> st, size_t sessions) : store(std::move(st)) {
    cf.issuer = "http://127.0.0.1:8080";
    cf.resource = "http://127.0.0.1:8080/mcp";
    std::string err;
    cf.keys = KeyRing::parse(KeyRing::generate_line("k1"), &err);
    gs.tool_scopes = "save_snippet snippets:write\nget_snippet snippets:read\n";
    gs.policy = *ToolPolicy::parse(gs.tool_scopes, &err);
    gs.minter = IdentityMinter::create(random_token(32), "ngx_mcp_auth", "mcp-tool-server", &err);
    if (!cf.keys || !gs.minter) {
      std::fprintf(stderr, "fixture: %s\n", err.c_str());
      std::exit(1);
    }

    std::vector<std::string> sids;
    sids.reserve(sessions);
    if (auto* m = dynamic_cast<MemoryStore*>(store.get())) m->now = kNow;
    // Ids of the same shape as random_token's (base64url of 32 or 16 bytes),
    // from a fast generator: building a million sessions stays quick.
    std::mt19937_64 ids(7);
    auto fake_token = [&ids](size_t nbytes) {
      static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      std::string t((nbytes * 4 + 2) / 3, 'A');
      for (auto& c : t) c = kAlphabet[ids() & 63];
      return t;
    };
    for (size_t i = 0; i < sessions; ++i) {
      Session s;
      s.sid = fake_token(32);
      s.sub = "user-" + std::to_string(i);
      s.name = "Demo User";
      s.email = "demo" + std::to_string(i) + "@example.com";
      s.client_id = fake_token(16);
      s.scope = "snippets:read snippets:write";
      s.resource = cf.resource;
      s.provider_access_token = fake_token(32);
      s.provider_refresh_token = fake_token(32);
      s.provider_expires = kNow + 3600;
      s.created = kNow - 60;
      s.expires = kNow + 86400;
      store->put("session:" + s.sid, encode_session(s), s.expires);
      sids.push_back(s.sid + '\n' + s.client_id);
    }
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < 4096; ++i) {
      const std::string& pick = sids[rng() % sids.size()];
      AccessClaims a;
      a.sid = pick.substr(0, pick.find('\n'));
      a.client_id = pick.substr(pick.find('\n') + 1);
      a.scope = "snippets:read snippets:write";
      a.resource = cf.resource;
      a.exp = kNow + 3600;
      keys.push_back("session:" + a.sid);
      authorizations.push_back("Bearer " + cf.keys->seal(seal_purpose::access_token, encode_access(a)));
    }
  }

  GuardInput input(size_t i) const {
    GuardInput in;
    in.method = "POST";
    in.authorization = authorizations[i & 4095];
    in.body = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello_mcp","arguments":{}}})";
    in.body_read = true;  // as on the glue's second pass (no Mcp-Method header)
    in.now = kNow;
    return in;
  }
};

enum Kind { kZone = 0, kTree = 1, kHash = 2, kMemory = 3 };

std::unique_ptr<Store> make_store(int kind, size_t sessions) {
  switch (kind) {
    case kZone: return std::make_unique<ZoneStore>(sessions);
    case kTree: return std::make_unique<TreeStore>();
    case kHash: return std::make_unique<HashStore>();
    default: return std::make_unique<MemoryStore>();
  }
}

// One fixture per (store, size), kept across the benchmark's repetitions.
Fixture& fixture(int kind, size_t sessions) {
  static std::map<std::pair<int, size_t>, std::unique_ptr<Fixture>> all;
  auto& f = all[{kind, sessions}];
  if (!f) {
    all.clear();  // one at a time: a million sessions hold ~0.5 GB
    auto& g = all[{kind, sessions}];
    g = std::make_unique<Fixture>(make_store(kind, sessions), sessions);
    return *g;
  }
  return *f;
}

void BM_GuardCheck(benchmark::State& state, int kind) {
  Fixture& f = fixture(kind, static_cast<size_t>(state.range(0)));
  std::vector<GuardInput> inputs;
  for (size_t i = 0; i < 4096; ++i) inputs.push_back(f.input(i));
  for (size_t i = 0; i < 4096; ++i) guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i]);  // warm
  size_t i = 0;
  for (auto _ : state) {
    GuardOutcome out = guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i++ & 4095]);
    if (out.verdict != GuardOutcome::allow) {
      state.SkipWithError("not allowed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.counters["sessions"] = static_cast<double>(state.range(0));
}

// The same with the worker's TokenCache emptied before every check, so each
// one also decodes and opens its sealed token (the first request of a token
// in a worker).
void BM_GuardCheckColdToken(benchmark::State& state, int kind) {
  Fixture& f = fixture(kind, static_cast<size_t>(state.range(0)));
  std::vector<GuardInput> inputs;
  for (size_t i = 0; i < 4096; ++i) inputs.push_back(f.input(i));
  for (size_t i = 0; i < 4096; ++i) guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i]);  // warm the rest
  size_t i = 0;
  for (auto _ : state) {
    f.cache.tokens = TokenCache();
    GuardOutcome out = guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i++ & 4095]);
    if (out.verdict != GuardOutcome::allow) {
      state.SkipWithError("not allowed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
}

// The zone's part alone: find the session and copy its record out (what
// guard_check asks of the store), and the lookup without the copy.
void BM_StoreGet(benchmark::State& state) {
  Fixture& f = fixture(kZone, static_cast<size_t>(state.range(0)));
  std::string value;
  size_t i = 0;
  for (auto _ : state) {
    if (f.store->get(f.keys[i++ & 4095], &value) != StoreStatus::ok) {
      state.SkipWithError("not found");
      break;
    }
    benchmark::DoNotOptimize(value.data());
  }
}

void BM_StoreFind(benchmark::State& state) {
  Fixture& f = fixture(kZone, static_cast<size_t>(state.range(0)));
  auto& zone = static_cast<ZoneStore&>(*f.store);
  size_t i = 0;
  for (auto _ : state) {
    if (!zone.has(f.keys[i++ & 4095])) {
      state.SkipWithError("not found");
      break;
    }
  }
}

// Registered so that each fixture is built once (one lives at a time).
BENCHMARK_CAPTURE(BM_GuardCheck, Zone, kZone)->Arg(1000);
BENCHMARK_CAPTURE(BM_GuardCheckColdToken, Zone, kZone)->Arg(1000);
BENCHMARK(BM_StoreGet)->Arg(1000);
BENCHMARK(BM_StoreFind)->Arg(1000);
BENCHMARK_CAPTURE(BM_GuardCheck, Zone, kZone)->Arg(10000);
BENCHMARK_CAPTURE(BM_GuardCheck, Zone, kZone)->Arg(100000);
BENCHMARK_CAPTURE(BM_GuardCheck, Zone, kZone)->Arg(1000000);
BENCHMARK_CAPTURE(BM_GuardCheckColdToken, Zone, kZone)->Arg(1000000);
BENCHMARK(BM_StoreGet)->Arg(1000000);
BENCHMARK(BM_StoreFind)->Arg(1000000);

BENCHMARK_CAPTURE(BM_GuardCheck, Tree, kTree)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_CAPTURE(BM_GuardCheck, Hash, kHash)->RangeMultiplier(10)->Range(1000, 1000000);
// MemoryStore (std::map<std::string>): a tree like Tree, but with string
// compares at every level; 1,000 and 100,000 sessions are enough to place it.
BENCHMARK_CAPTURE(BM_GuardCheck, Memory, kMemory)->Arg(1000)->Arg(100000);

// The parts, on 1,000 sessions.
void BM_OpenToken(benchmark::State& state) {
  Fixture& f = fixture(kZone, 1000);
  size_t i = 0;
  for (auto _ : state) {
    auto plain = f.cf.keys->open(seal_purpose::access_token, std::string_view(f.authorizations[i++ & 4095]).substr(7));
    benchmark::DoNotOptimize(plain);
  }
}
BENCHMARK(BM_OpenToken);

void BM_DecodeSession(benchmark::State& state) {
  Session s;
  s.sid = random_token(32);
  s.sub = "user";
  s.client_id = random_token(16);
  s.scope = "snippets:read snippets:write";
  s.provider_access_token = random_token(32);
  s.provider_refresh_token = random_token(32);
  std::string rec = encode_session(s);
  for (auto _ : state) benchmark::DoNotOptimize(decode_session(rec));
}
BENCHMARK(BM_DecodeSession);

void BM_IdentityMint(benchmark::State& state) {
  std::string err;
  auto m = IdentityMinter::create(random_token(32), "ngx_mcp_auth", "mcp-tool-server", &err);
  Identity who{"user", "client", "snippets:read snippets:write", "", "", ""};
  for (auto _ : state) benchmark::DoNotOptimize(m->mint(who, kNow, 300));
}
BENCHMARK(BM_IdentityMint);

// This machine's memory latency, for the breakdown: a chain of dependent
// loads through the cache lines of a shared anonymous mapping (as the zone
// is mapped) in a random cyclic order; range(0) is its size in MiB: 4 (in
// the last-level cache) and the million-session zone's (not in any cache,
// and every load also misses the TLB: 4 KiB pages, no huge pages for
// shared memory here).
void BM_DependentLoad(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20, lines = bytes / 64;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    state.SkipWithError("mmap");
    return;
  }
  auto* base = static_cast<unsigned char*>(m);
  std::vector<uint32_t> order(lines);
  for (size_t i = 0; i < lines; ++i) order[i] = static_cast<uint32_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  for (size_t i = 0; i < lines; ++i)
    *reinterpret_cast<void**>(base + size_t(order[i]) * 64) = base + size_t(order[(i + 1) % lines]) * 64;
  void* p = base + size_t(order[0]) * 64;
  for (auto _ : state) p = *static_cast<void**>(p);
  benchmark::DoNotOptimize(p);
  munmap(m, bytes);
}
BENCHMARK(BM_DependentLoad)->Arg(4)->Arg(1300);

// Only this function is counted (valgrind --toggle-collect=*measured_checks*).
__attribute__((noinline)) long measured_checks(Fixture& f, const std::vector<GuardInput>& inputs, long n) {
  long allowed = 0;
  for (long i = 0; i < n; ++i)
    allowed += guard_check(f.cf, f.gs, f.cache, *f.store, inputs[static_cast<size_t>(i) & 4095]).verdict ==
               GuardOutcome::allow;
  return allowed;
}

// A check whose token this worker has not seen (counted separately:
// valgrind --toggle-collect=*measured_cold_check*).
__attribute__((noinline)) bool measured_cold_check(Fixture& f, const GuardInput& in) {
  return guard_check(f.cf, f.gs, f.cache, *f.store, in).verdict == GuardOutcome::allow;
}

int callgrind_loop(long n, bool cold, size_t sessions) {
  Fixture& f = fixture(kZone, sessions);
  std::vector<GuardInput> inputs;
  for (size_t i = 0; i < 4096; ++i) inputs.push_back(f.input(i));
  for (size_t i = 0; i < 4096; ++i) guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i]);  // warm
  long allowed = 0;
  if (cold) {
    for (long i = 0; i < n; ++i) {
      f.cache.tokens = TokenCache();
      allowed += measured_cold_check(f, inputs[static_cast<size_t>(i) & 4095]);
    }
  } else {
    allowed = measured_checks(f, inputs, n);
  }
  std::printf("checks=%ld allowed=%ld\n", n, allowed);
  return allowed == n ? 0 : 1;
}

// The pattern of bench/nginx_callgrind.py: one token of one session, sent
// over and over (Zone store, 1,000 live sessions).  `--callgrind-one N`
// counts the warm check (valgrind --toggle-collect=*measured_checks*);
// `--callgrind-parts N` also counts, per check, the same check with the
// TokenCache emptied before it (*measured_without_token_cache*: the token
// opened and decoded every time) and what the IdentityCache spares: minting
// the assertion and the session's log tag (*measured_mint*).
__attribute__((noipa)) bool measured_without_token_cache(Fixture& f, const GuardInput& in) {
  return guard_check(f.cf, f.gs, f.cache, *f.store, in).verdict == GuardOutcome::allow;
}

__attribute__((noinline)) size_t measured_mint(const IdentityMinter& minter, const Identity& who,
                                               const std::string& sid) {
  return minter.mint(who, kNow, IdentityCache::kLifetime).size() +
         sha256_b64url("session-tag|" + sid).substr(0, 16).size();
}

int callgrind_one(long n, bool parts) {
  Fixture& f = fixture(kZone, 1000);
  std::vector<GuardInput> inputs(4096, f.input(0));
  guard_check(f.cf, f.gs, f.cache, *f.store, inputs[0]);  // warm
  long allowed = measured_checks(f, inputs, n);
  if (parts) {
    Identity who{"user-0", "client", "snippets:read snippets:write", "", "", ""};
    size_t sink = 0;
    for (long i = 0; i < n; ++i) {
      f.cache.tokens = TokenCache();
      allowed += measured_without_token_cache(f, inputs[0]);
      sink += measured_mint(*f.gs.minter, who, f.keys[0]);
    }
    benchmark::DoNotOptimize(sink);
  }
  std::printf("checks=%ld allowed=%ld\n", n, allowed);
  return allowed == (parts ? 2 * n : n) ? 0 : 1;
}

// The guard over Redis, through the C API as the glue drives it
// (mcpa_store_t.deferred): one token of one session, the sealed session
// record answered from a map standing in for Redis whenever the core asks
// for it (MCPA_GUARD_STORE), then the same call again with the replay.
// `--callgrind-redis N CACHE_SECONDS` counts the calls of each request
// (*measured_redis_request*); CACHE_SECONDS is mcp_auth_session_cache (0:
// every request reads Redis).  Redis's own round trip and the glue's I/O are
// not in the count.
struct RedisModel {
  std::map<std::string, std::string> values;  // key -> sealed value
  long round_trips = 0;
};

__attribute__((noinline)) int measured_redis_request(const mcpa_config_t* cf, RedisModel& redis,
                                                     mcpa_guard_request_t req) {
  mcpa_store_t store{};
  store.deferred = 1;
  std::string log, value;
  for (int round = 0; round < 8; ++round) {
    mcpa_guard_result_t res{};
    if (mcpa_guard(cf, &store, &req, &res) != MCPA_OK) return -1;
    int verdict = res.verdict;
    if (verdict != MCPA_GUARD_STORE) {
      mcpa_guard_result_free(&res);
      return verdict;
    }
    const mcpa_store_op_t& op = res.response.store_op;
    std::string key(op.key.data, op.key.len);
    int status = MCPA_NOT_FOUND;
    if (op.op == MCPA_OP_GET) {
      auto it = redis.values.find(key);
      if (it != redis.values.end()) {
        value = it->second;
        status = MCPA_OK;
      }
    }
    ++redis.round_trips;
    log.assign(res.response.replay.data, res.response.replay.len);
    mcpa_guard_result_free(&res);
    req.replay.log = {log.data(), log.size()};
    req.replay.status = status;
    req.replay.value = {value.data(), value.size()};
  }
  return -1;
}

int callgrind_redis(long n, const char* cache_seconds) {
  char dir[] = "/tmp/check-bench.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const std::string key_line = KeyRing::generate_line("k1");
  const std::string key_file = std::string(dir) + "/keys", identity_file = std::string(dir) + "/identity";
  FILE* fk = std::fopen(key_file.c_str(), "w");
  FILE* fi = std::fopen(identity_file.c_str(), "w");
  if (!fk || !fi) return 1;
  std::fputs(key_line.c_str(), fk);
  std::fputs(random_token(32).c_str(), fi);
  std::fclose(fk);
  std::fclose(fi);
  const std::string issuer = "http://127.0.0.1:8080", resource = issuer + "/mcp",
                    rules = "save_snippet snippets:write\nget_snippet snippets:read\n";
  mcpa_settings_t settings;
  mcpa_settings_init(&settings);
  settings.issuer = {issuer.data(), issuer.size()};
  settings.resource = {resource.data(), resource.size()};
  settings.key_file = {key_file.data(), key_file.size()};
  settings.identity_key_file = {identity_file.data(), identity_file.size()};
  settings.tool_scopes = {rules.data(), rules.size()};
  if (std::strcmp(cache_seconds, "0") != 0) settings.session_cache_ttl = std::atoll(cache_seconds);
  char err[256] = "";
  mcpa_config_t* cf = mcpa_config_build(&settings, err, sizeof err);
  if (!cf || mcpa_config_check_use(cf, MCPA_EP_NONE, 1, err, sizeof err) != MCPA_OK) {
    std::fprintf(stderr, "config: %s\n", err);
    return 1;
  }
  std::remove(key_file.c_str());
  std::remove(identity_file.c_str());
  std::remove(dir);

  std::string why;
  KeyRing keys = *KeyRing::parse(key_line, &why);
  MemoryStore unused;
  SealedStore sealer(unused, keys);
  Session s;
  s.sid = random_token(32);
  s.sub = "user-0";
  s.name = "Demo User";
  s.email = "demo0@example.com";
  s.client_id = random_token(16);
  s.scope = "snippets:read snippets:write";
  s.resource = "http://127.0.0.1:8080/mcp";
  s.provider_access_token = random_token(32);
  s.provider_refresh_token = random_token(32);
  s.provider_expires = kNow + 3600;
  s.created = kNow - 60;
  s.expires = kNow + 86400;
  RedisModel redis;
  redis.values["session:" + s.sid] = sealer.seal("session:" + s.sid, encode_session(s));
  AccessClaims a;
  a.sid = s.sid;
  a.client_id = s.client_id;
  a.scope = s.scope;
  a.resource = s.resource;
  a.exp = kNow + 3600;
  const std::string authorization = "Bearer " + keys.seal(seal_purpose::access_token, encode_access(a));
  const std::string body = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello_mcp","arguments":{}}})";

  mcpa_guard_request_t req{};
  req.method = {"POST", 4};
  req.authorization = {authorization.data(), authorization.size()};
  req.body = {body.data(), body.size()};
  req.body_read = 1;
  req.now = kNow;
  if (measured_redis_request(cf, redis, req) != MCPA_GUARD_ALLOW) return 1;  // warm
  redis.round_trips = 0;
  long allowed = 0;
  for (long i = 0; i < n; ++i) allowed += measured_redis_request(cf, redis, req) == MCPA_GUARD_ALLOW;
  std::printf("requests=%ld allowed=%ld redis_round_trips=%ld\n", n, allowed, redis.round_trips);
  mcpa_config_free(cf);
  return allowed == n ? 0 : 1;
}

}  // namespace

// `--ab-prefetch SESSIONS`: the check with and without the zone prefetch
// (store.prefetch), in alternating blocks in one process, so that the
// machine's drifting load falls on both alike.  Prints the medians.
int ab_prefetch(size_t sessions) {
  Fixture& f = fixture(kZone, sessions);
  auto& zone = static_cast<ZoneStore&>(*f.store);
  std::vector<GuardInput> inputs;
  for (size_t i = 0; i < 4096; ++i) inputs.push_back(f.input(i));
  for (size_t i = 0; i < 4096; ++i) guard_check(f.cf, f.gs, f.cache, *f.store, inputs[i]);  // warm
  std::vector<double> with, without;
  for (int round = 0; round < 40; ++round) {
    for (bool on : {round % 2 == 0, round % 2 != 0}) {
      zone.prefetching_ = on;
      auto t0 = std::chrono::steady_clock::now();
      long n = 40000;
      if (measured_checks(f, inputs, n) != n) return 1;
      double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
      (on ? with : without).push_back(ns);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("sessions=%zu prefetch_ns=%.0f no_prefetch_ns=%.0f\n", sessions, median(with), median(without));
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--ab-prefetch") == 0)
    return ab_prefetch(static_cast<size_t>(std::atol(argv[2])));
  // --callgrind-loop[-cold] N [SESSIONS]: SESSIONS (default 1,000) live
  // sessions, e.g. for `--cache-sim=yes` at a size the CPU caches do not hold
  if ((argc == 3 || argc == 4) && std::strncmp(argv[1], "--callgrind-loop", 16) == 0) {
    size_t sessions = argc == 4 ? static_cast<size_t>(std::atol(argv[3])) : 1000;
    if (std::strcmp(argv[1], "--callgrind-loop") == 0) return callgrind_loop(std::atol(argv[2]), false, sessions);
    if (std::strcmp(argv[1], "--callgrind-loop-cold") == 0) return callgrind_loop(std::atol(argv[2]), true, sessions);
  }
  if (argc == 3 && std::strcmp(argv[1], "--callgrind-one") == 0) return callgrind_one(std::atol(argv[2]), false);
  if (argc == 3 && std::strcmp(argv[1], "--callgrind-parts") == 0) return callgrind_one(std::atol(argv[2]), true);
  if (argc == 4 && std::strcmp(argv[1], "--callgrind-redis") == 0) return callgrind_redis(std::atol(argv[2]), argv[3]);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
