// Values kept in a networked store (Redis) are sealed: AES-256-GCM with the
// key file's first key (any key of the file opens), bound to the key they
// are stored under.  Whoever can read Redis learns nothing of sessions,
// pending logins or the provider tokens they hold; whoever can write it
// cannot forge a session or move a value to another key -- a value that
// does not open reads as absent.  (In the shared-memory zone values stay
// plain: that memory is the nginx workers' own; its state file is sealed.)
#pragma once

#include <map>
#include <string>

#include "crypto.hpp"
#include "store.hpp"

namespace mcpauth {

class SealedStore final : public Store {
 public:
  SealedStore(Store& inner, const KeyRing& keys) : inner_(inner), keys_(keys) {}

  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  // Compares against the sealed value this request read for the key (a
  // rerun of the seal would differ, so plain text cannot be compared).
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;
  StoreStatus sync() override { return inner_.sync(); }

  std::string seal(std::string_view key, std::string_view value) const;
  bool open(std::string_view key, std::string_view sealed, std::string* value) const;

 private:
  StoreStatus opened(std::string_view key, StoreStatus st, std::string* value);
  Store& inner_;
  const KeyRing& keys_;
  std::map<std::string, std::string, std::less<>> read_;  // key -> sealed value read
};

}  // namespace mcpauth
