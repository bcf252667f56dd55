// Mcp-Method and Mcp-Name: the JSON-RPC method and its target, mirrored into
// HTTP headers so that intermediaries can route and authorize without
// reading the body. Whoever trusts the headers is fooled when they lie, so
// whenever they are present -- in every protocol version, on both
// transports -- they must say exactly what the body says, or nothing runs.
//
// The rule (the gateway's guard applies the same one):
//   - Mcp-Method equals the body's "method";
//   - Mcp-Name equals params.name for tools/call and prompts/get, params.uri
//     for resources/read; given for any other method, or for a body without
//     that target, it is a mismatch;
//   - Mcp-Name may be the Base64 sentinel "=?base64?B64?=" (markers
//     case-sensitive): B64 is decoded before the comparison, and must be
//     canonical padded standard base64 (RFC 4648 section 4, unused bits
//     zero) of valid UTF-8; any other value starting with "=?base64?" and
//     ending with "?=" is a malformed sentinel, a mismatch;
//   - a header given twice, either header on a batch, or a value with bytes
//     outside visible ASCII, space and tab (RFC 9110 field values) is a
//     mismatch;
//   - under 2026-07-28 Mcp-Method is required, and Mcp-Name when the body
//     names a target.
#pragma once

#include "json.hpp"
#include "jsonrpc.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace toolserver {

struct MirrorHeaders {
    const char* method = nullptr;  // first Mcp-Method value; null when absent
    const char* name = nullptr;    // first Mcp-Name value; null when absent
    unsigned method_count = 0;     // how many times each was sent
    unsigned name_count = 0;
};

// nullopt when the headers agree with `doc` (a parsed body: one message or a
// batch); else the -32020 HeaderMismatch error to answer with (HTTP 400).
// `required`: the protocol version requires the headers (2026-07-28).
std::optional<jsonrpc::Error> check_mirror_headers(const MirrorHeaders& h, const cJSON* doc, bool required);

// Decodes an Mcp-Name value: the value itself, or the sentinel's content.
// False for a malformed sentinel.
bool decode_mcp_name(std::string_view value, std::string& out);

}  // namespace toolserver
