#include "tools.hpp"

#include "log.hpp"
#include "metrics.hpp"

#include <cstring>

namespace toolserver {

namespace {

// A CallToolResult with one text item. Tool failures are results with
// isError=true (so the model can read them), not JSON-RPC errors.
// Built with literal keys (not copied), like the JSON-RPC envelope.
Future<jsonrpc::Reply> failed(int code, std::string message) {
    return Future<jsonrpc::Reply>::ready(jsonrpc::Reply::fail(code, std::move(message)));
}

jsonrpc::Reply text_result(const std::string& text, bool is_error) {
    JsonPtr result(cJSON_CreateObject());
    cJSON* content = cJSON_CreateArray();
    json_add_literal_key(result.get(), "content", content);
    cJSON* item = cJSON_CreateObject();
    json_add_literal_key(item, "type", cJSON_CreateStringReference("text"));
    json_add_literal_key(item, "text", cJSON_CreateString(text.c_str()));
    cJSON_AddItemToArray(content, item);
    json_add_literal_key(result.get(), "isError", cJSON_CreateBool(is_error));
    return jsonrpc::Reply::ok(std::move(result));
}

Future<jsonrpc::Reply> text_now(const std::string& text, bool is_error) {
    return Future<jsonrpc::Reply>::ready(text_result(text, is_error));
}

// `text` with every occurrence of `secret` blotted out: an API that echoes
// the token it was sent must not hand it to the model.
std::string redacted(std::string text, const std::string& secret) {
    static constexpr std::string_view kBlot = "[access token]";
    if (secret.empty()) return text;
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kBlot.size()))
        text.replace(at, secret.size(), kBlot);
    return text;
}

// The start of an error body, for a message: printable ASCII only.
std::string excerpt(const std::string& body) {
    constexpr size_t kMax = 512;
    std::string out;
    for (size_t i = 0; i < body.size() && i < kMax; ++i) {
        const unsigned char c = static_cast<unsigned char>(body[i]);
        out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : (c == '\n' || c == '\r' || c == '\t' ? ' ' : '?');
    }
    if (body.size() > kMax) out += "...";
    return out.empty() ? "(empty body)" : out;
}

// What the downstream API answered, as the tool's result: its JSON body, or why not.
jsonrpc::Reply downstream_reply(const HttpResult& h, const std::string& token) {
    if (!h.ok()) {
        LOG_WARN("downstream_call_failed", {{"reason", h.error}});
        return text_result("downstream API call failed: " + h.error, true);
    }
    const std::string body = redacted(h.body, token);
    const std::string status = std::to_string(h.status);
    if (h.status < 200 || h.status > 299) {
        LOG_WARN("downstream_call_failed", {{"status", status}});
        return text_result("downstream API answered " + status + ": " + excerpt(body), true);
    }
    JsonPtr doc(cJSON_ParseWithLength(body.data(), body.size()));
    if (!doc) {
        LOG_WARN("downstream_call_failed", {{"status", status}, {"reason", "not JSON"}});
        return text_result("downstream API answered " + status + " but not with JSON: " + excerpt(body), true);
    }
    return text_result(body, false);
}

// A refused or failed exchange, as the tool's result.
jsonrpc::Reply exchange_failure(const ExchangeResult& x) {
    if (x.outcome == ExchangeResult::Outcome::Failed) return text_result("token exchange failed: " + x.failure, true);
    std::string text = "token exchange refused: " + x.error;
    if (!x.error_description.empty()) text += ": " + x.error_description;
    text += " (HTTP " + std::to_string(x.status);
    if (!x.retry_after.empty()) text += ", retry after " + x.retry_after + " s";
    text += ")";
    return text_result(text, true);
}

// A JSON-RPC error or a tool result with isError: true is an error.
metrics::ToolResult outcome(const jsonrpc::Reply& reply) {
    if (reply.error) return metrics::ToolResult::Error;
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply.result.get(), "isError"))
               ? metrics::ToolResult::Error
               : metrics::ToolResult::Ok;
}

}  // namespace

