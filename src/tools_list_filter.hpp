// Filtering a tools/list answer (mcp_auth_filter_tools): the gateway
// removes the tools the user may not call from what an MCP server it does
// not control lists.  Pure: the answer's body in, the filtered body out.
//
// The body is one JSON-RPC response (application/json), or an event stream
// (text/event-stream) whose events carry JSON-RPC messages in their data.
// A response whose result holds a "tools" array keeps the entries whose
// "name" the predicate allows; everything else of the document is kept.
// An entry that is not an object with one string "name" is removed (no
// client can call it, and which name a client would read is unknown).
//
// Whatever cannot be read exactly is left as it is (not_filterable): text
// that is not JSON, a batch (an array), a member the filter reads that
// comes twice ("result", "tools"), and documents that cJSON, which prints
// the filtered one, would not print back as they were meant: a number it
// reads as infinite or with more than 15 digits in a row, an escaped NUL.
// The guard still decides every tools/call; the filter only keeps clients
// from being shown what they cannot use.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace mcpauth {

struct ToolsListFiltered {
  enum Outcome {
    filtered,        // tools removed: body is the new body
    unchanged,       // nothing to remove, or no tools in it
    not_filterable,  // not read exactly: pass the answer as it is
  } outcome = unchanged;
  std::string body;
};

using ToolAllowed = std::function<bool(std::string_view name)>;

// One JSON-RPC response as a JSON document.
ToolsListFiltered filter_tools_list_json(std::string_view body, const ToolAllowed& allowed);

// An event stream: each event whose data is such a response is filtered,
// and the stream is written again byte for byte but for those events'
// data lines (one data line in place of the first, with its line ending).
// Events are parsed as the WHATWG HTML standard says (CRLF, LF or CR line
// endings, "data:" lines joined with "\n", one space after the colon
// dropped); an event the stream does not end is left as it is (clients
// drop it).  not_filterable when nothing was removed and some event's data
// could not be read.
ToolsListFiltered filter_tools_list_sse(std::string_view body, const ToolAllowed& allowed);

// In an event stream still arriving: where the first event that carries a
// JSON-RPC response (a result or an error) ends, or 0 when none has been
// seen whole yet.  Looks from *from on (0: the start), and leaves it at
// the end of the last whole event it read, for the next call.  A server
// that keeps the stream open after its answer (keep-alive comments) need
// not be waited for: what follows the answer is not filtered.
size_t sse_response_end(std::string_view stream, size_t* from);

}  // namespace mcpauth
