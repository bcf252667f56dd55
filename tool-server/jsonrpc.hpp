// JSON-RPC 2.0 framing: message classification and the one place where
// failures become JSON-RPC error objects.
#pragma once

#include "json.hpp"

#include <optional>
#include <string>

namespace toolserver {

namespace jsonrpc {

enum Code : int {
    kParseError = -32700,
    kInvalidRequest = -32600,
    kMethodNotFound = -32601,
    kInvalidParams = -32602,
    kInternalError = -32603,
    kServerBusy = -32000,       // no room for another session (HTTP 429 or 503)
    kUnauthorized = -32001,     // identity assertion missing or invalid, or a scope it lacks
    kHeaderMismatch = -32020,   // 2026-07-28: HTTP header disagrees with body
};

struct Error {
    int code;
    std::string message;
};

// What a handler produces: a result object, or an error.
struct Reply {
    JsonPtr result;
    std::optional<Error> error;

    static Reply ok(JsonPtr r) { return Reply{std::move(r), std::nullopt}; }
    static Reply fail(int code, std::string message) {
        return Reply{nullptr, Error{code, std::move(message)}};
    }
};

enum class Kind { Request, Notification, Response };

// A validated incoming message; pointers point into the parsed document.
struct Message {
    Kind kind = Kind::Request;
    const cJSON* id = nullptr;      // null for notifications
    std::string method;
    const cJSON* params = nullptr;  // may be null
};

// Parses a whole HTTP body. On failure returns null and fills `err`.
JsonPtr parse(const std::string& body, Error& err);

// Validates one message (not a batch). On failure returns the error and, when
// the message had a usable id, sets out.id so the error can echo it.
std::optional<Error> classify(const cJSON* msg, Message& out);

// Builds {"jsonrpc":"2.0","id":..,"result":..}; id may be null (-> JSON null).
JsonPtr make_response(const cJSON* id, Reply reply);
JsonPtr make_error(const cJSON* id, const Error& err);

// A printed error object with a null id, for HTTP-level failures.
std::string error_body(int code, const std::string& message);

}  // namespace jsonrpc

}  // namespace toolserver
