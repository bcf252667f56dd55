// Where a user's or a client's sessions are, without scanning the store: an
// operator ends them all (the admin API), a user sees and ends their own
// (the account page).  The lists are ordinary store values, changed by
// compare-and-set, so the shared-memory zone and Redis keep them alike and
// every node sees the same lists.
//
//   key                               value (lines "EXPIRES MEMBER")     bound
//   bysub:<sha256(sub)>               the user's session ids             256; a
//                                     newer sign-in ends the oldest session
//   byclient:<sha256(client_id)>:<n>  the client's session ids, 16 lists 4096 each
//                                     (n: the session id's first character)
//   clients:<n>                       client ids with sessions (until a day
//                                     after the latest), 16 lists 4096 each
//   clientoff:<sha256(client_id)>     "1": disabled by an operator      a year
//
// An entry expires with its session.  A session is listed before it is
// stored, so a session that exists is always found; an entry whose session
// has ended is skipped when read and dropped when its list is next written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "session.hpp"
#include "store.hpp"

namespace mcpauth {

struct IndexEntry {
  std::string member;
  int64_t expires = 0;
};

inline constexpr size_t kSessionsPerSubject = 256;
inline constexpr size_t kIndexShards = 16;
inline constexpr size_t kEntriesPerShard = 4096;
inline constexpr int64_t kClientDisabledSeconds = 366 * 86400;

// Soonest to expire first, then by member.
bool index_order(const IndexEntry& a, const IndexEntry& b);

// One list: its live entries, in index_order.
StoreStatus read_index(Store& store, const std::string& key, int64_t now, std::vector<IndexEntry>* out);
// Adds member (or moves its expiry later, when by more than slack),
// dropping expired entries; beyond cap the entries that expire soonest
// leave the list, into *dropped.
StoreStatus add_to_index(Store& store, const std::string& key, const IndexEntry& entry, size_t cap, int64_t now,
                         std::vector<IndexEntry>* dropped, int64_t slack = 0);
StoreStatus remove_from_index(Store& store, const std::string& key, const std::string& member, int64_t now);

std::string subject_index_key(const std::string& sub);
std::string client_index_key(const std::string& client_id, const std::string& sid);
std::string client_disabled_key(const std::string& client_id);

// Lists a session about to be stored under its user and its client, and its
// client among the clients.  A user's sessions beyond kSessionsPerSubject
// are ended here, oldest first (their ids in *ended).
StoreStatus index_new_session(Store& store, const Session& s, int64_t now, std::vector<std::string>* ended);

// Session ids, in index_order.
StoreStatus sessions_of_subject(Store& store, const std::string& sub, int64_t now, std::vector<IndexEntry>* out);
StoreStatus sessions_of_client(Store& store, const std::string& client_id, int64_t now,
                               std::vector<IndexEntry>* out);
// Client ids that have held sessions, with the latest of their expiries.
StoreStatus indexed_clients(Store& store, int64_t now, std::vector<IndexEntry>* out);

// Takes a session whose record is gone off its user's and client's lists.
StoreStatus unlist_session(Store& store, const Session& s, int64_t now);

// Ends one session: its record goes (so every node refuses its tokens once
// its cache bound passes), then its entries.  *ended, when given, is the
// record as it was.  not_found when no such session is live.  With
// max_ops, a session that would take more store operations than that after
// its record is read is left as it is, and the answer is `full`.
StoreStatus end_session(Store& store, const std::string& sid, int64_t now, Session* ended = nullptr,
                        size_t max_ops = SIZE_MAX);
// What end_session does after reading the record (its cached exchanges
// included): the most store operations.
size_t end_session_ops(const Session& s);

// ok (disabled), not_found (enabled), or a store failure.
StoreStatus client_disabled(Store& store, const std::string& client_id);

}  // namespace mcpauth
