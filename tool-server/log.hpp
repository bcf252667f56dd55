// Structured one-line logs on stderr: "ts=... level=... event=... key=value ...".
// Never pass snippet contents or tokens to these functions.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

using LogField = std::pair<const char*, std::string>;

bool log_set_level(const std::string& name);  // false if the name is unknown
bool log_enabled(LogLevel level);
void log_event(LogLevel level, const char* event, std::initializer_list<LogField> fields = {});

#define LOG_DEBUG(...) log_event(LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) log_event(LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) log_event(LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) log_event(LogLevel::Error, __VA_ARGS__)
