// A store whose answers arrive later: how the core runs over a networked
// store (Redis) without ever blocking an nginx worker.
//
// The endpoint code is written against the synchronous Store interface.  With
// a deferred store, a request runs until its first operation the log cannot
// answer; that operation is handed to the glue (which performs it on nginx's
// event loop) and the request is run again from the start, with the answer
// appended to the log.  Earlier operations are answered from the log, never
// repeated, so every write reaches the store exactly once.
//
// A rerun must ask for the very same operations: `now` is fixed by the glue
// for the whole request, and every random byte the first runs drew is
// replayed from the log's tape (RandomTape).  Each logged answer carries a
// digest of the operation it answers; a rerun that asks for anything else
// is an internal error, not a wrong answer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "mcp_auth.h"
#include "store.hpp"

namespace mcpauth {

// One store operation, as the glue performs it.
struct StoreOp {
  mcpa_op_e op = MCPA_OP_NONE;
  std::string key, value, expect;
  int64_t expires = 0;
  int mode = MCPA_PUT_SET;
};

// Thrown (not an std::exception, so nothing on the way mistakes it for a
// failure) when a run reaches an operation whose answer is not known yet.
// Caught at the C boundary only.
struct StorePending {};

// The log a request carries between its runs: answers so far, the digest
// of the operation now pending, and the random tape.
struct ReplayLog {
  struct Answer {
    uint32_t digest = 0;
    StoreStatus status = StoreStatus::error;
    bool local = false;  // answered by this worker's cache, not the store
    std::string value;
  };
  std::vector<Answer> answers;
  uint32_t pending = 0;  // digest of the operation awaiting its answer
  RandomTape tape;

  // "" decodes to an empty log; nullopt-like false for a damaged one.
  static bool decode(std::string_view text, ReplayLog* out);
  std::string encode() const;
  // The glue's answer to the pending operation.
  void answer(int status, std::string_view value);
};

uint32_t op_digest(const StoreOp& op);

class ReplayStore final : public Store {
 public:
  explicit ReplayStore(ReplayLog& log) : log_(log) {}
  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;

  // A get that `known` (when not null) answers locally: the answer goes
  // into the log all the same, so reruns agree.  from_store tells whether
  // the answer came from the store itself.
  StoreStatus get_known(std::string_view key, std::string* value, const std::string* known, bool* from_store);

  // Set when a run stopped at an operation (StorePending was thrown).
  const StoreOp& pending() const { return pending_; }

 private:
  StoreStatus run(StoreOp op, std::string* value);
  ReplayLog& log_;
  size_t next_ = 0;
  StoreOp pending_;
};

// Installs the log's tape as the source of random_bytes() for one run.
class TapeScope {
 public:
  explicit TapeScope(RandomTape& tape) : prev_(install_random_tape(&tape)) { tape.rewind(); }
  ~TapeScope() { install_random_tape(prev_); }
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  RandomTape* prev_;
};

}  // namespace mcpauth
