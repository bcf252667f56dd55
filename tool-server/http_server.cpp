#include "http_server.hpp"

#include "log.hpp"
#include "http_util.hpp"
#include "metrics.hpp"
#include "mirror_headers.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>  // write_now: the write event of evhttp's bufferevent
#include <event2/http_struct.h>  // the request's HTTP version: libevent 2.1 has no accessor for it
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace toolserver {

namespace {

// Stream-less sessions nobody has used for this long are dropped, so that
// clients which never send DELETE cannot grow the table without bound.
constexpr std::time_t kSessionIdleSeconds = 3600;
constexpr int kSweepSeconds = 60;
constexpr int kRequestTimeoutSeconds = 60;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

// What evhttp may buffer before route() sees the request: --max-body plus
// as much again, at most 1 MiB more.
size_t hard_body_cap(size_t max_body) {
    constexpr size_t kMaxSlack = 1024 * 1024;
    size_t slack = max_body < kMaxSlack ? max_body : kMaxSlack;
    return max_body > SIZE_MAX - slack ? SIZE_MAX : max_body + slack;
}

const char* method_name(evhttp_cmd_type m) {
    switch (m) {
        case EVHTTP_REQ_GET: return "GET";
        case EVHTTP_REQ_POST: return "POST";
        case EVHTTP_REQ_DELETE: return "DELETE";
        case EVHTTP_REQ_HEAD: return "HEAD";
        case EVHTTP_REQ_PUT: return "PUT";
        case EVHTTP_REQ_OPTIONS: return "OPTIONS";
        case EVHTTP_REQ_PATCH: return "PATCH";
        default: return "OTHER";
    }
}

// The request headers route() collects, by Header, lower case.
constexpr std::string_view kHeaderNames[] = {
    "origin", "x-mcp-identity", "content-type", "accept", "mcp-session-id", "mcp-protocol-version",
    "mcp-method", "mcp-name", "x-forwarded-prefix", "traceparent",
};
static_assert(sizeof kHeaderNames / sizeof kHeaderNames[0] == static_cast<size_t>(Header::Count));
// The same, as they are written in messages.
constexpr const char* kHeaderDisplayNames[] = {
    "Origin", "X-MCP-Identity", "Content-Type", "Accept", "Mcp-Session-Id", "MCP-Protocol-Version",
    "Mcp-Method", "Mcp-Name", "X-Forwarded-Prefix", "traceparent",
};
static_assert(sizeof kHeaderDisplayNames / sizeof kHeaderDisplayNames[0] == static_cast<size_t>(Header::Count));

// Headers that carry one value: sent twice, they must say the same thing.
// (Accept is a list; a repeated Mcp-Method or Mcp-Name is refused whatever
// the values, by the mirror-header check.)
constexpr Header kSingleValued[] = {Header::Origin, Header::Identity, Header::ContentType, Header::SessionId,
                                    Header::ProtocolVersion, Header::ForwardedPrefix};

// `s` (length `n`) equals the lower-case `lower`, ignoring ASCII case, as
// evhttp_find_header compares names.
bool ascii_iequals(const char* s, size_t n, std::string_view lower) {
    if (n != lower.size()) return false;
    for (size_t i = 0; i < n; ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != lower[i]) return false;
    }
    return true;
}

// Content-Type, up to its parameters and without trailing spaces, is
// application/json (in any case).
bool is_json_media_type(const char* content_type) {
    if (!content_type) return false;
    size_t n = std::strcspn(content_type, ";");
    while (n > 0 && content_type[n - 1] == ' ') --n;
    return ascii_iequals(content_type, n, "application/json");
}

// One pass over the request headers: the first value of each Header, and
// how often each was sent.
void collect_headers(evhttp_request* req, HttpRequest& r) {
    for (const evkeyval* kv = evhttp_request_get_input_headers(req)->tqh_first; kv; kv = kv->next.tqe_next) {
        const size_t n = std::strlen(kv->key);
        for (size_t i = 0; i < static_cast<size_t>(Header::Count); ++i) {
            if (ascii_iequals(kv->key, n, kHeaderNames[i])) {
                if (!r.headers[i]) r.headers[i] = kv->value;
                else if (std::strcmp(r.headers[i], kv->value) != 0) r.conflicts |= 1u << i;
                if (r.counts[i] < 255) ++r.counts[i];
                break;
            }
        }
    }
}

// The Date header evhttp adds to HTTP/1.1 responses, made once per second
// rather than once per response (the event loop is single-threaded).
const char* http_date() {
    static std::time_t last = -1;
    static char date[50];  // evhttp's size
    const std::time_t now = std::time(nullptr);
    if (now != last) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        evutil_date_rfc1123(date, sizeof date, &tm);
        last = now;
    }
    return date;
}

