// SQLite implementation of SnippetStore.
//
// Calls run on the event-loop thread and answer at once (a ready Future):
// they are local, short (one indexed row) and keeping them there avoids any
// locking between sessions. The price is that an fsync per save blocks the
// loop for its duration, which is fine for a tool server of this size; the
// Redis store, whose waits are network round trips, answers later instead.
//
// Durability: WAL with synchronous=FULL, so every COMMIT is fsynced before
// save() returns and the client sees "saved" only for data that survives a
// crash or kill -9 (NORMAL+WAL could lose the last commits on power loss).
#include "snippet_store.hpp"

#include "log.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace toolserver {

namespace {

struct StmtDeleter {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

class SqliteStore final : public SnippetStore {
public:
    ~SqliteStore() override {
        save_stmt_.reset();
        load_stmt_.reset();
        if (db_) sqlite3_close(db_);
    }

    bool open(const std::string& path, std::string& error) {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK) {
            error = db_ ? sqlite3_errmsg(db_) : "cannot allocate sqlite handle";
            return false;
        }
        sqlite3_busy_timeout(db_, 5000);
        const char* setup =
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=FULL;"
            "CREATE TABLE IF NOT EXISTS snippets ("
            "  owner TEXT NOT NULL,"
            "  name TEXT NOT NULL,"
            "  content BLOB NOT NULL,"
            "  updated_at INTEGER NOT NULL,"
            "  PRIMARY KEY (owner, name)"
            ") WITHOUT ROWID;";
        char* msg = nullptr;
        if (sqlite3_exec(db_, setup, nullptr, nullptr, &msg) != SQLITE_OK) {
            error = msg ? msg : "schema setup failed";
            sqlite3_free(msg);
            return false;
        }
        return prepare(save_stmt_,
                       "INSERT INTO snippets (owner, name, content, updated_at) VALUES (?1, ?2, ?3, ?4) "
                       "ON CONFLICT (owner, name) DO UPDATE SET content = excluded.content, "
                       "updated_at = excluded.updated_at",
                       error) &&
               prepare(load_stmt_, "SELECT content FROM snippets WHERE owner = ?1 AND name = ?2", error);
    }

    Future<StoreResult> save(const std::string& owner, const std::string& name,
                             const std::string& content) override {
        sqlite3_stmt* s = save_stmt_.get();
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, owner.data(), static_cast<int>(owner.size()), SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, content.data(), static_cast<int>(content.size()), SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(std::time(nullptr)));
        // Autocommit: sqlite3_step returns after the commit (and its fsync).
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE) return Future<StoreResult>::ready(StoreResult::failed(sqlite3_errmsg(db_)));
        return Future<StoreResult>::ready(StoreResult::ok());
    }

    Future<StoreResult> load(const std::string& owner, const std::string& name) override {
        sqlite3_stmt* s = load_stmt_.get();
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, owner.data(), static_cast<int>(owner.size()), SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
        int rc = sqlite3_step(s);
        StoreResult result;
        if (rc == SQLITE_ROW) {
            const void* data = sqlite3_column_blob(s, 0);
            int len = sqlite3_column_bytes(s, 0);
            result = StoreResult::ok(std::string(static_cast<const char*>(data ? data : ""), static_cast<size_t>(len)));
        } else if (rc == SQLITE_DONE) {
            result = StoreResult::not_found();
        } else {
            result = StoreResult::failed(sqlite3_errmsg(db_));
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return Future<StoreResult>::ready(std::move(result));
    }

private:
    bool prepare(Stmt& out, const char* sql, std::string& error) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
            error = sqlite3_errmsg(db_);
            return false;
        }
        out.reset(s);
        return true;
    }

    sqlite3* db_ = nullptr;
    Stmt save_stmt_;
    Stmt load_stmt_;
};

}  // namespace

std::unique_ptr<SnippetStore> open_sqlite_store(const std::string& data_dir, std::string& error) {
    if (mkdir(data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        error = "cannot create data dir: " + std::string(std::strerror(errno));
        return nullptr;
    }
    auto store = std::make_unique<SqliteStore>();
    if (!store->open(data_dir + "/snippets.db", error)) return nullptr;
    return store;
}

}  // namespace toolserver
