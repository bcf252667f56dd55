"""mcp-tool-server's GET /metrics (Prometheus text format 0.0.4) and its W3C
traceparent handling, tested on the real server: promtool accepts the
exposition; every counter moves by exactly what a test did; clients cannot
add label values; the gauges follow streams and sessions; the storage
histogram follows the store (SQLite here, Redis for the asynchronous path
and errors); a valid traceparent puts trace_id on the request's log lines,
a malformed one is ignored."""

import json
import random
import re
import signal
import string
import subprocess
import time
from pathlib import Path

import pytest
import requests

from harness import TOOL_SERVER
from metrics_util import parse_exposition
from redis_util import REDIS_SERVER, RedisServer
from toolserver_util import JSON_HEADERS, SseClient, StreamableClient, ToolServer, mint, rpc, text_of

pytestmark = pytest.mark.skipif(not TOOL_SERVER.exists(), reason="build/mcp-tool-server not built")

PROMTOOL = "/usr/bin/promtool"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WRITE = "mcp snippets:write"  # what save_snippet needs on these servers
METHODS = ["initialize", "notifications/initialized", "ping", "tools/list", "tools/call", "server/discover",
           "other"]
TOOLS = ["hello_mcp", "get_snippet", "save_snippet", "other"]
RESULTS = ["ok", "error", "denied"]
BUCKETS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
           "+Inf"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE_ID


