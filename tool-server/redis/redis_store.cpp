// Redis implementation of SnippetStore, so that several tool servers (behind
// several nginx edges) share one set of snippets.
//
// Kept in its own folder so that fuzz/fuzz.mk, which links every
// tool-server/*.cpp but main.cpp into its harnesses, need not link hiredis.
//
// Synchronous hiredis on the event-loop thread, like the SQLite store: one
// short command per tool call, no locking or callbacks between sessions.
// Every connect and command has a timeout (--redis-timeout-ms), so a Redis
// that is down or stalled costs a request a timeout or two, never a hang.
// (Resolving --redis-host by name is not bounded by it: give an address.)
//
// Reconnection: a connection error drops the context and the next call
// connects afresh. After a failed attempt, calls fail at once for a second,
// so that a host that swallows packets does not stall the loop on every
// request. A command that fails on a connection kept from earlier is retried
// once on a fresh one (Redis may have restarted in between; HSET and HGET
// are idempotent). A command that timed out is not retried: Redis may still
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
#include "../config.hpp"
#include "../log.hpp"
#include "../snippet_store.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryPause = std::chrono::seconds(1);

struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

bool read_password(const std::string& path, std::string& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read --redis-password-file " + path + ": " + std::strerror(errno);
        return false;
    }
    std::ostringstream text;
    text << in.rdbuf();
    out = text.str();
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (out.empty()) {
        error = "--redis-password-file " + path + " is empty";
        return false;
    }
    return true;
}

// Whether a command failed by its timeout. Call right after the failure:
// hiredis leaves read()'s errno, and EAGAIN there is SO_RCVTIMEO expiring.
bool timed_out(const redisContext* c) {
    return c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Why a command got no reply.
std::string no_reply(const redisContext* c, bool late) { return late ? "timed out" : c->errstr; }

// What went wrong with a reply that is not the expected type.
std::string unexpected(const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) return std::string("redis: ") + r->str;
    return "redis: unexpected reply type " + std::to_string(r->type);
}

class RedisStore final : public SnippetStore {
public:
    RedisStore(const RedisConfig& cfg, std::string password) : cfg_(cfg), password_(std::move(password)) {}

    // The first connection; a failure here stops the start.
    bool open(std::string& error) { return connect(error); }

    StoreStatus save(const std::string& owner, const std::string& name, const std::string& content,
                     std::string& error) override {
        std::string key = cfg_.prefix + owner;
        Reply r = run(
            [&](redisContext* c) {
                return redisCommand(c, "HSET %b %b %b", key.data(), key.size(), name.data(), name.size(),
                                    content.data(), content.size());
            },
            error);
        if (!r) return StoreStatus::Error;
        if (r->type != REDIS_REPLY_INTEGER) {
            error = unexpected(r.get());
            return StoreStatus::Error;
        }
        return StoreStatus::Ok;
    }

    StoreStatus load(const std::string& owner, const std::string& name, std::string& content,
                     std::string& error) override {
        std::string key = cfg_.prefix + owner;
        Reply r = run(
            [&](redisContext* c) {
                return redisCommand(c, "HGET %b %b", key.data(), key.size(), name.data(), name.size());
            },
            error);
        if (!r) return StoreStatus::Error;
        if (r->type == REDIS_REPLY_NIL) return StoreStatus::NotFound;
        if (r->type != REDIS_REPLY_STRING) {
            error = unexpected(r.get());
            return StoreStatus::Error;
        }
        content.assign(r->str, r->len);
        return StoreStatus::Ok;
    }

private:
    // Sends one command with `send`, connecting first when needed. Null on a
    // connection failure (with `error`); an error reply is returned as is.
    template <typename Send>
    Reply run(Send send, std::string& error) {
        for (int attempt = 0;; ++attempt) {
            bool reused = ctx_ != nullptr;
            if (!ctx_ && !connect(error)) return nullptr;
            void* reply = send(ctx_.get());
            if (reply) return Reply(static_cast<redisReply*>(reply));
            bool late = timed_out(ctx_.get());
            error = "redis at " + where() + ": " + no_reply(ctx_.get(), late);
            LOG_WARN("redis_connection_lost", {{"error", error}});
            ctx_.reset();  // its state is unknown now; the next call starts afresh
            if (!reused || late || attempt > 0) return nullptr;
        }
    }

    bool connect(std::string& error) {
        if (Clock::now() < retry_at_) {
            error = last_error_ + " (next attempt within a second)";
            return false;
        }
        Context c;
        if (!handshake(c, error)) {
            retry_at_ = Clock::now() + kRetryPause;
            last_error_ = error;
            return false;
        }
        ctx_ = std::move(c);
        LOG_INFO("redis_connected", {{"redis", where()}, {"db", std::to_string(cfg_.db)}});
        return true;
    }

