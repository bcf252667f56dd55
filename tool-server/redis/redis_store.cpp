// Redis implementation of SnippetStore, so that several tool servers (behind
// several nginx edges) share one set of snippets.
//
// Kept in its own folder so that fuzz/fuzz.mk, which links every
// tool-server/*.cpp but main.cpp into its harnesses, need not link hiredis.
//
// Asynchronous hiredis on the server's event loop (its libevent adapter): a
// call sends its command and returns a Future; the reply completes it from a
// later loop turn. A slow or stalled Redis therefore holds up only the calls
// waiting for it, never the loop: other tools, other sessions and /healthz
// are answered meanwhile. One connection, commands pipelined on it in order.
//
// Timeouts (--redis-timeout-ms), from libevent timers, since hiredis 0.14's
// asynchronous API has none of its own: connecting is bounded by one, the
// handshake after it (AUTH, SELECT, the CONFIG GETs, pipelined) by another,
// and each command by its own from when it is sent. A call thus waits at
// most a connect, a handshake and its command. A command that times out
// ends the connection: Redis answers in order, so every command behind it
// on that connection fails too (with the same reason). (Resolving
// --redis-host by name is not bounded: give an address.)
//
// Reconnection: a connection that fails or is closed is dropped, and the
// next call connects afresh; calls made while a connection is being set up
// wait for it. After a failed attempt, calls fail at once for a second, so
// that a host that swallows packets does not cost every request a timeout.
// A command that fails on a connection kept from earlier is sent once more
// on a fresh one (Redis may have restarted in between; HSET and HGET are
// idempotent). A command that timed out is not retried: Redis may still
// apply it, after the caller was told "not saved" -- the usual ambiguity of
// a networked store.
//
// Durability, the same promise as SQLite's: Redis answers a write once it is
// in its append-only file, which is fsynced before the answer only with
// appendonly=yes and appendfsync=always (Redis 7.0 has no WAITAOF). Every new
// connection checks both with CONFIG GET and is refused otherwise, unless
// --redis-allow-async-durability (then one warning per process).
//
// Sentinel (--redis-sentinel, --redis-master): the primary's address is not
// configured but asked for. A connection attempt asks the Sentinels in turn
// (starting with the one that answered last) for the master's address
// (SENTINEL get-master-addr-by-name, after AUTH with Sentinel's own
// credentials), connects there and runs the handshake with ROLE added: only
// a server that says "master" is used. A Sentinel that cannot be asked, or
// whose answer does not lead to a primary that passes the handshake, passes
// the turn to the next one; every Sentinel is asked at most once per
// attempt, and the whole attempt is bounded by two timeouts (a connect and a
// handshake's worth, as without Sentinel). The connection is dropped when it
// is lost, when a command times out, on a READONLY reply (the server has
// been made a replica), and when a Sentinel announces "+switch-master" for
// our master to another address (a subscription on one Sentinel, moved to
// the next when it drops or has not confirmed the subscription, asked for
// again every 2 s, by the next time: a stopped or cut-off Sentinel keeps
// its connection open and says nothing); the next call discovers the
// primary again. What
// was waiting on a dropped connection gets a storage error, never an answer
// from a replica.
//
// WAIT (--redis-wait-replicas N): a save sends HSET and WAIT pipelined on
// one connection; it is confirmed only when WAIT counts N replicas, or as
// many as the primary has connected when fewer are (ROLE, asked again at
// most once a second): with none connected none can be promoted, and the
// primary has the save on its disk.  Fewer within T, or the connection gone
// before WAIT answered: a storage error marked unconfirmed (the HSET was
// written on the primary, and may or may not survive its loss).
//
// Keys: one HASH per owner, key = prefix + owner, field = snippet name. The
// prefix is fixed, so distinct owners give distinct keys whatever bytes they
// hold (the shared scope's empty owner is the prefix itself), and a name is
// never part of a key. Every argument goes as binary-safe %b.
//
// hiredis frees a context itself after a failed connect and after a lost
// connection, and runs the callbacks of commands still pending on a freed
// context with a null reply; a context dropped here is no longer ctx_, so
// every callback first checks that its context is still the current one.
#include "../config.hpp"
#include "../secret_file.hpp"
#include "../log.hpp"
#include "../snippet_store.hpp"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <list>
#include <memory>
#include <sstream>
#include <vector>

namespace toolserver {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryPause = std::chrono::seconds(1);

// What went wrong with a reply that is not the expected type.
std::string unexpected(const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) return std::string("redis: ") + r->str;
    return "redis: unexpected reply type " + std::to_string(r->type);
}

// Redis's answer to a write on a server that has been made a replica.
bool is_readonly(const redisReply* r) {
    return r && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, "READONLY", 8) == 0;
}

