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

StoreStatus CStore::get(std::string_view key, std::string* value) {
  value->clear();
  return status_from_c(s_->get(s_->data, c_str(key), 0, append_sink, value));
}

StoreStatus CStore::take(std::string_view key, std::string* value) {
  value->clear();
  return status_from_c(s_->get(s_->data, c_str(key), 1, append_sink, value));
}

StoreStatus CStore::put(std::string_view key, std::string_view value, int64_t expires) {
  return status_from_c(s_->put(s_->data, c_str(key), c_str(value), expires, MCPA_PUT_SET, {nullptr, 0}));
}

StoreStatus CStore::put_new(std::string_view key, std::string_view value, int64_t expires) {
  return status_from_c(s_->put(s_->data, c_str(key), c_str(value), expires, MCPA_PUT_NEW, {nullptr, 0}));
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

StoreStatus MemoryStore::put(std::string_view key, std::string_view value, int64_t expires) {
  Entry* e = live(key);
  if (e) {
    e->value.assign(value);
    e->expires = expires;
    return StoreStatus::ok;
  }
  if (entries_.size() >= capacity) return StoreStatus::full;
  entries_.emplace(std::string(key), Entry{std::string(value), expires});
  return StoreStatus::ok;
}

StoreStatus MemoryStore::put_new(std::string_view key, std::string_view value, int64_t expires) {
  if (live(key)) return StoreStatus::exists;
  return put(key, value, expires);
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
