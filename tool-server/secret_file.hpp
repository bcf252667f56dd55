// A secret the command line names by file (a Redis password, the exchange
// client's secret), never by value, so that it stays out of `ps` and logs.
#pragma once

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace toolserver {

// The file's one line, without its line break; false with `error` naming
// the flag and the path (never the content) when the file cannot be read,
// is empty or holds more than one line.
inline bool read_secret_file(const std::string& flag, const std::string& path, std::string& out,
                             std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read " + flag + " " + path + ": " + std::strerror(errno);
        return false;
    }
    std::ostringstream text;
    text << in.rdbuf();
    out = text.str();
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (out.empty()) {
        error = flag + " " + path + " is empty";
        return false;
    }
    if (out.find('\n') != std::string::npos) {
        error = flag + " " + path + " holds more than one line";
        return false;
    }
    return true;
}

}  // namespace toolserver
