#include "sealed_store.hpp"

namespace mcpauth {

std::string SealedStore::seal(std::string_view key, std::string_view value) const {
  std::string plain;
  plain.reserve(key.size() + 1 + value.size());
  plain.append(key).push_back('\0');
  plain.append(value);
  std::string sealed = keys_.seal(seal_purpose::store_value, plain);
  wipe(plain);
  return sealed;
}

bool SealedStore::open(std::string_view key, std::string_view sealed, std::string* value) const {
  auto plain = keys_.open(seal_purpose::store_value, sealed);
  if (!plain) return false;
  bool ok = plain->size() > key.size() && std::string_view(*plain).substr(0, key.size()) == key &&
            (*plain)[key.size()] == '\0';
  if (ok) value->assign(*plain, key.size() + 1, std::string::npos);
  wipe(*plain);
  return ok;
}

StoreStatus SealedStore::opened(std::string_view key, StoreStatus st, std::string* value) {
  if (st != StoreStatus::ok) return st;
  std::string sealed = std::move(*value);
  if (!open(key, sealed, value)) {
    value->clear();
    return StoreStatus::not_found;  // tampered, moved, or sealed with a key no longer in the file
  }
  read_[std::string(key)] = std::move(sealed);
  return StoreStatus::ok;
}

StoreStatus SealedStore::get(std::string_view key, std::string* value) {
  return opened(key, inner_.get(key, value), value);
}

StoreStatus SealedStore::take(std::string_view key, std::string* value) {
  return opened(key, inner_.take(key, value), value);
}

StoreStatus SealedStore::put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  return inner_.put(key, seal(key, value), expires, cls);
}

StoreStatus SealedStore::put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  return inner_.put_new(key, seal(key, value), expires, cls);
}

StoreStatus SealedStore::replace_if(std::string_view key, std::string_view expected, std::string_view value,
                                    int64_t expires) {
  auto it = read_.find(key);
  std::string was;
  if (it == read_.end() || !open(key, it->second, &was) || !ct_equal(was, expected)) {
    return StoreStatus::conflict;  // not what this request read: read again
  }
  std::string sealed = seal(key, value);
  StoreStatus st = inner_.replace_if(key, it->second, sealed, expires);
  if (st == StoreStatus::ok) it->second = std::move(sealed);
  return st;
}

StoreStatus SealedStore::del(std::string_view key) { return inner_.del(key); }

}  // namespace mcpauth
