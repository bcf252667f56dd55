#include "tools.hpp"

#include "log.hpp"

#include <cstring>

namespace {

// A CallToolResult with one text item. Tool failures are results with
// isError=true (so the model can read them), not JSON-RPC errors.
// Built with literal keys (not copied), like the JSON-RPC envelope.
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

}  // namespace

Tools::Tools(SnippetStore& store, SnippetScope scope, size_t max_snippet)
    : store_(store), scope_(scope), max_snippet_(max_snippet) {
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
}

JsonPtr Tools::list() const {
    JsonPtr arr(cJSON_CreateArray());
    for (const Tool& t : tools_) {
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

jsonrpc::Reply Tools::call(const cJSON* params, const std::string& subject) {
    const char* name = json_get_string(params, "name");
    if (!name) return jsonrpc::Reply::fail(jsonrpc::kInvalidParams, "Invalid params: \"name\" must be a string");
    const Tool* tool = nullptr;
    for (const Tool& t : tools_) {
        if (std::strcmp(t.name, name) == 0) tool = &t;
    }
    if (!tool) return jsonrpc::Reply::fail(jsonrpc::kInvalidParams, std::string("Unknown tool: ") + name);

    const cJSON* arguments = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    if (arguments && !cJSON_IsNull(arguments) && !cJSON_IsObject(arguments))
        return jsonrpc::Reply::fail(jsonrpc::kInvalidParams, "Invalid params: \"arguments\" must be an object");

    Args args;
    const cJSON* given = cJSON_IsObject(arguments) ? arguments : nullptr;
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, given) {
        const Arg* spec = nullptr;
        for (const Arg& a : tool->args) {
            if (std::strcmp(a.name, item->string) == 0) spec = &a;
        }
        if (!spec)
            return jsonrpc::Reply::fail(jsonrpc::kInvalidParams,
                                        std::string("Invalid params: unknown argument '") + item->string + "'");
        if (!cJSON_IsString(item))
            return jsonrpc::Reply::fail(jsonrpc::kInvalidParams,
                                        std::string("Invalid params: argument '") + item->string +
                                            "' must be a string");
        args[item->string] = item->valuestring;
    }
    for (const Arg& a : tool->args) {
        if (a.required && args.find(a.name) == args.end())
            return jsonrpc::Reply::fail(jsonrpc::kInvalidParams,
                                        std::string("Invalid params: missing required argument '") + a.name + "'");
    }
    return (this->*(tool->handler))(args, subject);
}

std::string Tools::owner_for(const std::string& subject) const {
    // An empty owner is the shared space; subjects are never empty.
    return scope_ == SnippetScope::Shared ? std::string() : subject;
}

jsonrpc::Reply Tools::hello(const Args&, const std::string&) { return text_result("Hello I am MCPTool!", false); }

jsonrpc::Reply Tools::get_snippet(const Args& args, const std::string& subject) {
    const std::string& name = args.at("snippetname");
    if (auto problem = snippet_name_problem(name)) return text_result(*problem, true);
    std::string content, error;
    switch (store_.load(owner_for(subject), name, content, error)) {
        case StoreStatus::Ok: return text_result(content, false);
        case StoreStatus::NotFound: return text_result("Snippet '" + name + "' not found", true);
        case StoreStatus::Error: break;
    }
    LOG_ERROR("store_load_failed", {{"error", error}});
    return text_result("Storage error: the snippet could not be read", true);
}

jsonrpc::Reply Tools::save_snippet(const Args& args, const std::string& subject) {
    const std::string& name = args.at("snippetname");
    const std::string& content = args.at("snippet");
    if (auto problem = snippet_name_problem(name)) return text_result(*problem, true);
    if (content.empty()) return text_result("No snippet content provided", true);
    if (content.size() > max_snippet_)
        return text_result("Snippet is too large: " + std::to_string(content.size()) + " bytes, the limit is " +
                               std::to_string(max_snippet_) + " bytes",
                           true);
    std::string error;
    if (store_.save(owner_for(subject), name, content, error) != StoreStatus::Ok) {
        LOG_ERROR("store_save_failed", {{"error", error}});
        return text_result("Storage error: the snippet was not saved", true);
    }
    LOG_INFO("snippet_saved", {{"name", name}, {"bytes", std::to_string(content.size())}});
    return text_result("Snippet '" + content + "' saved successfully", false);
}
