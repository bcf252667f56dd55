// Google Benchmark of the guard's per-request check (issue 8, item 2):
// open a sealed access token, find its session in a store, decide
// (mcpauth::guard_check), at 1,000 .. 1,000,000 live sessions.
//
// Stores:
//   ZoneLike  a red-black tree keyed by a 32-bit hash of the key, full
//             compare on collision: the layout of the nginx shared-memory
//             zone (ngx_rbtree keyed by ngx_crc32_short), minus the mutex.
//   Hash      std::unordered_map: what a hash-table zone would cost.
//   Memory    the core's MemoryStore (std::map<std::string>): the unit tests'
//             reference store, for comparison (two sizes only).
//
// Each iteration checks one of 4,096 pre-sealed tokens whose sessions are
// spread at random over the N live sessions, so the store lookup misses the
// CPU caches as in a busy gateway; the identity assertion is served from the
// per-worker cache (as for every request but the first of a session in five
// minutes), which BM_IdentityMint prices separately.  BM_GuardCheck finds the
// token in the worker's TokenCache (as for every request but a token's first
// in a worker); BM_GuardCheckColdToken opens it every time.
//
// `check-bench --callgrind-loop N` runs guard_check N times on 1,000
// sessions and nothing else, for `valgrind --tool=callgrind` (item 6);
// `--callgrind-loop-cold N` the same with the TokenCache emptied each time.

#include <benchmark/benchmark.h>

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
#include "session.hpp"
#include "store.hpp"

using namespace mcpauth;

namespace {

constexpr int64_t kNow = 1'900'000'000;

// Only get() is on the guard's allow path; the rest is here to satisfy
// the interface (and the step-up put on a 403, never taken here).
class MapStoreBase : public Store {
 public:
  StoreStatus take(std::string_view, std::string*) override { return StoreStatus::error; }
  StoreStatus put_new(std::string_view k, std::string_view v, int64_t e) override { return put(k, v, e); }
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
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

class ZoneLikeStore final : public MapStoreBase {
 public:
  StoreStatus get(std::string_view key, std::string* value) override {
    auto it = map_.find(Key{hash32(key), key});
    if (it == map_.end() || it->second.expires <= kNow) return StoreStatus::not_found;
    *value = it->second.value;
    return StoreStatus::ok;
  }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires) override {
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

class HashStore final : public MapStoreBase {
 public:
  StoreStatus get(std::string_view key, std::string* value) override {
    auto it = map_.find(std::string(key));
    if (it == map_.end() || it->second.expires <= kNow) return StoreStatus::not_found;
    *value = it->second.value;
    return StoreStatus::ok;
  }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires) override {
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

std::unique_ptr<Store> make_store(int kind) {
  switch (kind) {
    case 0: return std::make_unique<ZoneLikeStore>();
    case 1: return std::make_unique<HashStore>();
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
    g = std::make_unique<Fixture>(make_store(kind), sessions);
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
// in a worker; every later one is the warm case above).
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

BENCHMARK_CAPTURE(BM_GuardCheckColdToken, ZoneLike, 0)->Arg(1000)->Arg(1000000);

BENCHMARK_CAPTURE(BM_GuardCheck, ZoneLike, 0)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_CAPTURE(BM_GuardCheck, Hash, 1)->RangeMultiplier(10)->Range(1000, 1000000);
// MemoryStore (std::map<std::string>): a tree like ZoneLike, but with string
// compares at every level; 1,000 and 100,000 sessions are enough to place it.
BENCHMARK_CAPTURE(BM_GuardCheck, Memory, 2)->Arg(1000)->Arg(100000);

// The parts, on 1,000 sessions.
void BM_OpenToken(benchmark::State& state) {
  Fixture& f = fixture(0, 1000);
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
  Identity who{"user", "client", "snippets:read snippets:write"};
  for (auto _ : state) benchmark::DoNotOptimize(m->mint(who, kNow, 300));
}
BENCHMARK(BM_IdentityMint);

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

int callgrind_loop(long n, bool cold) {
  Fixture& f = fixture(0, 1000);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--callgrind-loop") == 0) return callgrind_loop(std::atol(argv[2]), false);
  if (argc == 3 && std::strcmp(argv[1], "--callgrind-loop-cold") == 0)
    return callgrind_loop(std::atol(argv[2]), true);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