// What evhttp_send_reply adds to an HTTP/1.1 response when it is missing,
// given here first: Date, then Content-Length when the response has a body,
// the same values in the same order, without evhttp's per-response date
// formatting, snprintf and header scans. Other HTTP versions are left to evhttp.
void add_evhttp_defaults(evhttp_request* req, evkeyvalq* h, int status, size_t body_bytes) {
    if (req->major != 1 || req->minor < 1) return;
    evhttp_add_header(h, "Date", http_date());
    const bool has_body = status != HTTP_NOCONTENT && status != HTTP_NOTMODIFIED && (status < 100 || status >= 200) &&
                          evhttp_request_get_command(req) != EVHTTP_REQ_HEAD;
    if (!has_body) return;
    char digits[24];
    char* end = digits + sizeof digits;
    char* p = end;
    *--p = '\0';
    do {
        *--p = static_cast<char>('0' + body_bytes % 10);
        body_bytes /= 10;
    } while (body_bytes);
    evhttp_add_header(h, "Content-Length", p);
}

// evhttp_send_reply only arms the connection's write event: the response is
// written in the next loop turn, once epoll reports the socket writable, and
// the event is disarmed after that turn -- an epoll_ctl each time. Running the
// write event's callback in this turn instead writes the response at once
// (an unwritable socket just leaves the event armed, as before), and the
// arming and disarming cancel out in libevent's changelist: no epoll_ctl.
// (bufferevent's write event is reachable only through bufferevent_struct.h.)
void write_now(bufferevent* bev) {
    if (bev) event_active(&bev->ev_write, EV_WRITE, 1);
}

// Response bodies are printed into one buffer, reused from response to
// response (the event loop is single-threaded).
std::string& reply_buffer() {
    static std::string buffer;
    buffer.clear();
    return buffer;
}

// A reused buffer that grew large for one big body gives its memory back.
void trim_buffer(std::string& buffer) {
    constexpr size_t kKeepBytes = 64 * 1024;
    if (buffer.capacity() > kKeepBytes) std::string().swap(buffer);
}

}  // namespace

std::string HttpRequest::query_param(const char* name) const {
    evkeyvalq params{};  // evhttp_parse_query_str initialises the list
    std::string value;
    if (evhttp_parse_query_str(query.c_str(), &params) == 0) {
        const char* v = evhttp_find_header(&params, name);
        if (v) value = v;
    }
    evhttp_clear_headers(&params);
    return value;
}

void send_text(evhttp_request* req, int status, const char* content_type, std::string_view body) {
    evkeyvalq* h = evhttp_request_get_output_headers(req);
    if (content_type) evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evbuffer* out = evhttp_request_get_output_buffer(req);
    if (!body.empty()) evbuffer_add(out, body.data(), body.size());
    add_evhttp_defaults(req, h, status, evbuffer_get_length(out));
    evhttp_connection* conn = evhttp_request_get_connection(req);
    bufferevent* bev = conn ? evhttp_connection_get_bufferevent(conn) : nullptr;
    evhttp_send_reply(req, status, nullptr, nullptr);
    write_now(bev);
}

void send_json(evhttp_request* req, int status, std::string_view body) {
    send_text(req, status, "application/json", body);
}

void send_json_doc(evhttp_request* req, int status, const cJSON* doc) {
    std::string& body = reply_buffer();
    if (!json_append(body, doc)) body = "null";
    send_json(req, status, body);
    trim_buffer(body);
}

void send_event_doc(evhttp_request* req, const cJSON* doc) {
    add_event_stream_headers(req);
    std::string& body = reply_buffer();
    body = "event: message\ndata: ";
    if (!json_append(body, doc)) body += "null";
    body += "\n\n";
    send_text(req, HTTP_OK, nullptr, body);
    trim_buffer(body);
}

void send_rpc_error(evhttp_request* req, int status, int code, const std::string& message) {
    send_json(req, status, jsonrpc::error_body(code, message));
}

