// The operators' API (mcp_auth_endpoint admin): list and end sessions by
// user or client, list clients, disable and enable a client.  JSON only,
// behind a bearer key (mcp_auth_admin_key_file) compared in constant time;
// the example also lets only loopback reach it.  Ending a session deletes
// its record, which every worker and node reads (a node's cache bound
// applies) and which the stream check of its open streams finds gone.
//
//   GET    …/sessions?subject=S | ?client_id=C [&limit=N&cursor=K]
//   DELETE …/sessions?subject=S | ?client_id=C
//   DELETE …/sessions/ID
//   GET    …/clients [&limit=N&cursor=K]
//   POST   …/clients/disable?client_id=C
//   POST   …/clients/enable?client_id=C
//
// Bulk ends are done 16 sessions a request ("remaining" says how many are
// left; mcp-auth-admin repeats them): see kEndedPerRequest.
#include <algorithm>
#include <map>
#include <optional>

#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "identity_assertion.hpp"
#include "json.hpp"
#include "replay_store.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

// A request's store operations are bounded (MCPA_MAX_STORE_OPS: over Redis
// every run replays the ones before), so a page lists at most 25 entries
// (a listed session costs up to three reads, its record and its client's)
// and a request ends at most 16 sessions (six operations each, and one
// more for each audience a backend's token is cached for), saying how many
// are left to end by the next.  A session is ended only when what it costs
// still fits, with room for what the request does after (its Store::sync
// among them).
constexpr int64_t kDefaultPage = 25;
constexpr int64_t kMaxPage = 25;
constexpr size_t kEndedPerRequest = 16;
constexpr size_t kReservedOps = 5;

Response answer(int status, const Json& body) { return json_response(status, json_text(body.get())); }

Json object() { return Json(must(cJSON_CreateObject())); }

void add_string(cJSON* o, const char* name, const std::string& value) {
  must(cJSON_AddStringToObject(o, name, value.c_str()));
}

void add_number(cJSON* o, const char* name, int64_t value) {
  must(cJSON_AddNumberToObject(o, name, static_cast<double>(value)));
}

// 405 in this API's words (the OAuth endpoints say invalid_request).
Response wrong_method(const char* allowed) {
  Response r = oauth_error(405, "method_not_allowed", std::string("use ") + allowed);
  r.header("Allow", allowed);
  return r;
}

Event& admin_event(Response& r, const char* name, const char* action) {
  return r.event(MCPA_EV_ADMIN, name, action);
}

bool authorized(const Config& cf, const Request& req) {
  const std::string& h = req.authorization;
  if (h.size() < 8 || !std::equal(h.begin(), h.begin() + 7, "bearer ", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      }))
    return false;
  std::string_view key(h);
  key.remove_prefix(7);
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  // Hashes of equal length: the comparison's time says nothing of the key.
  return !cf.admin_key_hash.empty() && ct_equal(sha256(key), cf.admin_key_hash);
}

Response refused(const Request& req) {
  Response r = oauth_error(401, "unauthorized", "the admin API needs Authorization: Bearer with the admin key");
  r.header("WWW-Authenticate", "Bearer realm=\"mcp_auth admin\"");
  Event& e = admin_event(r, "admin.refused", "refused");
  e.reason = req.authorization.empty() ? "no_key" : "wrong_key";
  return r;
}

// One query parameter, at most once; absent is "".
bool param(const Params& p, const char* name, std::string* out, Response* error) {
  out->clear();
  if (p.find(name, out) == Params::Lookup::repeated) {
    *error = oauth_error(400, "invalid_request", std::string(name) + " is repeated");
    return false;
  }
  return true;
}

// A page of a listing: at most `limit` entries after the cursor's.  The
// cursor names the last entry of the previous page (its place in the
// list's order), so entries that end meanwhile move nothing else.
struct Page {
  int64_t limit = kDefaultPage;
  std::optional<IndexEntry> after;
};

std::string cursor_of(const IndexEntry& e) { return b64url_encode(std::to_string(e.expires) + " " + e.member); }

