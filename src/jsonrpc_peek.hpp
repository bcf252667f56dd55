// What a JSON-RPC body asks for, read by the guard in one strict pass (no
// tree, no allocation beyond the result): the "method" of each message and,
// for a tools/call, its params.name, exactly as the tool server (cJSON,
// tool-server/jsonrpc.cpp) will read the same bytes.
//
// The guard decides scopes from this reading, so a body it cannot read the
// way the tool server does must never be passed on.  peek_jsonrpc refuses
// (nullopt) rather than guess:
//   - anything that is not strict JSON (RFC 8259): trailing text, raw
//     control bytes in strings, a NUL byte, leading zeros, a BOM, ...
//   - a message with "method" or "params" twice, or params with "name" or
//     "uri" twice (cJSON would take the first, another parser the last);
//   - an escape that does not decode to exactly one character: \u0000 (the
//     tool server's C strings would end there), bad hex digits (cJSON reads
//     them as 0), an unpaired surrogate;
//   - nesting deeper than 512, a number longer than 63 characters (cJSON
//     refuses what it cannot read in its 64-byte buffer).
// A batch (2025-03-26) yields one call per object element, in order;
// elements that are not objects yield none (the tool server answers them with
// an error and still runs the others).  A top-level value that is neither an
// object nor an array yields no call (the tool server answers it with an
// error).  An object's "method" that is not a string gives a call with an
// empty method (no rule matches it; the tool server refuses it).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

struct McpCall {
  std::string method;  // e.g. "tools/call"
  std::string name;    // params.name for tools/call (and prompts/get, ...)
  std::string uri;     // params.uri (resources/read)
  // params.name / params.uri were strings (beside a string method)
  bool has_name = false, has_uri = false;
  // The message's "id" as its JSON text, when it is one string or number;
  // "" otherwise.  Only to echo it in an error.
  std::string id;
};

// The calls in a JSON-RPC body (one message or a batch); nullopt when the
// body cannot be read exactly (see above): the guard then refuses it.
// *batch (when given) tells whether the body was an array.
std::optional<std::vector<McpCall>> peek_jsonrpc(std::string_view body, bool* batch = nullptr);

}  // namespace mcpauth