Tools::Tools(SnippetStore& store, SnippetScope scope, size_t max_snippet, std::optional<WhoamiDownstream> whoami)
    : store_(store), scope_(scope), max_snippet_(max_snippet), whoami_(std::move(whoami)) {
    tools_ = {
        {"hello_mcp", "Hello world.", {}, &Tools::hello},
        {"get_snippet",
         "Retrieve a snippet by name.",
         {{"snippetname", "The name of the snippet.", true}},
         &Tools::get_snippet},
        {"save_snippet",
         "Save a snippet with a name.",
         {{"snippetname", "The name of the snippet.", true}, {"snippet", "The content of the snippet.", true}},
         &Tools::save_snippet},
    };
    if (whoami_) {
        tools_.push_back({"whoami_downstream",
                          "Call the downstream API as the signed-in user (RFC 8693 token exchange at the gateway) "
                          "and return what it answers.",
                          {},
                          &Tools::whoami_downstream});
    }
    std::vector<const char*> names;
    for (const Tool& t : tools_) names.push_back(t.name);
    metrics::set_tools(names);
}

JsonPtr Tools::list(const std::function<bool(const char* name)>& listed) const {
    JsonPtr arr(cJSON_CreateArray());
    for (const Tool& t : tools_) {
        if (!listed(t.name)) continue;
        cJSON* tool = cJSON_CreateObject();
        cJSON_AddStringToObject(tool, "name", t.name);
        cJSON_AddStringToObject(tool, "description", t.description);
        cJSON* schema = cJSON_AddObjectToObject(tool, "inputSchema");
        cJSON_AddStringToObject(schema, "type", "object");
        cJSON* props = cJSON_AddObjectToObject(schema, "properties");
        cJSON* required = cJSON_AddArrayToObject(schema, "required");
        for (const Arg& a : t.args) {
            cJSON* p = cJSON_AddObjectToObject(props, a.name);
            cJSON_AddStringToObject(p, "type", "string");
            cJSON_AddStringToObject(p, "description", a.description);
            if (a.required) cJSON_AddItemToArray(required, cJSON_CreateString(a.name));
        }
        cJSON_AddBoolToObject(schema, "additionalProperties", false);
        cJSON_AddItemToArray(arr.get(), tool);
    }
    return arr;
}

Future<jsonrpc::Reply> Tools::call(const cJSON* params, const std::string& subject, std::string_view assertion) {
    // The metrics label of a tool is its index in the table (set_tools above).
    size_t label = tools_.size();
    Future<jsonrpc::Reply> reply = [&] {
        if (!params)
            return failed(jsonrpc::kInvalidParams, "Invalid params: params are required");
        const char* name = json_get_string(params, "name");
        if (!name) return failed(jsonrpc::kInvalidParams, "Invalid params: \"name\" must be a string");
        for (size_t i = 0; i < tools_.size(); ++i) {
            if (std::strcmp(tools_[i].name, name) == 0) label = i;
        }
        if (label == tools_.size()) return failed(jsonrpc::kInvalidParams, std::string("Unknown tool: ") + name);
        return run(tools_[label], params, Caller{subject, assertion});
    }();
    if (reply.is_ready()) {
        jsonrpc::Reply r = reply.take();
        metrics::record_tool_call(label, outcome(r), subject);
        return Future<jsonrpc::Reply>::ready(std::move(r));
    }
    return reply.map([label, subject](jsonrpc::Reply r) {
        metrics::record_tool_call(label, outcome(r), subject);
        return r;
    });
}

Future<jsonrpc::Reply> Tools::run(const Tool& tool, const cJSON* params, const Caller& caller) {
    const cJSON* arguments = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    if (arguments && !cJSON_IsNull(arguments) && !cJSON_IsObject(arguments))
        return failed(jsonrpc::kInvalidParams, "Invalid params: \"arguments\" must be an object");

    Args args;
    const cJSON* given = cJSON_IsObject(arguments) ? arguments : nullptr;
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, given) {
        const Arg* spec = nullptr;
        for (const Arg& a : tool.args) {
            if (std::strcmp(a.name, item->string) == 0) spec = &a;
        }
        if (!spec)
            return failed(jsonrpc::kInvalidParams,
                          std::string("Invalid params: unknown argument '") + item->string + "'");
        if (!cJSON_IsString(item))
            return failed(jsonrpc::kInvalidParams,
                          std::string("Invalid params: argument '") + item->string + "' must be a string");
        args[item->string] = item->valuestring;
    }
    for (const Arg& a : tool.args) {
        if (a.required && args.find(a.name) == args.end())
            return failed(jsonrpc::kInvalidParams,
                          std::string("Invalid params: missing required argument '") + a.name + "'");
    }
    return (this->*(tool.handler))(args, caller);
}

