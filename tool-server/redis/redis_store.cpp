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

struct EventDeleter {
    void operator()(event* e) const noexcept { event_free(e); }
};
using Timer = std::unique_ptr<event, EventDeleter>;

class RedisStore final : public SnippetStore {
public:
    RedisStore(const RedisConfig& cfg, event_base* base, std::string password)
        : cfg_(cfg), base_(base), password_(std::move(password)) {}

    ~RedisStore() override {
        // Nothing is answered any more: the server that would send the
        // answers is gone before the store.
        waiting_.clear();
        sent_.clear();
        handshake_timer_.reset();
        if (redisAsyncContext* ac = ctx_) {
            ctx_ = nullptr;
            redisAsyncFree(ac);  // runs the pending callbacks, which find ctx_ changed
        }
    }

    // The first connection, on a loop that runs nothing else yet; a failure
    // here stops the start.
    bool open(std::string& error) {
        connect();
        while (ctx_ && !ready_) event_base_loop(base_, EVLOOP_ONCE);
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
    };
    using Calls = std::list<std::unique_ptr<Call>>;

    Future<StoreResult> start(std::unique_ptr<Call> c) {
        c->store = this;
        if (!ctx_ && !connect()) return Future<StoreResult>::ready(StoreResult::failed(last_error_ + pause_note_));
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
        int rc = call->op == Op::Save
                     ? redisAsyncCommand(ctx_, &RedisStore::on_reply, call, "HSET %b %b %b", call->key.data(),
                                         call->key.size(), call->name.data(), call->name.size(),
                                         call->content.data(), call->content.size())
                     : redisAsyncCommand(ctx_, &RedisStore::on_reply, call, "HGET %b %b", call->key.data(),
                                         call->key.size(), call->name.data(), call->name.size());
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
        std::unique_ptr<Call> c = std::move(self->sent_.front());
        self->sent_.pop_front();
        if (!reply) {
            // hiredis lost the connection and is freeing the context: all
            // is settled now; the callbacks that follow find ctx_ changed.
            self->sent_.push_front(std::move(c));
            self->lost(ac->errstr[0] ? ac->errstr : "connection lost", /*timed_out=*/false);
            return;
        }
        StoreResult r = self->result(c->op, static_cast<redisReply*>(reply));
        self->finish(std::move(c), std::move(r));
    }

    StoreResult result(Op op, const redisReply* r) const {
        if (op == Op::Save) {
            if (r->type != REDIS_REPLY_INTEGER) return StoreResult::failed(unexpected(r));
            return StoreResult::ok();
        }
        if (r->type == REDIS_REPLY_NIL) return StoreResult::not_found();
        if (r->type != REDIS_REPLY_STRING) return StoreResult::failed(unexpected(r));
        return StoreResult::ok(std::string(r->str, r->len));
    }

    static void on_command_timeout(evutil_socket_t, short, void* arg) {
        auto* call = static_cast<Call*>(arg);
        call->store->lost("timed out", /*timed_out=*/true);
    }

    // Answers `c` (last: the answer may run anything, this store included).
    void finish(std::unique_ptr<Call> c, StoreResult r) {
        c->timer.reset();
        Promise<StoreResult> p = c->promise;
        c.reset();
        p.set(std::move(r));
    }

    // --- the connection ----------------------------------------------------------

    // Starts a connection (and its handshake). False, with last_error_, when
    // it cannot even start, or when the last attempt failed under a second ago.
    bool connect() {
        if (Clock::now() < retry_at_) {
            pause_note_ = " (next attempt within a second)";
            return false;
        }
        pause_note_.clear();
        redisAsyncContext* ac = redisAsyncConnect(cfg_.host.c_str(), cfg_.port);
        if (!ac || ac->err) {
            std::string why = ac ? ac->errstr : "out of memory";
            if (ac) redisAsyncFree(ac);
            attempt_failed("cannot connect to redis at " + where() + ": " + why);
            return false;
        }
        ac->data = this;
        if (redisLibeventAttach(ac, base_) != REDIS_OK) {
            redisAsyncFree(ac);
            attempt_failed("cannot connect to redis at " + where() + ": cannot attach it to the event loop");
            return false;
        }
        redisAsyncSetConnectCallback(ac, &RedisStore::on_connect);
        redisAsyncSetDisconnectCallback(ac, &RedisStore::on_disconnect);
        ctx_ = ac;
        ready_ = false;
        step_ = "connect";
        arm_handshake_timer();
        return true;
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return;
        if (status != REDIS_OK) {
            // hiredis frees the context after this callback.
            self->ctx_ = nullptr;
            self->attempt_failed("cannot connect to redis at " + self->where() + ": " + ac->errstr);
            return;
        }
        self->handshake();
    }

