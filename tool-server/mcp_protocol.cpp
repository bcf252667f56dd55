#include "mcp_protocol.hpp"

#include "identity.hpp"
#include "log.hpp"
#include "tool_claims.hpp"
#include "tool_scopes.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace toolserver {

namespace mcp {

const std::vector<std::string> kSupportedVersions = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25",
                                                     "2026-07-28"};

bool is_supported_version(std::string_view v) {
    for (const auto& s : kSupportedVersions) {
        if (s == v) return true;
    }
    return false;
}

std::string negotiate_version(const char* requested) {
    if (requested && is_supported_version(requested)) return requested;
    return kSupportedVersions.back();
}

bool batches_allowed(std::string_view version) { return version == "2025-03-26"; }

static std::string new_session_id() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        // Without randomness session ids would be guessable; refuse to go on.
        LOG_ERROR("rand_bytes_failed");
        std::abort();
    }
    static const char hex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char b : bytes) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    return id;
}

Session* SessionRegistry::create(const std::string& subject, Transport transport, Refusal& why) {
    why = Refusal::None;
    auto mine = by_subject_.find(subject);
    if (mine != by_subject_.end() && mine->second.size() >= limits_.per_subject &&
        !evict_idle(&mine->second, "subject_cap")) {
        why = Refusal::SubjectFull;
        return nullptr;
    }
    if (sessions_.size() >= limits_.total && !evict_idle(nullptr, "total_cap")) {
        why = Refusal::ServerFull;
        return nullptr;
    }
    auto s = std::make_unique<Session>();
    s->id = new_session_id();
    s->subject = subject;
    s->transport = transport;
    s->last_seen = std::time(nullptr);
    s->last_use = ++uses_;
    Session* ref = s.get();
    ref->lru = lru_.insert(lru_.end(), ref);
    by_subject_[subject].push_back(ref);
    sessions_[s->id] = std::move(s);
    return ref;
}

bool SessionRegistry::evict_idle(const std::vector<Session*>* candidates, const char* reason) {
    Session* victim = nullptr;
    if (candidates) {
        for (Session* s : *candidates) {
            if (!s->stream && (!victim || s->last_use < victim->last_use)) victim = s;
        }
    } else {
        for (Session* s : lru_) {
            if (!s->stream) {
                victim = s;
                break;
            }
        }
    }
    if (!victim) return false;
    LOG_INFO("session_evicted", {{"session", victim->id}, {"sub", victim->subject}, {"reason", reason}});
    const std::string id = victim->id;  // erase() destroys the session the reference points into
    erase(id);
    return true;
}

Session* SessionRegistry::find_any(std::string_view id) {
    probe_.assign(id.data(), id.size());
    auto it = sessions_.find(probe_);
    return it == sessions_.end() ? nullptr : it->second.get();
}

Session* SessionRegistry::find(std::string_view id, const std::string& subject) {
    Session* s = find_any(id);
    if (!s || s->subject != subject) return nullptr;
    s->last_seen = std::time(nullptr);
    s->last_use = ++uses_;
    lru_.splice(lru_.end(), lru_, s->lru);
    return s;
}

void SessionRegistry::erase(const std::string& id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session* s = it->second.get();
    lru_.erase(s->lru);
    auto mine = by_subject_.find(s->subject);
    if (mine != by_subject_.end()) {
        auto& list = mine->second;
        auto at = std::find(list.begin(), list.end(), s);
        if (at != list.end()) list.erase(at);
        if (list.empty()) by_subject_.erase(mine);
    }
    sessions_.erase(it);
}

std::vector<std::string> SessionRegistry::idle(std::time_t now, std::time_t max_idle) const {
    std::vector<std::string> out;
    for (const auto& [id, s] : sessions_) {
        if (!s->stream && now - s->last_seen > max_idle) out.push_back(id);
    }
    return out;
}

bool is_initialize(const cJSON* doc) {
    const char* method = json_get_string(doc, "method");
    return cJSON_IsObject(doc) && method && std::strcmp(method, "initialize") == 0;
}

