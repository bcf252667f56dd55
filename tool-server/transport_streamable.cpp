// The Streamable HTTP transport at /mcp.
//
// 2025-03-26, 2025-06-18, 2025-11-25: sessions. initialize issues an
// Mcp-Session-Id, every later request must carry it. GET opens a
// server-to-client event stream (keep-alives only: this server never sends
// requests of its own), DELETE ends the session.
//
// 2026-07-28 (selected by the MCP-Protocol-Version header): stateless. No
// session is issued or required; every POST is self-contained and must mirror
// its JSON-RPC method (and, for tools/call, the tool name) in the Mcp-Method
// and Mcp-Name headers. There is no GET stream and no DELETE.
//
// In every version, Mcp-Method and Mcp-Name, when present, must agree with
// the body (mirror_headers.hpp): a missing (2026-07-28) or disagreeing
// header is a 400 with error -32020, before anything runs.
#include "http_server.hpp"
#include "log.hpp"
#include "http_util.hpp"

#include <cctype>
#include <cstring>

#include <event2/keyvalq_struct.h>

namespace toolserver {

namespace {

constexpr const char* kMetaVersionKey = "io.modelcontextprotocol/protocolVersion";

enum class Reply { Json, EventStream, NotAcceptable };

// JSON when the client accepts it (or says nothing), else an event stream.
Reply negotiate_reply(const char* accept) {
    if (!accept || !*accept || ascii_icontains(accept, "application/json") || ascii_icontains(accept, "*/*") ||
        ascii_icontains(accept, "application/*"))
        return Reply::Json;
    if (ascii_icontains(accept, "text/event-stream")) return Reply::EventStream;
    return Reply::NotAcceptable;
}

// 2026-07-28: per-request metadata, when given, must agree with the
// MCP-Protocol-Version header. Returns the error to send, or nullopt.
std::optional<jsonrpc::Error> check_meta_version(const cJSON* msg) {
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON* meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
    const cJSON* meta_version = cJSON_GetObjectItemCaseSensitive(meta, kMetaVersionKey);
    if (meta_version && (!cJSON_IsString(meta_version) || std::strcmp(meta_version->valuestring,
                                                                      mcp::kStatelessVersion) != 0))
        return jsonrpc::Error{jsonrpc::kHeaderMismatch,
                              "Header mismatch: _meta protocol version does not match MCP-Protocol-Version"};
    return std::nullopt;
}

}  // namespace

mcp::Session* HttpServer::streamable_session(HttpRequest& r) {
    const char* sid = r.header(Header::SessionId);
    if (!sid) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                       "Bad Request: Mcp-Session-Id header is required");
        return nullptr;
    }
    // Unknown, foreign and legacy-transport sessions all look alike: 404.
    mcp::Session* session = sessions_.find(sid, r.identity.subject);
    if (!session || session->transport != mcp::Transport::Streamable) {
        send_rpc_error(r.req, HTTP_NOTFOUND, jsonrpc::kInvalidRequest, "Session not found");
        return nullptr;
    }
    return session;
}

