#include "replay_store.hpp"

#include <cstring>

namespace mcpauth {
namespace {

constexpr char kMagic[] = "RPL1";

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::string_view b) {
  put_u32(out, static_cast<uint32_t>(b.size()));
  out.append(b);
}

struct Reader {
  std::string_view in;
  bool ok = true;

  uint32_t u32() {
    if (in.size() < 4) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return v;
  }

  std::string bytes() {
    uint32_t n = u32();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string out(in.substr(0, n));
    in.remove_prefix(n);
    return out;
  }
};

// FNV-1a over the operation's fields, each length-prefixed.
struct Digest {
  uint32_t h = 2166136261u;
  void add(std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) byte(static_cast<unsigned char>((n >> (8 * i)) & 0xff));
    for (unsigned char c : s) byte(c);
  }
  void byte(unsigned char c) {
    h ^= c;
    h *= 16777619u;
  }
};

}  // namespace

uint32_t op_digest(const StoreOp& op) {
  Digest d;
  d.byte(static_cast<unsigned char>(op.op));
  d.byte(static_cast<unsigned char>(op.mode & 0xff));
  d.byte(static_cast<unsigned char>((op.mode >> 8) & 0xff));  // the class flag
  d.add(op.key);
  d.add(op.value);
  d.add(op.expect);
  d.add(std::to_string(op.expires));
  return d.h;
}

bool ReplayLog::decode(std::string_view text, ReplayLog* out) {
  *out = ReplayLog();
  if (text.empty()) return true;
  if (text.size() < 4 || text.substr(0, 4) != kMagic) return false;
  Reader r{text.substr(4)};
  uint32_t n = r.u32();
  if (!r.ok || n > kMaxReplayAnswers) return false;
  for (uint32_t i = 0; i < n && r.ok; ++i) {
    Answer a;
    a.digest = r.u32();
    uint32_t st = r.u32();
    // an answer is what a store said; pending never is one
    if ((st & ~0x1ffu) != 0 || (st & 0xff) > static_cast<uint32_t>(StoreStatus::unavailable)) return false;
    a.status = static_cast<StoreStatus>(st & 0xff);
    a.local = (st & 0x100) != 0;
    a.value = r.bytes();
    out->answers.push_back(std::move(a));
  }
  out->pending = r.u32();
  out->tape.bytes = r.bytes();
  uint32_t kept = r.u32();
  if (!r.ok || kept > RunMemo::kMaxEntries) return false;
  for (uint32_t i = 0; i < kept && r.ok; ++i) {
    RunMemo::Entry e;
    e.key = r.bytes();
    e.value = r.bytes();
    out->memo.entries.push_back(std::move(e));
  }
  return r.ok && r.in.empty();
}

std::string ReplayLog::encode() const {
  std::string out(kMagic);
  put_u32(out, static_cast<uint32_t>(answers.size()));
  for (const Answer& a : answers) {
    put_u32(out, a.digest);
    put_u32(out, static_cast<uint32_t>(a.status) | (a.local ? 0x100u : 0u));
    put_bytes(out, a.value);
  }
  put_u32(out, pending);
  put_bytes(out, tape.bytes);
  put_u32(out, static_cast<uint32_t>(memo.entries.size()));
  for (const RunMemo::Entry& e : memo.entries) {
    put_bytes(out, e.key);
    put_bytes(out, e.value);
  }
  return out;
}

void ReplayLog::answer(int status, std::string_view value) {
  Answer a;
  a.digest = pending;
  a.status = status_from_c(status);
  if (status == MCPA_OK) a.value = std::string(value);
  answers.push_back(std::move(a));
  pending = 0;
}

StoreStatus ReplayStore::stop(State why) {
  state_ = why;
  // what the run still does is discarded, and so are the random bytes it draws
  log_.tape.freeze();
  return StoreStatus::pending;
}

StoreStatus ReplayStore::run(StoreOp op, std::string* value) {
  if (value) value->clear();
  if (state_ != State::running) return StoreStatus::pending;
  if (op.op == MCPA_OP_PUT || op.op == MCPA_OP_TAKE || op.op == MCPA_OP_DEL) changed_ = true;
  uint32_t digest = op_digest(op);
  if (next_ < log_.answers.size()) {
    const ReplayLog::Answer& a = log_.answers[next_++];
    if (a.digest != digest) return stop(State::out_of_step);
    if (value) *value = a.value;
    return a.status;
  }
  log_.pending = digest;
  pending_ = std::move(op);
  return stop(State::pending);
}

StoreStatus ReplayStore::get(std::string_view key, std::string* value) {
  StoreOp op;
  op.op = MCPA_OP_GET;
  op.key = key;
  return run(std::move(op), value);
}

StoreStatus ReplayStore::get_known(std::string_view key, std::string* value, const std::string* known,
                                   bool* from_store) {
  StoreOp op;
  op.op = MCPA_OP_GET;
  op.key = key;
  *from_store = false;
  if (state_ != State::running) {
    value->clear();
    return StoreStatus::pending;  // nothing is logged after the stop
  }
  if (next_ < log_.answers.size()) {
    *from_store = !log_.answers[next_].local;
  } else if (known) {
    ReplayLog::Answer a;
    a.digest = op_digest(op);
    a.status = StoreStatus::ok;
    a.local = true;
    a.value = *known;
    log_.answers.push_back(std::move(a));
  } else {
    *from_store = true;
  }
  return run(std::move(op), value);
}

StoreStatus ReplayStore::take(std::string_view key, std::string* value) {
  StoreOp op;
  op.op = MCPA_OP_TAKE;
  op.key = key;
  return run(std::move(op), value);
}

StoreStatus ReplayStore::put(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  StoreOp op;
  op.op = MCPA_OP_PUT;
  op.key = key;
  op.value = value;
  op.expires = expires;
  op.mode = put_mode(MCPA_PUT_SET, cls);
  return run(std::move(op), nullptr);
}

StoreStatus ReplayStore::put_new(std::string_view key, std::string_view value, int64_t expires, StoreClass cls) {
  StoreOp op;
  op.op = MCPA_OP_PUT;
  op.key = key;
  op.value = value;
  op.expires = expires;
  op.mode = put_mode(MCPA_PUT_NEW, cls);
  return run(std::move(op), nullptr);
}

StoreStatus ReplayStore::replace_if(std::string_view key, std::string_view expected, std::string_view value,
                                    int64_t expires) {
  StoreOp op;
  op.op = MCPA_OP_PUT;
  op.key = key;
  op.value = value;
  op.expect = expected;
  op.expires = expires;
  op.mode = MCPA_PUT_REPLACE_IF;
  return run(std::move(op), nullptr);
}

StoreStatus ReplayStore::del(std::string_view key) {
  StoreOp op;
  op.op = MCPA_OP_DEL;
  op.key = key;
  return run(std::move(op), nullptr);
}

StoreStatus ReplayStore::sync() {
  if (state_ != State::running) return StoreStatus::pending;
  if (!confirm_writes_ || !changed_) return StoreStatus::ok;
  StoreOp op;
  op.op = MCPA_OP_SYNC;
  StoreStatus st = run(std::move(op), nullptr);
  // what a later sync in this run confirms starts here
  if (st != StoreStatus::pending) changed_ = false;
  return st;
}

}  // namespace mcpauth