bool initialize_opens_session(const cJSON* doc) {
    jsonrpc::Message m;
    if (!is_initialize(doc) || jsonrpc::classify(doc, m) || m.kind != jsonrpc::Kind::Request) return false;
    const char* requested = json_get_string(m.params, "protocolVersion");
    return requested && negotiate_version(requested) != kStatelessVersion;
}

namespace {

Future<JsonPtr> now(JsonPtr doc) { return Future<JsonPtr>::ready(std::move(doc)); }

JsonPtr respond(const cJSON* id, const std::string& method, jsonrpc::Reply reply) {
    if (reply.error)
        LOG_DEBUG("jsonrpc_error", {{"method", method}, {"code", std::to_string(reply.error->code)}});
    return jsonrpc::make_response(id, std::move(reply));
}

// The responses of a batch, in the body's order; null when none is owed.
JsonPtr batch_response(std::vector<JsonPtr>& parts) {
    JsonPtr out(cJSON_CreateArray());
    for (JsonPtr& part : parts) {
        if (part) cJSON_AddItemToArray(out.get(), part.release());
    }
    if (cJSON_GetArraySize(out.get()) == 0) return nullptr;
    return out;
}

}  // namespace

Future<JsonPtr> Server::handle_body(const cJSON* doc, CallContext& ctx, bool allow_batch) {
    if (!cJSON_IsArray(doc)) return handle_message(doc, ctx);
    if (!allow_batch) {
        return now(jsonrpc::make_error(nullptr, {jsonrpc::kInvalidRequest,
                                                 "Invalid Request: JSON-RPC batches are not supported in protocol "
                                                 "version " + ctx.protocol_version}));
    }
    if (cJSON_GetArraySize(doc) == 0)
        return now(jsonrpc::make_error(nullptr, {jsonrpc::kInvalidRequest, "Invalid Request: empty batch"}));
    std::vector<Future<JsonPtr>> answers;
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, doc) {
        if (is_initialize(item)) {
            answers.push_back(now(jsonrpc::make_error(cJSON_GetObjectItemCaseSensitive(item, "id"),
                                                      {jsonrpc::kInvalidRequest,
                                                       "Invalid Request: initialize must not be part of a batch"})));
            continue;
        }
        answers.push_back(handle_message(item, ctx));
    }

    // What is answered now goes in at once; the rest as it comes.
    struct Batch {
        std::vector<JsonPtr> parts;
        size_t waiting = 0;
        Promise<JsonPtr> done;
    };
    auto batch = std::make_shared<Batch>();
    batch->parts.resize(answers.size());
    std::vector<size_t> later;
    for (size_t i = 0; i < answers.size(); ++i) {
        if (answers[i].is_ready()) batch->parts[i] = answers[i].take();
        else later.push_back(i);
    }
    if (later.empty()) return now(batch_response(batch->parts));
    batch->waiting = later.size();
    Future<JsonPtr> whole = batch->done.future();
    for (size_t i : later) {
        answers[i].then([batch, i](JsonPtr part) {
            batch->parts[i] = std::move(part);
            if (--batch->waiting == 0) batch->done.set(batch_response(batch->parts));
        });
    }
    return whole;
}

Future<JsonPtr> Server::handle_message(const cJSON* msg, CallContext& ctx) {
    jsonrpc::Message m;
    if (auto err = jsonrpc::classify(msg, m)) return now(jsonrpc::make_error(m.id, *err));
    switch (m.kind) {
        case jsonrpc::Kind::Response: return now(nullptr);
        case jsonrpc::Kind::Notification:
            metrics::count_request(ctx.transport, metrics::method_label(m.method));
            notification(m, ctx);
            return now(nullptr);
        case jsonrpc::Kind::Request: break;
    }
    metrics::count_request(ctx.transport, metrics::method_label(m.method));
    Future<jsonrpc::Reply> reply = dispatch(m, ctx);
    if (reply.is_ready()) return now(respond(m.id, m.method, reply.take()));
    // The message is freed before the reply comes: its id is copied.
    std::shared_ptr<cJSON> id(cJSON_Duplicate(m.id, true), cJSON_Delete);
    return reply.map([id, method = m.method](jsonrpc::Reply r) { return respond(id.get(), method, std::move(r)); });
}

