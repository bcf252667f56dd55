// Outbound HTTP for tools that act as the signed-in user: an RFC 8693 token
// exchange at the gateway's /token endpoint (the request's identity
// assertion in, an access token for one downstream audience out), and a GET
// with that token.
//
// On the server's one event loop, like the Redis store: libevent's own HTTP
// client (evhttp, the same parser as the server side: status line, headers,
// Content-Length, chunked and read-to-close bodies), a connection per call
// (non-blocking connect), the answer bounded (64 KiB of body, 16 KiB of
// headers), every call bounded by one timeout from its start to its whole
// answer, the result a Future (later.hpp). Plain http:// only: TLS is not
// spoken, so the gateway's /token is reached over an internal listener on
// loopback or a private network. A host name is resolved without a timeout
// (as --redis-host): give an address.
//
// The gateway caches and coalesces exchanges itself: no cache here. Neither
// the assertion, the client secret nor an issued token is ever logged.
#pragma once

#include "config.hpp"
#include "later.hpp"

#include <event2/event.h>
#include <event2/http.h>

#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace toolserver {

// A plain http:// URL, split.
struct HttpUrl {
    std::string host;         // without brackets
    int port = 80;
    std::string target;       // path and query, as sent in the request line
    std::string host_header;  // Host: as in the URL
};

// Parses `url`: http://HOST[:PORT][/PATH][?QUERY], no user info, no
// fragment. False with `error` otherwise (https:// included: TLS is not spoken).
bool parse_http_url(const std::string& url, HttpUrl& out, std::string& error);

// RFC 3986 percent-encoding of everything but the unreserved characters,
// as application/x-www-form-urlencoded values and RFC 6749 §2.3.1 client
// credentials are written.
std::string form_urlencode(const std::string& value);

// The answer to one call: `error` set when there is none (could not
// connect, timed out, malformed or oversized answer); else the status,
// body and the headers the callers read.
struct HttpResult {
    std::string error;
    int status = 0;
    std::string body;
    std::string content_type;
    std::string retry_after;
    bool timed_out = false;
    bool ok() const { return error.empty(); }
};

// One token exchange's outcome.
struct ExchangeResult {
    enum class Outcome { Ok, Refused, Failed };
    Outcome outcome = Outcome::Failed;
    // Ok
    std::string access_token;
    long expires_in = -1;  // -1: not given
    std::string scope;
    // Refused: the endpoint's RFC 6749 §5.2 error (printable ASCII only)
    std::string error;
    std::string error_description;
    int status = 0;
    std::string retry_after;
    // Failed: why there is no usable answer (never holds a token)
    std::string failure;
    bool timed_out = false;
};

class HttpClient {
public:
    HttpClient(event_base* base, int timeout_ms);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    using Headers = std::vector<std::pair<std::string, std::string>>;
    // Sends one request (GET when `body` is null) on a connection of its
    // own. Host, Connection: close and Content-Length are added.
    Future<HttpResult> request(const HttpUrl& url, bool post, const Headers& headers, const std::string* body);

private:
    struct Call;
    static void on_done(evhttp_request* req, void* arg);
    static void on_error(evhttp_request_error error, void* arg);
    static void on_timeout(evutil_socket_t, short, void* arg);
    static void on_reap(evutil_socket_t, short, void* arg);
    // Settles `c` (once) and has its connection freed on a later turn:
    // evhttp still uses it when the callback returns.
    void finish(Call& c, HttpResult r);

    event_base* base_;
    int timeout_ms_;
    std::list<std::unique_ptr<Call>> calls_;
    event* reaper_ = nullptr;
};

class ExchangeClient {
public:
    // Reads the secret file (one line; missing or empty is an error) and
    // checks the URL. Null with `error` when unusable.
    static std::unique_ptr<ExchangeClient> create(const ExchangeConfig& cfg, event_base* base, std::string& error);

    // Exchanges `subject_token` (the identity assertion, as received) for
    // an access token for `audience` (and `scope`, when not empty).
    Future<ExchangeResult> exchange(const std::string& subject_token, const std::string& audience,
                                    const std::string& scope);
    // GET `url` with Authorization: Bearer `token`, Accept: application/json.
    Future<HttpResult> get(const HttpUrl& url, const std::string& token);

private:
    ExchangeClient(event_base* base, int timeout_ms) : http_(base, timeout_ms) {}

    HttpClient http_;
    HttpUrl token_url_;
    std::string basic_auth_;  // "Basic ..." of the client id and secret
};

}  // namespace toolserver
