#include "session_index.hpp"

#include <algorithm>
#include <charconv>

#include "crypto.hpp"
#include "encoding.hpp"
#include "token_exchange.hpp"

namespace mcpauth {
namespace {

// Compare-and-set rounds before a list write gives up: each lost round
// means another request changed the same list in between.
constexpr int kWriteRounds = 8;

bool parse_expiry(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

// Lines "EXPIRES MEMBER", the member percent-encoded (a client id may be a
// URL).  False when the text is not such a list.
bool decode_list(std::string_view text, std::vector<IndexEntry>* out) {
  out->clear();
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return false;
    IndexEntry e;
    auto member = pct_decode(line.substr(sp + 1), false);
    if (!member || member->empty() || !parse_expiry(line.substr(0, sp), &e.expires)) return false;
    e.member = std::move(*member);
    out->push_back(std::move(e));
  }
  return true;
}

std::string encode_list(const std::vector<IndexEntry>& entries) {
  std::string text;
  for (const auto& e : entries) {
    if (!text.empty()) text += '\n';
    text += std::to_string(e.expires);
    text += ' ';
    text += pct_encode(e.member);
  }
  return text;
}

void drop_expired(std::vector<IndexEntry>* entries, int64_t now) {
  entries->erase(std::remove_if(entries->begin(), entries->end(), [&](const IndexEntry& e) { return e.expires <= now; }),
                 entries->end());
}

// Soonest to expire first, then by member: one order every reader sees
// (the admin API's cursor is a place in it).
void by_expiry(std::vector<IndexEntry>* entries) {
  std::sort(entries->begin(), entries->end(), index_order);
}

int64_t latest(const std::vector<IndexEntry>& entries) {
  int64_t t = 0;
  for (const auto& e : entries) t = std::max(t, e.expires);
  return t;
}

// Reads a list, lets change() edit it (false: nothing to write), and writes
// it back only if nobody wrote it in between.
template <typename Change>
StoreStatus update_list(Store& store, const std::string& key, int64_t now, Change change) {
  for (int round = 0; round < kWriteRounds; ++round) {
    std::string raw;
    StoreStatus st = store.get(key, &raw);
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return st;
    const bool existed = st == StoreStatus::ok;
    std::vector<IndexEntry> entries;
    if (existed && !decode_list(raw, &entries)) entries.clear();  // unreadable: start over
    const size_t before = entries.size();
    drop_expired(&entries, now);
    if (!change(&entries) && entries.size() == before) return StoreStatus::ok;
    if (entries.empty()) {
      if (!existed) return StoreStatus::ok;
      // Emptied: it expires at once (a delete could take an entry another
      // request has just added).
      st = store.replace_if(key, raw, "", now + 1);
    } else {
      by_expiry(&entries);
      const std::string text = encode_list(entries);
      st = existed ? store.replace_if(key, raw, text, latest(entries)) : store.put_new(key, text, latest(entries));
    }
    if (st == StoreStatus::ok) return st;
    if (st != StoreStatus::conflict && st != StoreStatus::exists && st != StoreStatus::not_found) return st;
  }
  return StoreStatus::unavailable;  // contended beyond reason: the caller's 503
}

size_t shard_of(std::string_view seed) {
  return seed.empty() ? 0 : static_cast<unsigned char>(seed[0]) % kIndexShards;
}

std::string clients_key(size_t shard) { return "clients:" + std::to_string(shard); }

}  // namespace

bool index_order(const IndexEntry& a, const IndexEntry& b) {
  return a.expires != b.expires ? a.expires < b.expires : a.member < b.member;
}

StoreStatus read_index(Store& store, const std::string& key, int64_t now, std::vector<IndexEntry>* out) {
  out->clear();
  std::string raw;
  StoreStatus st = store.get(key, &raw);
  if (st == StoreStatus::not_found) return StoreStatus::ok;
  if (st != StoreStatus::ok) return st;
  if (!decode_list(raw, out)) out->clear();
  drop_expired(out, now);
  by_expiry(out);
  return StoreStatus::ok;
}

StoreStatus add_to_index(Store& store, const std::string& key, const IndexEntry& entry, size_t cap, int64_t now,
                         std::vector<IndexEntry>* dropped, int64_t slack) {
  return update_list(store, key, now, [&](std::vector<IndexEntry>* entries) {
    if (dropped) dropped->clear();
    auto it = std::find_if(entries->begin(), entries->end(),
                           [&](const IndexEntry& e) { return e.member == entry.member; });
    if (it != entries->end()) {
      if (it->expires >= entry.expires - slack) return false;
      it->expires = entry.expires;
      return true;
    }
    entries->push_back(entry);
    by_expiry(entries);
    while (entries->size() > cap) {
      if (dropped) dropped->push_back(entries->front());
      entries->erase(entries->begin());
    }
    return true;
  });
}

StoreStatus remove_from_index(Store& store, const std::string& key, const std::string& member, int64_t now) {
  return update_list(store, key, now, [&](std::vector<IndexEntry>* entries) {
    auto it = std::remove_if(entries->begin(), entries->end(), [&](const IndexEntry& e) { return e.member == member; });
    if (it == entries->end()) return false;
    entries->erase(it, entries->end());
    return true;
  });
}

std::string subject_index_key(const std::string& sub) { return "bysub:" + sha256_b64url(sub); }

std::string client_index_key(const std::string& client_id, const std::string& sid) {
  return "byclient:" + sha256_b64url(client_id) + ":" + std::to_string(shard_of(sid));
}

std::string client_disabled_key(const std::string& client_id) { return "clientoff:" + sha256_b64url(client_id); }

StoreStatus index_new_session(Store& store, const Session& s, int64_t now, std::vector<std::string>* ended) {
  ended->clear();
  std::vector<IndexEntry> dropped;
  StoreStatus st =
      add_to_index(store, subject_index_key(s.sub), {s.sid, s.expires}, kSessionsPerSubject, now, &dropped);
  if (st != StoreStatus::ok) return st;
  // The oldest of a user's sessions make room: unlisted, they would escape
  // the kill switch.
  for (const auto& d : dropped) {
    st = end_session(store, d.member, now);
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return st;
    ended->push_back(d.member);
  }
  std::vector<IndexEntry> spilled;
  st = add_to_index(store, client_index_key(s.client_id, s.sid), {s.sid, s.expires}, kEntriesPerShard, now, &spilled);
  if (st != StoreStatus::ok) return st;
  // A client stays listed a day past its latest session, so that its entry
  // is written about once a day, not at every sign-in.
  return add_to_index(store, clients_key(shard_of(sha256(s.client_id))), {s.client_id, s.expires + 86400},
                      kEntriesPerShard, now, nullptr, 86400);
}

StoreStatus sessions_of_subject(Store& store, const std::string& sub, int64_t now, std::vector<IndexEntry>* out) {
  return read_index(store, subject_index_key(sub), now, out);
}

StoreStatus sessions_of_client(Store& store, const std::string& client_id, int64_t now,
                               std::vector<IndexEntry>* out) {
  out->clear();
  const std::string base = "byclient:" + sha256_b64url(client_id) + ":";
  std::vector<IndexEntry> part;
  for (size_t i = 0; i < kIndexShards; ++i) {
    StoreStatus st = read_index(store, base + std::to_string(i), now, &part);
    if (st != StoreStatus::ok) return st;
    out->insert(out->end(), part.begin(), part.end());
  }
  by_expiry(out);
  return StoreStatus::ok;
}

StoreStatus indexed_clients(Store& store, int64_t now, std::vector<IndexEntry>* out) {
  out->clear();
  std::vector<IndexEntry> part;
  for (size_t i = 0; i < kIndexShards; ++i) {
    StoreStatus st = read_index(store, clients_key(i), now, &part);
    if (st != StoreStatus::ok) return st;
    out->insert(out->end(), part.begin(), part.end());
  }
  std::sort(out->begin(), out->end(), [](const IndexEntry& a, const IndexEntry& b) { return a.member < b.member; });
  return StoreStatus::ok;
}

size_t end_session_ops(const Session& s) {
  // the record's delete, a read and a compare-and-set for each of its two
  // lists, one delete for each cached exchange
  return 5 + split_scope(s.exchanges).size();
}

StoreStatus end_session(Store& store, const std::string& sid, int64_t now, Session* ended, size_t max_ops) {
  const std::string key = "session:" + sid;
  std::string raw;
  StoreStatus st = store.get(key, &raw);
  if (st != StoreStatus::ok) return st;
  auto s = decode_session(raw);
  if (s && end_session_ops(*s) > max_ops) return StoreStatus::full;
  st = store.del(key);
  if (st != StoreStatus::ok) return st;
  if (!s) return StoreStatus::ok;
  st = unlist_session(store, *s, now);
  if (st != StoreStatus::ok) return st;
  if (ended) *ended = std::move(*s);
  return StoreStatus::ok;
}

StoreStatus unlist_session(Store& store, const Session& s, int64_t now) {
  StoreStatus st = remove_from_index(store, subject_index_key(s.sub), s.sid, now);
  if (st != StoreStatus::ok) return st;
  // the tokens backends got for the session go with it
  for (const auto& key : split_scope(s.exchanges)) {
    st = store.del(exchange_cache_key(s.sid, key));
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return st;
  }
  return remove_from_index(store, client_index_key(s.client_id, s.sid), s.sid, now);
}

StoreStatus client_disabled(Store& store, const std::string& client_id) {
  std::string raw;
  return store.get(client_disabled_key(client_id), &raw);
}

}  // namespace mcpauth
