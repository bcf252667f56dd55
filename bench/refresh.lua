-- wrk script for bench/run_bench.py: refresh_token grants at /token, one
-- rotating chain per wrk thread (run with -c equal to -t, so each thread's
-- single connection waits for a grant before it sends the next).  The
-- refresh tokens and the client id come in MCP_REFRESH ("rt1 rt2 ...",
-- one per thread) and MCP_CLIENT_ID.
local tokens = {}
for t in string.gmatch(os.getenv("MCP_REFRESH") or "", "%S+") do table.insert(tokens, t) end
local client_id = os.getenv("MCP_CLIENT_ID") or ""
local threads = {}
local n = 0

function setup(thread)
   n = n + 1
   thread:set("rt", tokens[n])
   table.insert(threads, thread)
end

bad = 0
first_bad = nil

function request()
   return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"},
                     "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. rt)
end

function response(status, headers, body)
   local next_rt = string.match(body or "", '"refresh_token"%s*:%s*"([^"]+)"')
   if status ~= 200 or not next_rt then
      bad = bad + 1
      if not first_bad then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
   else
      rt = next_rt
   end
end

function done(summary, latency, requests)
   local bad_total, example = 0, nil
   for _, t in ipairs(threads) do
      bad_total = bad_total + t:get("bad")
      example = example or t:get("first_bad")
   end
   local e = summary.errors
   io.write(string.format("RESULT requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f bad=%d socket_errors=%d\n",
                          summary.requests, summary.requests / (summary.duration / 1e6),
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                          bad_total, e.connect + e.read + e.write + e.timeout))
   if bad_total > 0 then io.write("FAIL: first bad: " .. tostring(example) .. "\n") end
end