void send_mcp_response(evhttp_request* req, bool event_stream, const cJSON* doc) {
    if (!doc) {
        send_text(req, 202, nullptr, "");
    } else if (is_unanswerable_error(doc)) {
        send_json_doc(req, HTTP_BADREQUEST, doc);
    } else if (event_stream) {
        send_event_doc(req, doc);  // one event, then the response ends
    } else {
        send_json_doc(req, HTTP_OK, doc);
    }
}

// A Streamable HTTP request whose response waits for storage. Shared by the
// server's table and the continuation that sends the response; `req` is null
// once the request is gone (its client left, or the server was destroyed).
struct HttpServer::Waiting {
    HttpServer* server = nullptr;
    evhttp_request* req = nullptr;
    event* watch = nullptr;  // readable client socket: the client may have left
    bool event_stream = false;
};

HttpServer::HttpServer(const Config& cfg, event_base* base, const IdentityVerifier* verifier, mcp::Server& mcp)
    : cfg_(cfg),
      base_(base),
      verifier_(verifier),
      mcp_(mcp),
      sessions_(mcp::SessionLimits{cfg.max_sessions_per_subject, cfg.max_sessions}),
      hub_(base, cfg.keepalive_interval) {
    routes_ = {
        {EVHTTP_REQ_GET, "/healthz", &HttpServer::healthz, false},
        {EVHTTP_REQ_GET, "/status", &HttpServer::status, false},
        {EVHTTP_REQ_GET, "/metrics", &HttpServer::metrics_text, false},
        {EVHTTP_REQ_GET, "/sse", &HttpServer::sse_open, true},
        {EVHTTP_REQ_POST, "/message", &HttpServer::sse_message, true},
        {EVHTTP_REQ_POST, "/mcp", &HttpServer::mcp_post, true},
        {EVHTTP_REQ_GET, "/mcp", &HttpServer::mcp_get, true},
        {EVHTTP_REQ_DELETE, "/mcp", &HttpServer::mcp_delete, true},
    };
}

HttpServer::~HttpServer() {
    hub_.close_all();
    // evhttp_free frees the waiting requests with their connections; the
    // responses that come later find them gone.
    for (auto& entry : waiting_) {
        Waiting& w = *entry.second;
        if (w.watch) event_free(w.watch);
        w.watch = nullptr;
        w.req = nullptr;
    }
    waiting_.clear();
    *alive_ = false;
    if (sweep_) event_free(sweep_);
    if (http_) evhttp_free(http_);
}

int HttpServer::listen(std::string& error) {
    http_ = evhttp_new(base_);
    if (!http_) {
        error = "evhttp_new failed";
        return -1;
    }
    evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    // Bodies over --max-body get a JSON-RPC 413 from route(). libevent 2.1
    // offers no server-side hook between the headers and the body (no header
    // callback for incoming requests, no error callback before 2.2), so evhttp
    // has to read a body before we can refuse it. Its own limit is therefore a
    // hard cap above ours: bodies up to the cap get the JSON answer, larger
    // ones (which would cost memory to buffer) still get evhttp's plain 413.
    // Lingering close lets the client finish sending so it reads that answer.
    evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(hard_body_cap(cfg_.max_body)));
    evhttp_set_max_headers_size(http_, kMaxHeaderBytes);
    evhttp_set_flags(http_, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(http_, kRequestTimeoutSeconds);
    evhttp_set_gencb(http_, &HttpServer::on_request, this);
    bound_ = evhttp_bind_socket_with_handle(http_, cfg_.listen_host.c_str(),
                                            static_cast<ev_uint16_t>(cfg_.listen_port));
    if (!bound_) {
        error = "cannot listen on " + cfg_.listen_host + ":" + std::to_string(cfg_.listen_port);
        return -1;
    }
    // Each reply is written whole, in one writev: Nagle's algorithm would
    // only hold a reply written right behind another (pipelining) until the
    // client acknowledged the first, ~40 ms with delayed ACKs. Accepted
    // sockets inherit the option from the listening one (Linux).
    const int on = 1;
    setsockopt(evhttp_bound_socket_get_fd(bound_), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bound_), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        error = "getsockname failed";
        return -1;
    }
    int port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    sweep_ = event_new(base_, -1, EV_PERSIST, &HttpServer::on_sweep, this);
    timeval tv{kSweepSeconds, 0};
    event_add(sweep_, &tv);
    return port;
}

