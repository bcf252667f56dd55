// The MCP tools this server offers, described by one table that drives both
// tools/list (JSON Schema) and argument validation in tools/call.
#pragma once

#include "config.hpp"
#include "exchange_client.hpp"
#include "jsonrpc.hpp"
#include "later.hpp"
#include "snippet_store.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toolserver {

// The sample tool whoami_downstream (--whoami-downstream-*): it exchanges
// the caller's identity assertion for a token for `audience` and GETs `url`
// with it, as the signed-in user.
struct WhoamiDownstream {
    ExchangeClient* client = nullptr;
    HttpUrl url;
    std::string audience;
    std::string scope;  // empty: none asked for
};

class Tools {
public:
    // `whoami`, when given, adds whoami_downstream to the table.
    Tools(SnippetStore& store, SnippetScope scope, size_t max_snippet,
          std::optional<WhoamiDownstream> whoami = std::nullopt);

    // The value of "tools" in a tools/list result: the tools `listed` keeps.
    JsonPtr list(const std::function<bool(const char* name)>& listed) const;

    // Handles tools/call params (null when the request had none) for the
    // authenticated `subject`, whose verified identity assertion (as the
    // gateway sent it in X-MCP-Identity) is `assertion`: empty without one
    // (--insecure-no-auth); a tool copies it before waiting. The reply is ready at once unless the tool
    // waits for a store that answers later (Redis); `params` need not
    // outlive the call. Each call is counted and logged when it is answered
    // (metrics::record_tool_call).
    Future<jsonrpc::Reply> call(const cJSON* params, const std::string& subject, std::string_view assertion = {});

private:
    using Args = std::map<std::string, std::string>;
    // Who calls: valid during the handler's own call only.
    struct Caller {
        const std::string& subject;
        std::string_view assertion;
    };
    // A handler may move its arguments out.
    using Handler = Future<jsonrpc::Reply> (Tools::*)(Args& args, const Caller& caller);

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
    Future<jsonrpc::Reply> run(const Tool& tool, const cJSON* params, const Caller& caller);

    Future<jsonrpc::Reply> hello(Args& args, const Caller& caller);
    Future<jsonrpc::Reply> get_snippet(Args& args, const Caller& caller);
    Future<jsonrpc::Reply> save_snippet(Args& args, const Caller& caller);
    Future<jsonrpc::Reply> whoami_downstream(Args& args, const Caller& caller);

    // The namespace a subject's snippets live in.
    std::string owner_for(const std::string& subject) const;

    SnippetStore& store_;
    SnippetScope scope_;
    size_t max_snippet_;
    std::optional<WhoamiDownstream> whoami_;
    std::vector<Tool> tools_;
};

}  // namespace toolserver
