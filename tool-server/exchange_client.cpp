#include "exchange_client.hpp"
#include "secret_file.hpp"

#include "http_util.hpp"
#include "json.hpp"
#include "log.hpp"
#include "metrics.hpp"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace toolserver {

namespace {

constexpr size_t kMaxBodyBytes = 64 * 1024;
constexpr size_t kMaxHeaderBytes = 16 * 1024;

constexpr const char* kGrantType = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr const char* kJwtType = "urn:ietf:params:oauth:token-type:jwt";
constexpr const char* kAccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

// Printable ASCII, space included: what may go into a message or a header.
bool printable(const std::string& s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

// An access token goes into an Authorization header: visible ASCII only
// (RFC 6750 b64token is narrower; this only keeps CR, LF and the like out).
bool usable_token(const std::string& s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (c <= 0x20 || c > 0x7e) return false;
    }
    return true;
}

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
}

const char* error_text(int error) {
    switch (error) {
        case EVREQ_HTTP_TIMEOUT: return "timed out";
        case EVREQ_HTTP_EOF: return "the connection closed before a complete answer";
        case EVREQ_HTTP_INVALID_HEADER: return "malformed HTTP answer";
        case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
        case EVREQ_HTTP_DATA_TOO_LONG: return "answer larger than 64 KiB";
        default: return "no answer";
    }
}

}  // namespace

bool parse_http_url(const std::string& url, HttpUrl& out, std::string& error) {
    evhttp_uri* uri = evhttp_uri_parse_with_flags(url.c_str(), 0);
    if (!uri) {
        error = "\"" + url + "\" is not a URL";
        return false;
    }
    const char* scheme = evhttp_uri_get_scheme(uri);
    const char* host = evhttp_uri_get_host(uri);
    const char* path = evhttp_uri_get_path(uri);
    const char* query = evhttp_uri_get_query(uri);
    const int port = evhttp_uri_get_port(uri);
    bool ok = false;
    if (!scheme || ascii_lower(scheme) != "http") {
        error = "\"" + url + "\": only http:// URLs (TLS is not spoken: use an internal plain-HTTP listener)";
    } else if (!host || !*host) {
        error = "\"" + url + "\" has no host";
    } else if (evhttp_uri_get_userinfo(uri)) {
        error = "\"" + url + "\": user info in the URL is not supported";
    } else if (evhttp_uri_get_fragment(uri)) {
        error = "\"" + url + "\": a fragment has no place here";
    } else if (port == 0) {
        error = "\"" + url + "\" has port 0";
    } else {
        out.host = host;
        // evhttp keeps an IPv6 literal's brackets; connecting wants it bare.
        if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
            out.host = out.host.substr(1, out.host.size() - 2);
        out.port = port < 0 ? 80 : port;
        out.target = path && *path ? path : "/";
        if (query) out.target += std::string("?") + query;
        out.host_header = host;
        if (port >= 0) out.host_header += ":" + std::to_string(port);
        ok = printable(out.target) && out.target.find(' ') == std::string::npos;
        if (!ok) error = "\"" + url + "\": the path must be visible ASCII";
    }
    evhttp_uri_free(uri);
    return ok;
}

