#include "sse.hpp"

#include "log.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include <vector>

namespace toolserver {

namespace {
// A client that stops reading must not make the server buffer without end.
constexpr size_t kMaxPendingBytes = 8 * 1024 * 1024;
constexpr int kWriteTimeoutSeconds = 60;
}  // namespace

void add_event_stream_headers(evhttp_request* req) {
    evkeyvalq* h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    // Tells nginx not to buffer the stream.
    evhttp_add_header(h, "X-Accel-Buffering", "no");
}

SseStream* SseHub::open(evhttp_request* req) {
    auto s = std::make_unique<SseStream>(*this, req, base_, keepalive_seconds_);
    SseStream* raw = s.get();
    streams_[raw] = std::move(s);
    return raw;
}

void SseHub::close_all() {
    std::vector<SseStream*> all;
    for (auto& [ptr, owned] : streams_) all.push_back(ptr);
    for (SseStream* s : all) s->close();
}

SseStream::SseStream(SseHub& hub, evhttp_request* req, event_base* base, int keepalive_seconds)
    : hub_(hub), req_(req) {
    add_event_stream_headers(req);
    evhttp_send_reply_start(req, HTTP_OK, "OK");
    evhttp_connection* conn = evhttp_request_get_connection(req);
    evhttp_connection_set_closecb(conn, &SseStream::on_connection_closed, this);
    // evhttp's read timeout would cut an idle stream; keep only the write
    // timeout, which drops clients that stop reading.
    timeval write_timeout{kWriteTimeoutSeconds, 0};
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(conn), nullptr, &write_timeout);
    if (keepalive_seconds > 0) {
        keepalive_ = event_new(base, -1, EV_PERSIST, &SseStream::on_keepalive, this);
        timeval tv{keepalive_seconds, 0};
        event_add(keepalive_, &tv);
    }
}

SseStream::~SseStream() {
    if (keepalive_) event_free(keepalive_);
}

void SseStream::write(const std::string& text) {
    if (finished_) return;
    evhttp_connection* conn = evhttp_request_get_connection(req_);
    bufferevent* bev = conn ? evhttp_connection_get_bufferevent(conn) : nullptr;
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > kMaxPendingBytes) {
        LOG_WARN("sse_stream_overflow");
        close();
        return;
    }
    evbuffer* buf = evbuffer_new();
    evbuffer_add(buf, text.data(), text.size());
    evhttp_send_reply_chunk(req_, buf);
    evbuffer_free(buf);
}

void SseStream::send(const char* event, const std::string& data) {
    write(std::string("event: ") + event + "\ndata: " + data + "\n\n");
}

void SseStream::on_keepalive(evutil_socket_t, short, void* arg) {
    // A comment line: ignored by clients, keeps proxies from timing out.
    static_cast<SseStream*>(arg)->write(": keep-alive\n\n");
}

void SseStream::on_connection_closed(evhttp_connection*, void* arg) {
    static_cast<SseStream*>(arg)->finish(/*client_gone=*/true);
}

void SseStream::close() { finish(/*client_gone=*/false); }

void SseStream::finish(bool client_gone) {
    if (finished_) return;
    finished_ = true;
    if (keepalive_) event_del(keepalive_);
    evhttp_connection* conn = evhttp_request_get_connection(req_);
    // The close callback must not fire later for a stream that no longer exists.
    if (conn) evhttp_connection_set_closecb(conn, nullptr, nullptr);
    // On a client disconnect libevent has detached the request from its
    // connection; ending the reply is then what frees it.
    evhttp_send_reply_end(req_);
    LOG_DEBUG("sse_stream_closed", {{"by", client_gone ? "client" : "server"}});
    CloseFn fn = std::move(on_close_);
    if (fn) fn();
    hub_.remove(this);  // destroys *this; nothing may follow
}

}  // namespace toolserver