bool page_of(const Params& p, Page* page, Response* error) {
  std::string text;
  const Params::Lookup limit = p.find("limit", &text);
  if (limit == Params::Lookup::repeated) {
    *error = oauth_error(400, "invalid_request", "limit is repeated");
    return false;
  }
  if (limit == Params::Lookup::one) {
    if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoll(text) < 1 || std::stoll(text) > kMaxPage) {
      *error = oauth_error(400, "invalid_request", "limit must be 1 to " + std::to_string(kMaxPage));
      return false;
    }
    page->limit = std::stoll(text);
  }
  if (!param(p, "cursor", &text, error)) return false;
  if (!text.empty()) {
    auto plain = b64url_decode(text);
    const size_t sp = plain ? plain->find(' ') : std::string::npos;
    IndexEntry e;
    if (sp == std::string::npos || sp == 0 || sp > 18 ||
        plain->find_first_not_of("0123456789") != sp || sp + 1 == plain->size()) {
      *error = oauth_error(400, "invalid_request", "cursor is not one this API handed out");
      return false;
    }
    e.expires = std::stoll(plain->substr(0, sp));
    e.member = plain->substr(sp + 1);
    page->after = std::move(e);
  }
  return true;
}

// [first, end) of entries (sorted by `before`) for the page.
template <typename Before>
std::pair<size_t, size_t> page_range(const std::vector<IndexEntry>& entries, const Page& page, Before before) {
  size_t first = 0;
  if (page.after)
    first = size_t(std::upper_bound(entries.begin(), entries.end(), *page.after, before) - entries.begin());
  return {first, std::min(entries.size(), first + size_t(page.limit))};
}

bool by_member(const IndexEntry& a, const IndexEntry& b) { return a.member < b.member; }

// Whose sessions: exactly one of subject and client_id.
struct Selector {
  std::string subject, client_id;
};

bool selector_of(const Params& p, Selector* s, Response* error) {
  if (!param(p, "subject", &s->subject, error) || !param(p, "client_id", &s->client_id, error)) return false;
  if (s->subject.empty() == s->client_id.empty()) {
    *error = oauth_error(400, "invalid_request", "give exactly one of subject and client_id");
    return false;
  }
  return true;
}

StoreStatus selected_sessions(Store& store, const Selector& s, int64_t now, std::vector<IndexEntry>* out) {
  return s.subject.empty() ? sessions_of_client(store, s.client_id, now, out)
                           : sessions_of_subject(store, s.subject, now, out);
}

// A client's name, looked up once per request.
class ClientNames {
 public:
  explicit ClientNames(Store& store) : store_(store) {}
  StoreStatus name(const std::string& client_id, std::string* out) {
    auto it = names_.find(client_id);
    if (it == names_.end()) {
      ClientMetadata c;
      StoreStatus st = load_client(store_, client_id, &c);
      if (st != StoreStatus::ok && st != StoreStatus::not_found) return st;
      it = names_.emplace(client_id, st == StoreStatus::ok ? c.client_name : "").first;
    }
    *out = it->second;
    return StoreStatus::ok;
  }

 private:
  Store& store_;
  std::map<std::string, std::string> names_;
};

cJSON* session_json(const Session& s, const std::string& client_name) {
  cJSON* o = must(cJSON_CreateObject());
  add_string(o, "id", s.sid);
  add_string(o, "log_tag", session_log_tag(s.sid));
  add_string(o, "subject", s.sub);
  add_string(o, "subject_type", s.subject_type.empty() ? "user" : s.subject_type);
  add_string(o, "name", s.name);
  add_string(o, "email", s.email);
  add_string(o, "client_id", s.client_id);
  add_string(o, "client_name", client_name);
  add_string(o, "redirect_uri", s.redirect_uri);
  add_string(o, "scope", s.scope);
  add_number(o, "created", s.created);
  add_number(o, "expires", s.expires);
  add_number(o, "last_refresh", s.rotated_at);
  return o;
}

Response list_sessions(Store& store, const Request& req, const Params& p) {
  Response error;
  Selector sel;
  Page page;
  if (!selector_of(p, &sel, &error) || !page_of(p, &page, &error)) return error;
  std::vector<IndexEntry> ids;
  StoreStatus st = selected_sessions(store, sel, req.now, &ids);
  if (st != StoreStatus::ok) return store_failure_json(st);
  Json body = object();
  cJSON* list = must(cJSON_AddArrayToObject(body.get(), "sessions"));
  ClientNames names(store);
  const auto [first, end] = page_range(ids, page, index_order);
  for (size_t i = first; i < end; ++i) {
    std::string raw, client_name;
    st = store.get("session:" + ids[i].member, &raw);
    if (st == StoreStatus::not_found) continue;  // ended since it was listed
    if (st != StoreStatus::ok) return store_failure_json(st);
    auto s = decode_session(raw);
    if (!s) continue;
    if (s->subject_type == "client") {
      client_name = s->name;  // a service registered nowhere: its session carries the name
    } else {
      st = names.name(s->client_id, &client_name);
      if (st != StoreStatus::ok) return store_failure_json(st);
    }
    cJSON_AddItemToArray(list, session_json(*s, client_name));
  }
  if (end < ids.size()) add_string(body.get(), "next_cursor", cursor_of(ids[end - 1]));
  Response r = answer(200, body);
  Event& e = admin_event(r, "admin.sessions_listed", "sessions_listed");
  e.audit = false;  // reading changes nothing: counted, not audited
  e.subject = sel.subject;
  e.client_id = sel.client_id;
  return r;
}