std::string form_urlencode(const std::string& value) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size());
    for (unsigned char c : value) {
        if (is_unreserved(c)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// --- HttpClient ---------------------------------------------------------------------------------

struct HttpClient::Call {
    HttpClient* client = nullptr;
    evhttp_connection* conn = nullptr;
    event* timer = nullptr;
    Promise<HttpResult> promise;
    int error = -1;  // what evhttp's error callback said, before the done callback
    bool done = false;
};

HttpClient::HttpClient(event_base* base, int timeout_ms) : base_(base), timeout_ms_(timeout_ms) {
    reaper_ = event_new(base_, -1, 0, &HttpClient::on_reap, this);
}

HttpClient::~HttpClient() {
    // Nothing is answered any more (the server that would use the answers
    // is gone first); freeing a connection runs no callback.
    for (auto& c : calls_) {
        if (c->timer) event_free(c->timer);
        if (c->conn) evhttp_connection_free(c->conn);
    }
    if (reaper_) event_free(reaper_);
}

Future<HttpResult> HttpClient::request(const HttpUrl& url, bool post, const Headers& headers,
                                       const std::string* body) {
    auto owned = std::make_unique<Call>();
    Call* c = owned.get();
    c->client = this;
    Future<HttpResult> answer = c->promise.future();
    calls_.push_back(std::move(owned));

    HttpResult failed;
    c->conn = evhttp_connection_base_new(base_, nullptr, url.host.c_str(), static_cast<ev_uint16_t>(url.port));
    evhttp_request* req = c->conn ? evhttp_request_new(&HttpClient::on_done, c) : nullptr;
    if (!req) {
        failed.error = "out of memory";
        finish(*c, std::move(failed));
        return answer;
    }
    const timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
    evhttp_connection_set_timeout_tv(c->conn, &tv);
    evhttp_connection_set_retries(c->conn, 0);
    evhttp_connection_set_max_body_size(c->conn, static_cast<ev_ssize_t>(kMaxBodyBytes));
    evhttp_connection_set_max_headers_size(c->conn, static_cast<ev_ssize_t>(kMaxHeaderBytes));
    evhttp_request_set_error_cb(req, &HttpClient::on_error);

    evkeyvalq* h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", url.host_header.c_str());
    evhttp_add_header(h, "User-Agent", "mcp-tool-server");
    evhttp_add_header(h, "Connection", "close");
    for (const auto& [name, value] : headers) evhttp_add_header(h, name.c_str(), value.c_str());
    if (body) {
        evhttp_add_header(h, "Content-Length", std::to_string(body->size()).c_str());
        evbuffer_add(evhttp_request_get_output_buffer(req), body->data(), body->size());
    }
    // The whole call, connect to the last byte of the answer; evhttp's own
    // timeout (above) only bounds each wait for the socket.
    c->timer = evtimer_new(base_, &HttpClient::on_timeout, c);
    if (c->timer) evtimer_add(c->timer, &tv);
    // A refused connect may be reported from within this call (on_done
    // then settles it at once).
    if (evhttp_make_request(c->conn, req, post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, url.target.c_str()) != 0 &&
        !c->done) {
        failed.error = "cannot send the request";
        finish(*c, std::move(failed));
    }
    return answer;
}

void HttpClient::on_error(evhttp_request_error error, void* arg) { static_cast<Call*>(arg)->error = error; }

void HttpClient::on_done(evhttp_request* req, void* arg) {
    auto* c = static_cast<Call*>(arg);
    if (c->done) return;
    HttpResult r;
    if (!req) {
        r.error = error_text(c->error);
        r.timed_out = c->error == EVREQ_HTTP_TIMEOUT;
    } else if (evhttp_request_get_response_code(req) == 0) {
        // evhttp's connect failure: the request comes back unanswered.
        r.error = "cannot connect";
    } else {
        r.status = evhttp_request_get_response_code(req);
        evbuffer* in = evhttp_request_get_input_buffer(req);
        const size_t n = evbuffer_get_length(in);
        if (n > kMaxBodyBytes) {
            r.error = error_text(EVREQ_HTTP_DATA_TOO_LONG);
        } else {
            r.body.resize(n);
            if (n) evbuffer_copyout(in, &r.body[0], n);
            const evkeyvalq* h = evhttp_request_get_input_headers(req);
            if (const char* v = evhttp_find_header(h, "Content-Type")) r.content_type = v;
            if (const char* v = evhttp_find_header(h, "Retry-After")) r.retry_after = v;
        }
    }
    c->client->finish(*c, std::move(r));
}

void HttpClient::on_timeout(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Call*>(arg);
    if (c->done) return;
    // No evhttp frame is on the stack: the connection (and its request)
    // can go now, with no callback.
    if (c->conn) evhttp_connection_free(c->conn);
    c->conn = nullptr;
    HttpResult r;
    r.error = error_text(EVREQ_HTTP_TIMEOUT);
    r.timed_out = true;
    c->client->finish(*c, std::move(r));
}

void HttpClient::finish(Call& c, HttpResult r) {
    c.done = true;
    if (c.timer) event_free(c.timer);
    c.timer = nullptr;
    if (reaper_) event_active(reaper_, EV_TIMEOUT, 1);
    // Last: the answer may run anything, another request included.
    Promise<HttpResult> p = c.promise;
    p.set(std::move(r));
}

void HttpClient::on_reap(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<HttpClient*>(arg);
    for (auto it = self->calls_.begin(); it != self->calls_.end();) {
        if (!(*it)->done) {
            ++it;
            continue;
        }
        if ((*it)->conn) evhttp_connection_free((*it)->conn);
        it = self->calls_.erase(it);
    }
}

// --- ExchangeClient -----------------------------------------------------------------------------

std::unique_ptr<ExchangeClient> ExchangeClient::create(const ExchangeConfig& cfg, event_base* base,
                                                       std::string& error) {
    std::unique_ptr<ExchangeClient> c(new ExchangeClient(base, cfg.timeout_ms));
    if (!parse_http_url(cfg.token_url, c->token_url_, error)) {
        error = "--exchange-token-url " + error;
        return nullptr;
    }
    if (cfg.client_id.empty()) {
        error = "--exchange-client-id is empty";
        return nullptr;
    }
    std::string secret;
    if (!read_secret_file("--exchange-client-secret-file", cfg.client_secret_file, secret, error)) return nullptr;
    // RFC 6749 §2.3.1: each part form-urlencoded before Base64.
    c->basic_auth_ = "Basic " + base64(form_urlencode(cfg.client_id) + ":" + form_urlencode(secret));
    return c;
}

namespace {

ExchangeResult failed(std::string why, bool timed_out = false) {
    ExchangeResult r;
    r.outcome = ExchangeResult::Outcome::Failed;
    r.failure = std::move(why);
    r.timed_out = timed_out;
    return r;
}

// A token endpoint's answer, read as RFC 8693 §2.2 / RFC 6749 §5.2 say.
ExchangeResult read_answer(const HttpResult& h) {
    if (!h.ok()) return failed("token endpoint: " + h.error, h.timed_out);
    JsonPtr doc(cJSON_ParseWithLength(h.body.data(), h.body.size()));
    const std::string status = std::to_string(h.status);
    if (h.status != 200) {
        const char* code = cJSON_IsObject(doc.get()) ? json_get_string(doc.get(), "error") : nullptr;
        if (!code || !*code || !printable(code))
            return failed("token endpoint answered " + status + " without an OAuth error");
        ExchangeResult r;
        r.outcome = ExchangeResult::Outcome::Refused;
        r.error = code;
        const char* description = json_get_string(doc.get(), "error_description");
        if (description && printable(description)) r.error_description = description;
        r.status = h.status;
        if (printable(h.retry_after)) r.retry_after = h.retry_after;
        return r;
    }
    if (!cJSON_IsObject(doc.get())) return failed("token endpoint answered 200 without a JSON object");
    const char* token = json_get_string(doc.get(), "access_token");
    if (!token || !usable_token(token)) return failed("token endpoint answered 200 without a usable access_token");
    const char* token_type = json_get_string(doc.get(), "token_type");
    if (!token_type || ascii_lower(token_type) != "bearer")
        return failed("token endpoint answered 200 with a token_type other than Bearer");
    const char* issued = json_get_string(doc.get(), "issued_token_type");
    if (issued && std::strcmp(issued, kAccessTokenType) != 0)
        return failed("token endpoint answered 200 with an issued_token_type other than access_token");
    ExchangeResult r;
    r.outcome = ExchangeResult::Outcome::Ok;
    r.access_token = token;
    const cJSON* expires = cJSON_GetObjectItemCaseSensitive(doc.get(), "expires_in");
    if (cJSON_IsNumber(expires) && expires->valuedouble >= 0 && expires->valuedouble < 1e9)
        r.expires_in = static_cast<long>(std::floor(expires->valuedouble));
    if (const char* scope = json_get_string(doc.get(), "scope")) r.scope = scope;
    return r;
}

metrics::ExchangeResult metric_of(const ExchangeResult& r) {
    switch (r.outcome) {
        case ExchangeResult::Outcome::Ok: return metrics::ExchangeResult::Ok;
        case ExchangeResult::Outcome::Refused: return metrics::ExchangeResult::Refused;
        case ExchangeResult::Outcome::Failed: break;
    }
    return r.timed_out ? metrics::ExchangeResult::Timeout : metrics::ExchangeResult::Error;
}

}  // namespace

Future<ExchangeResult> ExchangeClient::exchange(const std::string& subject_token, const std::string& audience,
                                                const std::string& scope) {
    std::string body = "grant_type=" + form_urlencode(kGrantType) + "&subject_token=" + form_urlencode(subject_token) +
                       "&subject_token_type=" + form_urlencode(kJwtType) + "&audience=" + form_urlencode(audience) +
                       "&requested_token_type=" + form_urlencode(kAccessTokenType);
    if (!scope.empty()) body += "&scope=" + form_urlencode(scope);
    const HttpClient::Headers headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                         {"Accept", "application/json"},
                                         {"Authorization", basic_auth_}};
    return http_.request(token_url_, /*post=*/true, headers, &body).map([audience](HttpResult h) {
        ExchangeResult r = read_answer(h);
        metrics::count_exchange(metric_of(r));
        // Never the token, the assertion or the secret; the error code is printable ASCII.
        switch (r.outcome) {
            case ExchangeResult::Outcome::Ok:
                LOG_INFO("token_exchange", {{"result", "ok"}, {"audience", audience}});
                break;
            case ExchangeResult::Outcome::Refused:
                LOG_WARN("token_exchange", {{"result", "refused"}, {"audience", audience},
                                            {"status", std::to_string(r.status)}, {"error", r.error}});
                break;
            case ExchangeResult::Outcome::Failed:
                LOG_WARN("token_exchange", {{"result", r.timed_out ? "timeout" : "error"}, {"audience", audience},
                                            {"reason", r.failure}});
                break;
        }
        return r;
    });
}

Future<HttpResult> ExchangeClient::get(const HttpUrl& url, const std::string& token) {
    return http_.request(url, /*post=*/false, {{"Accept", "application/json"}, {"Authorization", "Bearer " + token}},
                         nullptr);
}

}  // namespace toolserver
