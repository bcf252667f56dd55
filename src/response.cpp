#include "response.hpp"
#include "json.hpp"

#include <cjson/cJSON.h>

#include <memory>

namespace mcpauth {

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.header("Content-Type", "application/json");
  r.header("Cache-Control", "no-store");
  return r;
}

Response oauth_error(int status, const std::string& code, const std::string& description) {
  Json obj(cJSON_CreateObject());
  if (!obj) throw std::bad_alloc();
  cJSON_AddStringToObject(obj.get(), "error", code.c_str());
  if (!description.empty()) cJSON_AddStringToObject(obj.get(), "error_description", description.c_str());
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(obj.get()), cJSON_free);
  if (!text) throw std::bad_alloc();
  Response r = json_response(status, text.get());
  r.error = code;
  return r;
}

void add_cors(Response& r, const Config& cf, const std::string& origin) {
  if (origin.empty()) return;
  for (const auto& allowed : cf.cors_origins) {
    if (allowed == "*") {
      r.header("Access-Control-Allow-Origin", "*");
      break;
    }
    if (allowed == origin) {
      r.header("Access-Control-Allow-Origin", origin);
      r.header("Vary", "Origin");
      break;
    }
  }
  r.header("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id");
}

Response preflight(const Config& cf, const std::string& origin, const char* allow_methods) {
  Response r;
  r.status = 204;
  add_cors(r, cf, origin);
  r.header("Access-Control-Allow-Methods", allow_methods);
  r.header("Access-Control-Allow-Headers",
           "Authorization, Content-Type, MCP-Protocol-Version, Mcp-Session-Id");
  r.header("Access-Control-Max-Age", "86400");
  return r;
}

Response method_not_allowed(const char* allow_methods) {
  Response r = oauth_error(405, "invalid_request", std::string("method not allowed; use ") + allow_methods);
  r.header("Allow", allow_methods);
  return r;
}

}  // namespace mcpauth