// Ends the first kEndedPerRequest of the sessions named; one audit line
// each.  *remaining: how many were not looked at.  An entry whose session
// had ended otherwise leaves the selector's list here, so that the next
// request goes further.
StoreStatus end_sessions(CountingStore& store, const Request& req, const std::vector<IndexEntry>& ids,
                         const Selector* listed, Response* r, int64_t* ended, int64_t* remaining) {
  *ended = 0;
  size_t n = std::min(ids.size(), kEndedPerRequest);
  for (size_t i = 0; i < n; ++i) {
    const IndexEntry& id = ids[i];
    Session s;
    // the record's read, then what ending it takes, must fit
    const size_t used = store.count() + 1 + kReservedOps;
    const size_t room = used < MCPA_MAX_STORE_OPS ? MCPA_MAX_STORE_OPS - used : 0;
    StoreStatus st = end_session(store, id.member, req.now, &s, i == 0 ? SIZE_MAX : room);
    if (st == StoreStatus::full) {
      n = i;  // the next request goes on from here
      break;
    }
    if (st == StoreStatus::not_found && listed) {
      st = remove_from_index(store,
                             listed->subject.empty() ? client_index_key(listed->client_id, id.member)
                                                     : subject_index_key(listed->subject),
                             id.member, req.now);
      if (st != StoreStatus::ok) return st;
      continue;
    }
    if (st == StoreStatus::not_found) continue;
    if (st != StoreStatus::ok) return st;
    ++*ended;
    Event& e = admin_event(*r, "admin.session_ended", "sessions_ended");
    e.subject = s.sub;
    e.client_id = s.client_id;
    e.session_tag = session_log_tag(s.sid);
  }
  *remaining = static_cast<int64_t>(ids.size() - n);
  return StoreStatus::ok;
}

Response ended_answer(Response r, int64_t ended, int64_t remaining) {
  Json body = object();
  add_number(body.get(), "ended", ended);
  add_number(body.get(), "remaining", remaining);
  Response out = answer(200, body);
  out.events = std::move(r.events);
  return out;
}

Response delete_sessions(CountingStore& store, const Request& req, const Params& p) {
  Response error;
  Selector sel;
  if (!selector_of(p, &sel, &error)) return error;
  std::vector<IndexEntry> ids;
  StoreStatus st = selected_sessions(store, sel, req.now, &ids);
  if (st != StoreStatus::ok) return store_failure_json(st);
  Response events;
  int64_t ended = 0, remaining = 0;
  st = end_sessions(store, req, ids, &sel, &events, &ended, &remaining);
  if (st != StoreStatus::ok) return store_failure_json(st);
  return ended_answer(std::move(events), ended, remaining);
}

Response delete_session(CountingStore& store, const Request& req, const std::string& id) {
  Response events;
  int64_t ended = 0, remaining = 0;
  StoreStatus st = end_sessions(store, req, {{id, 0}}, nullptr, &events, &ended, &remaining);
  if (st != StoreStatus::ok) return store_failure_json(st);
  if (ended == 0) return oauth_error(404, "not_found", "no live session has this id");
  return ended_answer(std::move(events), ended, 0);
}

Response list_clients(Store& store, const Request& req, const Params& p) {
  Response error;
  Page page;
  if (!page_of(p, &page, &error)) return error;
  std::vector<IndexEntry> ids;
  StoreStatus st = indexed_clients(store, req.now, &ids);
  if (st != StoreStatus::ok) return store_failure_json(st);
  for (auto& e : ids) e.expires = 0;  // listed by id alone
  Json body = object();
  cJSON* list = must(cJSON_AddArrayToObject(body.get(), "clients"));
  if (page.after) page.after->expires = 0;
  const auto [first, end] = page_range(ids, page, by_member);
  for (size_t i = first; i < end; ++i) {
    const std::string& client_id = ids[i].member;
    ClientMetadata c;
    st = load_client(store, client_id, &c);
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);
    const bool known = st == StoreStatus::ok;
    st = client_disabled(store, client_id);
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);
    cJSON* o = must(cJSON_CreateObject());
    cJSON_AddItemToArray(list, o);
    add_string(o, "client_id", client_id);
    add_string(o, "client_name", known ? c.client_name : "");
    cJSON* uris = must(cJSON_AddArrayToObject(o, "redirect_uris"));
    if (known)
      for (const auto& u : c.redirect_uris) cJSON_AddItemToArray(uris, must(cJSON_CreateString(u.c_str())));
    must(cJSON_AddBoolToObject(o, "disabled", st == StoreStatus::ok));
    must(cJSON_AddBoolToObject(o, "registered", known));
  }
  if (end < ids.size()) add_string(body.get(), "next_cursor", cursor_of(ids[end - 1]));
  Response r = answer(200, body);
  admin_event(r, "admin.clients_listed", "clients_listed").audit = false;
  return r;
}

