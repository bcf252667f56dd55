#include "log.hpp"

#include <cstdio>
#include <ctime>
#include <sys/time.h>

namespace toolserver {

namespace {

LogLevel g_level = LogLevel::Info;

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
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(tv.tv_usec / 1000));
    std::string line = "ts=";
    line += ts;
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
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace toolserver