    // Connects, authenticates, selects the database and checks durability.
    bool handshake(Context& c, std::string& error) {
        timeval tv{cfg_.timeout_ms / 1000, static_cast<suseconds_t>((cfg_.timeout_ms % 1000) * 1000)};
        c.reset(redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, tv));
        if (!c || c->err) {
            error = "cannot connect to redis at " + where() + ": " + (c ? c->errstr : "out of memory");
            return false;
        }
        if (redisSetTimeout(c.get(), tv) != REDIS_OK) {
            error = "redis at " + where() + ": cannot set the timeout: " + c->errstr;
            return false;
        }
        if (!password_.empty()) {
            Reply r(static_cast<redisReply*>(
                cfg_.user.empty()
                    ? redisCommand(c.get(), "AUTH %b", password_.data(), password_.size())
                    : redisCommand(c.get(), "AUTH %b %b", cfg_.user.data(), cfg_.user.size(), password_.data(),
                                   password_.size())));
            if (!r) return io_failed(c.get(), "AUTH", error);
            if (r->type == REDIS_REPLY_ERROR) {
                // Redis's message never repeats the password.
                error = "redis at " + where() + " refused the credentials" +
                        (cfg_.user.empty() ? std::string() : " of user " + cfg_.user) + ": " + r->str;
                return false;
            }
        }
        if (cfg_.db != 0) {
            Reply r(static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", cfg_.db)));
            if (!r) return io_failed(c.get(), "SELECT", error);
            if (r->type == REDIS_REPLY_ERROR) {
                error = "redis at " + where() + " refused database " + std::to_string(cfg_.db) + ": " + r->str;
                return false;
            }
        }
        return check_durability(c.get(), error);
    }

    enum class Got { Value, Refused, Failed };

    // CONFIG GET `name`: its value, or Refused with Redis's reason.
    Got config_get(redisContext* c, const char* name, std::string& value, std::string& error) {
        Reply r(static_cast<redisReply*>(redisCommand(c, "CONFIG GET %s", name)));
        if (!r) {
            io_failed(c, "CONFIG GET", error);
            return Got::Failed;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            value = r->str;
            return Got::Refused;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
            value.assign(r->element[1]->str, r->element[1]->len);
        else
            value = "(unknown)";
        return Got::Value;
    }

    bool check_durability(redisContext* c, std::string& error) {
        std::string appendonly, appendfsync, problem;
        Got got = config_get(c, "appendonly", appendonly, error);
        if (got == Got::Value) got = config_get(c, "appendfsync", appendfsync, error);
        if (got == Got::Failed) return false;
        if (got == Got::Refused) {
            const std::string& why = appendfsync.empty() ? appendonly : appendfsync;
            if (why.rfind("NOAUTH", 0) == 0) {
                error = "redis at " + where() + " requires a password (--redis-password-file): " + why;
                return false;
            }
            problem = "CONFIG GET is not permitted at redis " + where() + " (" + why +
                      "), so it cannot be checked that every save is fsynced";
        } else if (appendonly != "yes" || appendfsync != "always") {
            problem = "redis at " + where() + " has appendonly " + appendonly + " and appendfsync " + appendfsync +
                      ", so an acknowledged save could be lost in a crash; durable saves need appendonly yes and "
                      "appendfsync always";
        }
        if (problem.empty()) return true;
        if (!cfg_.allow_async_durability) {
            error = problem + " (or pass --redis-allow-async-durability to accept that)";
            return false;
        }
        if (!warned_) {
            LOG_WARN("redis_async_durability", {{"reason", problem}});
            warned_ = true;
        }
        return true;
    }

    bool io_failed(redisContext* c, const char* what, std::string& error) {
        error = "redis at " + where() + ": " + what + " failed: " + no_reply(c, timed_out(c));
        return false;
    }

    std::string where() const { return cfg_.host + ":" + std::to_string(cfg_.port); }

    RedisConfig cfg_;
    std::string password_;
    Context ctx_;
    Clock::time_point retry_at_{};
    std::string last_error_;
    bool warned_ = false;
};

}  // namespace

std::unique_ptr<SnippetStore> open_redis_store(const RedisConfig& cfg, std::string& error) {
    std::string password;
    if (!cfg.password_file.empty() && !read_password(cfg.password_file, password, error)) return nullptr;
    if (!cfg.user.empty() && password.empty()) {
        error = "--redis-user needs --redis-password-file";
        return nullptr;
    }
    auto store = std::make_unique<RedisStore>(cfg, std::move(password));
    if (!store->open(error)) return nullptr;
    return store;
}
