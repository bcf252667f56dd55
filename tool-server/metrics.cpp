#include "metrics.hpp"

#include "log.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace toolserver {

namespace metrics {

Counters counters;

namespace {

constexpr const char* kTransportNames[] = {"streamable_http", "sse"};
static_assert(sizeof kTransportNames / sizeof kTransportNames[0] == static_cast<size_t>(Transport::Count));

constexpr std::string_view kMethodNames[] = {"initialize", "notifications/initialized", "ping", "tools/list",
                                             "tools/call", "server/discover", "other"};
static_assert(sizeof kMethodNames / sizeof kMethodNames[0] == static_cast<size_t>(Method::Count));

constexpr const char* kResultNames[] = {"ok", "error", "denied"};
static_assert(sizeof kResultNames / sizeof kResultNames[0] == static_cast<size_t>(ToolResult::Count));

constexpr const char* kOpNames[] = {"get", "put"};
static_assert(sizeof kOpNames / sizeof kOpNames[0] == static_cast<size_t>(StoreOp::Count));

constexpr const char* kExchangeNames[] = {"ok", "refused", "timeout", "error"};
static_assert(sizeof kExchangeNames / sizeof kExchangeNames[0] == static_cast<size_t>(ExchangeResult::Count));

constexpr size_t kResults = static_cast<size_t>(ToolResult::Count);
constexpr size_t kOps = static_cast<size_t>(StoreOp::Count);

// Upper bounds of the storage histogram's buckets, in nanoseconds and as
// written in the exposition; +Inf follows.
constexpr uint64_t kBucketNanos[] = {500000,    1000000,   2500000,   5000000,    10000000,   25000000,
                                     50000000,  100000000, 250000000, 500000000, 1000000000, 2500000000};
constexpr const char* kBucketLabels[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                         "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
constexpr size_t kBuckets = sizeof kBucketNanos / sizeof kBucketNanos[0];
static_assert(sizeof kBucketLabels / sizeof kBucketLabels[0] == kBuckets);

struct Histogram {
    uint64_t buckets[kBuckets + 1] = {};  // not cumulative; the last one is +Inf only
    uint64_t count = 0;
    uint64_t sum_nanos = 0;

    void observe(uint64_t nanos) {
        size_t i = 0;
        while (i < kBuckets && nanos > kBucketNanos[i]) ++i;
        ++buckets[i];
        ++count;
        sum_nanos += nanos;
    }
};

std::vector<const char*> tool_names;  // the label of index i; "other" is index size()
const char* store_name = nullptr;     // set by timed_store(); no storage metrics without one
bool exchanges_enabled = false;
Histogram storage_durations[kOps];
uint64_t storage_errors[kOps] = {};

uint64_t now_nanos() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

class TimedStore final : public SnippetStore {
public:
    explicit TimedStore(std::unique_ptr<SnippetStore> inner) : inner_(std::move(inner)) {}

    Future<StoreResult> save(const std::string& owner, const std::string& name, const std::string& content) override {
        const uint64_t started = now_nanos();
        return timed(StoreOp::Put, started, inner_->save(owner, name, content));
    }
    Future<StoreResult> load(const std::string& owner, const std::string& name) override {
        const uint64_t started = now_nanos();
        return timed(StoreOp::Get, started, inner_->load(owner, name));
    }

private:
    static Future<StoreResult> timed(StoreOp op, uint64_t started, Future<StoreResult> answer) {
        return answer.map([op, started](StoreResult r) {
            const size_t i = static_cast<size_t>(op);
            storage_durations[i].observe(now_nanos() - started);
            if (r.status == StoreStatus::Error) ++storage_errors[i];
            return r;
        });
    }

    std::unique_ptr<SnippetStore> inner_;
};

void append_u64(std::string& out, uint64_t v) {
    char buf[24];
    int n = std::snprintf(buf, sizeof buf, "%" PRIu64, v);
    out.append(buf, static_cast<size_t>(n));
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

}  // namespace

Method method_label(std::string_view method) {
    for (size_t i = 0; i + 1 < static_cast<size_t>(Method::Count); ++i) {
        if (method == kMethodNames[i]) return static_cast<Method>(i);
    }
    return Method::Other;
}

void set_tools(const std::vector<const char*>& names) {
    if (names.size() == tool_names.size() &&
        std::equal(names.begin(), names.end(), tool_names.begin(),
                   [](const char* a, const char* b) { return std::strcmp(a, b) == 0; }))
        return;
    tool_names = names;
    counters.tool_calls.assign((names.size() + 1) * kResults, 0);
}

size_t tool_label(const char* name) {
    if (name) {
        for (size_t i = 0; i < tool_names.size(); ++i) {
            if (std::strcmp(tool_names[i], name) == 0) return i;
        }
    }
    return tool_names.size();
}

void record_tool_call(size_t tool, ToolResult result, const std::string& subject) {
    if (tool > tool_names.size()) tool = tool_names.size();
    ++counters.tool_calls[tool * kResults + static_cast<size_t>(result)];
    LOG_INFO("tool_call", {{"tool", tool < tool_names.size() ? tool_names[tool] : "other"},
                           {"result", kResultNames[static_cast<size_t>(result)]},
                           {"sub", subject}});
}

void enable_exchanges() { exchanges_enabled = true; }

std::unique_ptr<SnippetStore> timed_store(std::unique_ptr<SnippetStore> store, const char* name) {
    store_name = name;
    return std::make_unique<TimedStore>(std::move(store));
}

void append_exposition(std::string& out, const Gauges& gauges) {
    header(out, "mcp_tool_server_requests_total", "counter",
           "MCP JSON-RPC requests and notifications handled, by transport and method (methods this server "
           "does not implement are \"other\").");
    for (size_t t = 0; t < static_cast<size_t>(Transport::Count); ++t) {
        for (size_t m = 0; m < static_cast<size_t>(Method::Count); ++m) {
            out += "mcp_tool_server_requests_total{transport=\"";
            out += kTransportNames[t];
            out += "\",method=\"";
            out += kMethodNames[m];
            out += "\"} ";
            append_u64(out, counters.requests[t][m]);
            out += '\n';
        }
    }

    header(out, "mcp_tool_server_tool_calls_total", "counter",
           "tools/call requests by tool (unknown names are \"other\") and result: ok, error (a tool error result "
           "or a JSON-RPC error), denied (refused for a missing scope).");
    for (size_t tool = 0; tool <= tool_names.size(); ++tool) {
        for (size_t res = 0; res < kResults; ++res) {
            out += "mcp_tool_server_tool_calls_total{tool=\"";
            out += tool < tool_names.size() ? tool_names[tool] : "other";
            out += "\",result=\"";
            out += kResultNames[res];
            out += "\"} ";
            append_u64(out, counters.tool_calls[tool * kResults + res]);
            out += '\n';
        }
    }

    if (store_name) {
        header(out, "mcp_tool_server_storage_duration_seconds", "histogram",
               "Time from a snippet store call to its answer, by operation and store.");
        for (size_t op = 0; op < kOps; ++op) {
            const Histogram& h = storage_durations[op];
            const std::string labels = std::string("op=\"") + kOpNames[op] + "\",store=\"" + store_name + "\"";
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= kBuckets; ++b) {
                cumulative += h.buckets[b];
                out += "mcp_tool_server_storage_duration_seconds_bucket{" + labels + ",le=\"";
                out += b < kBuckets ? kBucketLabels[b] : "+Inf";
                out += "\"} ";
                append_u64(out, cumulative);
                out += '\n';
            }
            char sum[48];
            std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(h.sum_nanos) / 1e9);
            out += "mcp_tool_server_storage_duration_seconds_sum{" + labels + "} " + sum + "\n";
            out += "mcp_tool_server_storage_duration_seconds_count{" + labels + "} ";
            append_u64(out, h.count);
            out += '\n';
        }
        header(out, "mcp_tool_server_storage_errors_total", "counter",
               "Snippet store calls that failed, by operation and store.");
        for (size_t op = 0; op < kOps; ++op) {
            out += std::string("mcp_tool_server_storage_errors_total{op=\"") + kOpNames[op] + "\",store=\"" +
                   store_name + "\"} ";
            append_u64(out, storage_errors[op]);
            out += '\n';
        }
    }

    if (exchanges_enabled) {
        header(out, "mcp_tool_server_token_exchanges_total", "counter",
               "RFC 8693 token exchanges at the gateway's token endpoint, by result: ok, refused (an OAuth "
               "error answer), timeout, error (unreachable, or no usable answer).");
        for (size_t r = 0; r < static_cast<size_t>(ExchangeResult::Count); ++r) {
            out += "mcp_tool_server_token_exchanges_total{result=\"";
            out += kExchangeNames[r];
            out += "\"} ";
            append_u64(out, counters.exchanges[r]);
            out += '\n';
        }
    }

    header(out, "mcp_tool_server_sse_streams", "gauge",
           "Open event streams: HTTP+SSE streams (GET /sse) and Streamable HTTP GET streams.");
    out += "mcp_tool_server_sse_streams ";
    append_u64(out, gauges.sse_streams);
    out += '\n';
    header(out, "mcp_tool_server_sessions", "gauge", "Live MCP sessions, both transports.");
    out += "mcp_tool_server_sessions ";
    append_u64(out, gauges.sessions);
    out += '\n';
}

}  // namespace metrics

}  // namespace toolserver
