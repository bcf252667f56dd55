// Results of heavy computations that a request over a deferred store would
// otherwise repeat in every run (replay_store.hpp: the request runs again
// from the start after each store operation).  The run that computes such a
// result keeps it in the request's replay log; the reruns find it there.
//
// Only results of pure computations are kept, each under a key that is a
// SHA-256 digest of everything the result depends on (MemoKey): a run whose
// inputs differ in any byte looks under another key and computes afresh.
// The log, and the memo with it, never leaves the worker: the glue keeps it
// in the request's memory between runs and gives it back to the core only;
// no client and no store ever sees or supplies it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

class RunMemo {
 public:
  // A request keeps a result or two; the bound is for decoding a log.
  static constexpr size_t kMaxEntries = 8;

  struct Entry {
    std::string key, value;
  };
  std::vector<Entry> entries;

  // The value kept under key (a MemoKey digest), or nullptr.
  const std::string* find(std::string_view key) const;
  // Keeps value under key; a full memo keeps nothing more.
  void keep(std::string key, std::string value);
};

// The memo of the run in progress, as ReplayScope installs it; nullptr when
// there is none (a store that answers at once: a request runs once).  Per
// thread, like the random tape; a worker is single-threaded.
RunMemo* current_run_memo();
// Returns the memo that was installed before (nullptr: none).
RunMemo* install_run_memo(RunMemo* memo);

// A memo key: SHA-256 over a purpose and the parts, each length-prefixed,
// so that no two different sequences of parts give the same text.
class MemoKey {
 public:
  explicit MemoKey(std::string_view purpose) { add(purpose); }
  MemoKey& add(std::string_view part);
  MemoKey& add(int64_t n);
  std::string digest() const;  // 32 raw bytes

 private:
  std::string text_;
};

}  // namespace mcpauth
