// An in-memory SnippetStore for the tool server's harnesses: no disk, and
// bounded (emptied past 1000 snippets) so that a long run does not grow.
// Given an event base (defer_on), every other answer comes from a later turn
// of that loop, as a networked store's does, so that responses that wait for
// storage -- and clients or servers gone before they come -- are fuzzed too.
#pragma once

#include <event2/event.h>

#include <map>
#include <memory>
#include <string>

#include "snippet_store.hpp"

namespace toolserver {

class MemorySnippets final : public SnippetStore {
 public:
  void defer_on(event_base* base) { base_ = base; }

  Future<StoreResult> save(const std::string& owner, const std::string& name,
                           const std::string& content) override {
    if (data_.size() > 1000) data_.clear();
    data_[owner + "\n" + name] = content;
    return answer(StoreResult::ok());
  }
  Future<StoreResult> load(const std::string& owner, const std::string& name) override {
    auto it = data_.find(owner + "\n" + name);
    if (it == data_.end()) return answer(StoreResult::not_found());
    return answer(StoreResult::ok(it->second));
  }

 private:
  struct Later {
    Promise<StoreResult> promise;
    StoreResult result;
  };

  Future<StoreResult> answer(StoreResult r) {
    if (!base_ || (++calls_ & 1)) return Future<StoreResult>::ready(std::move(r));
    auto* later = new Later{Promise<StoreResult>(), std::move(r)};
    Future<StoreResult> f = later->promise.future();
    const timeval now{0, 0};
    if (event_base_once(base_, -1, EV_TIMEOUT, &MemorySnippets::fire, later, &now) != 0) {
      std::unique_ptr<Later> own(later);
      return Future<StoreResult>::ready(std::move(own->result));
    }
    return f;
  }

  static void fire(evutil_socket_t, short, void* arg) {
    std::unique_ptr<Later> later(static_cast<Later*>(arg));
    later->promise.set(std::move(later->result));
  }

  std::map<std::string, std::string> data_;
  event_base* base_ = nullptr;
  unsigned calls_ = 0;
};

}  // namespace toolserver