class ScopedServer(ToolServer):
    """A tool server whose assertions grant snippets:write unless told otherwise."""

    def token(self, sub="alice", **kw):
        kw.setdefault("scope", WRITE)
        return mint(self.key, sub=sub, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ScopedServer(tmp_path_factory.mktemp("metrics"),
                       args=["--tool-scope", "save_snippet=snippets:write"]).start()
    yield srv
    log = srv.proc.log()
    assert srv.stop() == 0
    assert "Sanitizer" not in log and "runtime error" not in log


# --- reading the exposition ---------------------------------------------------

def scrape_text(server):
    r = requests.get(server.base + "/metrics", timeout=5)  # no assertion needed
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == CONTENT_TYPE
    return r.text


parse = parse_exposition


def scrape(server):
    return parse(scrape_text(server))


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def deltas(before, after, prefix):
    """The series named `prefix`... whose value changed, with the change."""
    assert set(k for k in before if k[0].startswith(prefix)) == set(k for k in after if k[0].startswith(prefix))
    return {k: after[k] - before[k] for k in after if k[0].startswith(prefix) and after[k] != before[k]}


def req(transport, method):
    return key("mcp_tool_server_requests_total", transport=transport, method=method)


def tool(name, result):
    return key("mcp_tool_server_tool_calls_total", tool=name, result=result)


def wait_for(fn, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, "timed out waiting for " + what
            return value
        time.sleep(0.05)


def log_lines(server, event, sub):
    return [line for line in server.proc.log().splitlines()
            if " event=%s " % event in line and " sub=%s" % sub in line]


# --- the exposition -----------------------------------------------------------

def test_promtool_accepts_the_exposition(server):
    c = StreamableClient(server, sub="promtool").initialize()
    c.call("save_snippet", snippetname="p", snippet="x")
    c.call("get_snippet", snippetname="p")
    text = scrape_text(server)
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "" and out.stderr == "", "promtool complains:\n" + out.stdout + out.stderr
    # every family has its HELP and TYPE, of the right type
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    assert types == {"mcp_tool_server_requests_total": "counter", "mcp_tool_server_tool_calls_total": "counter",
                     "mcp_tool_server_storage_duration_seconds": "histogram",
                     "mcp_tool_server_storage_errors_total": "counter", "mcp_tool_server_sse_streams": "gauge",
                     "mcp_tool_server_sessions": "gauge"}
    assert helps == set(types)


def test_the_label_sets_are_the_fixed_ones(server):
    s = scrape(server)
    assert {k for k in s if k[0] == "mcp_tool_server_requests_total"} == \
        {req(t, m) for t in ("streamable_http", "sse") for m in METHODS}
    assert {k for k in s if k[0] == "mcp_tool_server_tool_calls_total"} == \
        {tool(t, r) for t in TOOLS for r in RESULTS}
    assert {k for k in s if k[0] == "mcp_tool_server_storage_duration_seconds_bucket"} == \
        {key("mcp_tool_server_storage_duration_seconds_bucket", op=op, store="sqlite", le=le)
         for op in ("get", "put") for le in BUCKETS}
    assert {k for k in s if k[0] == "mcp_tool_server_storage_errors_total"} == \
        {key("mcp_tool_server_storage_errors_total", op=op, store="sqlite") for op in ("get", "put")}


def test_metrics_is_get_only(server):
    assert requests.post(server.base + "/metrics", timeout=5).status_code == 405


# --- counters -----------------------------------------------------------------

def test_tool_calls_are_counted_by_tool_result_and_transport(server):
    n_http, n_sse = 3, 2
    before = scrape(server)
    c = StreamableClient(server, sub="counter-user").initialize()  # initialize + notifications/initialized
    for i in range(n_http):
        assert c.call("save_snippet", snippetname="h%d" % i, snippet="v")["result"]["isError"] is False
        assert c.call("get_snippet", snippetname="h%d" % i)["result"]["isError"] is False
        assert text_of(c.call("hello_mcp")["result"]) == "Hello I am MCPTool!"
    assert c.call("get_snippet", snippetname="missing")["result"]["isError"] is True      # not found
    assert c.call("get_snippet", snippetname="bad/name")["result"]["isError"] is True     # refused name
    assert c.request("tools/call", {"name": "no_such_tool"})["error"]["code"] == -32602
    assert c.request("tools/call")["error"]["code"] == -32602                            # no params
    assert c.request("tools/list")["result"]["tools"]
    assert c.request("ping")["result"] == {}

    s = SseClient(server, sub="counter-user")
    try:
        s.request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}})
        assert s.post(rpc("notifications/initialized", notification=True)).status_code == 202
        for i in range(n_sse):
            assert s.request("tools/call", {"name": "save_snippet",
                                            "arguments": {"snippetname": "s%d" % i, "snippet": "v"}})["result"]
            assert s.request("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "s%d" % i}})
            assert s.request("tools/call", {"name": "hello_mcp"})["result"]["isError"] is False
        s.request("ping")
    finally:
        s.close()
    after = scrape(server)

    assert deltas(before, after, "mcp_tool_server_requests_total") == {
        req("streamable_http", "initialize"): 1,
        req("streamable_http", "notifications/initialized"): 1,
        req("streamable_http", "tools/call"): 3 * n_http + 4,
        req("streamable_http", "tools/list"): 1,
        req("streamable_http", "ping"): 1,
        req("sse", "initialize"): 1,
        req("sse", "notifications/initialized"): 1,
        req("sse", "tools/call"): 3 * n_sse,
        req("sse", "ping"): 1,
    }
    assert deltas(before, after, "mcp_tool_server_tool_calls_total") == {
        tool("save_snippet", "ok"): n_http + n_sse,
        tool("get_snippet", "ok"): n_http + n_sse,
        tool("hello_mcp", "ok"): n_http + n_sse,
        tool("get_snippet", "error"): 2,
        tool("other", "error"): 2,
    }


def test_a_call_refused_by_the_scope_check_is_denied(server):
    before = scrape(server)
    c = StreamableClient(server, sub="denied-user")
    c.initialize()
    token = server.token("denied-user", scope="mcp")  # no snippets:write
    r = c.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "d", "snippet": "v"}}),
               headers={"X-MCP-Identity": token})
    assert r.status_code == 403, r.text
    # a 2025-03-26 batch refused as a whole: each of its calls is denied, none ran
    b = StreamableClient(server, sub="denied-user", version="2025-03-26").initialize()
    batch = [rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "d1", "snippet": "v"}}),
             rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "d2", "snippet": "v"}}),
             rpc("tools/call", {"name": "hello_mcp"})]
    assert b.post(batch, headers={"X-MCP-Identity": token}).status_code == 403
    after = scrape(server)
    assert deltas(before, after, "mcp_tool_server_tool_calls_total") == {
        tool("save_snippet", "denied"): 3,
        tool("hello_mcp", "denied"): 1,
    }
    # refused before they were handled: only the two sessions' set-up counts as requests
    assert deltas(before, after, "mcp_tool_server_requests_total") == {
        req("streamable_http", "initialize"): 2,
        req("streamable_http", "notifications/initialized"): 2,
    }
    lines = log_lines(server, "tool_call", "denied-user")
    assert len(lines) == 4 and all(" result=denied " in line for line in lines)


