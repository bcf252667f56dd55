// Server-Sent Events streams on top of evhttp chunked replies. A stream costs
// one evhttp request and one timer: no thread per connection.
#pragma once

#include <event2/event.h>
#include <event2/http.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace toolserver {

class SseHub;

class SseStream {
public:
    using CloseFn = std::function<void()>;

    // Queues one event ("event: <event>\ndata: <data>\n\n"); `data` must not
    // contain newlines (compact JSON never does).
    void send(const char* event, const std::string& data);
    // Ends the stream from the server side; the stream is destroyed.
    void close();
    // Runs once, when the stream ends for any reason.
    void set_on_close(CloseFn fn) { on_close_ = std::move(fn); }

    SseStream(SseHub& hub, evhttp_request* req, event_base* base, int keepalive_seconds);
    ~SseStream();
    SseStream(const SseStream&) = delete;
    SseStream& operator=(const SseStream&) = delete;

private:
    friend class SseHub;
    static void on_connection_closed(evhttp_connection* conn, void* arg);
    static void on_keepalive(evutil_socket_t, short, void* arg);
    void write(const std::string& text);
    void finish(bool client_gone);

    SseHub& hub_;
    evhttp_request* req_;
    event* keepalive_ = nullptr;
    CloseFn on_close_;
    bool finished_ = false;
};

class SseHub {
public:
    SseHub(event_base* base, int keepalive_seconds) : base_(base), keepalive_seconds_(keepalive_seconds) {}

    // Sends the 200 and event-stream headers on `req` and returns the stream
    // (owned by the hub until it ends).
    SseStream* open(evhttp_request* req);
    void close_all();
    size_t size() const { return streams_.size(); }

private:
    friend class SseStream;
    void remove(SseStream* s) { streams_.erase(s); }

    event_base* base_;
    int keepalive_seconds_;
    std::unordered_map<SseStream*, std::unique_ptr<SseStream>> streams_;
};

// Adds the headers every event-stream response carries.
void add_event_stream_headers(evhttp_request* req);

}  // namespace toolserver
