// The tools/list filter (tools_list_filter.hpp) on any answer an upstream
// may send, as JSON and as an event stream.
//
// Aborts (a finding) when
//   - an answer left as it is comes with a body, or a filtered one without;
//   - a filtered JSON answer is not a JSON object, lists a tool the
//     predicate refuses, or would be filtered again (the filter must be
//     done in one pass);
//   - a filtered event stream would be filtered again;
//   - sse_response_end finds another end when the stream arrives in parts
//     than when it arrives whole, or an end past the stream.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "json.hpp"
#include "tools_list_filter.hpp"

using namespace mcpauth;

namespace {

// Names with an even sum of bytes may be called.
bool allowed(std::string_view name) {
  unsigned sum = 0;
  for (unsigned char c : name) sum += c;
  return sum % 2 == 0;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: %s\n", what);
    std::abort();
  }
}

void check_json(std::string_view body) {
  ToolsListFiltered r = filter_tools_list_json(body, allowed);
  check((r.outcome == ToolsListFiltered::filtered) == !r.body.empty(), "json: a body iff filtered");
  if (r.outcome != ToolsListFiltered::filtered) return;
  Json doc(cJSON_Parse(r.body.c_str()));
  check(cJSON_IsObject(doc.get()), "json: the filtered body is no object");
  const cJSON* tools = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc.get(), "result"), "tools");
  check(cJSON_IsArray(tools), "json: the filtered body has no tools");
  for (const cJSON* t = tools->child; t; t = t->next) {
    const cJSON* name = cJSON_GetObjectItemCaseSensitive(t, "name");
    check(cJSON_IsString(name) && allowed(name->valuestring), "json: a refused tool kept");
  }
  check(filter_tools_list_json(r.body, allowed).outcome == ToolsListFiltered::unchanged, "json: filtered twice");
}

void check_sse(std::string_view body) {
  ToolsListFiltered r = filter_tools_list_sse(body, allowed);
  check((r.outcome == ToolsListFiltered::filtered) == !r.body.empty(), "sse: a body iff filtered");
  if (r.outcome == ToolsListFiltered::filtered)
    check(filter_tools_list_sse(r.body, allowed).outcome != ToolsListFiltered::filtered, "sse: filtered twice");

  size_t whole_from = 0;
  size_t whole = sse_response_end(body, &whole_from);
  check(whole <= body.size() && whole_from <= body.size(), "sse: an end past the stream");
  // the same stream in three parts
  size_t from = 0, end = 0;
  for (size_t cut : {body.size() / 3, body.size() * 2 / 3, body.size()}) {
    end = sse_response_end(body.substr(0, cut), &from);
    check(from <= cut, "sse: looked past the part");
    if (end) break;
  }
  check(end == whole, "sse: another end in parts than whole");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  check_json(body);
  check_sse(body);
  // the same bytes as one event's data
  std::string event = "event: message\ndata: ";
  event.append(body).append("\n\n");
  check_sse(event);
  return 0;
}
