// evhttp glue: listening socket, routing table, the checks every request
// passes (Origin, identity assertion), and the two MCP transports.
#pragma once

#include "config.hpp"
#include "identity.hpp"
#include "mcp_protocol.hpp"
#include "sse.hpp"

#include <event2/event.h>
#include <event2/http.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace toolserver {

// The request headers the handlers read. route() finds them all in one pass
// over the request's headers (evhttp_find_header is a linear scan per name).
enum class Header {
    Origin,
    Identity,         // X-MCP-Identity
    ContentType,
    Accept,
    SessionId,        // Mcp-Session-Id
    ProtocolVersion,  // MCP-Protocol-Version
    McpMethod,        // Mcp-Method
    McpName,          // Mcp-Name
    ForwardedPrefix,  // X-Forwarded-Prefix
    TraceParent,      // traceparent (W3C trace context)
    Count
};

// One incoming request as the handlers see it.
struct HttpRequest {
    evhttp_request* req = nullptr;
    std::string path;
    std::string query;
    Identity identity;  // set for routes that require authentication
    // The verified X-MCP-Identity value (it views the request's header);
    // empty when no assertion is checked (--insecure-no-auth).
    std::string_view assertion;
    // First value of each Header, as evhttp_find_header would return it; null when absent.
    const char* headers[static_cast<size_t>(Header::Count)] = {};
    // How many times each Header was sent (saturates at 255).
    unsigned char counts[static_cast<size_t>(Header::Count)] = {};
    // Bit i: Header i was sent again with another value.
    unsigned conflicts = 0;

    const char* header(Header h) const { return headers[static_cast<size_t>(h)]; }
    unsigned count(Header h) const { return counts[static_cast<size_t>(h)]; }
    // The value of query parameter `name`, or empty.
    std::string query_param(const char* name) const;
};

class HttpServer {
public:
    HttpServer(const Config& cfg, event_base* base, const IdentityVerifier* verifier, mcp::Server& mcp);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds the listening socket; returns the bound port, or -1.
    int listen(std::string& error);
    // Stops accepting, ends every stream; in-flight writes still flush.
    void shutdown();

private:
    using Handler = void (HttpServer::*)(HttpRequest&);
    struct Route {
        evhttp_cmd_type method;
        const char* path;
        Handler handler;
        bool authenticated;
    };

    static void on_request(evhttp_request* req, void* arg);
    static void on_sweep(evutil_socket_t, short, void* arg);
    void route(evhttp_request* req);
    bool origin_allowed(const char* origin) const;
    bool authenticate(HttpRequest& r);

    // Routes (healthz here; the transports in transport_*.cpp).
    void healthz(HttpRequest& r);
    void status(HttpRequest& r);
    void metrics_text(HttpRequest& r);  // GET /metrics
    void sse_open(HttpRequest& r);
    void sse_message(HttpRequest& r);
    void mcp_post(HttpRequest& r);
    void mcp_get(HttpRequest& r);
    void mcp_delete(HttpRequest& r);

    // Shared steps of the transports. Each answers the request itself and
    // returns false when the request must go no further.
    bool require_json_body(HttpRequest& r, JsonPtr& doc);
    // Mcp-Method/Mcp-Name agree with the body (400, -32020, otherwise);
    // `required` under 2026-07-28.
    bool mirror_headers_agree(HttpRequest& r, const cJSON* doc, bool required);
    // The assertion's scopes cover every call in the body and its claims
    // satisfy every tool's claim rules (403 otherwise; every tools/call in
    // the body is then counted and logged as denied).
    bool calls_allowed(HttpRequest& r, const cJSON* doc);
    // The request's Streamable HTTP session; null after answering 400/404.
    mcp::Session* streamable_session(HttpRequest& r);
    void end_session(std::string id);  // by value: callers pass the session's own id

    // Sends a Streamable HTTP POST's response (mcp_response) now, or when a
    // tool call that waits for storage has it. Meanwhile the request is
    // Waiting: its client's socket is watched, and a client that leaves has
    // its connection (and the request) freed at once, so that the response,
    // when it comes, finds the request gone and is dropped.
    void answer(HttpRequest& r, Future<JsonPtr> response, bool event_stream);
    struct Waiting;
    static void on_client_readable(evutil_socket_t fd, short, void* arg);
    void stop_waiting(Waiting& w);
    // Answers a session that could not be made (429: the subject's cap; 503: the total cap).
    void refuse_session(HttpRequest& r, mcp::SessionRegistry::Refusal why, const cJSON* id);

    const Config& cfg_;
    event_base* base_;
    const IdentityVerifier* verifier_;
    mcp::Server& mcp_;
    std::string body_;  // the request body being parsed; reused from request to request
    mcp::SessionRegistry sessions_;
    SseHub hub_;
    evhttp* http_ = nullptr;
    evhttp_bound_socket* bound_ = nullptr;
    event* sweep_ = nullptr;
    std::vector<Route> routes_;
    // Streamable HTTP requests whose response waits for storage.
    std::unordered_map<Waiting*, std::shared_ptr<Waiting>> waiting_;
    // False once the server is destroyed: a response that comes later (down
    // an HTTP+SSE stream) is then dropped.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Response helpers shared by the handlers.
void send_text(evhttp_request* req, int status, const char* content_type, std::string_view body);
void send_json(evhttp_request* req, int status, std::string_view body);
void send_rpc_error(evhttp_request* req, int status, int code, const std::string& message);
// Sends `doc` printed as JSON.
void send_json_doc(evhttp_request* req, int status, const cJSON* doc);
// Sends a 200 whose body is one event-stream event "message" carrying `doc`.
void send_event_doc(evhttp_request* req, const cJSON* doc);
// A Streamable HTTP POST's response: 202 when `doc` is null (nothing owed),
// 400 for an error that cannot be answered in-band, else 200 with `doc` as
// JSON or as one event of an event stream.
void send_mcp_response(evhttp_request* req, bool event_stream, const cJSON* doc);

}  // namespace toolserver
