// Structured one-line logs on stderr: "ts=... level=... event=... key=value ...".
// Never pass snippet contents or tokens to these functions.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace toolserver {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

using LogField = std::pair<const char*, std::string>;

bool log_set_level(const std::string& name);  // false if the name is unknown
bool log_enabled(LogLevel level);
void log_event(LogLevel level, const char* event, std::initializer_list<LogField> fields = {});

// W3C trace context. The trace id of the request being handled: while a
// LogTrace holding one is alive, every line ends in trace_id=<32 hex>.
// Continuations that run later (Future::then, later.hpp) are given the trace
// id of the request that registered them.
struct TraceId {
    char hex[33] = "";  // 32 lower-case hex digits, or "" for none
};

// The trace id of a traceparent header value, or none. Only version 00 is
// read: "00-" 32 hex digits (the trace id, not all zero) "-" 16 hex digits
// (the parent id, not all zero) "-" 2 hex digits (flags), lower-case, 55
// characters in all. Anything else counts as no header.
TraceId parse_traceparent(const char* value);

class LogTrace {
public:
    explicit LogTrace(const TraceId& id);
    ~LogTrace();
    LogTrace(const LogTrace&) = delete;
    LogTrace& operator=(const LogTrace&) = delete;
    static const TraceId& current();

private:
    TraceId saved_;
};

// The level is checked before the fields are built: a disabled line (debug
// ones, per request) costs no string copies.
// Qualified in full, so that they work from any namespace.
#define LOG_AT_(level, ...)                                        \
    do {                                                           \
        if (::toolserver::log_enabled(level))                      \
            ::toolserver::log_event(level, __VA_ARGS__);           \
    } while (0)
#define LOG_DEBUG(...) LOG_AT_(::toolserver::LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT_(::toolserver::LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT_(::toolserver::LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT_(::toolserver::LogLevel::Error, __VA_ARGS__)

}  // namespace toolserver
