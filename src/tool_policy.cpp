#include "tool_policy.hpp"

#include <algorithm>
#include <sstream>

namespace mcpauth {
namespace {

void add_unique(std::vector<std::string>& out, const std::vector<std::string>& more) {
  for (const auto& s : more)
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
}

}  // namespace

bool valid_scope_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)  // %x21 / %x23-5B / %x5D-7E
    if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) return false;
  return true;
}

std::optional<ToolPolicy> ToolPolicy::parse(std::string_view lines, std::string* error) {
  ToolPolicy p;
  std::istringstream in{std::string(lines)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name, scope;
    if (!(words >> name)) continue;
    std::vector<std::string> scopes;
    while (words >> scope) {
      if (!valid_scope_token(scope)) {
        *error = "mcp_auth_tool_scope: \"" + scope + "\" is not a valid scope";
        return std::nullopt;
      }
      scopes.push_back(scope);
    }
    if (scopes.empty()) {
      *error = "mcp_auth_tool_scope " + name + ": no scope given";
      return std::nullopt;
    }
    add_unique(p.rules_[name], scopes);
  }
  return p;
}

std::vector<std::string> ToolPolicy::required(const McpCall& call) const {
  std::vector<std::string> out;
  auto m = rules_.find(call.method);
  if (m != rules_.end()) add_unique(out, m->second);
  if (call.method == "tools/call" && !call.name.empty()) {
    auto t = rules_.find(call.name);
    // a tool name never contains '/', so it cannot collide with a method
    if (t != rules_.end() && call.name.find('/') == std::string::npos) add_unique(out, t->second);
  }
  return out;
}

std::vector<std::string> ToolPolicy::tool_names() const {
  std::vector<std::string> out;
  for (const auto& [name, scopes] : rules_)
    if (name.find('/') == std::string::npos) out.push_back(name);
  return out;
}

std::vector<std::string> missing_scopes(const std::vector<std::string>& needed, std::string_view granted) {
  std::vector<std::string> out;
  if (needed.empty()) return out;  // the common case on the guard's path
  // the words of `granted`, split where `istream >> string` would split
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  std::vector<std::string_view> have;
  for (size_t i = 0; i < granted.size();) {
    while (i < granted.size() && space(granted[i])) ++i;
    size_t start = i;
    while (i < granted.size() && !space(granted[i])) ++i;
    if (i > start) have.push_back(granted.substr(start, i - start));
  }
  for (const auto& n : needed)
    if (std::find(have.begin(), have.end(), std::string_view(n)) == have.end()) out.push_back(n);
  return out;
}

}  // namespace mcpauth
