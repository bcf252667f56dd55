#include "log.hpp"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/time.h>

namespace toolserver {

namespace {

LogLevel g_level = LogLevel::Info;
TraceId g_trace;  // of the request being handled

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
    }
    return "info";
}

// Values are quoted when they contain spaces, quotes or '=' so that a line
// stays machine-parsable; control characters are escaped so one event is
// always one line.
void append_value(std::string& out, const std::string& v) {
    bool quote = v.empty();
    for (char c : v) {
        if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) quote = true;
    }
    if (!quote) {
        out += v;
        return;
    }
    out += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

bool log_set_level(const std::string& name) {
    for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
        if (name == level_name(l)) {
            g_level = l;
            return true;
        }
    }
    return false;
}

bool log_enabled(LogLevel level) { return level >= g_level; }

void log_event(LogLevel level, const char* event, std::initializer_list<LogField> fields) {
    if (!log_enabled(level)) return;
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    // The date and time to the second are formatted once a second (the
    // server is one thread): a line per tools/call stays cheap.
    static time_t last_sec = -1;
    static char sec_text[64];
    if (tv.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        std::snprintf(sec_text, sizeof sec_text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        last_sec = tv.tv_sec;
    }
    const int ms = static_cast<int>(tv.tv_usec / 1000);
    std::string line;
    line.reserve(256);
    line += "ts=";
    line += sec_text;
    line += '.';
    line += static_cast<char>('0' + ms / 100);
    line += static_cast<char>('0' + ms / 10 % 10);
    line += static_cast<char>('0' + ms % 10);
    line += 'Z';
    line += " level=";
    line += level_name(level);
    line += " event=";
    line += event;
    for (const auto& f : fields) {
        line += ' ';
        line += f.first;
        line += '=';
        append_value(line, f.second);
    }
    if (g_trace.hex[0]) {
        line += " trace_id=";
        line += g_trace.hex;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

namespace {

bool lower_hex(const char* s, size_t n, bool& all_zero) {
    all_zero = true;
    for (size_t i = 0; i < n; ++i) {
        const char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (c != '0') all_zero = false;
    }
    return true;
}

}  // namespace

TraceId parse_traceparent(const char* value) {
    TraceId id;
    // 00-<trace id: 32>-<parent id: 16>-<flags: 2>
    if (!value || std::strlen(value) != 55 || value[0] != '0' || value[1] != '0' || value[2] != '-' ||
        value[35] != '-' || value[52] != '-')
        return id;
    bool zero_trace = false, zero_parent = false, zero_flags = false;
    if (!lower_hex(value + 3, 32, zero_trace) || zero_trace) return id;
    if (!lower_hex(value + 36, 16, zero_parent) || zero_parent) return id;
    if (!lower_hex(value + 53, 2, zero_flags)) return id;
    std::memcpy(id.hex, value + 3, 32);
    id.hex[32] = '\0';
    return id;
}

LogTrace::LogTrace(const TraceId& id) : saved_(g_trace) { g_trace = id; }
LogTrace::~LogTrace() { g_trace = saved_; }
const TraceId& LogTrace::current() { return g_trace; }

}  // namespace toolserver
