// MCP lifecycle: protocol versions, sessions and method dispatch. Knows
// nothing about HTTP; the transports feed it parsed JSON.
#pragma once

#include "jsonrpc.hpp"
#include "later.hpp"
#include "metrics.hpp"
#include "tools.hpp"

#include <cstdint>
#include <ctime>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace toolserver {

class SseStream;
class ToolClaims;
class ToolScopes;
struct Identity;

namespace mcp {

constexpr const char* kServerName = "mcp-tool-server";
constexpr const char* kServerVersion = "0.1.0";

// Oldest first; the last one is the latest.
extern const std::vector<std::string> kSupportedVersions;
constexpr const char* kLegacySseVersion = "2024-11-05";
constexpr const char* kAssumedHeaderVersion = "2025-03-26";  // MCP-Protocol-Version absent
constexpr const char* kStatelessVersion = "2026-07-28";

bool is_supported_version(std::string_view v);
// The version to answer an initialize with: the client's when supported, else the latest.
std::string negotiate_version(const char* requested);
// JSON-RPC batches exist only in the 2025-03-26 revision.
bool batches_allowed(std::string_view version);

enum class Transport { LegacySse, Streamable };

struct Session {
    std::string id;
    std::string subject;                // the identity that opened it; nobody else may use it
    Transport transport = Transport::Streamable;
    std::string protocol_version;       // empty until initialize
    bool initialized = false;           // notifications/initialized seen
    SseStream* stream = nullptr;        // legacy stream or GET /mcp stream (not owned)
    std::time_t last_seen = 0;
    uint64_t last_use = 0;              // the registry's use counter when last created or found
    std::list<Session*>::iterator lru;  // its place in the registry's use order
};

// How many sessions may exist: per subject, and in all (--max-sessions-per-subject, --max-sessions).
struct SessionLimits {
    size_t per_subject = 16;
    size_t total = 10000;
};

// Every session costs memory until it ends, and any authenticated client
// can open them; so their number is capped, per subject and in all. Room
// is made by ending a session without an open stream (an idle one: its
// client can open a new one), the one used least recently; a session with a
// stream is never ended to make room.
class SessionRegistry {
public:
    enum class Refusal { None, SubjectFull, ServerFull };

    explicit SessionRegistry(SessionLimits limits = {}) : limits_(limits) {}

    // A new session, or null when there is no room (`why` says which cap).
    Session* create(const std::string& subject, Transport transport, Refusal& why);
    // The session `id` if it exists and belongs to `subject`; else null
    // (a foreign session is indistinguishable from an unknown one). Counts as a use.
    Session* find(std::string_view id, const std::string& subject);
    Session* find_any(std::string_view id);
    void erase(const std::string& id);
    size_t size() const { return sessions_.size(); }
    size_t subjects() const { return by_subject_.size(); }
    const SessionLimits& limits() const { return limits_; }
    // Ids of stream-less sessions unused for `max_idle` seconds.
    std::vector<std::string> idle(std::time_t now, std::time_t max_idle) const;

private:
    // Ends the least recently used session without a stream, among
    // `candidates` (a subject's) or, when null, among all. False when none is idle.
    bool evict_idle(const std::vector<Session*>* candidates, const char* reason);

    SessionLimits limits_;
    std::unordered_map<std::string, std::unique_ptr<Session>> sessions_;
    std::unordered_map<std::string, std::vector<Session*>> by_subject_;
    std::list<Session*> lru_;  // least recently used first
    uint64_t uses_ = 0;
    std::string probe_;  // the id looked up (no lookup by view in C++17); reused
};

struct CallContext {
    std::string subject;
    std::string protocol_version;  // the version in force for this request
    Session* session = nullptr;    // null on the stateless (2026-07-28) path
    metrics::Transport transport = metrics::Transport::Streamable;
    // The caller's verified assertion: tools/list shows only what it may
    // call. Null: no scope and no claim.
    const Identity* identity = nullptr;
    // That assertion as the gateway sent it (X-MCP-Identity of this very
    // request, not of the one that opened the stream): what a tool that
    // acts as the user exchanges. Empty without one (--insecure-no-auth).
    std::string_view assertion;
};

class Server {
public:
    // tools/list leaves out the tools the caller's scopes or claims do not
    // let it call (the transports refuse such calls before they get here).
    Server(Tools& tools, const ToolScopes& scopes, const ToolClaims& claims)
        : tools_(tools), scopes_(scopes), claims_(claims) {}

    // Handles a parsed body: one message or (when allowed) a batch. Gives
    // the response document, or null when nothing is owed (notifications):
    // at once, unless a tool call waits for storage (then the batch's
    // response comes when its last call is answered, in the body's order).
    // `doc` and `ctx` need not outlive the call.
    Future<JsonPtr> handle_body(const cJSON* doc, CallContext& ctx, bool allow_batch);

    // Handles one message; null when no response is owed.
    Future<JsonPtr> handle_message(const cJSON* msg, CallContext& ctx);

private:
    Future<jsonrpc::Reply> dispatch(const jsonrpc::Message& m, CallContext& ctx);
    jsonrpc::Reply initialize(const cJSON* params, CallContext& ctx);
    jsonrpc::Reply discover();
    void notification(const jsonrpc::Message& m, CallContext& ctx);

    Tools& tools_;
    const ToolScopes& scopes_;
    const ToolClaims& claims_;
};

// True when `doc` is a single initialize request.
bool is_initialize(const cJSON* doc);
// True when that initialize will succeed with a session-based version: only
// then is a session made (a stateless or failing one takes no place).
bool initialize_opens_session(const cJSON* doc);

}  // namespace mcp

}  // namespace toolserver
