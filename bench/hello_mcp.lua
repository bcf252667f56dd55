-- wrk script: tools/call hello_mcp over Streamable HTTP (protocol 2025-06-18)
-- on a session opened beforehand by tool_server_bench.sh.
--
-- Environment: MCP_SESSION (Mcp-Session-Id), MCP_IDENTITY (X-MCP-Identity
-- assertion). Every response must be a 200 carrying the tool's text; any
-- other answer is counted and makes done() fail loudly (exit status 3).

local session = os.getenv("MCP_SESSION")
local identity = os.getenv("MCP_IDENTITY")
if not session or session == "" or not identity or identity == "" then
   io.stderr:write("hello_mcp.lua: MCP_SESSION and MCP_IDENTITY must be set\n")
   os.exit(2)
end

wrk.method = "POST"
wrk.path = "/mcp"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello_mcp","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = session
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["X-MCP-Identity"] = identity

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Per-thread counters (each wrk thread has its own Lua state).
bad = 0
first_bad = nil

function response(status, headers, body)
   if status ~= 200 or not string.find(body, "Hello I am MCPTool!", 1, true) then
      bad = bad + 1
      if not first_bad then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
   end
end

function done(summary, latency, requests)
   local bad_total, example = 0, nil
   for _, t in ipairs(threads) do
      bad_total = bad_total + t:get("bad")
      example = example or t:get("first_bad")
   end
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format("RESULT requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f bad=%d socket_errors=%d\n",
                          summary.requests, summary.requests / secs,
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                          bad_total, errors))
   if bad_total > 0 or e.status > 0 or errors > 0 then
      io.write(string.format("FAIL: %d bad responses (%d non-2xx), %d socket errors; first: %s\n",
                             bad_total, e.status, errors, tostring(example)))
      os.exit(3)
   end
end
