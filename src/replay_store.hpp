// A store whose answers arrive later: how the core runs over a networked
// store (Redis) without ever blocking an nginx worker.
//
// The endpoint code is written against the synchronous Store interface.  With
// a deferred store, a request runs until its first operation the log cannot
// answer.  ReplayStore records that operation and answers it, and every
// operation after it in the same run, with StoreStatus::pending, without
// effect; the endpoint code returns at once on a pending status (store.hpp).
// The run's response is discarded: the operation goes to the glue (which
// performs it on nginx's event loop) and the request is run again from the
// start, with the answer appended to the log.  Earlier operations are
// answered from the log, never repeated, so every write reaches the store
// exactly once.  Nothing is thrown on the way.
//
// A rerun must ask for the very same operations: `now` is fixed by the glue
// for the whole request, and every random byte the first runs drew is
// replayed from the log's tape (RandomTape); the tape ends where the run
// stopped, since what a stopped run draws after that is discarded with it
// (RandomTape::freeze).  Each logged answer carries a digest of the
// operation it answers; a rerun that asks for anything else is out of
// step, an internal error, not a wrong answer.
//
// Heavy pure work (an ID token's signature check) is done once per request,
// not once per run: its result travels in the log's memo (run_memo.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "mcp_auth.h"
#include "run_memo.hpp"
#include "store.hpp"

namespace mcpauth {

// One store operation, as the glue performs it.
struct StoreOp {
  mcpa_op_e op = MCPA_OP_NONE;
  std::string key, value, expect;
  int64_t expires = 0;
  int mode = MCPA_PUT_SET;
};

// The most store operations one request may make (mcp_auth.h).
inline constexpr uint32_t kMaxReplayAnswers = MCPA_MAX_STORE_OPS;

// The log a request carries between its runs: answers so far, the digest
// of the operation now pending, the random tape and the memo.
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
  RunMemo memo;

  // "" decodes to an empty log; nullopt-like false for a damaged one.
  static bool decode(std::string_view text, ReplayLog* out);
  std::string encode() const;
  // The glue's answer to the pending operation.
  void answer(int status, std::string_view value);
};

uint32_t op_digest(const StoreOp& op);

class ReplayStore final : public Store {
 public:
  // confirm_writes: the glue confirms changes (mcpa_store_t.confirm_writes),
  // so a run that made any ends its sync() with an MCPA_OP_SYNC.
  explicit ReplayStore(ReplayLog& log, bool confirm_writes = false) : log_(log), confirm_writes_(confirm_writes) {}
  StoreStatus get(std::string_view key, std::string* value) override;
  StoreStatus take(std::string_view key, std::string* value) override;
  StoreStatus put(std::string_view key, std::string_view value, int64_t expires,
                  StoreClass cls = StoreClass::normal) override;
  StoreStatus put_new(std::string_view key, std::string_view value, int64_t expires,
                      StoreClass cls = StoreClass::normal) override;
  StoreStatus replace_if(std::string_view key, std::string_view expected, std::string_view value,
                         int64_t expires) override;
  StoreStatus del(std::string_view key) override;
  StoreStatus sync() override;

  // A get that `known` (when not null) answers locally: the answer goes
  // into the log all the same, so reruns agree.  from_store tells whether
  // the answer came from the store itself.
  StoreStatus get_known(std::string_view key, std::string* value, const std::string* known, bool* from_store);

  // True once this run reached an operation the log cannot answer (or was
  // out of step): from there on every operation answers pending.
  bool stopped() const { return state_ != State::running; }
  // The operation this run stopped at, for the glue to perform.
  const StoreOp& pending_op() const { return pending_; }
  // The run asked for an operation other than the one the log answered.
  bool out_of_step() const { return state_ == State::out_of_step; }

 private:
  enum class State { running, pending, out_of_step };
  StoreStatus run(StoreOp op, std::string* value);
  StoreStatus stop(State why);
  ReplayLog& log_;
  size_t next_ = 0;
  State state_ = State::running;
  StoreOp pending_;
  bool confirm_writes_;
  bool changed_ = false;  // this run asked for a change (answered or not)
};

// Installs the log's tape as the source of random_bytes(), and its memo as
// the run memo, for one run.
class ReplayScope {
 public:
  explicit ReplayScope(ReplayLog& log)
      : prev_tape_(install_random_tape(&log.tape)), prev_memo_(install_run_memo(&log.memo)) {
    log.tape.rewind();
  }
  ~ReplayScope() {
    install_random_tape(prev_tape_);
    install_run_memo(prev_memo_);
  }
  ReplayScope(const ReplayScope&) = delete;
  ReplayScope& operator=(const ReplayScope&) = delete;

 private:
  RandomTape* prev_tape_;
  RunMemo* prev_memo_;
};

}  // namespace mcpauth
