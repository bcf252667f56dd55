#include "store.hpp"

namespace mcpauth {
namespace {

mcpa_str_t c_str(std::string_view s) { return {s.data(), s.size()}; }

void append_sink(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}

}  // namespace

StoreStatus status_from_c(int rc) {
  switch (rc) {
    case MCPA_OK: return StoreStatus::ok;
    case MCPA_NOT_FOUND: return StoreStatus::not_found;
    case MCPA_EXISTS: return StoreStatus::exists;
    case MCPA_CONFLICT: return StoreStatus::conflict;
    case MCPA_FULL: return StoreStatus::full;
    case MCPA_UNAVAILABLE: return StoreStatus::unavailable;
    default: return StoreStatus::error;
  }
}

int put_mode(int mode, StoreClass cls) {
  return cls == StoreClass::unauthenticated ? mode | MCPA_PUT_UNAUTHENTICATED : mode;
}

StoreStatus CStore::get(std::string_view key, std::string* value) {
  value->clear();
  return status_from_c(s_->get(s_->data, c_str(key), 0, append_sink, value));
}

StoreStatus CStore::take(std::string_view key, std::string* value) {
  value->clear();
  return status_from_c(s_->get(s_->data, c_str(key), 1, append_sink, value));
}

StoreStatus CStore::put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  return status_from_c(
      s_->put(s_->data, c_str(key), c_str(value), expires, put_mode(MCPA_PUT_SET, cls), {nullptr, 0}));
}

StoreStatus CStore::put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  return status_from_c(
      s_->put(s_->data, c_str(key), c_str(value), expires, put_mode(MCPA_PUT_NEW, cls), {nullptr, 0}));
}

StoreStatus CStore::replace_if(std::string_view key, std::string_view expected, std::string_view value,
                               int64_t expires) {
  return status_from_c(
      s_->put(s_->data, c_str(key), c_str(value), expires, MCPA_PUT_REPLACE_IF, c_str(expected)));
}

StoreStatus CStore::del(std::string_view key) { return status_from_c(s_->del(s_->data, c_str(key))); }

void CStore::prefetch(std::string_view key) {
  if (s_->prefetch) s_->prefetch(s_->data, c_str(key));
}

MemoryStore::Entry* MemoryStore::live(std::string_view key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

StoreStatus MemoryStore::get(std::string_view key, std::string* value) {
  Entry* e = live(key);
  if (!e) return StoreStatus::not_found;
  *value = e->value;
  return StoreStatus::ok;
}

StoreStatus MemoryStore::take(std::string_view key, std::string* value) {
  Entry* e = live(key);
  if (!e) return StoreStatus::not_found;
  *value = std::move(e->value);
  entries_.erase(entries_.find(key));
  return StoreStatus::ok;
}

StoreStatus MemoryStore::put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  Entry* e = live(key);
  if (e) {
    e->value.assign(value);
    e->expires = expires;
    return StoreStatus::ok;
  }
  const bool unauth = cls == StoreClass::unauthenticated;
  if (unauth) {
    // the budget of unauthenticated entries: the oldest of them make room
    while (unauthenticated_count() >= unauthenticated_capacity) {
      auto oldest = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (it->second.unauth && (oldest == entries_.end() || it->second.seq < oldest->second.seq)) oldest = it;
      if (oldest == entries_.end()) return StoreStatus::full;
      entries_.erase(oldest);
      ++evicted;
    }
  }
  if (entries_.size() >= capacity) return StoreStatus::full;
  entries_.emplace(std::string(key), Entry{std::string(value), expires, unauth, ++seq_});
  return StoreStatus::ok;
}

StoreStatus MemoryStore::put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  if (live(key)) return StoreStatus::exists;
  return put(key, value, expires, cls);
}

size_t MemoryStore::unauthenticated_count() const {
  size_t n = 0;
  for (const auto& [k, e] : entries_)
    if (e.unauth && e.expires > now) ++n;
  return n;
}

StoreStatus MemoryStore::replace_if(std::string_view key, std::string_view expected,
                                    std::string_view value, int64_t expires) {
  Entry* e = live(key);
  if (!e) return StoreStatus::not_found;
  if (e->value != expected) return StoreStatus::conflict;
  e->value.assign(value);
  e->expires = expires;
  return StoreStatus::ok;
}

StoreStatus MemoryStore::del(std::string_view key) {
  if (!live(key)) return StoreStatus::not_found;
  entries_.erase(entries_.find(key));
  return StoreStatus::ok;
}

}  // namespace mcpauth