Future<jsonrpc::Reply> Server::dispatch(const jsonrpc::Message& m, CallContext& ctx) {
    using Ready = Future<jsonrpc::Reply>;
    if (m.method == "initialize") return Ready::ready(initialize(m.params, ctx));
    if (m.method == "ping") return Ready::ready(jsonrpc::Reply::ok(JsonPtr(cJSON_CreateObject())));
    if (m.method == "server/discover") return Ready::ready(discover());
    if (m.method == "tools/list") {
        static const mcpauth::ClaimSet kNoClaims;
        const std::string_view scope = ctx.identity ? std::string_view(ctx.identity->scope) : std::string_view();
        const mcpauth::ClaimSet& claims = ctx.identity ? ctx.identity->claims : kNoClaims;
        JsonPtr result(cJSON_CreateObject());
        json_add(result.get(), "tools", tools_.list([&](const char* tool) {
                     return scopes_.may_call(tool, scope) && claims_.may_call(tool, claims);
                 }));
        return Ready::ready(jsonrpc::Reply::ok(std::move(result)));
    }
    if (m.method == "tools/call") return tools_.call(m.params, ctx.subject, ctx.assertion);
    return Ready::ready(jsonrpc::Reply::fail(jsonrpc::kMethodNotFound, "Method not found: " + m.method));
}

static JsonPtr capabilities() {
    JsonPtr caps(cJSON_CreateObject());
    cJSON* tools = cJSON_AddObjectToObject(caps.get(), "tools");
    cJSON_AddBoolToObject(tools, "listChanged", false);
    return caps;
}

static JsonPtr server_info() {
    JsonPtr info(cJSON_CreateObject());
    cJSON_AddStringToObject(info.get(), "name", kServerName);
    cJSON_AddStringToObject(info.get(), "version", kServerVersion);
    return info;
}

jsonrpc::Reply Server::initialize(const cJSON* params, CallContext& ctx) {
    const char* requested = json_get_string(params, "protocolVersion");
    if (!requested)
        return jsonrpc::Reply::fail(jsonrpc::kInvalidParams, "Invalid params: \"protocolVersion\" must be a string");
    if (ctx.session && !ctx.session->protocol_version.empty())
        return jsonrpc::Reply::fail(jsonrpc::kInvalidRequest, "Invalid Request: session is already initialized");
    std::string version = negotiate_version(requested);
    if (ctx.session) ctx.session->protocol_version = version;
    ctx.protocol_version = version;

    JsonPtr result(cJSON_CreateObject());
    cJSON_AddStringToObject(result.get(), "protocolVersion", version.c_str());
    json_add(result.get(), "capabilities", capabilities());
    json_add(result.get(), "serverInfo", server_info());
    cJSON_AddStringToObject(result.get(), "instructions",
                            "Snippet tools: save_snippet stores text under a name, get_snippet reads it back.");
    return jsonrpc::Reply::ok(std::move(result));
}

jsonrpc::Reply Server::discover() {
    JsonPtr result(cJSON_CreateObject());
    cJSON* versions = cJSON_AddArrayToObject(result.get(), "supportedVersions");
    for (const auto& v : kSupportedVersions) cJSON_AddItemToArray(versions, cJSON_CreateString(v.c_str()));
    json_add(result.get(), "capabilities", capabilities());
    json_add(result.get(), "serverInfo", server_info());
    return jsonrpc::Reply::ok(std::move(result));
}

void Server::notification(const jsonrpc::Message& m, CallContext& ctx) {
    if (m.method == "notifications/initialized" && ctx.session) ctx.session->initialized = true;
    // Other notifications (cancelled, progress, ...) need no action here.
}

}  // namespace mcp

}  // namespace toolserver
