// Prometheus metrics (GET /metrics, text exposition format 0.0.4).
//
// Every label value comes from a fixed list known to the server (the MCP
// methods it implements, the tools in its table, the storage operations),
// never from a client: anything else is counted as "other". The server is
// single-threaded, so the counters are plain integers in arrays, indexed by
// enums: counting is an increment, no lookup, no lock. The gauges (sessions,
// open streams) are not counted at all: the HTTP server reads them off its
// tables when /metrics is asked for.
#pragma once

#include "snippet_store.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace toolserver {

namespace metrics {

enum class Transport : uint8_t { Streamable, Sse, Count };

// The JSON-RPC methods this server implements; anything else is Other.
enum class Method : uint8_t { Initialize, Initialized, Ping, ToolsList, ToolsCall, ServerDiscover, Other, Count };

enum class ToolResult : uint8_t { Ok, Error, Denied, Count };

enum class StoreOp : uint8_t { Get, Put, Count };

// How a token exchange (exchange_client.hpp) ended: a token, an OAuth error
// from the endpoint, no answer in time, or no usable answer.
enum class ExchangeResult : uint8_t { Ok, Refused, Timeout, Error, Count };

// The label of a client-sent method name.
Method method_label(std::string_view method);

// The tools' names, in the tool table's order (Tools registers them): a
// tool's label is its index, and names not in the table are "other".
void set_tools(const std::vector<const char*>& names);
// The index of tool `name`, or the index of "other" (also for null).
size_t tool_label(const char* name);

// Counters. Indices are those of the enums above and of tool_label().
struct Counters {
    uint64_t requests[static_cast<size_t>(Transport::Count)][static_cast<size_t>(Method::Count)] = {};
    // One row per tool, the last one "other"; resized by set_tools().
    std::vector<uint64_t> tool_calls = std::vector<uint64_t>(static_cast<size_t>(ToolResult::Count), 0);
    uint64_t exchanges[static_cast<size_t>(ExchangeResult::Count)] = {};
};
extern Counters counters;

inline void count_request(Transport t, Method m) {
    ++counters.requests[static_cast<size_t>(t)][static_cast<size_t>(m)];
}

// Token exchanges are in the exposition once enabled (--exchange-* given).
void enable_exchanges();
inline void count_exchange(ExchangeResult r) { ++counters.exchanges[static_cast<size_t>(r)]; }

// Counts one tools/call of tool `tool` (a tool_label()) and logs it: one
// info line, event=tool_call with the tool, the result and the subject (and
// the request's trace_id, as every line).
void record_tool_call(size_t tool, ToolResult result, const std::string& subject);

// Wraps `store` so that every call is timed, from the call to the answer
// (the Future's fulfilment: later for a networked store), into
// mcp_tool_server_storage_duration_seconds, and counted in
// mcp_tool_server_storage_errors_total when it fails. `name` is the store's
// label ("sqlite", "redis").
std::unique_ptr<SnippetStore> timed_store(std::unique_ptr<SnippetStore> store, const char* name);

// The gauges, read when the exposition is made.
struct Gauges {
    size_t sessions = 0;
    size_t sse_streams = 0;
};

// Appends the whole exposition to `out`.
void append_exposition(std::string& out, const Gauges& gauges);

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace metrics

}  // namespace toolserver