def test_a_call_refused_by_a_claim_rule_is_denied(tmp_path):
    srv = ScopedServer(tmp_path, args=["--tool-claim", "save_snippet:groups=editors"]).start()
    try:
        before = scrape(srv)
        c = StreamableClient(srv, sub="claimless").initialize()
        save = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "d", "snippet": "v"}})
        assert c.post(save).status_code == 403
        editor = srv.token("claimless", claims={"groups": ["editors"]})
        assert c.post(save, headers={"X-MCP-Identity": editor}).json()["result"]["isError"] is False
        assert deltas(before, scrape(srv), "mcp_tool_server_tool_calls_total") == {
            tool("save_snippet", "denied"): 1,
            tool("save_snippet", "ok"): 1,
        }
        lines = log_lines(srv, "claim_refused", "claimless")
        assert len(lines) == 1 and "save_snippet requires groups = editors" in lines[0]
    finally:
        assert srv.stop() == 0


def random_name(rng):
    alphabet = string.ascii_letters + string.digits + "/_-.\"\\{}= \t\u00e9"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def test_clients_cannot_create_label_values(server):
    rng = random.Random(20261206)
    methods = [random_name(rng) for _ in range(50)]
    tools = [random_name(rng) for _ in range(50)]
    before = scrape(server)
    c = StreamableClient(server, sub="random-user").initialize()
    for m in methods:
        assert c.request(m)["error"]["code"] == -32601
    for t in tools:
        assert c.request("tools/call", {"name": t})["error"]["code"] == -32602
    # notifications with unknown methods, and the same over HTTP+SSE
    for m in methods[:10]:
        assert c.post(rpc(m, notification=True)).status_code == 202
    s = SseClient(server, sub="random-user")
    try:
        for m in methods[:5]:
            assert s.request(m)["error"]["code"] == -32601
        for t in tools[:5]:
            assert s.request("tools/call", {"name": t})["error"]["code"] == -32602
    finally:
        s.close()
    after = scrape(server)
    assert set(after) == set(before)  # not one series more
    assert deltas(before, after, "mcp_tool_server_requests_total") == {
        req("streamable_http", "initialize"): 1,
        req("streamable_http", "notifications/initialized"): 1,
        req("streamable_http", "other"): 60,
        req("streamable_http", "tools/call"): 50,
        req("sse", "other"): 5,
        req("sse", "tools/call"): 5,
    }
    assert deltas(before, after, "mcp_tool_server_tool_calls_total") == {tool("other", "error"): 55}
    # the log names the label, not what the client sent
    lines = log_lines(server, "tool_call", "random-user")
    assert len(lines) == 55 and all(" tool=other result=error " in line for line in lines)


# --- gauges -------------------------------------------------------------------

STREAMS = key("mcp_tool_server_sse_streams")
SESSIONS = key("mcp_tool_server_sessions")


def gauges(server):
    s = scrape(server)
    return s[STREAMS], s[SESSIONS]


def test_the_stream_and_session_gauges_follow_streams_and_sessions(server):
    streams0, sessions0 = gauges(server)
    sse = SseClient(server, sub="gauge-user")                    # a session and its stream
    assert gauges(server) == (streams0 + 1, sessions0 + 1)
    c = StreamableClient(server, sub="gauge-user").initialize()  # a session without a stream
    assert gauges(server) == (streams0 + 1, sessions0 + 2)
    h = c.headers({"Accept": "text/event-stream"})
    get = requests.get(server.base + "/mcp", headers=h, stream=True, timeout=10)  # its GET stream
    assert get.status_code == 200
    try:
        wait_for(lambda: gauges(server) == (streams0 + 2, sessions0 + 2), "the GET stream to count")
        sse.close()                                              # ends the HTTP+SSE session
        wait_for(lambda: gauges(server) == (streams0 + 1, sessions0 + 1), "the SSE stream to go")
        r = requests.delete(server.base + "/mcp", headers=c.headers(), timeout=5)
        assert r.status_code == 204                              # ends the session and its stream
        assert gauges(server) == (streams0, sessions0)
    finally:
        get.close()
        sse.close()


# --- storage ------------------------------------------------------------------

def storage(s, op, store="sqlite"):
    labels = dict(op=op, store=store)
    buckets = [s[key("mcp_tool_server_storage_duration_seconds_bucket", le=le, **labels)] for le in BUCKETS]
    return {"buckets": buckets,
            "count": s[key("mcp_tool_server_storage_duration_seconds_count", **labels)],
            "sum": s[key("mcp_tool_server_storage_duration_seconds_sum", **labels)],
            "errors": s[key("mcp_tool_server_storage_errors_total", **labels)]}


