#include "mirror_headers.hpp"

#include "encoding.hpp"

namespace mcpauth {
namespace {

constexpr std::string_view kSentinelOpen = "=?base64?";
constexpr std::string_view kSentinelClose = "?=";

bool visible_ascii(std::string_view v) {
  for (char c : v)
    if (c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e)) return false;
  return true;
}

}  // namespace

std::optional<std::string> decode_mirror_value(std::string_view value) {
  if (!visible_ascii(value)) return std::nullopt;
  const bool sentinel = value.substr(0, kSentinelOpen.size()) == kSentinelOpen &&
                        value.size() >= kSentinelClose.size() &&
                        value.substr(value.size() - kSentinelClose.size()) == kSentinelClose;
  if (!sentinel) return std::string(value);
  if (value.size() < kSentinelOpen.size() + kSentinelClose.size()) return std::nullopt;  // the markers overlap
  auto decoded = b64_decode(
      value.substr(kSentinelOpen.size(), value.size() - kSentinelOpen.size() - kSentinelClose.size()));
  if (!decoded || !valid_utf8(*decoded) || decoded->find('\0') != std::string::npos) return std::nullopt;
  return decoded;
}

const std::string* mirror_target(const McpCall& call) {
  if (call.method == "tools/call" || call.method == "prompts/get") return call.has_name ? &call.name : nullptr;
  if (call.method == "resources/read") return call.has_uri ? &call.uri : nullptr;
  return nullptr;
}

std::string mirror_mismatch(const MirrorHeaders& h, const std::vector<McpCall>& calls, bool batch) {
  if (!h.any()) return "";
  if (h.repeated) return "Mcp-Method or Mcp-Name is repeated";
  if (batch || calls.size() != 1) return "Mcp-Method and Mcp-Name describe one message, not a batch";
  const McpCall& call = calls.front();
  if (h.has_method && (!visible_ascii(h.method) || call.method.empty() || h.method != call.method))
    return "Mcp-Method does not match the request's method";
  if (h.has_name) {
    auto name = decode_mirror_value(h.name);
    if (!name) return "Mcp-Name holds invalid characters";
    const std::string* target = mirror_target(call);
    if (!target || *name != *target) return "Mcp-Name does not match the request";
  }
  return "";
}

}  // namespace mcpauth
