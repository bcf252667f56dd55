// The store the endpoints keep their state in: registrations, pending
// logins, authorization codes, sessions.  One small interface so that the
// shared-memory zone (one machine) and a networked store (several) are
// interchangeable without touching endpoint code.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "mcp_auth.h"

namespace mcpauth {

// unavailable: a networked store did not answer in time (a 503 to retry).
// pending: a deferred store (replay_store.hpp) does not know the answer yet;
// the run that sees it is discarded and the request runs again once the
// answer is in, so code that gets it only returns, as early and as cheaply
// as it can, and never acts on it.  No store but ReplayStore returns it.
enum class StoreStatus { ok, not_found, exists, conflict, full, error, unavailable, pending };

// Who made an entry: users who logged in (normal), or anyone at all
// (unauthenticated: registrations not yet used for a login, fetched client
// metadata documents).  Unauthenticated entries live within a budget of
// their own and are evicted, oldest first, to make room; so anonymous
// traffic can never take the store's memory from logged-in users.  A key is
// always written with the same class.
enum class StoreClass { normal, unauthenticated };

class Store {
 public:
  virtual ~Store() = default;
  virtual StoreStatus get(std::string_view key, std::string* value) = 0;
  // get + delete in one atomic step: what a single-use code needs.
  virtual StoreStatus take(std::string_view key, std::string* value) = 0;
  virtual StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                          StoreClass cls = StoreClass::normal) = 0;
  // Only when no live value exists (else exists).
  virtual StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                              StoreClass cls = StoreClass::normal) = 0;
  // Only when the live value equals `expected` (else conflict / not_found):
  // how a refresh token rotates exactly once.
  virtual StoreStatus replace_if(std::string_view key, std::string_view expected,
                                 std::string_view value, int64_t expires) = 0;
  virtual StoreStatus del(std::string_view key) = 0;
  // A hint that `key` is read soon: a store in memory may start loading
  // where it lives.  Changes nothing.
  virtual void prefetch(std::string_view /*key*/) {}
  // Called once a request is about to tell its client what it changed:
  // ok when those changes are as safe as the store promises (a replicated
  // store: on its replicas), else unavailable -- not acknowledged, though
  // made.  Stores with nothing to confirm answer ok.
  virtual StoreStatus sync() { return StoreStatus::ok; }
};

// The glue's MCPA_* store answers as a StoreStatus.
// Another store's operations, counted: a request that does many (the admin
// API's bulk ends) stops before MCPA_MAX_STORE_OPS.
class CountingStore final : public Store {
 public:
  explicit CountingStore(Store& inner) : inner_(inner) {}
  size_t count() const { return count_; }

  StoreStatus get(std::string_view key, std::string* value) override { return ++count_, inner_.get(key, value); }
  StoreStatus take(std::string_view key, std::string* value) override { return ++count_, inner_.take(key, value); }
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override {
    return ++count_, inner_.put(key, value, expires, cls);
  }
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override {
    return ++count_, inner_.put_new(key, value, expires, cls);
  }
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override {
    return ++count_, inner_.replace_if(key, expected, value, expires);
  }
  StoreStatus del(std::string_view key) override { return ++count_, inner_.del(key); }
  void prefetch(std::string_view key) override { inner_.prefetch(key); }
  StoreStatus sync() override { return inner_.sync(); }

 private:
  Store& inner_;
  size_t count_ = 0;
};

StoreStatus status_from_c(int rc);
// The C put mode with the class's flag.
int put_mode(int mode, StoreClass cls);

// Over the glue's mcpa_store_t (the nginx shared-memory zone).
class CStore final : public Store {
 public:
  explicit CStore(const mcpa_store_t* s) : s_(s) {}
  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;
  void prefetch(std::string_view key) override;

 private:
  const mcpa_store_t* s_;
};

// In process memory, with a clock the caller moves: for unit tests, and the
// reference behaviour every other store must match.
class MemoryStore final : public Store {
 public:
  int64_t now = 0;
  size_t capacity = SIZE_MAX;  // entries; beyond it puts fail with full
  // unauthenticated entries; beyond it the oldest of them is evicted
  size_t unauthenticated_capacity = SIZE_MAX;
  size_t evicted = 0;  // unauthenticated entries evicted so far

  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;
  size_t size() const { return entries_.size(); }
  size_t unauthenticated_count() const;

 private:
  struct Entry {
    std::string value;
    int64_t expires;
    bool unauth = false;
    uint64_t seq = 0;  // order of creation
  };
  uint64_t seq_ = 0;
  std::map<std::string, Entry, std::less<>> entries_;
  Entry* live(std::string_view key);
};

}  // namespace mcpauth