void HttpServer::shutdown() {
    if (bound_) {
        evhttp_del_accept_socket(http_, bound_);
        bound_ = nullptr;
    }
    if (sweep_) event_del(sweep_);
    hub_.close_all();
}

void HttpServer::on_sweep(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<HttpServer*>(arg);
    for (const std::string& id : self->sessions_.idle(std::time(nullptr), kSessionIdleSeconds)) {
        self->sessions_.erase(id);
    }
}

void HttpServer::on_request(evhttp_request* req, void* arg) {
    // No exception may unwind into libevent's C frames.
    try {
        static_cast<HttpServer*>(arg)->route(req);
    } catch (const std::exception& e) {
        LOG_ERROR("request_failed", {{"error", e.what()}});
        send_rpc_error(req, HTTP_INTERNAL, jsonrpc::kInternalError, "Internal error");
    } catch (...) {
        LOG_ERROR("request_failed", {{"error", "unknown"}});
        send_rpc_error(req, HTTP_INTERNAL, jsonrpc::kInternalError, "Internal error");
    }
}

void HttpServer::route(evhttp_request* req) {
    HttpRequest r;
    r.req = req;
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* path = uri ? evhttp_uri_get_path(uri) : nullptr;
    const char* query = uri ? evhttp_uri_get_query(uri) : nullptr;
    r.path = path && *path ? path : "/";
    if (query) r.query = query;
    collect_headers(req, r);
    // Every line logged about this request (now, or when a call that waits
    // for storage completes) carries the trace id of its traceparent; a
    // malformed or repeated header is no header.
    LogTrace trace(r.count(Header::TraceParent) == 1 ? parse_traceparent(r.header(Header::TraceParent)) : TraceId{});
    evhttp_cmd_type method = evhttp_request_get_command(req);
    LOG_DEBUG("request", {{"method", method_name(method)}, {"path", r.path}});

    // Before routing, like evhttp's own limit: nothing looks at a body this big.
    size_t body_bytes = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (body_bytes > cfg_.max_body) {
        LOG_WARN("body_too_large", {{"path", r.path}, {"bytes", std::to_string(body_bytes)}});
        send_rpc_error(req, 413, jsonrpc::kInvalidRequest,
                       "request body larger than " + std::to_string(cfg_.max_body) + " bytes");
        return;
    }

    const Route* match = nullptr;
    for (const Route& rt : routes_) {
        if (rt.method == method && r.path == rt.path) {
            match = &rt;
            break;
        }
    }
    if (!match) {
        std::string allow;
        for (const Route& rt : routes_) {
            if (r.path != rt.path) continue;
            if (!allow.empty()) allow += ", ";
            allow += method_name(rt.method);
        }
        if (allow.empty()) {
            send_rpc_error(req, HTTP_NOTFOUND, jsonrpc::kInvalidRequest, "Not found");
        } else {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow.c_str());
            send_rpc_error(req, 405, jsonrpc::kInvalidRequest, "Method not allowed");
        }
        return;
    }
    if (match->authenticated) {
        // A request that says two things in one header is not guessed at.
        for (Header h : kSingleValued) {
            if (r.conflicts & (1u << static_cast<size_t>(h))) {
                const char* name = kHeaderDisplayNames[static_cast<size_t>(h)];
                LOG_WARN("header_conflict", {{"path", r.path}, {"header", name}});
                send_rpc_error(req, HTTP_BADREQUEST, jsonrpc::kInvalidRequest,
                               std::string("Bad Request: ") + name + " is sent twice with different values");
                return;
            }
        }
        // Origin first: a browser page must not reach the tools even with a
        // valid assertion (DNS rebinding).
        const char* origin = r.header(Header::Origin);
        if (origin && !origin_allowed(origin)) {
            LOG_WARN("origin_refused", {{"origin", origin}});
            send_rpc_error(req, 403, jsonrpc::kInvalidRequest, "Forbidden: origin not allowed");
            return;
        }
        if (!authenticate(r)) return;
    }
    (this->*(match->handler))(r);
}

