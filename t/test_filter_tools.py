"""mcp_auth_filter_tools: the gateway removes from a tools/list answer the
tools the user may not call, in front of an MCP server that lists them all
(the tool server started without --tool-scope), through real nginx, the
real tool server and the real provider.  An answer larger than
mcp_auth_filter_tools_max_size goes on untouched, and is counted."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness import free_port
from mcp_gateway import Streamable, login, rpc, text_of
from metrics_util import metric, scrape

ALL_TOOLS = {"hello_mcp", "get_snippet", "save_snippet"}
OPEN_FOR = 4  # seconds the upstream keeps a stream open after its answer
FAMILY = "mcp_auth_tools_list_filter_total"


class ChunkedUpstream(BaseHTTPRequestHandler):
    """An MCP server that answers every POST with a tools/list result as an
    event stream of unknown length, in several chunks."""

    protocol_version = "HTTP/1.1"
    tools = 40  # "tool_0".."tool_39", plus save_snippet and get_snippet

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        tools = [{"name": "save_snippet"}, {"name": "get_snippet"}] + \
                [{"name": "tool_%d" % i, "description": "x" * 40} for i in range(self.tools)]
        body = ("event: message\ndata: %s\n\n" % json.dumps(
            {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 500):
            part = body[i:i + 500]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.02)
        # a server may keep the stream open after its answer
        if self.path.endswith("/open"):
            for _ in range(int(OPEN_FOR / 0.2)):
                time.sleep(0.2)
                self.wfile.write(b"e\r\n: keep-alive\n\n\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), ChunkedUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def locations(upstream_port):
    """Guarded locations beside /mcp: the filter off, a small limit, and the
    chunked upstream with a large and a small limit."""
    def location(path, extra, to="http://mcp_tool_server/mcp"):
        return ("location = %s {\n    mcp_auth_protect on;\n%s    proxy_pass %s;\n"
                "    include mcp_proxy_params;\n}\n\n" % (path, extra, to))
    chunked = "http://127.0.0.1:%d/mcp" % upstream_port
    return (location("/mcp-unfiltered", "    mcp_auth_filter_tools off;\n")
            + location("/mcp-small", "    mcp_auth_filter_tools_max_size 200;\n")
            + location("/mcp-chunked", "", chunked)
            + location("/mcp-chunked-small", "    mcp_auth_filter_tools_max_size 1k;\n", chunked)
            + location("/mcp-open", "", chunked.replace("/mcp", "/open")))


@pytest.fixture(scope="module")
def gw(stack_factory, upstream):
    marker = "# legacy HTTP+SSE (2024-11-05): the stream ..."
    st = stack_factory("filter", http_extra="    mcp_auth_filter_tools on;\n",
                       replace=[(marker, locations(upstream) + marker)])
    # snippets:write for anyone who asks: save_snippet's claim rule (groups
    # editors) alone keeps it from users outside the group
    conf = st.nginx.conf.read_text()
    assert "mcp_auth_tool_claim  save_snippet groups editors;" in conf
    assert "\n    mcp_auth_scope_claim" not in conf
    # an upstream we do not control: it lists every tool to everyone
    st.tool.stop()
    st.tool_scope_args = []
    st.start_tool_server(st.tool_port)
    return st


@pytest.fixture(scope="module")
def reader(gw):
    """A user who holds snippets:read only: save_snippet needs snippets:write."""
    return login(gw, "demo", scope="snippets:read").tokens["access_token"]


@pytest.fixture(scope="module")
def writer(gw):
    return login(gw, "demo", scope="snippets:read snippets:write").tokens["access_token"]


@pytest.fixture(scope="module")
def outsider(gw):
    """viewer: snippets:write, but not in the group editors."""
    return login(gw, "viewer", scope="snippets:read snippets:write").tokens["access_token"]


def session(gw, token, path="/mcp"):
    s = Streamable(gw.url, token)
    s.url = gw.url + path
    return s.initialize()


def names(answer):
    return {t["name"] for t in answer["result"]["tools"]}


def sse_messages(text):
    """The data of each event of an event stream, parsed."""
    out = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


def filter_counts(gw):
    samples = scrape(gw)
    return {o: metric(samples, FAMILY, outcome=o)
            for o in ("filtered", "unchanged", "not_filterable", "too_large")}


def delta(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_the_upstream_lists_every_tool_to_everyone(gw, reader):
    # what the filter works against: without it, save_snippet is shown
    s = session(gw, reader, "/mcp-unfiltered")
    assert names(s.request("tools/list")) == ALL_TOOLS


def test_a_json_answer_loses_the_tools_the_scope_does_not_allow(gw, reader):
    before = filter_counts(gw)
    s = session(gw, reader)
    r = s.post(rpc("tools/list"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert names(r.json()) == {"hello_mcp", "get_snippet"}
    assert r.json()["jsonrpc"] == "2.0" and "id" in r.json()
    # every entry kept whole
    get = [t for t in r.json()["result"]["tools"] if t["name"] == "get_snippet"][0]
    assert get["inputSchema"]["properties"]["snippetname"]["type"] == "string"
    assert delta(before, filter_counts(gw)) == {"filtered": 1}


def test_a_user_who_may_call_everything_sees_everything(gw, writer):
    before = filter_counts(gw)
    s = session(gw, writer)
    assert names(s.request("tools/list")) == ALL_TOOLS
    assert delta(before, filter_counts(gw)) == {"unchanged": 1}


def test_a_tool_whose_claim_rule_the_user_fails_is_removed(gw, outsider):
    before = filter_counts(gw)
    s = session(gw, outsider)
    assert names(s.request("tools/list")) == {"hello_mcp", "get_snippet"}
    assert delta(before, filter_counts(gw)) == {"filtered": 1}
    # the scope is there: the claim rule is what removed it
    r = s.post(rpc("tools/call", {"name": "save_snippet",
                                  "arguments": {"snippetname": "x", "snippet": "y"}}))
    assert r.status_code == 403 and "requires groups = editors" in r.text, (r.status_code, r.text)
    assert names(session(gw, outsider, "/mcp-unfiltered").request("tools/list")) == ALL_TOOLS


def test_an_event_stream_answer_is_filtered(gw, reader):
    before = filter_counts(gw)
    s = session(gw, reader)
    r = s.post(rpc("tools/list"), headers={"Accept": "text/event-stream"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.text.startswith("event: message\ndata: ")
    (answer,) = sse_messages(r.text)
    assert names(answer) == {"hello_mcp", "get_snippet"}
    assert delta(before, filter_counts(gw)) == {"filtered": 1}
    # the same answer unfiltered has save_snippet
    u = session(gw, reader, "/mcp-unfiltered")
    r = u.post(rpc("tools/list"), headers={"Accept": "text/event-stream"})
    (answer,) = sse_messages(r.text)
    assert names(answer) == ALL_TOOLS


def test_filter_off_leaves_the_answer_untouched(gw, reader):
    before = filter_counts(gw)
    s = session(gw, reader, "/mcp-unfiltered")
    r = s.post(rpc("tools/list"))
    assert names(r.json()) == ALL_TOOLS
    # as the tool server sent it: its length known, not counted
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert delta(before, filter_counts(gw)) == {}


def test_an_answer_larger_than_the_limit_passes_untouched_and_is_counted(gw, reader):
    before = filter_counts(gw)
    s = session(gw, reader, "/mcp-small")
    r = s.post(rpc("tools/list"))
    assert len(r.content) > 200
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert names(r.json()) == ALL_TOOLS
    assert delta(before, filter_counts(gw)) == {"too_large": 1}


def test_a_streamed_answer_of_unknown_length_is_gathered_and_filtered(gw, reader):
    before = filter_counts(gw)
    s = Streamable(gw.url, reader)
    s.url = gw.url + "/mcp-chunked"
    r = s.post(rpc("tools/list"))
    assert r.status_code == 200
    (answer,) = sse_messages(r.text)
    kept = names(answer)
    assert "save_snippet" not in kept and "get_snippet" in kept
    assert len(kept) == ChunkedUpstream.tools + 1
    assert delta(before, filter_counts(gw)) == {"filtered": 1}


def test_a_streamed_answer_that_grows_too_large_arrives_whole(gw, reader):
    before = filter_counts(gw)
    s = Streamable(gw.url, reader)
    s.url = gw.url + "/mcp-chunked-small"
    r = s.post(rpc("tools/list"))
    assert r.status_code == 200
    assert len(r.content) > 1024
    # byte for byte what the upstream sent: neither cut nor filtered
    (answer,) = sse_messages(r.text)
    assert r.text == "event: message\ndata: %s\n\n" % json.dumps(answer)
    assert len(answer["result"]["tools"]) == ChunkedUpstream.tools + 2
    assert delta(before, filter_counts(gw)) == {"too_large": 1}


def test_an_answer_is_not_held_while_its_stream_stays_open(gw, reader):
    before = filter_counts(gw)
    started = time.monotonic()
    r = requests.post(gw.url + "/mcp-open", data=json.dumps(rpc("tools/list")), stream=True,
                      timeout=15, headers={"Authorization": "Bearer " + reader,
                                           "Content-Type": "application/json",
                                           "Accept": "text/event-stream"})
    assert r.status_code == 200
    text = ""
    for chunk in r.iter_content(chunk_size=None, decode_unicode=True):
        text += chunk
        if "\n\n" in text:
            break
    took = time.monotonic() - started
    r.close()
    (answer,) = sse_messages(text.split("\n\n")[0] + "\n\n")
    assert "save_snippet" not in names(answer) and "get_snippet" in names(answer)
    assert took < OPEN_FOR - 1, took
    assert delta(before, filter_counts(gw)) == {"filtered": 1}


def test_tools_call_still_works(gw, reader, writer):
    s = session(gw, reader)
    assert "Hello" in text_of(s.call("hello_mcp"))
    w = session(gw, writer)
    before = filter_counts(gw)
    saved = w.call("save_snippet", snippetname="filter-test", snippet="kept")
    assert "error" not in saved and not saved["result"].get("isError"), saved
    assert text_of(s.call("get_snippet", snippetname="filter-test")) == "kept"
    assert delta(before, filter_counts(gw)) == {}


def test_other_requests_are_untouched(gw, reader):
    before = filter_counts(gw)
    s = session(gw, reader)
    for method in ("ping", "prompts/list", "resources/list"):
        r = s.post(rpc(method))
        assert r.status_code == 200, r.text
        # the tool server's own answer: its length known
        assert int(r.headers["Content-Length"]) == len(r.content)
    # a batch holding a tools/list is not one tools/list
    r = s.post([rpc("tools/list"), rpc("ping")])
    if r.status_code == 200:
        assert int(r.headers["Content-Length"]) == len(r.content)
    assert delta(before, filter_counts(gw)) == {}
