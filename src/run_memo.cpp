#include "run_memo.hpp"

#include "crypto.hpp"

namespace mcpauth {
namespace {
thread_local RunMemo* current_memo = nullptr;
}  // namespace

const std::string* RunMemo::find(std::string_view key) const {
  for (const Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

void RunMemo::keep(std::string key, std::string value) {
  if (entries.size() >= kMaxEntries || find(key)) return;
  entries.push_back({std::move(key), std::move(value)});
}

RunMemo* current_run_memo() { return current_memo; }

RunMemo* install_run_memo(RunMemo* memo) {
  RunMemo* prev = current_memo;
  current_memo = memo;
  return prev;
}

MemoKey& MemoKey::add(std::string_view part) {
  const uint64_t n = part.size();
  for (int i = 0; i < 8; ++i) text_.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  text_.append(part);
  return *this;
}

MemoKey& MemoKey::add(int64_t n) { return add(std::to_string(n)); }

std::string MemoKey::digest() const { return sha256(text_); }

}  // namespace mcpauth
