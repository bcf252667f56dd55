// Session records a worker read from a networked store, kept briefly so that
// the guard checks most MCP requests without a round trip to Redis.
//
// The bound this buys and costs: a session revoked on another node (or by
// another worker) is still honoured here until the entry is `ttl` seconds
// old -- at most ttl + 1 s with second resolution.  Writes made through this
// worker update or drop the entry at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "replay_store.hpp"
#include "store.hpp"

namespace mcpauth {

class SessionRecordCache {
 public:
  explicit SessionRecordCache(size_t capacity = 16384) : capacity_(capacity) {}

  // The record, when one was read less than ttl seconds ago.
  const std::string* find(const std::string& key, int64_t now, int64_t ttl) const;
  void remember(const std::string& key, std::string_view value, int64_t now, int64_t ttl);
  void forget(const std::string& key);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string value;
    int64_t read_at;
  };
  size_t capacity_;
  std::unordered_map<std::string, Entry> entries_;
};

// The one cache of this worker process (a worker is single-threaded).
SessionRecordCache& worker_record_cache();

// A Store in front of a deferred one that serves reads of session records
// from the cache (when read_through; the guard) and keeps the cache honest
// on every write (always; endpoints that change or end sessions).  Only
// "session:" keys are cached; everything else passes straight through.  A
// cache hit is written into the replay log like a store answer, so that a
// rerun of the request sees the same record whatever the cache holds by then.
// A pending answer (replay_store.hpp) is never cached: a pending read leaves
// the cache as it is, and a pending write drops the entry as a failed one
// does, since the write is about to be made.
class CachingStore final : public Store {
 public:
  CachingStore(ReplayStore& inner, SessionRecordCache& cache, int64_t now, int64_t ttl, bool read_through)
      : inner_(inner), cache_(cache), now_(now), ttl_(ttl), read_through_(read_through) {}

  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;
  StoreStatus sync() override { return inner_.sync(); }

 private:
  ReplayStore& inner_;
  SessionRecordCache& cache_;
  int64_t now_, ttl_;
  bool read_through_;
  // Reads inside one request are authoritative after the first: a
  // replace_if must compare against what the store holds, not the cache.
  bool fresh_read_ = false;
};

}  // namespace mcpauth