// Disabled: no new sign-ins (authorize and callback look for the mark), its
// sessions end, its registration goes.  Enabled: the mark goes; a
// registration that was deleted stays deleted (the client registers again).
Response set_client_disabled(CountingStore& store, const Request& req, const Params& p, bool disable) {
  Response error;
  std::string client_id;
  if (!param(p, "client_id", &client_id, &error)) return error;
  if (client_id.empty() || client_id.size() > 1024)
    return oauth_error(400, "invalid_request", "client_id is required");
  Json body = object();
  add_string(body.get(), "client_id", client_id);
  must(cJSON_AddBoolToObject(body.get(), "disabled", disable));
  Response events;
  if (!disable) {
    StoreStatus st = store.del(client_disabled_key(client_id));
    if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);
  } else {
    // The mark first: a sign-in finishing meanwhile is refused, not missed.
    StoreStatus st = store.put(client_disabled_key(client_id), "1", req.now + kClientDisabledSeconds);
    if (st != StoreStatus::ok) return store_failure_json(st);
    std::vector<IndexEntry> ids;
    st = sessions_of_client(store, client_id, req.now, &ids);
    if (st != StoreStatus::ok) return store_failure_json(st);
    int64_t ended = 0, remaining = 0;
    Selector listed;
    listed.client_id = client_id;
    st = end_sessions(store, req, ids, &listed, &events, &ended, &remaining);
    if (st != StoreStatus::ok) return store_failure_json(st);
    for (const std::string& key : {std::string(kClientPrefix) + client_id, std::string(kNewClientPrefix) + client_id,
                                   "cimd:" + client_id}) {
      st = store.del(key);
      if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_json(st);
    }
    add_number(body.get(), "sessions_ended", ended);
    add_number(body.get(), "sessions_remaining", remaining);
  }
  Response r = answer(200, body);
  r.events = std::move(events.events);
  Event& e = disable ? admin_event(r, "admin.client_disabled", "client_disabled")
                     : admin_event(r, "admin.client_enabled", "client_enabled");
  e.client_id = client_id;
  return r;
}

}  // namespace

Response handle_admin(const Config& cf, Store& backing, const Request& req) {
  if (!authorized(cf, req)) return refused(req);
  CountingStore store(backing);
  auto params = Params::parse(req.args);
  if (!params) return oauth_error(400, "invalid_request", "the query string is malformed");

  // The location may sit anywhere: the last one or two path segments say
  // what is asked for.
  std::string_view path(req.uri);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t cut = path.rfind('/');
  const std::string_view last = path.substr(cut + 1);
  const std::string_view parent = path.substr(0, cut == std::string_view::npos ? 0 : cut);
  const std::string_view prev = parent.substr(parent.rfind('/') == std::string_view::npos ? 0 : parent.rfind('/') + 1);

  if (last == "sessions") {
    if (req.method == "GET") return list_sessions(store, req, *params);
    if (req.method == "DELETE") return delete_sessions(store, req, *params);
    return wrong_method("GET, DELETE");
  }
  if (prev == "sessions") {
    if (req.method != "DELETE") return wrong_method("DELETE");
    auto id = pct_decode(last, false);
    if (!id || id->empty() || id->size() > 128) return oauth_error(404, "not_found", "no live session has this id");
    return delete_session(store, req, *id);
  }
  if (last == "clients") {
    if (req.method != "GET") return wrong_method("GET");
    return list_clients(store, req, *params);
  }
  if (prev == "clients" && (last == "disable" || last == "enable")) {
    if (req.method != "POST") return wrong_method("POST");
    return set_client_disabled(store, req, *params, last == "disable");
  }
  return oauth_error(404, "not_found", "the admin API has sessions and clients");
}

}  // namespace mcpauth
