#include "jsonrpc.hpp"

#include <cmath>
#include <cstring>

namespace toolserver {

namespace jsonrpc {

// cJSON hands strings out NUL-terminated, so a "\u0000" escape would silently
// cut a value short (a snippet, a name). Such text is refused up front.
static bool has_escaped_nul(const std::string& body) {
    if (std::memchr(body.data(), '\\', body.size()) == nullptr) return false;  // no escapes at all
    bool in_string = false;
    for (size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = false;
        } else if (c == '\\' && i + 1 < body.size()) {
            if (body.compare(i + 1, 5, "u0000") == 0) return true;
            ++i;  // skip the escaped character
        }
    }
    return false;
}

// cJSON keeps numbers as doubles; ids must be integers it can print exactly.
static bool is_integral(double v) { return std::fabs(v) <= 9007199254740992.0 && std::floor(v) == v; }

JsonPtr parse(const std::string& body, Error& err) {
    // cJSON works on NUL-terminated text; an embedded NUL is not valid JSON text.
    if (std::memchr(body.data(), '\0', body.size()) != nullptr) {
        err = {kParseError, "Parse error: body contains a NUL byte"};
        return nullptr;
    }
    const char* end = nullptr;
    JsonPtr doc(cJSON_ParseWithOpts(body.c_str(), &end, /*require_null_terminated=*/1));
    if (!doc) {
        err = {kParseError, "Parse error: body is not valid JSON"};
        return nullptr;
    }
    if (has_escaped_nul(body)) {
        err = {kInvalidRequest, "Invalid Request: strings containing U+0000 are not supported"};
        return nullptr;
    }
    return doc;
}

std::optional<Error> classify(const cJSON* msg, Message& out) {
    out = Message{};
    if (!cJSON_IsObject(msg)) return Error{kInvalidRequest, "Invalid Request: message must be a JSON object"};

    const cJSON* id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    // MCP forbids null ids; only strings and integers are accepted.
    bool id_ok = id && (cJSON_IsString(id) || (cJSON_IsNumber(id) && is_integral(id->valuedouble)));
    if (id_ok) out.id = id;

    const cJSON* version = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
    if (!cJSON_IsString(version) || std::strcmp(version->valuestring, "2.0") != 0)
        return Error{kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\""};
    if (id && !id_ok) return Error{kInvalidRequest, "Invalid Request: \"id\" must be a string or an integer"};

    const cJSON* method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    if (!method) {
        // A response to a server-initiated request; this server sends none, so
        // it is accepted and ignored.
        if (id && (cJSON_HasObjectItem(msg, "result") || cJSON_HasObjectItem(msg, "error"))) {
            out.kind = Kind::Response;
            return std::nullopt;
        }
        return Error{kInvalidRequest, "Invalid Request: \"method\" is missing"};
    }
    if (!cJSON_IsString(method) || method->valuestring[0] == '\0')
        return Error{kInvalidRequest, "Invalid Request: \"method\" must be a non-empty string"};
    out.method = method->valuestring;

    const cJSON* params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (params && !cJSON_IsObject(params))
        return Error{kInvalidRequest, "Invalid Request: \"params\" must be an object"};
    out.params = params;
    out.kind = id ? Kind::Request : Kind::Notification;
    return std::nullopt;
}

// Responses are built with literal keys and a reference to the literal
// "2.0": no copies of them per response.
static JsonPtr envelope(const cJSON* id) {
    JsonPtr resp(cJSON_CreateObject());
    json_add_literal_key(resp.get(), "jsonrpc", cJSON_CreateStringReference("2.0"));
    json_add_literal_key(resp.get(), "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
    return resp;
}

JsonPtr make_error(const cJSON* id, const Error& err) {
    JsonPtr resp = envelope(id);
    cJSON* e = cJSON_CreateObject();
    json_add_literal_key(resp.get(), "error", e);
    json_add_literal_key(e, "code", cJSON_CreateNumber(err.code));
    json_add_literal_key(e, "message", cJSON_CreateString(err.message.c_str()));
    return resp;
}

JsonPtr make_response(const cJSON* id, Reply reply) {
    if (reply.error) return make_error(id, *reply.error);
    JsonPtr resp = envelope(id);
    json_add_literal_key(resp.get(), "result",
                         reply.result ? reply.result.release() : cJSON_CreateObject());
    return resp;
}

std::string error_body(int code, const std::string& message) {
    return json_print(make_error(nullptr, Error{code, message}).get());
}

}  // namespace jsonrpc

}  // namespace toolserver
