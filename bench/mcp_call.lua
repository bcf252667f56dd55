-- wrk script for bench/run_bench.py: POSTs the JSON-RPC body in MCP_BODY
-- (default: tools/call hello_mcp) to the path of the URL, with optional
-- Authorization (MCP_TOKEN) and Mcp-Session-Id (MCP_SESSION) headers.
-- Every response must be a 200 containing MCP_EXPECT (default: the
-- tool's text); anything else fails the run (exit status 3).

local token = os.getenv("MCP_TOKEN") or ""
local session = os.getenv("MCP_SESSION") or ""
local expect = os.getenv("MCP_EXPECT") or "Hello I am MCPTool!"

wrk.method = "POST"
wrk.body = os.getenv("MCP_BODY") or
   '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello_mcp","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if session ~= "" then
   wrk.headers["Mcp-Session-Id"] = session
   wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

bad = 0
first_bad = nil
function response(status, headers, body)
   if status ~= 200 or not string.find(body, expect, 1, true) then
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
   io.write(string.format("RESULT requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f bad=%d socket_errors=%d\n",
                          summary.requests, summary.requests / (summary.duration / 1e6),
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                          bad_total, errors))
   if bad_total > 0 or e.status > 0 or errors > 0 then
      io.write(string.format("FAIL: %d bad responses (%d non-2xx), %d socket errors; first: %s\n",
                             bad_total, e.status, errors, tostring(example)))
      os.exit(3)
   end
end
