// The MCP tools this server offers, described by one table that drives both
// tools/list (JSON Schema) and argument validation in tools/call.
#pragma once

#include "config.hpp"
#include "jsonrpc.hpp"
#include "later.hpp"
#include "snippet_store.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace toolserver {

class Tools {
public:
    Tools(SnippetStore& store, SnippetScope scope, size_t max_snippet);

    // The value of "tools" in a tools/list result: the tools `listed` keeps.
    JsonPtr list(const std::function<bool(const char* name)>& listed) const;

    // Handles tools/call params (null when the request had none) for the
    // authenticated `subject`. The reply is ready at once unless the tool
    // waits for a store that answers later (Redis); `params` need not
    // outlive the call. Each call is counted and logged when it is answered
    // (metrics::record_tool_call).
    Future<jsonrpc::Reply> call(const cJSON* params, const std::string& subject);

private:
    using Args = std::map<std::string, std::string>;
    // A handler may move its arguments out.
    using Handler = Future<jsonrpc::Reply> (Tools::*)(Args& args, const std::string& subject);

    struct Arg {
        const char* name;
        const char* description;
        bool required;
    };
    struct Tool {
        const char* name;
        const char* description;
        std::vector<Arg> args;
        Handler handler;
    };

    // call() without the counting: checks the arguments and runs `tool`.
    Future<jsonrpc::Reply> run(const Tool& tool, const cJSON* params, const std::string& subject);

    Future<jsonrpc::Reply> hello(Args& args, const std::string& subject);
    Future<jsonrpc::Reply> get_snippet(Args& args, const std::string& subject);
    Future<jsonrpc::Reply> save_snippet(Args& args, const std::string& subject);

    // The namespace a subject's snippets live in.
    std::string owner_for(const std::string& subject) const;

    SnippetStore& store_;
    SnippetScope scope_;
    size_t max_snippet_;
    std::vector<Tool> tools_;
};

}  // namespace toolserver
