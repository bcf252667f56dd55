#include "session_cache.hpp"

namespace mcpauth {
namespace {

bool cached_kind(std::string_view key) { return key.rfind("session:", 0) == 0; }

}  // namespace

const std::string* SessionRecordCache::find(const std::string& key, int64_t now, int64_t ttl) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || now - it->second.read_at >= ttl || now < it->second.read_at) return nullptr;
  return &it->second.value;
}

void SessionRecordCache::remember(const std::string& key, std::string_view value, int64_t now, int64_t ttl) {
  if (ttl <= 0) return;
  if (entries_.size() >= capacity_ && entries_.find(key) == entries_.end()) {
    // Stale entries first; if all are fresh, start over: a full cache means
    // more live sessions than it was sized for, and correctness never
    // depends on it.
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now - it->second.read_at >= ttl) it = entries_.erase(it);
      else ++it;
    }
    if (entries_.size() >= capacity_) entries_.clear();
  }
  Entry& e = entries_[key];
  e.value.assign(value.data(), value.size());
  e.read_at = now;
}

void SessionRecordCache::forget(const std::string& key) { entries_.erase(key); }

SessionRecordCache& worker_record_cache() {
  static SessionRecordCache cache;
  return cache;
}

StoreStatus CachingStore::get(std::string_view key, std::string* value) {
  if (!cached_kind(key)) return inner_.get(key, value);
  const std::string k(key);
  const std::string* hit = read_through_ && !fresh_read_ ? cache_.find(k, now_, ttl_) : nullptr;
  bool from_store = false;
  StoreStatus st = inner_.get_known(key, value, hit, &from_store);
  fresh_read_ = true;
  if (from_store) {  // a pending answer is neither
    if (st == StoreStatus::ok) cache_.remember(k, *value, now_, ttl_);
    else if (st == StoreStatus::not_found) cache_.forget(k);
  }
  return st;
}

StoreStatus CachingStore::take(std::string_view key, std::string* value) {
  if (cached_kind(key)) cache_.forget(std::string(key));
  return inner_.take(key, value);
}

StoreStatus CachingStore::put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  StoreStatus st = inner_.put(key, value, expires, cls);
  if (cached_kind(key)) {
    if (st == StoreStatus::ok) cache_.remember(std::string(key), value, now_, ttl_);
    else cache_.forget(std::string(key));
  }
  return st;
}

StoreStatus CachingStore::put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  StoreStatus st = inner_.put_new(key, value, expires, cls);
  if (cached_kind(key)) {
    if (st == StoreStatus::ok) cache_.remember(std::string(key), value, now_, ttl_);
    else cache_.forget(std::string(key));
  }
  return st;
}

StoreStatus CachingStore::replace_if(std::string_view key, std::string_view expected, std::string_view value,
                                     int64_t expires) {
  StoreStatus st = inner_.replace_if(key, expected, value, expires);
  if (cached_kind(key)) {
    if (st == StoreStatus::ok) cache_.remember(std::string(key), value, now_, ttl_);
    else cache_.forget(std::string(key));
  }
  return st;
}

StoreStatus CachingStore::del(std::string_view key) {
  if (cached_kind(key)) cache_.forget(std::string(key));
  return inner_.del(key);
}

}  // namespace mcpauth
