// Snippet storage behind a small interface, so that a networked database can
// replace SQLite without touching the tools.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

enum class StoreStatus { Ok, NotFound, Error };

class SnippetStore {
public:
    virtual ~SnippetStore() = default;

    // Durably stores `content` under (owner, name), replacing any previous
    // content. Returns Ok only once the write is committed.
    virtual StoreStatus save(const std::string& owner, const std::string& name, const std::string& content,
                             std::string& error) = 0;

    // Loads the content stored under (owner, name).
    virtual StoreStatus load(const std::string& owner, const std::string& name, std::string& content,
                             std::string& error) = 0;
};

// Opens (creating if needed) the SQLite store in `data_dir`. Null on failure.
std::unique_ptr<SnippetStore> open_sqlite_store(const std::string& data_dir, std::string& error);

// Connects to Redis, authenticates and checks that it fsyncs every write
// (redis/redis_store.cpp). Null on failure, with the reason in `error`.
struct RedisConfig;
std::unique_ptr<SnippetStore> open_redis_store(const RedisConfig& cfg, std::string& error);

// Why `name` is not an acceptable snippet name, or nullopt when it is.
std::optional<std::string> snippet_name_problem(std::string_view name);