bool is_string(const redisReply* r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

std::string address(const std::string& host, int port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

struct EventDeleter {
    void operator()(event* e) const noexcept { event_free(e); }
};
using Timer = std::unique_ptr<event, EventDeleter>;

class RedisStore final : public SnippetStore {
public:
    RedisStore(const RedisConfig& cfg, event_base* base, std::string password, std::string sentinel_password)
        : cfg_(cfg),
          base_(base),
          password_(std::move(password)),
          sentinel_password_(std::move(sentinel_password)),
          host_(cfg.host),
          port_(cfg.port) {}

    ~RedisStore() override {
        // Nothing is answered any more: the server that would send the
        // answers is gone before the store.
        waiting_.clear();
        sent_.clear();
        handshake_timer_.reset();
        attempt_timer_.reset();
        sub_timer_.reset();
        // Freeing runs the pending callbacks, which find their context dropped.
        drop_query();
        drop_sub();
        if (redisAsyncContext* ac = ctx_) {
            ctx_ = nullptr;
            redisAsyncFree(ac);
        }
    }

    // The first connection, on a loop that runs nothing else yet; a failure
    // here stops the start.
    bool open(std::string& error) {
        connect();
        while (attempting() && !ready_) event_base_loop(base_, EVLOOP_ONCE);
        if (!ready_) {
            error = last_error_;
            return false;
        }
        return true;
    }

    Future<StoreResult> save(const std::string& owner, const std::string& name,
                             const std::string& content) override {
        auto c = std::make_unique<Call>();
        c->op = Op::Save;
        c->key = cfg_.prefix + owner;
        c->name = name;
        c->content = content;
        return start(std::move(c));
    }

    Future<StoreResult> load(const std::string& owner, const std::string& name) override {
        auto c = std::make_unique<Call>();
        c->op = Op::Load;
        c->key = cfg_.prefix + owner;
        c->name = name;
        return start(std::move(c));
    }

private:
    enum class Op { Save, Load };

    // One save or load, from its start until it is answered.
    struct Call {
        RedisStore* store = nullptr;
        Op op = Op::Save;
        std::string key, name, content;
        Promise<StoreResult> promise;
        Timer timer;              // its command's timeout, while sent
        bool waited = false;      // it waited for the connection it is sent on
        bool retried = false;
        bool written = false;     // a save with WAIT: HSET answered, WAIT awaited
        StoreResult write;        // ... and what HSET answered
        int want = 0;             // the replicas its WAIT asked for
    };
    using Calls = std::list<std::unique_ptr<Call>>;

    bool sentinel_mode() const { return !cfg_.sentinels.empty(); }
    bool waits() const { return cfg_.wait_replicas > 0; }

    // A connection is being set up (or is ready).
    bool attempting() const { return ctx_ || query_; }

    Future<StoreResult> start(std::unique_ptr<Call> c) {
        c->store = this;
        if (!attempting() && !connect()) return Future<StoreResult>::ready(StoreResult::failed(last_error_ + pause_note_));
        Future<StoreResult> f = c->promise.future();
        if (ready_) {
            send(std::move(c));
        } else {
            c->waited = true;
            waiting_.push_back(std::move(c));
        }
        return f;
    }

    // --- commands --------------------------------------------------------------

    void send(std::unique_ptr<Call> c) {
        Call* call = c.get();
        call->written = false;
        int rc = call->op == Op::Save
                     ? redisAsyncCommand(ctx_, &RedisStore::on_reply, call, "HSET %b %b %b", call->key.data(),
                                         call->key.size(), call->name.data(), call->name.size(),
                                         call->content.data(), call->content.size())
                     : redisAsyncCommand(ctx_, &RedisStore::on_reply, call, "HGET %b %b", call->key.data(),
                                         call->key.size(), call->name.data(), call->name.size());
        // WAIT right behind the write, on the same connection: it counts the
        // replicas that have everything up to this write.
        if (rc == REDIS_OK && call->op == Op::Save && waits()) {
            if (!replicas_asked_ && Clock::now() - replicas_at_ >= std::chrono::seconds(1) &&
                redisAsyncCommand(ctx_, &RedisStore::on_replicas, nullptr, "ROLE") == REDIS_OK)
                replicas_asked_ = true;
            call->want = std::min(cfg_.wait_replicas, replicas_);
            rc = redisAsyncCommand(ctx_, &RedisStore::on_reply, call, "WAIT %d %d", call->want,
                                   cfg_.wait_timeout_ms);
        }
        if (rc != REDIS_OK) {
            // The context refuses new commands: it is being torn down.
            finish(std::move(c), StoreResult::failed("redis at " + where() + ": " + ctx_->errstr));
            return;
        }
        call->timer.reset(evtimer_new(base_, &RedisStore::on_command_timeout, call));
        timeval tv = timeout();
        if (call->timer) evtimer_add(call->timer.get(), &tv);
        sent_.push_back(std::move(c));
    }

    static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return;  // a dropped context: its calls are settled
        // Redis answers in order: this is the oldest command sent.
        if (self->sent_.empty() || self->sent_.front().get() != privdata) return;
        if (!reply) {
            // hiredis lost the connection and is freeing the context: all
            // is settled now; the callbacks that follow find ctx_ changed.
            self->lost(ac->errstr[0] ? ac->errstr : "connection lost", /*free_here=*/false, /*retry=*/true);
            return;
        }
        auto* r = static_cast<redisReply*>(reply);
        Call* call = self->sent_.front().get();
        if (call->op == Op::Save && self->waits() && !call->written) {
            // HSET's answer; the call waits on for WAIT's.
            call->written = true;
            call->write = self->result(Op::Save, r);
            if (is_readonly(r)) self->readonly(r);
            return;
        }
        std::unique_ptr<Call> c = std::move(self->sent_.front());
        self->sent_.pop_front();
        StoreResult result = c->written ? self->confirmation(c->write, r, c->want) : self->result(c->op, r);
        // A replica answered: drop the connection before anything else is sent on it.
        if (is_readonly(r)) self->readonly(r);
        self->finish(std::move(c), std::move(result));
    }

    StoreResult result(Op op, const redisReply* r) const {
        if (op == Op::Save) {
            if (is_readonly(r)) return StoreResult::failed(readonly_error(r));
            if (r->type != REDIS_REPLY_INTEGER) return StoreResult::failed(unexpected(r));
            return StoreResult::ok();
        }
        if (r->type == REDIS_REPLY_NIL) return StoreResult::not_found();
        if (r->type != REDIS_REPLY_STRING) return StoreResult::failed(unexpected(r));
        return StoreResult::ok(std::string(r->str, r->len));
    }

    // A save's outcome from HSET's result and WAIT's reply.
    StoreResult confirmation(const StoreResult& write, const redisReply* r, int want) const {
        if (write.status != StoreStatus::Ok) return write;
        if (r->type != REDIS_REPLY_INTEGER)
            return StoreResult::not_confirmed("redis at " + where() + ": WAIT failed: " + unexpected(r));
        if (r->integer < want)
            return StoreResult::not_confirmed("redis at " + where() + ": WAIT counted " + std::to_string(r->integer) +
                                              " of " + std::to_string(want) + " replicas within " +
                                              std::to_string(cfg_.wait_timeout_ms) + " ms");
        return StoreResult::ok();
    }

    // ROLE's count of connected replicas: ["master", offset, [[ip, port,
    // offset], ...]].  Anything else changes nothing here: a demoted
    // server answers the next write READONLY.
    static void on_replicas(redisAsyncContext* ac, void* reply, void*) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_ || !reply) return;
        self->replicas_asked_ = false;
        self->count_replicas(static_cast<redisReply*>(reply));
    }

    void count_replicas(const redisReply* r) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && is_string(r->element[0]) &&
            std::string(r->element[0]->str, r->element[0]->len) == "master" &&
            r->element[2]->type == REDIS_REPLY_ARRAY) {
            replicas_ = static_cast<int>(r->element[2]->elements);
            replicas_at_ = Clock::now();
        }
    }

    std::string readonly_error(const redisReply* r) const {
        return "redis at " + where() + " is no longer the primary: " + r->str;
    }

    // A READONLY reply: the server has been made a replica. The connection
    // goes; the next call discovers the primary again.
    void readonly(const redisReply* r) {
        lost(readonly_error(r), /*free_here=*/true, /*retry=*/false);
    }

    static void on_command_timeout(evutil_socket_t, short, void* arg) {
        auto* call = static_cast<Call*>(arg);
        call->store->lost("timed out", /*free_here=*/true, /*retry=*/false);
    }

    // Answers `c` (last: the answer may run anything, this store included).
    void finish(std::unique_ptr<Call> c, StoreResult r) {
        c->timer.reset();
        Promise<StoreResult> p = c->promise;
        c.reset();
        p.set(std::move(r));
    }

    // --- the connection ----------------------------------------------------------

    // Starts a connection attempt: straight to --redis-host, or through the
    // Sentinels. False, with last_error_, when it cannot even start, or when
    // the last attempt failed under a second ago.
    bool connect() {
        if (Clock::now() < retry_at_) {
            pause_note_ = " (next attempt within a second)";
            return false;
        }
        pause_note_.clear();
        if (!sentinel_mode()) {
            connect_to(cfg_.host, cfg_.port);
            return attempting();
        }
        discovering_ = true;
        tried_ = 0;
        step_error_.clear();
        attempt_timer_.reset(evtimer_new(base_, &RedisStore::on_attempt_timeout, this));
        timeval tv = timeout();
        tv.tv_sec *= 2;
        tv.tv_usec *= 2;
        if (tv.tv_usec >= 1000000) {
            tv.tv_sec += 1;
            tv.tv_usec -= 1000000;
        }
        if (attempt_timer_) evtimer_add(attempt_timer_.get(), &tv);
        ask_next_sentinel();
        return attempting();
    }

    // A new context to host:port on the loop, or null with `why`.
    redisAsyncContext* open_context(const std::string& host, int port, redisConnectCallback* connected,
                                    redisDisconnectCallback* disconnected, std::string& why) {
        redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
        if (!ac || ac->err) {
            why = ac ? ac->errstr : "out of memory";
            if (ac) redisAsyncFree(ac);
            return nullptr;
        }
        ac->data = this;
        if (redisLibeventAttach(ac, base_) != REDIS_OK) {
            redisAsyncFree(ac);
            why = "cannot attach it to the event loop";
            return nullptr;
        }
        redisAsyncSetConnectCallback(ac, connected);
        redisAsyncSetDisconnectCallback(ac, disconnected);
        return ac;
    }

    // Connects to the primary (or what the Sentinel named as such).
    void connect_to(const std::string& host, int port) {
        host_ = host;
        port_ = port;
        std::string why;
        redisAsyncContext* ac = open_context(host, port, &RedisStore::on_connect, &RedisStore::on_disconnect, why);
        if (!ac) {
            step_failed("cannot connect to redis at " + where() + ": " + why);
            return;
        }
        ctx_ = ac;
        ready_ = false;
        step_ = "connect";
        // until ROLE says how many are connected, wait for them all
        replicas_ = cfg_.wait_replicas;
        replicas_at_ = Clock::time_point{};
        replicas_asked_ = false;
        arm_handshake_timer();
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return;
        if (status != REDIS_OK) {
            // hiredis frees the context after this callback.
            self->ctx_ = nullptr;
            self->step_failed("cannot connect to redis at " + self->where() + ": " + ac->errstr);
            return;
        }
        self->handshake();
    }

    static void on_disconnect(const redisAsyncContext* ac, int) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return;
        // hiredis frees the context after this callback.
        self->lost(ac->errstr[0] ? ac->errstr : "connection closed", /*free_here=*/false, /*retry=*/true);
    }

    // The connection is unusable: drop it (free_here: hiredis is not freeing
    // it itself); settle what was sent on it and what waited for it. retry:
    // what was sent on a connection kept from earlier goes once more on a
    // fresh one (a lost connection, not a timeout, nor a server that has
    // become a replica).
    void lost(const std::string& why, bool free_here, bool retry) {
        redisAsyncContext* ac = ctx_;
        if (!ac) return;
        const bool was_ready = ready_;
        ctx_ = nullptr;
        ready_ = false;
        handshake_timer_.reset();
        if (free_here) redisAsyncFree(ac);
        if (!was_ready) {
            step_failed(std::strcmp(step_, "connect") == 0
                            ? "cannot connect to redis at " + where() + ": " + why
                            : "redis at " + where() + ": " + step_ + " failed: " + why);
            return;
        }
        const std::string error = why.rfind("redis at ", 0) == 0 ? why : "redis at " + where() + ": " + why;
        LOG_WARN("redis_connection_lost", {{"error", error}});
        Calls sent, failed, again;
        sent.swap(sent_);
        for (auto& c : sent) {
            c->timer.reset();
            if (retry && !c->waited && !c->retried) {
                c->retried = true;
                again.push_back(std::move(c));
            } else {
                failed.push_back(std::move(c));
            }
        }
        for (auto& c : failed) {
            // A save whose HSET was answered but not its WAIT: written, not confirmed.
            StoreResult r = c->written && c->write.status == StoreStatus::Ok
                                ? StoreResult::not_confirmed(error + " (before WAIT answered)")
                                : StoreResult::failed(error);
            finish(std::move(c), std::move(r));
        }
        if (again.empty()) return;
        if (!attempting() && !connect()) {
            for (auto& c : again) finish(std::move(c), StoreResult::failed(last_error_ + pause_note_));
            return;
        }
        for (auto& c : again) {
            c->waited = true;
            waiting_.push_back(std::move(c));
        }
    }

    // One step of an attempt failed: with Sentinel, the next Sentinel gets
    // its turn; else (or when none is left) the attempt has failed.
    void step_failed(const std::string& error) {
        handshake_timer_.reset();
        if (discovering_) {
            step_error_ = error;
            ask_next_sentinel();
            return;
        }
        attempt_failed(error);
    }

    // A connection attempt failed: nothing is sent for a second; what waited fails.
    void attempt_failed(const std::string& error) {
        handshake_timer_.reset();
        attempt_timer_.reset();
        discovering_ = false;
        retry_at_ = Clock::now() + kRetryPause;
        last_error_ = error;
        pause_note_.clear();
        Calls waiting;
        waiting.swap(waiting_);
        for (auto& c : waiting) finish(std::move(c), StoreResult::failed(error));
    }

    static void on_attempt_timeout(evutil_socket_t, short, void* arg) {
        auto* self = static_cast<RedisStore*>(arg);
        self->drop_query();
        if (redisAsyncContext* ac = self->ctx_; ac && !self->ready_) {
            self->ctx_ = nullptr;
            redisAsyncFree(ac);
        }
        self->attempt_failed("no usable primary for master " + self->cfg_.master_name + " within " +
                             std::to_string(2 * self->cfg_.timeout_ms) + " ms" +
                             (self->step_error_.empty() ? std::string() : " (before: " + self->step_error_ + ")"));
    }

    std::string no_primary() const {
        return "no Sentinel named a usable primary for master " + cfg_.master_name + " (last: " + step_error_ + ")";
    }

    // --- discovery: asking the Sentinels ------------------------------------------

    void ask_next_sentinel() {
        const size_t n = cfg_.sentinels.size();
        while (tried_ < n) {
            asking_ = (first_ + tried_) % n;
            ++tried_;
            const RedisAddress& s = cfg_.sentinels[asking_];
            std::string why;
            redisAsyncContext* ac =
                open_context(s.host, s.port, &RedisStore::on_query_connect, &RedisStore::on_query_disconnect, why);
            if (!ac) {
                step_error_ = sentinel_where() + ": cannot connect: " + why;
                continue;
            }
            query_ = ac;
            arm_handshake_timer();
            return;
        }
        attempt_failed(no_primary());
    }

    std::string sentinel_where() const {
        const RedisAddress& s = cfg_.sentinels[asking_];
        return "Sentinel " + address(s.host, s.port);
    }

    // Sentinel asking_ did not lead to a primary: the next one's turn.
    void query_failed(const std::string& why) {
        drop_query();
        step_failed(sentinel_where() + ": " + why);
    }

    void drop_query() {
        if (redisAsyncContext* ac = query_) {
            query_ = nullptr;
            redisAsyncFree(ac);
        }
    }

    // Sentinel's credentials, on a connection to a Sentinel.
    void sentinel_auth(redisAsyncContext* ac, redisCallbackFn* fn) {
        if (cfg_.sentinel_user.empty())
            redisAsyncCommand(ac, fn, nullptr, "AUTH %b", sentinel_password_.data(), sentinel_password_.size());
        else
            redisAsyncCommand(ac, fn, nullptr, "AUTH %b %b", cfg_.sentinel_user.data(), cfg_.sentinel_user.size(),
                              sentinel_password_.data(), sentinel_password_.size());
    }

    std::string sentinel_refusal(const redisReply* r) const {
        // Sentinel's message never repeats the password.
        return "refused the credentials" +
               (cfg_.sentinel_user.empty() ? std::string() : " of user " + cfg_.sentinel_user) + ": " + r->str;
    }

    static void on_query_connect(const redisAsyncContext* cac, int status) {
        auto* ac = const_cast<redisAsyncContext*>(cac);
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->query_) return;
        if (status != REDIS_OK) {
            self->query_ = nullptr;  // hiredis frees it after this callback
            self->step_failed(self->sentinel_where() + ": cannot connect: " + ac->errstr);
            return;
        }
        if (!self->sentinel_password_.empty()) self->sentinel_auth(ac, &RedisStore::on_query_auth);
        redisAsyncCommand(ac, &RedisStore::on_master_addr, nullptr, "SENTINEL get-master-addr-by-name %b",
                          self->cfg_.master_name.data(), self->cfg_.master_name.size());
    }

    static void on_query_disconnect(const redisAsyncContext* ac, int) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->query_) return;
        self->query_ = nullptr;  // hiredis frees it after this callback
        self->step_failed(self->sentinel_where() + ": " + (ac->errstr[0] ? ac->errstr : "connection closed"));
    }

    // The query's store, or null when its context was dropped.
    static RedisStore* asking(redisAsyncContext* ac, void* reply) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->query_) return nullptr;
        if (!reply) {
            self->query_ = nullptr;  // hiredis is freeing it
            self->step_failed(self->sentinel_where() + ": " + (ac->errstr[0] ? ac->errstr : "connection lost"));
            return nullptr;
        }
        return self;
    }

    static void on_query_auth(redisAsyncContext* ac, void* reply, void*) {
        RedisStore* self = asking(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) self->query_failed(self->sentinel_refusal(r));
    }

    static void on_master_addr(redisAsyncContext* ac, void* reply, void*) {
        RedisStore* self = asking(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            self->query_failed(std::string("SENTINEL get-master-addr-by-name: ") + r->str);
            return;
        }
        if (r->type == REDIS_REPLY_NIL) {
            self->query_failed("does not know master " + self->cfg_.master_name);
            return;
        }
        int port = 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && is_string(r->element[0]) &&
            is_string(r->element[1]))
            port = std::atoi(r->element[1]->str);
        if (port <= 0 || port > 65535) {
            self->query_failed("unexpected answer to SENTINEL get-master-addr-by-name");
            return;
        }
        const std::string host(r->element[0]->str, r->element[0]->len);
        self->drop_query();  // inside its callback: hiredis frees it after
        self->handshake_timer_.reset();
        self->connect_to(host, port);
    }

    // --- "+switch-master": a subscription on one Sentinel -------------------------

    void subscribe() {
        sub_timer_.reset();
        if (sub_ || !sentinel_mode()) return;
        const RedisAddress& s = cfg_.sentinels[sub_index_ % cfg_.sentinels.size()];
        std::string why;
        sub_ = open_context(s.host, s.port, &RedisStore::on_sub_connect, &RedisStore::on_sub_disconnect, why);
        if (!sub_) {
            subscribe_later();
            return;
        }
        // Bounds the connect, AUTH and SUBSCRIBE.
        arm_sub_timer(timeout());
    }

    void arm_sub_timer(timeval tv) {
        sub_timer_.reset(evtimer_new(base_, &RedisStore::on_sub_timer, this));
        if (sub_timer_) evtimer_add(sub_timer_.get(), &tv);
    }

    // The subscription failed or ended: the next Sentinel, a second later.
    void subscribe_later() {
        if (subscribed_) LOG_WARN("redis_sentinel_lost", {{"sentinel", sub_where()}});
        subscribed_ = false;
        beat_unconfirmed_ = false;
        ++sub_index_;
        arm_sub_timer({1, 0});
    }

    std::string sub_where() const {
        const RedisAddress& s = cfg_.sentinels[sub_index_ % cfg_.sentinels.size()];
        return address(s.host, s.port);
    }

    void drop_sub() {
        if (redisAsyncContext* ac = sub_) {
            sub_ = nullptr;
            redisAsyncFree(ac);
        }
    }

    // Subscribed: SUBSCRIBE again every kBeat (Redis confirms each one, even
    // of a channel it has: a heartbeat that needs nothing more in the
    // Sentinel's ACL); the last one unconfirmed, the Sentinel is left.
    static constexpr timeval kBeat{2, 0};

    static void on_sub_timer(evutil_socket_t, short, void* arg) {
        auto* self = static_cast<RedisStore*>(arg);
        if (self->sub_ && self->subscribed_ && !self->beat_unconfirmed_) {
            self->beat_unconfirmed_ = true;
            redisAsyncCommand(self->sub_, &RedisStore::on_switch_master, nullptr, "SUBSCRIBE +switch-master");
            self->arm_sub_timer(kBeat);
            return;
        }
        if (self->sub_) {  // not subscribed, or not confirmed, in time
            if (self->subscribed_) {
                LOG_WARN("redis_sentinel_silent", {{"sentinel", self->sub_where()},
                                                   {"error", "the subscription was not confirmed within " +
                                                                std::to_string(kBeat.tv_sec) + " s"}});
                self->subscribed_ = false;
            }
            self->drop_sub();
            self->subscribe_later();
            return;
        }
        self->subscribe();
    }

    static void on_sub_connect(const redisAsyncContext* cac, int status) {
        auto* ac = const_cast<redisAsyncContext*>(cac);
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->sub_) return;
        if (status != REDIS_OK) {
            self->sub_ = nullptr;  // hiredis frees it after this callback
            self->subscribe_later();
            return;
        }
        // SUBSCRIBE only once AUTH has answered: hiredis 0.14 gives a
        // subscribed context's other replies to no callback.
        if (!self->sentinel_password_.empty())
            self->sentinel_auth(ac, &RedisStore::on_sub_auth);
        else
            redisAsyncCommand(ac, &RedisStore::on_switch_master, nullptr, "SUBSCRIBE +switch-master");
    }

    static void on_sub_disconnect(const redisAsyncContext* ac, int) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->sub_) return;
        self->sub_ = nullptr;  // hiredis frees it after this callback
        self->subscribe_later();
    }

    static void on_sub_auth(redisAsyncContext* ac, void* reply, void*) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->sub_) return;
        if (!reply) {
            self->sub_ = nullptr;
            self->subscribe_later();
            return;
        }
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            LOG_WARN("redis_sentinel_refused", {{"sentinel", self->sub_where()}, {"error", self->sentinel_refusal(r)}});
            self->drop_sub();
            self->subscribe_later();
            return;
        }
        redisAsyncCommand(ac, &RedisStore::on_switch_master, nullptr, "SUBSCRIBE +switch-master");
    }

    // SUBSCRIBE's confirmation, then one message per switch:
    // "<master> <old ip> <old port> <new ip> <new port>".
    static void on_switch_master(redisAsyncContext* ac, void* reply, void*) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->sub_) return;
        if (!reply) {
            self->sub_ = nullptr;  // hiredis is freeing it
            self->subscribe_later();
            return;
        }
        auto* r = static_cast<redisReply*>(reply);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_string(r->element[0])) return;
        const std::string kind(r->element[0]->str, r->element[0]->len);
        if (kind == "subscribe") {
            self->beat_unconfirmed_ = false;
            if (!self->subscribed_) {
                self->subscribed_ = true;
                LOG_DEBUG("redis_sentinel_subscribed", {{"sentinel", self->sub_where()}});
                self->arm_sub_timer(kBeat);
            }
            return;
        }
        if (kind != "message" || !is_string(r->element[2])) return;
        std::istringstream words(std::string(r->element[2]->str, r->element[2]->len));
        std::string name, old_host, old_port, host;
        int port = 0;
        if (!(words >> name >> old_host >> old_port >> host >> port) || name != self->cfg_.master_name) return;
        self->switched(host, port);
    }

    // The Sentinels moved our master: a connection elsewhere goes, and the
    // next call connects to the new primary without waiting out a pause.
    void switched(const std::string& host, int port) {
        LOG_INFO("redis_switch_master", {{"master", cfg_.master_name}, {"redis", address(host, port)}});
        retry_at_ = {};
        if (ctx_ && ready_ && (host != host_ || port != port_))
            lost("the Sentinels moved master " + cfg_.master_name + " to " + address(host, port),
                 /*free_here=*/true, /*retry=*/false);
    }

    // --- the handshake: AUTH, SELECT, ROLE (Sentinel), CONFIG GET x2, pipelined ----

    const char* step_after_auth() const { return cfg_.db != 0 ? "SELECT" : step_after_select(); }
    const char* step_after_select() const { return sentinel_mode() ? "ROLE" : "CONFIG GET"; }

    void handshake() {
        step_ = !password_.empty() ? "AUTH" : step_after_auth();
        arm_handshake_timer();
        if (!password_.empty()) {
            if (cfg_.user.empty())
                redisAsyncCommand(ctx_, &RedisStore::on_auth, nullptr, "AUTH %b", password_.data(),
                                  password_.size());
            else
                redisAsyncCommand(ctx_, &RedisStore::on_auth, nullptr, "AUTH %b %b", cfg_.user.data(),
                                  cfg_.user.size(), password_.data(), password_.size());
        }
        if (cfg_.db != 0) redisAsyncCommand(ctx_, &RedisStore::on_select, nullptr, "SELECT %d", cfg_.db);
        if (sentinel_mode()) redisAsyncCommand(ctx_, &RedisStore::on_role, nullptr, "ROLE");
        redisAsyncCommand(ctx_, &RedisStore::on_config, const_cast<char*>("appendonly"), "CONFIG GET appendonly");
        redisAsyncCommand(ctx_, &RedisStore::on_config, const_cast<char*>("appendfsync"), "CONFIG GET appendfsync");
        appendonly_.clear();
        appendfsync_.clear();
        refusal_.clear();
    }

    // The handshake reply's store, or null when its context was dropped.
    static RedisStore* current(redisAsyncContext* ac, void* reply) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return nullptr;
        if (!reply) {
            self->lost(ac->errstr[0] ? ac->errstr : "connection lost", /*free_here=*/false, /*retry=*/true);
            return nullptr;
        }
        return self;
    }

    // Ends the handshake with `error`: the connection goes.
    void refuse(const std::string& error) {
        redisAsyncContext* ac = ctx_;
        ctx_ = nullptr;
        ready_ = false;
        redisAsyncFree(ac);  // inside a reply callback: hiredis frees it after
        step_failed(error);
    }

    static void on_auth(redisAsyncContext* ac, void* reply, void*) {
        RedisStore* self = current(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            // Redis's message never repeats the password.
            self->refuse("redis at " + self->where() + " refused the credentials" +
                         (self->cfg_.user.empty() ? std::string() : " of user " + self->cfg_.user) + ": " + r->str);
            return;
        }
        self->step_ = self->step_after_auth();
    }

    static void on_select(redisAsyncContext* ac, void* reply, void*) {
        RedisStore* self = current(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            self->refuse("redis at " + self->where() + " refused database " + std::to_string(self->cfg_.db) +
                         ": " + r->str);
            return;
        }
        self->step_ = self->step_after_select();
    }

    // Only a server that calls itself master is used: a Sentinel's answer
    // may be stale, and a replica would answer reads with what it has.
    static void on_role(redisAsyncContext* ac, void* reply, void*) {
        RedisStore* self = current(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            self->refuse("redis at " + self->where() + " refused ROLE, so it cannot be told from a replica: " +
                         r->str);
            return;
        }
        std::string role = "(unknown)";
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && is_string(r->element[0]))
            role.assign(r->element[0]->str, r->element[0]->len);
        if (role != "master") {
            self->refuse("redis at " + self->where() + " is not the primary (ROLE " + role + ")");
            return;
        }
        self->count_replicas(r);
        self->step_ = "CONFIG GET";
    }

    static void on_config(redisAsyncContext* ac, void* reply, void* privdata) {
        RedisStore* self = current(ac, reply);
        if (!self) return;
        auto* r = static_cast<redisReply*>(reply);
        const bool appendonly = std::strcmp(static_cast<const char*>(privdata), "appendonly") == 0;
        std::string value;
        if (r->type == REDIS_REPLY_ERROR) {
            if (self->refusal_.empty()) self->refusal_ = r->str;
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
            value.assign(r->element[1]->str, r->element[1]->len);
        } else {
            value = "(unknown)";
        }
        (appendonly ? self->appendonly_ : self->appendfsync_) = value;
        if (!appendonly) self->check_durability();
    }

    void check_durability() {
        std::string problem;
        if (!refusal_.empty()) {
            if (refusal_.rfind("NOAUTH", 0) == 0) {
                refuse("redis at " + where() + " requires a password (--redis-password-file): " + refusal_);
                return;
            }
            problem = "CONFIG GET is not permitted at redis " + where() + " (" + refusal_ +
                      "), so it cannot be checked that every save is fsynced";
        } else if (appendonly_ != "yes" || appendfsync_ != "always") {
            problem = "redis at " + where() + " has appendonly " + appendonly_ + " and appendfsync " + appendfsync_ +
                      ", so an acknowledged save could be lost in a crash; durable saves need appendonly yes and "
                      "appendfsync always";
        }
        if (!problem.empty()) {
            if (!cfg_.allow_async_durability) {
                refuse(problem + " (or pass --redis-allow-async-durability to accept that)");
                return;
            }
            if (!warned_) {
                LOG_WARN("redis_async_durability", {{"reason", problem}});
                warned_ = true;
            }
        }
        handshake_timer_.reset();
        attempt_timer_.reset();
        ready_ = true;
        if (sentinel_mode()) {
            discovering_ = false;
            first_ = asking_;  // it answered well: asked first next time
            LOG_INFO("redis_connected", {{"redis", where()}, {"db", std::to_string(cfg_.db)},
                                         {"master", cfg_.master_name}});
            if (!sub_ && !sub_timer_) {
                if (!subscribed_) sub_index_ = asking_;  // the Sentinel that just answered
                subscribe();
            }
        } else {
            LOG_INFO("redis_connected", {{"redis", where()}, {"db", std::to_string(cfg_.db)}});
        }
        Calls waiting;
        waiting.swap(waiting_);
        for (auto& c : waiting) {
            if (!ctx_) {  // lost while sending
                finish(std::move(c), StoreResult::failed("redis at " + where() + ": connection lost"));
                continue;
            }
            send(std::move(c));
        }
    }

    void arm_handshake_timer() {
        handshake_timer_.reset(evtimer_new(base_, &RedisStore::on_handshake_timeout, this));
        timeval tv = timeout();
        if (handshake_timer_) evtimer_add(handshake_timer_.get(), &tv);
    }

    // A step took longer than the timeout: a Sentinel's answer, or the
    // primary's connect or handshake.
    static void on_handshake_timeout(evutil_socket_t, short, void* arg) {
        auto* self = static_cast<RedisStore*>(arg);
        if (self->query_) {
            self->query_failed("timed out");
            return;
        }
        self->lost("timed out", /*free_here=*/true, /*retry=*/false);
    }

    timeval timeout() const {
        return timeval{cfg_.timeout_ms / 1000, static_cast<suseconds_t>((cfg_.timeout_ms % 1000) * 1000)};
    }

    std::string where() const { return address(host_, port_); }

    RedisConfig cfg_;
    event_base* base_;
    std::string password_;
    std::string sentinel_password_;
    std::string host_;                  // the primary's address, configured or last named
    int port_;
    redisAsyncContext* ctx_ = nullptr;  // the current connection, if any
    bool ready_ = false;                // its handshake passed
    int replicas_ = 0;                  // connected to the primary, as ROLE said
    Clock::time_point replicas_at_{};   // ... when
    bool replicas_asked_ = false;       // a ROLE for it is on its way
    const char* step_ = "connect";      // the handshake's step awaited
    Timer handshake_timer_;             // bounds one step: connecting, the handshake, a Sentinel's answer
    std::string appendonly_, appendfsync_, refusal_;
    Calls waiting_;  // for the connection being set up
    Calls sent_;     // sent on the ready connection, oldest first
    Clock::time_point retry_at_{};
    std::string last_error_;
    std::string pause_note_;  // said after last_error_ while attempts pause
    bool warned_ = false;

    // Discovery through the Sentinels.
    redisAsyncContext* query_ = nullptr;  // the Sentinel being asked
    bool discovering_ = false;            // an attempt through the Sentinels is under way
    size_t first_ = 0;                    // the Sentinel asked first
    size_t asking_ = 0;                   // the Sentinel asked now
    size_t tried_ = 0;                    // Sentinels asked in this attempt
    std::string step_error_;              // why the last one did not lead to a primary
    Timer attempt_timer_;                 // bounds the whole attempt

    // The "+switch-master" subscription.
    redisAsyncContext* sub_ = nullptr;
    size_t sub_index_ = 0;
    Timer sub_timer_;  // bounds subscribing, the next beat, or waits before the next try
    bool subscribed_ = false;
    bool beat_unconfirmed_ = false;  // a SUBSCRIBE sent again, not confirmed yet
};

}  // namespace

std::unique_ptr<SnippetStore> open_redis_store(const RedisConfig& cfg, event_base* base, std::string& error) {
    std::string password, sentinel_password;
    if (!cfg.password_file.empty() && !read_secret_file("--redis-password-file", cfg.password_file, password, error)) return nullptr;
    if (!cfg.user.empty() && password.empty()) {
        error = "--redis-user needs --redis-password-file";
        return nullptr;
    }
    if (!cfg.sentinel_password_file.empty() &&
        !read_secret_file("--redis-sentinel-password-file", cfg.sentinel_password_file, sentinel_password, error))
        return nullptr;
    auto store = std::make_unique<RedisStore>(cfg, base, std::move(password), std::move(sentinel_password));
    if (!store->open(error)) return nullptr;
    return store;
}

}  // namespace toolserver