def test_the_storage_histogram_counts_every_store_call(server):
    before = scrape(server)
    c = StreamableClient(server, sub="storage-user").initialize()
    for i in range(4):
        c.call("save_snippet", snippetname="st%d" % i, snippet="v" * (i + 1))
    for i in range(3):
        c.call("get_snippet", snippetname="st%d" % i)
    c.call("get_snippet", snippetname="never-saved")   # reaches the store: not found
    c.call("get_snippet", snippetname="no/slash")      # refused before the store
    c.call("save_snippet", snippetname="empty", snippet="")  # likewise
    c.call("hello_mcp")
    after = scrape(server)
    for op, calls in (("put", 4), ("get", 4)):
        b, a = storage(before, op), storage(after, op)
        assert a["count"] - b["count"] == calls
        assert a["buckets"][-1] == a["count"]         # +Inf is the count
        assert all(x <= y for x, y in zip(a["buckets"], a["buckets"][1:]))  # cumulative
        assert a["sum"] > b["sum"]
        assert a["errors"] == b["errors"]


# --- trace context --------------------------------------------------------------

def test_a_valid_traceparent_puts_its_trace_id_on_the_requests_log_lines(server):
    c = StreamableClient(server, sub="trace-user").initialize()
    r = c.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "t", "snippet": "v"}}),
               headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200 and r.json()["result"]["isError"] is False
    lines = log_lines(server, "tool_call", "trace-user")
    assert len(lines) == 1
    assert lines[0].endswith(" tool=save_snippet result=ok sub=trace-user trace_id=" + TRACE_ID)
    saved = [line for line in server.proc.log().splitlines() if "event=snippet_saved name=t " in line]
    assert len(saved) == 1 and saved[0].endswith(" trace_id=" + TRACE_ID)
    # HTTP+SSE: the response goes down the stream, the log line has the POST's trace id
    s = SseClient(server, sub="trace-sse")
    try:
        msg = rpc("tools/call", {"name": "hello_mcp"})
        assert s.post(msg, headers={"traceparent": TRACEPARENT}).status_code == 202
        assert json.loads(s.next_event()[1])["id"] == msg["id"]
    finally:
        s.close()
    lines = log_lines(server, "tool_call", "trace-sse")
    assert len(lines) == 1 and lines[0].endswith(" trace_id=" + TRACE_ID)
    # a refusal's warning carries it too
    token = server.token("trace-denied", scope="mcp")
    d = StreamableClient(server, sub="trace-denied").initialize()
    r = d.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "t", "snippet": "v"}}),
               headers={"traceparent": TRACEPARENT, "X-MCP-Identity": token})
    assert r.status_code == 403
    refused = [line for line in server.proc.log().splitlines()
               if "event=scope_refused" in line and "sub=trace-denied" in line]
    assert len(refused) == 1 and refused[0].endswith(" trace_id=" + TRACE_ID)


MALFORMED = [
    "01-%s-00f067aa0ba902b7-01" % TRACE_ID,                # another version
    "ff-%s-00f067aa0ba902b7-01" % TRACE_ID,                # the forbidden version
    "00-%s-00f067aa0ba902b7-01" % TRACE_ID.upper(),        # upper-case hex
    "00-%s-00f067aa0ba902b7-01" % ("0" * 32),              # all-zero trace id
    "00-%s-0000000000000000-01" % TRACE_ID,                # all-zero parent id
    "00-%s-00f067aa0ba902b7-01" % TRACE_ID[:-1],           # trace id too short
    "00-%s-00f067aa0ba902b7-01-" % TRACE_ID,               # trailing bytes
    "00-%s-00f067aa0ba902b7-1" % TRACE_ID,                 # one-digit flags
    "00-%s-00f067aa0ba902b7-0g" % TRACE_ID,                # non-hex flags
    "00-%sx00f067aa0ba902b7-01" % TRACE_ID,                # wrong separator
    "00_%s_00f067aa0ba902b7_01" % TRACE_ID,
    "",
    "garbage",
]


