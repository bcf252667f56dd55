// The response an endpoint hands back to the glue, and the helpers every
// endpoint uses to build one, so that errors look the same everywhere.
#pragma once

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "mcp_auth.h"

namespace mcpauth {

// A call to the upstream provider that must happen before the response
// can be written (see mcpa_response_t in mcp_auth.h).
struct Fetch {
  mcpa_fetch_e target = MCPA_FETCH_NONE;
  std::string body;           // form body for the token endpoint
  std::string authorization;  // Authorization header value, if any
  std::string continuation;   // what resume_* needs; opaque to the glue
  // MCPA_FETCH_CLIENT_METADATA
  std::string host, path;
  int port = 443;
};

// Something a request did, for the audit log and the metrics (mcpa_event_t
// in mcp_auth.h).  name and outcome are words of the core; so is reason.
struct Event {
  mcpa_event_e kind = MCPA_EV_NONE;
  const char* name = "";
  std::string outcome, reason, grant_type, subject, client_id, session_tag;
  std::string audience, scope;  // a token exchange's
  int metric[MCPA_EVENT_METRICS];
  bool audit = true;  // worth an audit line (else only counted)

  Event() { std::fill(std::begin(metric), std::end(metric), -1); }
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Fetch fetch;
  std::string error;          // the RFC 6749 error code it carries, if any
  std::vector<Event> events;  // what the request did
  // Nothing to send yet: run the request again after this long (see
  // mcpa_response_t); Request::waits counts the runs that waited.
  int wait_ms = 0;

  Event& event(mcpa_event_e kind, const char* name, std::string outcome) {
    Event& e = events.emplace_back();
    e.kind = kind;
    e.name = name;
    e.outcome = std::move(outcome);
    return e;
  }

  void header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// A JSON body with the headers every OAuth JSON response carries
// (RFC 6749 §5.1: Cache-Control: no-store).
Response json_response(int status, std::string body);

// RFC 6749 §5.2 error object: {"error": code, "error_description": text}.
Response oauth_error(int status, const std::string& code, const std::string& description);

// Cross-origin headers for JSON endpoints that browser clients call
// (the MCP Inspector runs in a browser).  `origin` is the request's Origin.
void add_cors(Response& r, const Config& cf, const std::string& origin);

// 204 answer to an OPTIONS preflight, or a 405 for another method.
Response preflight(const Config& cf, const std::string& origin, const char* allow_methods);
Response method_not_allowed(const char* allow_methods);

}  // namespace mcpauth