    static void on_disconnect(const redisAsyncContext* ac, int) {
        auto* self = static_cast<RedisStore*>(ac->data);
        if (ac != self->ctx_) return;
        // hiredis frees the context after this callback.
        self->lost(ac->errstr[0] ? ac->errstr : "connection closed", /*timed_out=*/false);
    }

    // The connection is unusable: drop it; settle what was sent on it and
    // what waited for it.
    void lost(const std::string& why, bool timed_out) {
        redisAsyncContext* ac = ctx_;
        if (!ac) return;
        const bool was_ready = ready_;
        ctx_ = nullptr;
        ready_ = false;
        handshake_timer_.reset();
        // hiredis frees a context itself when it reports the loss; one that
        // timed out (a timer's doing, outside hiredis) is freed here.
        if (timed_out) redisAsyncFree(ac);
        if (!was_ready) {
            attempt_failed(std::strcmp(step_, "connect") == 0
                               ? "cannot connect to redis at " + where() + ": " + why
                               : "redis at " + where() + ": " + step_ + " failed: " + why);
            return;
        }
        const std::string error = "redis at " + where() + ": " + why;
        LOG_WARN("redis_connection_lost", {{"error", error}});
        Calls sent, failed, again;
        sent.swap(sent_);
        for (auto& c : sent) {
            c->timer.reset();
            // Sent on a connection kept from earlier, failed by an error: once more on a fresh one.
            if (!timed_out && !c->waited && !c->retried) {
                c->retried = true;
                again.push_back(std::move(c));
            } else {
                failed.push_back(std::move(c));
            }
        }
        for (auto& c : failed) finish(std::move(c), StoreResult::failed(error));
        if (again.empty()) return;
        if (!ctx_ && !connect()) {
            for (auto& c : again) finish(std::move(c), StoreResult::failed(last_error_ + pause_note_));
            return;
        }
        for (auto& c : again) {
            c->waited = true;
            waiting_.push_back(std::move(c));
        }
    }

    // A connection attempt failed: nothing is sent for a second; what waited fails.
    void attempt_failed(const std::string& error) {
        handshake_timer_.reset();
        retry_at_ = Clock::now() + kRetryPause;
        last_error_ = error;
        pause_note_.clear();
        Calls waiting;
        waiting.swap(waiting_);
        for (auto& c : waiting) finish(std::move(c), StoreResult::failed(error));
    }

    // --- the handshake: AUTH, SELECT, CONFIG GET x2, pipelined ---------------------

    void handshake() {
        step_ = !password_.empty() ? "AUTH" : cfg_.db != 0 ? "SELECT" : "CONFIG GET";
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
            self->lost(ac->errstr[0] ? ac->errstr : "connection lost", /*timed_out=*/false);
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
        attempt_failed(error);
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
        self->step_ = self->cfg_.db != 0 ? "SELECT" : "CONFIG GET";
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
        ready_ = true;
        LOG_INFO("redis_connected", {{"redis", where()}, {"db", std::to_string(cfg_.db)}});
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

    static void on_handshake_timeout(evutil_socket_t, short, void* arg) {
        static_cast<RedisStore*>(arg)->lost("timed out", /*timed_out=*/true);
    }

    timeval timeout() const {
        return timeval{cfg_.timeout_ms / 1000, static_cast<suseconds_t>((cfg_.timeout_ms % 1000) * 1000)};
    }

    std::string where() const { return cfg_.host + ":" + std::to_string(cfg_.port); }

    RedisConfig cfg_;
    event_base* base_;
    std::string password_;
    redisAsyncContext* ctx_ = nullptr;  // the current connection, if any
    bool ready_ = false;                // its handshake passed
    const char* step_ = "connect";      // the handshake's step awaited
    Timer handshake_timer_;             // bounds connecting, then the handshake
    std::string appendonly_, appendfsync_, refusal_;
    Calls waiting_;  // for the connection being set up
    Calls sent_;     // sent on the ready connection, oldest first
    Clock::time_point retry_at_{};
    std::string last_error_;
    std::string pause_note_;  // said after last_error_ while attempts pause
    bool warned_ = false;
};

}  // namespace

std::unique_ptr<SnippetStore> open_redis_store(const RedisConfig& cfg, event_base* base, std::string& error) {
    std::string password;
    if (!cfg.password_file.empty() && !read_secret_file("--redis-password-file", cfg.password_file, password, error)) return nullptr;
    if (!cfg.user.empty() && password.empty()) {
        error = "--redis-user needs --redis-password-file";
        return nullptr;
    }
    auto store = std::make_unique<RedisStore>(cfg, base, std::move(password));
    if (!store->open(error)) return nullptr;
    return store;
}

}  // namespace toolserver