@pytest.mark.parametrize("i", range(len(MALFORMED)))
def test_a_malformed_traceparent_is_ignored(server, i):
    sub = "malformed-%d" % i
    c = StreamableClient(server, sub=sub).initialize()
    r = c.post(rpc("tools/call", {"name": "hello_mcp"}), headers={"traceparent": MALFORMED[i]})
    assert r.status_code == 200 and text_of(r.json()["result"]) == "Hello I am MCPTool!"
    lines = log_lines(server, "tool_call", sub)
    assert len(lines) == 1 and "trace_id" not in lines[0], lines
    assert lines[0].endswith(" sub=" + sub)


def test_a_repeated_traceparent_is_ignored(server):
    c = StreamableClient(server, sub="repeated-trace").initialize()
    h = "\r\n".join(["POST /mcp HTTP/1.1", "Host: x", "Content-Type: application/json",
                     "Accept: application/json", "X-MCP-Identity: " + c.server.token("repeated-trace"),
                     "Mcp-Session-Id: " + c.session_id, "MCP-Protocol-Version: 2025-06-18",
                     "traceparent: " + TRACEPARENT, "traceparent: " + TRACEPARENT, "Connection: close"])
    body = json.dumps(rpc("tools/call", {"name": "hello_mcp"}))
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall((h + "\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and b"Hello I am MCPTool!" in reply
    lines = log_lines(server, "tool_call", "repeated-trace")
    assert len(lines) == 1 and "trace_id" not in lines[0]


def test_requests_without_traceparent_log_no_trace_id(server):
    c = StreamableClient(server, sub="no-trace").initialize()
    c.call("hello_mcp")
    lines = log_lines(server, "tool_call", "no-trace")
    assert lines == [lines[0]] and lines[0].endswith(" tool=hello_mcp result=ok sub=no-trace")
    opened = [line for line in server.proc.log().splitlines() if "event=session_opened" in line
              and "sub=no-trace" in line]
    assert len(opened) == 1 and "trace_id" not in opened[0]


# --- Redis: answers that come later, and storage errors -------------------------

@pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server not installed")
def test_redis_store_calls_are_timed_to_their_answer_and_failures_counted(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    srv = ToolServer(tmp_path / "ts", args=["--store", "redis", "--redis-port", str(redis.port),
                                            "--redis-timeout-ms", "300"]).start()
    try:
        before = scrape(srv)
        c = StreamableClient(srv, sub="redis-user").initialize()
        for i in range(3):
            assert c.call("save_snippet", snippetname="r%d" % i, snippet="v")["result"]["isError"] is False
        assert c.call("get_snippet", snippetname="r0")["result"]["isError"] is False
        mid = scrape(srv)
        assert storage(mid, "put", "redis")["count"] - storage(before, "put", "redis")["count"] == 3
        assert storage(mid, "get", "redis")["count"] - storage(before, "get", "redis")["count"] == 1
        assert storage(mid, "put", "redis")["errors"] == storage(before, "put", "redis")["errors"]

        # Redis stalled: the call waits for the 300 ms timeout, then fails
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            r = c.post(rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "r1"}}),
                       headers={"traceparent": TRACEPARENT})
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        assert r.status_code == 200 and r.json()["result"]["isError"] is True
        after = scrape(srv)
        b, a = storage(mid, "get", "redis"), storage(after, "get", "redis")
        assert a["count"] - b["count"] == 1 and a["errors"] - b["errors"] == 1
        moved = [a["buckets"][i] - b["buckets"][i] for i in range(len(BUCKETS))]
        # timed to the answer (about 0.3 s), not to the call's return
        assert moved[BUCKETS.index("0.25")] == 0 and moved[BUCKETS.index("1")] == 1
        assert a["sum"] - b["sum"] >= 0.29
        assert storage(after, "put", "redis")["errors"] == storage(mid, "put", "redis")["errors"]
        assert deltas(mid, after, "mcp_tool_server_tool_calls_total") == {tool("get_snippet", "error"): 1}
        # the answer came in a later loop turn; its log lines still carry the trace id
        log = srv.proc.log().splitlines()
        failed = [line for line in log if "event=store_load_failed" in line]
        assert len(failed) == 1 and failed[0].endswith(" trace_id=" + TRACE_ID)
        calls = log_lines(srv, "tool_call", "redis-user")
        assert len(calls) == 5 and calls[-1].endswith(" result=error sub=redis-user trace_id=" + TRACE_ID)
        assert all("trace_id" not in line for line in calls[:-1])
        out = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape_text(srv), capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stdout + out.stderr
    finally:
        assert srv.stop() == 0
        redis.stop()