void HttpServer::mcp_post(HttpRequest& r) {
    const char* version = r.header(Header::ProtocolVersion);
    if (version && !mcp::is_supported_version(version)) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                       std::string("Bad Request: unsupported MCP-Protocol-Version ") + version);
        return;
    }
    Reply how = negotiate_reply(r.header(Header::Accept));
    if (how == Reply::NotAcceptable) {
        send_rpc_error(r.req, 406, jsonrpc::kInvalidRequest,
                       "Not Acceptable: Accept must include application/json or text/event-stream");
        return;
    }
    JsonPtr doc;
    if (!require_json_body(r, doc)) return;

    const bool stateless = version && std::strcmp(version, mcp::kStatelessVersion) == 0;
    if (stateless && cJSON_IsArray(doc.get())) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                       "Invalid Request: JSON-RPC batches are not supported in protocol version 2026-07-28");
        return;
    }
    // Before anything runs (a session made by initialize included).
    if (!mirror_headers_agree(r, doc.get(), /*required=*/stateless)) return;
    if (stateless) {
        if (auto err = check_meta_version(doc.get())) {
            send_json_doc(r.req, HTTP_BADREQUEST, jsonrpc::make_error(usable_id(doc.get()), *err).get());
            return;
        }
    }
    if (!calls_allowed(r, doc.get())) return;

    mcp::CallContext ctx;
    ctx.subject = r.identity.subject;
    ctx.identity = &r.identity;
    ctx.assertion = r.assertion;

    const bool event_stream = how == Reply::EventStream;
    if (stateless) {
        ctx.protocol_version = mcp::kStatelessVersion;
        answer(r, mcp_.handle_message(doc.get(), ctx), event_stream);
        return;
    }

    ctx.protocol_version = version ? version : mcp::kAssumedHeaderVersion;
    if (mcp::is_initialize(doc.get())) {
        // A stateless client needs no session, a failing initialize gets
        // none: only the others take a place (and may end an idle session).
        mcp::Session* session = nullptr;
        if (mcp::initialize_opens_session(doc.get())) {
            mcp::SessionRegistry::Refusal why;
            session = sessions_.create(r.identity.subject, mcp::Transport::Streamable, why);
            if (!session) {
                refuse_session(r, why, cJSON_GetObjectItemCaseSensitive(doc.get(), "id"));
                return;
            }
        }
        const std::string id = session ? session->id : "";
        ctx.session = session;
        // initialize is answered at once: it touches no storage.
        JsonPtr resp = mcp_.handle_message(doc.get(), ctx).take();
        bool failed = !resp || cJSON_HasObjectItem(resp.get(), "error");
        if (session && (failed || ctx.protocol_version == mcp::kStatelessVersion)) {
            sessions_.erase(id);  // not expected: initialize_opens_session said it would succeed
        } else if (session) {
            evhttp_add_header(evhttp_request_get_output_headers(r.req), "Mcp-Session-Id", id.c_str());
            LOG_INFO("session_opened", {{"session", id}, {"sub", r.identity.subject},
                                        {"version", ctx.protocol_version}});
        }
        send_mcp_response(r.req, event_stream, resp.get());
        return;
    }

    mcp::Session* session = streamable_session(r);
    if (!session) return;
    if (version && session->protocol_version != version) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                       "Bad Request: MCP-Protocol-Version differs from the negotiated version");
        return;
    }
    ctx.session = session;
    answer(r, mcp_.handle_body(doc.get(), ctx, mcp::batches_allowed(ctx.protocol_version)), event_stream);
}

void HttpServer::mcp_get(HttpRequest& r) {
    const char* version = r.header(Header::ProtocolVersion);
    if (version && std::strcmp(version, mcp::kStatelessVersion) == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(r.req), "Allow", "POST");
        send_rpc_error(r.req, 405, jsonrpc::kInvalidRequest,
                       "Method not allowed: protocol version 2026-07-28 has no GET stream");
        return;
    }
    if (version && !mcp::is_supported_version(version)) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                       std::string("Bad Request: unsupported MCP-Protocol-Version ") + version);
        return;
    }
    if (!ascii_icontains(r.header(Header::Accept), "text/event-stream")) {
        send_rpc_error(r.req, 406, jsonrpc::kInvalidRequest, "Not Acceptable: Accept must include text/event-stream");
        return;
    }
    mcp::Session* session = streamable_session(r);
    if (!session) return;
    if (session->stream) {
        send_rpc_error(r.req, 409, jsonrpc::kInvalidRequest, "Conflict: this session already has a stream");
        return;
    }
    const std::string id = session->id;
    session->stream = hub_.open(r.req);
    session->stream->set_on_close([this, id] {
        if (mcp::Session* s = sessions_.find_any(id)) s->stream = nullptr;
    });
}

void HttpServer::mcp_delete(HttpRequest& r) {
    const char* version = r.header(Header::ProtocolVersion);
    if (version && std::strcmp(version, mcp::kStatelessVersion) == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(r.req), "Allow", "POST");
        send_rpc_error(r.req, 405, jsonrpc::kInvalidRequest,
                       "Method not allowed: protocol version 2026-07-28 has no sessions");
        return;
    }
    mcp::Session* session = streamable_session(r);
    if (!session) return;
    LOG_INFO("session_closed", {{"session", session->id}});
    end_session(session->id);
    send_text(r.req, HTTP_NOCONTENT, nullptr, "");
}

}  // namespace toolserver
