// Snippet storage behind a small interface, so that a networked database can
// replace SQLite without touching the tools.
//
// Calls answer through a Future (later.hpp): a local store (SQLite) answers
// at once with a ready one; a networked store (Redis) answers from a later
// turn of the event loop, so that waiting for it holds up only the requests
// that need it.
#pragma once

#include "later.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct event_base;

namespace toolserver {

enum class StoreStatus { Ok, NotFound, Error };

// The outcome of a save or a load.
struct StoreResult {
    StoreStatus status = StoreStatus::Error;
    std::string content;  // load: the snippet, when Ok
    std::string error;    // Error: why (for the log, never for the client)
    // Error of a save that the store wrote but could not confirm (Redis's
    // WAIT counted too few replicas): it may or may not be kept.
    bool unconfirmed = false;

    static StoreResult ok(std::string content = {}) { return {StoreStatus::Ok, std::move(content), {}, false}; }
    static StoreResult not_found() { return {StoreStatus::NotFound, {}, {}, false}; }
    static StoreResult failed(std::string error) { return {StoreStatus::Error, {}, std::move(error), false}; }
    static StoreResult not_confirmed(std::string error) {
        return {StoreStatus::Error, {}, std::move(error), true};
    }
};

class SnippetStore {
public:
    virtual ~SnippetStore() = default;

    // Durably stores `content` under (owner, name), replacing any previous
    // content. Ok only once the write is committed.
    virtual Future<StoreResult> save(const std::string& owner, const std::string& name,
                                     const std::string& content) = 0;

    // Loads the content stored under (owner, name).
    virtual Future<StoreResult> load(const std::string& owner, const std::string& name) = 0;
};

// Opens (creating if needed) the SQLite store in `data_dir`. Null on failure.
std::unique_ptr<SnippetStore> open_sqlite_store(const std::string& data_dir, std::string& error);

// Connects to Redis on `base`, authenticates and checks that it fsyncs every
// write (redis/redis_store.cpp), running `base` until that is done. Null on
// failure, with the reason in `error`. The store must be destroyed before `base`.
struct RedisConfig;
std::unique_ptr<SnippetStore> open_redis_store(const RedisConfig& cfg, event_base* base, std::string& error);

// Why `name` is not an acceptable snippet name, or nullopt when it is.
std::optional<std::string> snippet_name_problem(std::string_view name);

}  // namespace toolserver
