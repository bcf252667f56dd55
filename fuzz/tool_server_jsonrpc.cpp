// The tool server's JSON-RPC handling: a request body through
// jsonrpc::parse and mcp::Server::handle_body / handle_message, as the
// Streamable HTTP and SSE transports drive them, with an in-memory snippet
// store.  Flag byte: protocol version, session state, batch permission.
#include <cstddef>
#include <cstdint>
#include <string>

#include "json.hpp"
#include "jsonrpc.hpp"
#include "log.hpp"
#include "mcp_protocol.hpp"
#include "memory_snippets.hpp"
#include "tools.hpp"

namespace mcp = toolserver::mcp;
namespace jsonrpc = toolserver::jsonrpc;
using toolserver::MemorySnippets;
using toolserver::SnippetScope;
using toolserver::Tools;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = toolserver::log_set_level("error");
  (void)quiet;
  static MemorySnippets store;
  static Tools tools(store, SnippetScope::Private, 4096);
  static toolserver::ToolScopes no_scopes;
  static toolserver::ToolClaims no_claims;
  static mcp::Server server(tools, no_scopes, no_claims);
  static mcp::SessionRegistry sessions;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);

  (void)toolserver::snippet_name_problem(body);
  jsonrpc::Error err;
  JsonPtr doc = jsonrpc::parse(body, err);
  if (!doc) return 0;

  static const char* const versions[] = {"2024-11-05", "2025-03-26", "2025-06-18", "2026-07-28"};
  mcp::CallContext ctx;
  ctx.subject = (flags & 0x10) ? "bob" : "alice";
  ctx.protocol_version = versions[flags & 3];
  const bool stateless = ctx.protocol_version == mcp::kStatelessVersion;
  mcp::Session* session = nullptr;
  if (!stateless) {
    mcp::SessionRegistry::Refusal why;
    session = sessions.create(ctx.subject, (flags & 4) ? mcp::Transport::LegacySse : mcp::Transport::Streamable, why);
    if (!session) return 0;  // (never: each input's session is erased below)
    session->protocol_version = (flags & 8) ? ctx.protocol_version : "";
    session->initialized = (flags & 8) != 0;
    ctx.session = session;
  }
  // The store answers at once, so every response is ready.
  JsonPtr resp = ((stateless || mcp::is_initialize(doc.get()))
                      ? server.handle_message(doc.get(), ctx)
                      : server.handle_body(doc.get(), ctx, (flags & 0x20) != 0))
                     .take();
  if (resp) (void)json_print(resp.get());
  if (session) sessions.erase(session->id);
  return 0;
}
