// The HTTP+SSE transport of protocol revision 2024-11-05:
//   GET /sse                     opens the stream; first event "endpoint"
//   POST /message?sessionId=ID   202 Accepted; the response goes down the stream
#include "http_server.hpp"
#include "log.hpp"
#include "http_util.hpp"

#include <cctype>
#include <cstring>

namespace toolserver {

namespace {

// X-Forwarded-Prefix is copied into the endpoint event, so only a plain
// absolute path is trusted; anything else is ignored.
bool usable_prefix(const char* p) {
    if (!p || p[0] != '/') return false;
    for (const char* c = p; *c; ++c) {
        bool ok = std::isalnum(static_cast<unsigned char>(*c)) || std::strchr("/._~-", *c) != nullptr;
        if (!ok) return false;
    }
    return true;
}

}  // namespace

void HttpServer::sse_open(HttpRequest& r) {
    mcp::SessionRegistry::Refusal why;
    mcp::Session* made = sessions_.create(r.identity.subject, mcp::Transport::LegacySse, why);
    if (!made) {
        refuse_session(r, why, nullptr);
        return;
    }
    mcp::Session& session = *made;
    const std::string id = session.id;

    // Relative to the request URL, so it stays right behind a path prefix:
    // from /mcp/sse it resolves to /mcp/message, from /sse to /message.
    std::string endpoint = "message?sessionId=" + id;
    const char* prefix = r.header(Header::ForwardedPrefix);
    if (usable_prefix(prefix)) {
        std::string p = prefix;
        while (!p.empty() && p.back() == '/') p.pop_back();
        endpoint = p + "/" + endpoint;
    }

    SseStream* stream = hub_.open(r.req);
    session.stream = stream;
    // Closing the stream ends the session.
    stream->set_on_close([this, id] { sessions_.erase(id); });
    LOG_INFO("sse_session_opened", {{"session", id}, {"sub", r.identity.subject}});
    stream->send("endpoint", endpoint);
}

void HttpServer::sse_message(HttpRequest& r) {
    const std::string id = r.query_param("sessionId");
    if (id.empty()) {
        send_rpc_error(r.req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest, "Bad Request: sessionId is required");
        return;
    }
    mcp::Session* session = sessions_.find(id, r.identity.subject);
    if (!session || session->transport != mcp::Transport::LegacySse || !session->stream) {
        send_rpc_error(r.req, HTTP_NOTFOUND, jsonrpc::kInvalidRequest, "Session not found");
        return;
    }
    JsonPtr doc;
    if (!require_json_body(r, doc)) return;
    // Refusals are answered here, not down the stream: nothing ran.
    if (!mirror_headers_agree(r, doc.get(), /*required=*/false)) return;
    if (!calls_allowed(r, doc.get())) return;

    mcp::CallContext ctx;
    ctx.subject = r.identity.subject;
    ctx.identity = &r.identity;
    ctx.assertion = r.assertion;  // this POST's, not the stream's
    ctx.session = session;
    ctx.transport = metrics::Transport::Sse;
    ctx.protocol_version =
        session->protocol_version.empty() ? mcp::kLegacySseVersion : session->protocol_version;
    Future<JsonPtr> answer = mcp_.handle_body(doc.get(), ctx, /*allow_batch=*/false);
    if (!answer.is_ready()) {
        // A tool call waits for storage: the POST is accepted now and the
        // response goes down the stream when it comes, if the session and
        // its stream are still there (a response that waited is never an
        // error without an id, which would need the POST's answer).
        send_text(r.req, 202, nullptr, "Accepted");
        answer.then([this, alive = alive_, id](JsonPtr resp) {
            if (!*alive || !resp) return;
            mcp::Session* s = sessions_.find_any(id);
            if (s && s->stream) s->stream->send("message", json_print(resp.get()));
        });
        return;
    }
    JsonPtr resp = answer.take();
    if (resp && is_unanswerable_error(resp.get())) {
        send_json_doc(r.req, HTTP_BADREQUEST, resp.get());
        return;
    }
    send_text(r.req, 202, nullptr, "Accepted");
    // Last: a stream that overflows is closed here, which ends the session.
    if (resp) session->stream->send("message", json_print(resp.get()));
}

}  // namespace toolserver
