// What a user would pick instead of the gateway (issue 8, item 3): the
// official TypeScript SDK's MCP server over Streamable HTTP, stateful
// (one transport per Mcp-Session-Id, like mcp-tool-server), JSON responses,
// behind the SDK's own bearer-auth middleware (requireBearerAuth) with a
// token verifier.  The verifier is an in-memory lookup of one token: the
// cheapest verifier there is, so the comparison flatters this server.
//
//   node bench/sdk_server.mjs --port 0 --token TOKEN
// prints "sdk-server listening on 127.0.0.1:PORT" once ready.
import { randomUUID } from "node:crypto";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const port = Number(args.port ?? 0);
const validToken = args.token;
if (!validToken) {
  console.error("--token is required");
  process.exit(2);
}

const verifier = {
  async verifyAccessToken(token) {
    if (token !== validToken) {
      const { InvalidTokenError } = await import("@modelcontextprotocol/sdk/server/auth/errors.js");
      throw new InvalidTokenError("unknown token");
    }
    return { token, clientId: "bench", scopes: ["mcp"], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
  },
};

function newServer() {
  const server = new McpServer({ name: "sdk-bench", version: "1.0.0" });
  server.registerTool("hello_mcp", { description: "Hello world." }, async () => ({
    content: [{ type: "text", text: "Hello I am MCPTool!" }],
  }));
  return server;
}

const transports = new Map();
const app = createMcpExpressApp({ host: "127.0.0.1" });
const auth = requireBearerAuth({ verifier });

app.post("/mcp", auth, async (req, res) => {
  const sid = req.headers["mcp-session-id"];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    if (sid || !isInitializeRequest(req.body)) {
      res.status(400).json({ jsonrpc: "2.0", error: { code: -32000, message: "no valid session" }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});

const listener = app.listen(port, "127.0.0.1", (err) => {
  if (err || !listener.address()) {
    console.error(`sdk-server: cannot listen on 127.0.0.1:${port}: ${err ?? "unknown error"}`);
    process.exit(1);
  }
  console.log(`sdk-server listening on 127.0.0.1:${listener.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
