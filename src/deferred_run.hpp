// A request over a deferred store (mcpa_store_t.deferred), one run of it:
// its replay log, the store that answers from the log (ReplayStore), the
// worker's session-record cache in front of it, and the sealing of values
// in front of that.  The C boundary (capi.cpp) makes one DeferredRun per
// call; the glue calls again after each store operation (replay_store.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config.hpp"
#include "mcp_auth.h"
#include "replay_store.hpp"
#include "sealed_store.hpp"
#include "session_cache.hpp"

namespace mcpauth {

class DeferredRun {
 public:
  // replay: what the glue carries back (the log and the answer to its
  // pending operation).  read_through: the guard's reads of session records
  // may be served by the worker's cache (session_cache.hpp).  confirm_writes:
  // as mcpa_store_t's (replay_store.hpp).
  DeferredRun(const Config& cf, const mcpa_replay_t& replay, int64_t now, bool read_through,
              bool confirm_writes = false)
      : ok_(ReplayLog::decode(std::string_view(replay.log.data ? replay.log.data : "", replay.log.len), &log_)),
        replay_(log_, confirm_writes),
        cache_(replay_, worker_record_cache(), now, cf.session_cache_ttl, read_through) {
    if (ok_ && replay.log.len)
      log_.answer(replay.status, std::string_view(replay.value.data ? replay.value.data : "", replay.value.len));
    // every location that reaches the store has a key file (config checks)
    if (cf.keys) sealed_.emplace(cache_, *cf.keys);
  }

  // False for a log that does not decode.
  bool ok() const { return ok_; }

  enum class End {
    done,     // f ran to its end over answers all known: its result stands
    pending,  // f met an operation not answered yet: in *op, the log in *replay;
              // whatever f produced is to be discarded
    failed,   // the run was out of step with its log: an internal error
  };

  // Runs f(store) once, with the log's tape and memo installed.
  template <class F>
  End run(F&& f, StoreOp* op, std::string* replay) {
    {
      ReplayScope scope(log_);
      f(store());
    }
    if (replay_.out_of_step()) return End::failed;
    if (!replay_.stopped()) return End::done;
    *op = replay_.pending_op();
    *replay = log_.encode();
    return End::pending;
  }

 private:
  Store& store() { return sealed_ ? static_cast<Store&>(*sealed_) : cache_; }

  ReplayLog log_;
  bool ok_;
  ReplayStore replay_;
  CachingStore cache_;
  std::optional<SealedStore> sealed_;
};

}  // namespace mcpauth