bool HttpServer::origin_allowed(const char* origin) const {
    if (!cfg_.allowed_origins.empty()) {
        std::string o = ascii_lower(origin);
        for (const std::string& allowed : cfg_.allowed_origins) {
            if (allowed == "*" || ascii_lower(allowed.c_str()) == o) return true;
        }
        return false;
    }
    // Default: loopback origins, any scheme and port.
    const char* sep = std::strstr(origin, "://");
    if (!sep) return false;
    std::string host = ascii_lower(sep + 3);
    if (host.rfind("[::1]", 0) == 0) {
        host = host.substr(5);
    } else {
        size_t colon = host.find(':');
        std::string name = host.substr(0, colon);
        if (name != "127.0.0.1" && name != "localhost") return false;
        host = colon == std::string::npos ? "" : host.substr(colon);
    }
    // What is left must be empty or ":<digits>".
    if (host.empty()) return true;
    if (host[0] != ':' || host.size() == 1) return false;
    for (size_t i = 1; i < host.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(host[i]))) return false;
    }
    return true;
}

bool HttpServer::authenticate(HttpRequest& r) {
    if (!verifier_) {
        r.identity.subject = "anonymous";
        return true;
    }
    const char* token = r.header(Header::Identity);
    std::string why;
    if (verifier_->verify(token ? token : "", r.identity, why)) {
        r.assertion = token;
        return true;
    }
    LOG_WARN("identity_refused", {{"path", r.path}, {"reason", why}});
    send_rpc_error(r.req, 401, jsonrpc::kUnauthorized, "Unauthorized: " + why);
    return false;
}

void HttpServer::healthz(HttpRequest& r) { send_json(r.req, HTTP_OK, "{\"status\":\"ok\"}"); }

// Counts only, for operators and tests (like /healthz, no assertion needed:
// the port is the gateway's alone).
void HttpServer::status(HttpRequest& r) {
    send_json(r.req, HTTP_OK,
              "{\"sessions\":" + std::to_string(sessions_.size()) + ",\"streams\":" + std::to_string(hub_.size()) +
                  ",\"subjects\":" + std::to_string(sessions_.subjects()) + "}");
}

// Prometheus text exposition; no assertion needed either (see README: the
// gateway proxies only the MCP paths here, and this port must not be public).
void HttpServer::metrics_text(HttpRequest& r) {
    std::string& body = reply_buffer();
    metrics::append_exposition(body, metrics::Gauges{sessions_.size(), hub_.size()});
    send_text(r.req, HTTP_OK, metrics::kContentType, body);
    trim_buffer(body);
}

void HttpServer::refuse_session(HttpRequest& r, mcp::SessionRegistry::Refusal why, const cJSON* id) {
    const bool subject = why == mcp::SessionRegistry::Refusal::SubjectFull;
    LOG_WARN("session_refused", {{"sub", r.identity.subject}, {"cap", subject ? "subject" : "total"}});
    jsonrpc::Error err{jsonrpc::kServerBusy, ""};
    if (subject) {
        err.message = "Too many sessions: this subject already holds " +
                      std::to_string(sessions_.limits().per_subject) +
                      " sessions (--max-sessions-per-subject), each with an open stream; close one and retry";
    } else {
        err.message = "Service unavailable: the server holds its maximum of " +
                      std::to_string(sessions_.limits().total) +
                      " sessions (--max-sessions), each with an open stream; retry later";
        evhttp_add_header(evhttp_request_get_output_headers(r.req), "Retry-After", "10");
    }
    send_json_doc(r.req, subject ? 429 : HTTP_SERVUNAVAIL, jsonrpc::make_error(id, err).get());
}