std::string Tools::owner_for(const std::string& subject) const {
    // An empty owner is the shared space; subjects are never empty.
    return scope_ == SnippetScope::Shared ? std::string() : subject;
}

Future<jsonrpc::Reply> Tools::hello(Args&, const Caller&) {
    return text_now("Hello I am MCPTool!", false);
}

Future<jsonrpc::Reply> Tools::get_snippet(Args& args, const Caller& caller) {
    const std::string& subject = caller.subject;
    const std::string& name = args.at("snippetname");
    if (auto problem = snippet_name_problem(name)) return text_now(*problem, true);
    return store_.load(owner_for(subject), name).map([name](StoreResult r) {
        switch (r.status) {
            case StoreStatus::Ok: return text_result(r.content, false);
            case StoreStatus::NotFound: return text_result("Snippet '" + name + "' not found", true);
            case StoreStatus::Error: break;
        }
        LOG_ERROR("store_load_failed", {{"error", r.error}});
        return text_result("Storage error: the snippet could not be read", true);
    });
}

Future<jsonrpc::Reply> Tools::save_snippet(Args& args, const Caller& caller) {
    const std::string& subject = caller.subject;
    const std::string& name = args.at("snippetname");
    std::string& content = args.at("snippet");
    if (auto problem = snippet_name_problem(name)) return text_now(*problem, true);
    if (content.empty()) return text_now("No snippet content provided", true);
    if (content.size() > max_snippet_)
        return text_now("Snippet is too large: " + std::to_string(content.size()) + " bytes, the limit is " +
                            std::to_string(max_snippet_) + " bytes",
                        true);
    Future<StoreResult> saved = store_.save(owner_for(subject), name, content);
    // The answer repeats the content: moved into the continuation, not copied.
    return saved.map([name, content = std::move(content)](StoreResult r) {
        if (r.status != StoreStatus::Ok) {
            LOG_ERROR("store_save_failed", {{"error", r.error}});
            if (r.unconfirmed)
                return text_result("Storage error: the save was not confirmed by the replicas; the snippet may or "
                                   "may not be stored",
                                   true);
            return text_result("Storage error: the snippet was not saved", true);
        }
        LOG_INFO("snippet_saved", {{"name", name}, {"bytes", std::to_string(content.size())}});
        return text_result("Snippet '" + content + "' saved successfully", false);
    });
}

// The pattern for a tool that calls an API as the user: exchange the
// request's assertion for a token for that API's audience, call it with the
// token, answer with what it said. The token lives only in these
// continuations; the gateway caches exchanges, so none is kept here.
Future<jsonrpc::Reply> Tools::whoami_downstream(Args&, const Caller& caller) {
    if (caller.assertion.empty())
        return text_now("whoami_downstream acts as the signed-in user, so it needs the identity assertion the "
                        "ngx_mcp_auth gateway adds to each request (X-MCP-Identity); this server runs with "
                        "--insecure-no-auth and has none. Call it through the gateway.",
                        true);
    ExchangeClient* client = whoami_->client;
    Promise<jsonrpc::Reply> done;
    client->exchange(std::string(caller.assertion), whoami_->audience, whoami_->scope)
        .then([client, url = whoami_->url, done](ExchangeResult x) {
            if (x.outcome != ExchangeResult::Outcome::Ok) {
                done.set(exchange_failure(x));
                return;
            }
            std::string token = std::move(x.access_token);
            client->get(url, token).then([done, token](HttpResult h) { done.set(downstream_reply(h, token)); });
        });
    return done.future();
}

}  // namespace toolserver
