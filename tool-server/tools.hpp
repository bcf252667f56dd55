// The MCP tools this server offers, described by one table that drives both
// tools/list (JSON Schema) and argument validation in tools/call.
#pragma once

#include "config.hpp"
#include "jsonrpc.hpp"
#include "snippet_store.hpp"

#include <map>
#include <string>
#include <vector>

class Tools {
public:
    Tools(SnippetStore& store, SnippetScope scope, size_t max_snippet);

    // The value of "tools" in a tools/list result.
    JsonPtr list() const;

    // Handles tools/call params for the authenticated `subject`.
    jsonrpc::Reply call(const cJSON* params, const std::string& subject);

private:
    using Args = std::map<std::string, std::string>;
    using Handler = jsonrpc::Reply (Tools::*)(const Args& args, const std::string& subject);

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

    jsonrpc::Reply hello(const Args& args, const std::string& subject);
    jsonrpc::Reply get_snippet(const Args& args, const std::string& subject);
    jsonrpc::Reply save_snippet(const Args& args, const std::string& subject);

    // The namespace a subject's snippets live in.
    std::string owner_for(const std::string& subject) const;

    SnippetStore& store_;
    SnippetScope scope_;
    size_t max_snippet_;
    std::vector<Tool> tools_;
};
