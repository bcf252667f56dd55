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