bool HttpServer::require_json_body(HttpRequest& r, JsonPtr& doc) {
    if (!is_json_media_type(r.header(Header::ContentType))) {
        send_rpc_error(r.req, 415, jsonrpc::kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json");
        return false;
    }
    // The body is copied out into a buffer kept from request to request
    // (cJSON wants it NUL-terminated; evhttp's buffer is not).
    evbuffer* in = evhttp_request_get_input_buffer(r.req);
    body_.resize(evbuffer_get_length(in));
    if (!body_.empty()) evbuffer_copyout(in, &body_[0], body_.size());
    jsonrpc::Error err{0, ""};
    doc = jsonrpc::parse(body_, err);
    trim_buffer(body_);
    if (!doc) {
        send_rpc_error(r.req, HTTP_BADREQUEST, err.code, err.message);
        return false;
    }
    return true;
}

bool HttpServer::mirror_headers_agree(HttpRequest& r, const cJSON* doc, bool required) {
    const MirrorHeaders h{r.header(Header::McpMethod), r.header(Header::McpName), r.count(Header::McpMethod),
                          r.count(Header::McpName)};
    const auto err = check_mirror_headers(h, doc, required);
    if (!err) return true;
    LOG_WARN("header_mismatch", {{"path", r.path}, {"sub", r.identity.subject}, {"error", err->message}});
    send_json_doc(r.req, HTTP_BADREQUEST, jsonrpc::make_error(usable_id(doc), *err).get());
    return false;
}

bool HttpServer::calls_allowed(HttpRequest& r, const cJSON* doc) {
    const char* event = "scope_refused";
    auto err = cfg_.tool_scopes.check(doc, r.identity.scope);
    if (!err) {
        event = "claim_refused";
        err = cfg_.tool_claims.check(doc, r.identity.claims);
    }
    if (!err) return true;
    LOG_WARN(event, {{"path", r.path}, {"sub", r.identity.subject}, {"error", err->message}});
    // Nothing in the body runs: each of its tool calls is denied.
    auto denied = [&](const cJSON* msg) {
        const char* method = json_get_string(msg, "method");
        if (!method || std::strcmp(method, "tools/call") != 0) return;
        const char* tool = json_get_string(cJSON_GetObjectItemCaseSensitive(msg, "params"), "name");
        metrics::record_tool_call(metrics::tool_label(tool), metrics::ToolResult::Denied, r.identity.subject);
    };
    if (cJSON_IsArray(doc)) {
        const cJSON* item = nullptr;
        cJSON_ArrayForEach(item, doc) denied(item);
    } else {
        denied(doc);
    }
    send_json_doc(r.req, 403, jsonrpc::make_error(usable_id(doc), *err).get());
    return false;
}

void HttpServer::answer(HttpRequest& r, Future<JsonPtr> response, bool event_stream) {
    if (response.is_ready()) {
        send_mcp_response(r.req, event_stream, response.take().get());
        return;
    }
    auto w = std::make_shared<Waiting>();
    w->server = this;
    w->req = r.req;
    w->event_stream = event_stream;
    // evhttp does not read from a connection while its request is being
    // handled, so it would learn that the client left only on writing the
    // response; the socket is watched meanwhile instead.
    evhttp_connection* conn = evhttp_request_get_connection(r.req);
    bufferevent* bev = conn ? evhttp_connection_get_bufferevent(conn) : nullptr;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        w->watch = event_new(base_, fd, EV_READ, &HttpServer::on_client_readable, w.get());
        if (w->watch) event_add(w->watch, nullptr);
    }
    waiting_[w.get()] = w;
    response.then([w](JsonPtr doc) {
        if (!w->req) return;  // gone; w->server may be too
        evhttp_request* req = w->req;
        w->server->stop_waiting(*w);
        send_mcp_response(req, w->event_stream, doc.get());
    });
}

void HttpServer::stop_waiting(Waiting& w) {
    if (w.watch) event_free(w.watch);
    w.watch = nullptr;
    w.req = nullptr;
    waiting_.erase(&w);  // may destroy `w` (when the continuation is done with it too)
}

void HttpServer::on_client_readable(evutil_socket_t fd, short, void* arg) {
    auto* w = static_cast<Waiting*>(arg);
    char byte;
    const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(w->watch, nullptr);
        return;
    }
    if (n > 0) {
        // The client sent more (a pipelined request): it is there. Watching
        // on would wake the loop for those bytes again and again; should it
        // leave after all, evhttp finds out on writing the response.
        event_free(w->watch);
        w->watch = nullptr;
        return;
    }
    // End of stream or an error (reset): the client is gone. Freeing the
    // connection frees the request too.
    HttpServer* self = w->server;
    evhttp_connection* conn = evhttp_request_get_connection(w->req);
    LOG_INFO("client_gone", {{"reason", n == 0 ? "closed" : std::strerror(errno)}});
    self->stop_waiting(*w);  // `w` may be gone from here on
    if (conn) evhttp_connection_free(conn);
}

void HttpServer::end_session(std::string id) {
    mcp::Session* s = sessions_.find_any(id);
    if (!s) return;
    SseStream* stream = s->stream;
    sessions_.erase(id);
    // The stream's close hook looks the session up by id and finds nothing.
    if (stream) stream->close();
}

}  // namespace toolserver
