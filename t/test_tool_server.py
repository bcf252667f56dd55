"""mcp-tool-server, tested directly (no nginx): both MCP transports, the
tools, JSON-RPC errors, identity assertions, sessions, storage durability and
shutdown."""

import base64
import json
import signal
import threading
import time

import pytest
import requests

from harness import TOOL_SERVER
from toolserver_util import (JSON_HEADERS, SseClient, StreamableClient, ToolServer, make_ec_key, mint,
                             mint_es256, rpc, text_of)

pytestmark = pytest.mark.skipif(not TOOL_SERVER.exists(), reason="build/mcp-tool-server not built")

MAX_BODY = 64 * 1024
MAX_SNIPPET = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ToolServer(tmp_path_factory.mktemp("tool-server"),
                     args=["--keepalive-interval", "1", "--max-body", str(MAX_BODY),
                           "--max-snippet", str(MAX_SNIPPET), "--log-level", "debug"]).start()
    yield srv
    log = srv.proc.log()
    assert srv.stop() == 0
    assert "Sanitizer" not in log and "runtime error" not in log


@pytest.fixture
def client(server):
    return StreamableClient(server).initialize()


def post_mcp(server, body, sub="alice", headers=None, raw=None, token=None):
    h = dict(JSON_HEADERS)
    h["X-MCP-Identity"] = token if token is not None else server.token(sub)
    h.update(headers or {})
    data = raw if raw is not None else json.dumps(body)
    return requests.post(server.base + "/mcp", data=data, headers=h, timeout=10)


def stateless(server, body, sub="alice", method=None, name=None, headers=None):
    """A 2026-07-28 request with its mirror headers."""
    h = {"MCP-Protocol-Version": "2026-07-28",
         "Mcp-Method": method if method is not None else body["method"]}
    tool = name if name is not None else body.get("params", {}).get("name")
    if tool is not None:
        h["Mcp-Name"] = tool
    h.update(headers or {})
    return post_mcp(server, body, sub=sub, headers={k: v for k, v in h.items() if v != ""})


# --- basics -------------------------------------------------------------------

def test_healthz_answers_ok_without_an_assertion(server):
    r = requests.get(server.base + "/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_help_lists_every_flag():
    import subprocess
    out = subprocess.run([str(TOOL_SERVER), "--help"], capture_output=True, text=True, timeout=5)
    assert out.returncode == 0
    for flag in ["--listen", "--data-dir", "--identity-key", "--identity-public-key", "--identity-iss",
                 "--identity-aud", "--snippet-scope", "--allowed-origins", "--max-body", "--max-snippet",
                 "--keepalive-interval", "--log-level", "--insecure-no-auth", "--tool-scope", "--tool-claim",
                 "--max-sessions", "--max-sessions-per-subject"]:
        assert flag in out.stdout


def test_unknown_paths_are_404_and_wrong_methods_405(server):
    h = {"X-MCP-Identity": server.token()}
    assert requests.get(server.base + "/nope", headers=h, timeout=5).status_code == 404
    r = requests.put(server.base + "/mcp", headers=h, timeout=5)
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]


# --- Streamable HTTP -------------------------------------------------------------

def test_streamable_http_session_runs_initialize_list_and_call(server):
    c = StreamableClient(server, version="2025-11-25").initialize()
    assert len(c.session_id) >= 32
    tools = c.request("tools/list")["result"]["tools"]
    assert {t["name"] for t in tools} == {"hello_mcp", "get_snippet", "save_snippet"}
    assert text_of(c.call("hello_mcp")["result"]) == "Hello I am MCPTool!"
    assert c.request("ping")["result"] == {}


def test_initialize_reports_server_info_and_tools_capability(server):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}))
    result = r.json()["result"]
    assert result["serverInfo"]["name"] == "mcp-tool-server"
    assert "tools" in result["capabilities"]


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"])
def test_initialize_answers_with_the_clients_supported_version(server, version):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": version, "capabilities": {}}))
    assert r.status_code == 200
    assert r.json()["result"]["protocolVersion"] == version


def test_initialize_with_an_unknown_version_answers_the_latest(server):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "1999-01-01", "capabilities": {}}))
    assert r.json()["result"]["protocolVersion"] == "2026-07-28"


def test_initialize_negotiating_2026_07_28_issues_no_session(server):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2026-07-28", "capabilities": {}}))
    assert r.status_code == 200
    assert "Mcp-Session-Id" not in r.headers


def test_tools_list_describes_each_tool_with_a_json_schema(client):
    tools = {t["name"]: t for t in client.request("tools/list")["result"]["tools"]}
    assert tools["hello_mcp"]["description"] == "Hello world."
    assert tools["hello_mcp"]["inputSchema"]["properties"] == {}
    get = tools["get_snippet"]
    assert get["description"] == "Retrieve a snippet by name."
    assert get["inputSchema"]["type"] == "object"
    assert get["inputSchema"]["properties"]["snippetname"] == {
        "type": "string", "description": "The name of the snippet."}
    assert get["inputSchema"]["required"] == ["snippetname"]
    save = tools["save_snippet"]
    assert save["description"] == "Save a snippet with a name."
    assert save["inputSchema"]["properties"]["snippet"]["description"] == "The content of the snippet."
    assert sorted(save["inputSchema"]["required"]) == ["snippet", "snippetname"]


def test_notification_is_accepted_with_202_and_an_empty_body(client):
    r = client.post(rpc("notifications/cancelled", {"requestId": 1}, notification=True))
    assert r.status_code == 202
    assert r.text == ""


def test_event_stream_reply_when_the_client_accepts_only_event_streams(client):
    r = client.post(rpc("ping"), headers={"Accept": "text/event-stream"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert r.headers["X-Accel-Buffering"] == "no"
    lines = r.text.strip().split("\n")
    assert lines[0] == "event: message"
    assert json.loads(lines[1][len("data: "):])["result"] == {}


def raw_http(server, request):
    """Sends one raw request (it asks for the connection to close); the raw response."""
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        out = b""
        while True:
            data = s.recv(65536)
            if not data:
                return out
            out += data


def test_responses_carry_the_headers_evhttp_would_give_them(client, server):
    """Date and Content-Length are set by the server itself on HTTP/1.1
    responses; they must be what evhttp adds: Date (RFC 1123, now) then
    Content-Length for responses with a body, neither for HTTP/1.0 without
    keep-alive, no Content-Length on a 204."""
    import email.utils
    body = json.dumps(rpc("tools/call", {"name": "hello_mcp", "arguments": {}}, id_=7)).encode()
    h = client.headers()

    def request(method, version, extra=b"", data=b""):
        head = "".join("%s: %s\r\n" % kv for kv in h.items()).encode()
        if data:
            head += b"Content-Length: %d\r\n" % len(data)
        return (b"%s /mcp %s\r\nHost: x\r\n" % (method, version)) + head + extra + b"\r\n" + data

    out = raw_http(server, request(b"POST", b"HTTP/1.1", b"Connection: close\r\n", body))
    head, _, payload = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    names = [line.split(":", 1)[0] for line in lines[1:]]
    assert names == ["Content-Type", "Cache-Control", "Date", "Content-Length", "Connection"]
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert int(fields["Content-Length"]) == len(payload)
    assert abs(email.utils.parsedate_to_datetime(fields["Date"]).timestamp() - time.time()) < 5
    assert fields["Date"].endswith(" GMT")
    assert json.loads(payload)["result"]["content"][0]["text"] == "Hello I am MCPTool!"

    out = raw_http(server, request(b"POST", b"HTTP/1.0", b"", body))
    head, _, payload = out.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.0 200 OK"
    assert b"Date:" not in head and b"Content-Length:" not in head
    assert json.loads(payload)["id"] == 7

    out = raw_http(server, request(b"DELETE", b"HTTP/1.1", b"Connection: close\r\n"))
    head = out.partition(b"\r\n\r\n")[0]
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 204 No Content"
    assert b"\r\nDate: " in head and b"Content-Length" not in head


def test_control_characters_and_quotes_survive_the_json_round_trip(client):
    text = "".join(chr(c) for c in range(1, 0x20)) + "\"\\/ \x7f caf\u00e9 \u2603 \U0001f600 \\u0041"
    assert client.call("save_snippet", snippetname="ctl", snippet=text)["result"]["isError"] is False
    got = client.post(rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "ctl"}}, id_=-42))
    assert got.json() == {"jsonrpc": "2.0", "id": -42,
                          "result": {"content": [{"type": "text", "text": text}], "isError": False}}
    # printed the way cJSON prints: short escapes where JSON has them, \u00xx for the other controls
    assert "\\b\\t\\n\\u000b\\f\\r\\u000e" in got.text
    assert '"id":-42,' in got.text
    big = client.post(rpc("ping", id_=123456789012345)).text
    assert big.startswith('{"jsonrpc":"2.0","id":123456789012345,')


def test_replies_reach_slow_readers_and_pipelined_requests_in_order(tmp_path):
    """The server writes a reply in the turn that produced it; a reply larger
    than the socket takes must still arrive whole to a client that reads late,
    and pipelined requests must be answered in order."""
    import socket
    srv = ToolServer(tmp_path, args=["--max-snippet", str(8 << 20), "--max-body", str(16 << 20)]).start()
    try:
        client = StreamableClient(srv).initialize()
        big = "0123456789abcdef" * (6 << 16)  # 6 MiB
        assert client.call("save_snippet", snippetname="big", snippet=big)["result"]["isError"] is False

        def request(msg):
            body = json.dumps(msg).encode()
            head = "".join("%s: %s\r\n" % kv for kv in client.headers().items())
            return ("POST /mcp HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (head, len(body))).encode() + body

        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(request(rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "big"}}, id_=1)) +
                      b"".join(request(rpc("ping", id_=i)) for i in range(2, 52)))
            time.sleep(1)
            buf = b""
            for expected_id in range(1, 52):
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(1 << 20)
                head, _, buf = buf.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 ")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                while len(buf) < length:
                    buf += s.recv(1 << 20)
                reply, buf = json.loads(buf[:length]), buf[length:]
                assert reply["id"] == expected_id
                if expected_id == 1:
                    assert text_of(reply["result"]) == big
    finally:
        assert srv.stop() == 0


def test_unacceptable_accept_header_is_406(client):
    assert client.post(rpc("ping"), headers={"Accept": "text/html"}).status_code == 406


def test_request_without_session_id_is_400(server):
    r = post_mcp(server, rpc("tools/list"))
    assert r.status_code == 400
    assert "Mcp-Session-Id" in r.json()["error"]["message"]


def test_request_with_unknown_session_id_is_404(server):
    r = post_mcp(server, rpc("tools/list"), headers={"Mcp-Session-Id": "0" * 32})
    assert r.status_code == 404


def test_session_used_with_another_subjects_assertion_is_404(client, server):
    r = post_mcp(server, rpc("tools/list"), sub="mallory",
                 headers={"Mcp-Session-Id": client.session_id, "MCP-Protocol-Version": client.version})
    assert r.status_code == 404
    assert client.request("tools/list")["result"]["tools"]  # still fine for its owner


def test_unsupported_protocol_version_header_is_400(client):
    r = client.post(rpc("ping"), headers={"MCP-Protocol-Version": "2099-01-01"})
    assert r.status_code == 400
    assert "2099-01-01" in r.json()["error"]["message"]


def test_delete_also_ends_the_sessions_get_stream(server):
    c = StreamableClient(server).initialize()
    with requests.get(server.base + "/mcp", headers=c.headers({"Accept": "text/event-stream"}),
                      stream=True, timeout=10) as stream:
        assert stream.status_code == 200
        second = requests.get(server.base + "/mcp", headers=c.headers({"Accept": "text/event-stream"}), timeout=5)
        assert second.status_code == 409
        assert requests.delete(server.base + "/mcp", headers=c.headers(), timeout=5).status_code == 204
        assert b"".join(stream.iter_content(None)) in (b"", b": keep-alive\n\n")  # ends instead of hanging


def test_delete_ends_the_session(server):
    c = StreamableClient(server).initialize()
    r = requests.delete(server.base + "/mcp", headers=c.headers(), timeout=5)
    assert r.status_code in (200, 204)
    assert c.post(rpc("ping")).status_code == 404


def test_get_mcp_opens_a_keepalive_stream_for_the_session(client, server):
    h = client.headers({"Accept": "text/event-stream"})
    with requests.get(server.base + "/mcp", headers=h, stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["X-Accel-Buffering"] == "no"
        assert r.headers["Cache-Control"] == "no-cache"
        first = next(r.iter_lines(decode_unicode=True))
        assert first == ": keep-alive"
    assert requests.get(server.base + "/mcp", headers=dict(h, **{"Mcp-Session-Id": "f" * 32}),
                        timeout=5).status_code == 404


# --- tools ----------------------------------------------------------------------

def test_hello_mcp_says_hello(client):
    result = client.call("hello_mcp")["result"]
    assert result == {"content": [{"type": "text", "text": "Hello I am MCPTool!"}], "isError": False}


def test_saved_snippet_can_be_read_back(client):
    saved = client.call("save_snippet", snippetname="greeting.v1", snippet="print('hi')\n")["result"]
    assert saved["isError"] is False
    assert text_of(saved) == "Snippet 'print('hi')\n' saved successfully"
    got = client.call("get_snippet", snippetname="greeting.v1")["result"]
    assert got["isError"] is False
    assert text_of(got) == "print('hi')\n"


def test_saving_again_replaces_the_snippet(client):
    client.call("save_snippet", snippetname="replace-me", snippet="one")
    client.call("save_snippet", snippetname="replace-me", snippet="two")
    assert text_of(client.call("get_snippet", snippetname="replace-me")["result"]) == "two"


def test_unknown_snippet_is_a_clear_not_found_result(client):
    result = client.call("get_snippet", snippetname="never-saved")["result"]
    assert result["isError"] is True
    assert "not found" in text_of(result)


@pytest.mark.parametrize("name", ["a/b", "../etc", "..", ".", "", "x" * 129, "with space", "caf\u00e9",
                                  "semi;colon", "back\\slash"])
def test_snippet_names_outside_the_allowed_alphabet_are_refused(client, name):
    for tool, args in [("save_snippet", {"snippetname": name, "snippet": "x"}),
                       ("get_snippet", {"snippetname": name})]:
        result = client.call(tool, **args)["result"]
        assert result["isError"] is True
        assert "Snippet name" in text_of(result)


def test_strings_with_an_escaped_nul_are_refused_instead_of_truncated(client):
    r = client.post(rpc("tools/call", {"name": "save_snippet",
                                       "arguments": {"snippetname": "nul\u0000byte", "snippet": "x"}}))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600
    assert client.call("get_snippet", snippetname="nul")["result"]["isError"] is True
    # an escaped backslash followed by "u0000" is ordinary text
    assert client.call("save_snippet", snippetname="bs", snippet="\\u0000")["result"]["isError"] is False


def test_snippet_names_with_a_slash_are_refused(client):
    result = client.call("save_snippet", snippetname="dir/file", snippet="x")["result"]
    assert result["isError"] is True
    assert "letters, digits" in text_of(result)


def test_snippet_name_of_128_allowed_characters_is_accepted(client):
    name = ("Az09._-" * 19)[:128]
    assert client.call("save_snippet", snippetname=name, snippet="ok")["result"]["isError"] is False
    assert text_of(client.call("get_snippet", snippetname=name)["result"]) == "ok"


def test_snippet_larger_than_max_snippet_is_refused(client):
    result = client.call("save_snippet", snippetname="big", snippet="x" * (MAX_SNIPPET + 1))["result"]
    assert result["isError"] is True
    assert "too large" in text_of(result)
    assert client.call("save_snippet", snippetname="big", snippet="x" * MAX_SNIPPET)["result"]["isError"] is False


def test_empty_snippet_content_is_refused(client):
    result = client.call("save_snippet", snippetname="empty", snippet="")["result"]
    assert result["isError"] is True
    assert "No snippet content provided" in text_of(result)


@pytest.mark.parametrize("args, fragment", [
    ({"snippet": "x"}, "missing required argument 'snippetname'"),
    ({"snippetname": "n"}, "missing required argument 'snippet'"),
    ({"snippetname": 5, "snippet": "x"}, "must be a string"),
    ({"snippetname": "n", "snippet": ["x"]}, "must be a string"),
    ({"snippetname": "n", "snippet": "x", "extra": "y"}, "unknown argument 'extra'"),
])
def test_bad_tool_arguments_are_invalid_params(client, args, fragment):
    error = client.request("tools/call", {"name": "save_snippet", "arguments": args})["error"]
    assert error["code"] == -32602
    assert fragment in error["message"]


def test_unknown_tool_is_invalid_params(client):
    error = client.call("rm_rf")["error"]
    assert error["code"] == -32602
    assert "Unknown tool" in error["message"]


def test_tools_call_without_params_is_invalid_params(client):
    assert client.request("tools/call")["error"]["code"] == -32602


def test_snippets_are_private_to_their_subject(server):
    alice = StreamableClient(server, sub="alice").initialize()
    bob = StreamableClient(server, sub="bob").initialize()
    alice.call("save_snippet", snippetname="secret", snippet="alice's")
    assert bob.call("get_snippet", snippetname="secret")["result"]["isError"] is True
    bob.call("save_snippet", snippetname="secret", snippet="bob's")
    assert text_of(alice.call("get_snippet", snippetname="secret")["result"]) == "alice's"


def test_shared_scope_gives_every_subject_one_space(tmp_path):
    srv = ToolServer(tmp_path, args=["--snippet-scope", "shared"]).start()
    try:
        StreamableClient(srv, sub="alice").initialize().call("save_snippet", snippetname="team", snippet="notes")
        got = StreamableClient(srv, sub="bob").initialize().call("get_snippet", snippetname="team")
        assert text_of(got["result"]) == "notes"
    finally:
        srv.stop()


# --- JSON-RPC errors ----------------------------------------------------------------

def test_malformed_json_is_a_parse_error_with_null_id(client):
    r = client.post(None, raw='{"jsonrpc": "2.0", "id": 1, "method": ')
    assert r.status_code == 400
    assert r.json() == {"jsonrpc": "2.0", "id": None,
                        "error": {"code": -32700, "message": r.json()["error"]["message"]}}


def test_trailing_garbage_after_json_is_a_parse_error(client):
    r = client.post(None, raw='{"jsonrpc":"2.0","id":1,"method":"ping"} x')
    assert r.json()["error"]["code"] == -32700


@pytest.mark.parametrize("body", [
    {"jsonrpc": "1.0", "id": 7, "method": "ping"},
    {"id": 7, "method": "ping"},
    {"jsonrpc": "2.0", "id": 7, "method": 12},
    {"jsonrpc": "2.0", "id": 7, "method": "ping", "params": "nope"},
    {"jsonrpc": "2.0", "id": 7, "method": ""},
])
def test_malformed_requests_are_invalid_request_echoing_the_id(client, body):
    r = client.post(body)
    assert r.status_code == 200
    assert r.json()["id"] == 7
    assert r.json()["error"]["code"] == -32600


@pytest.mark.parametrize("raw", ['"just a string"', '42', '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}',
                                 '{"jsonrpc":"2.0","id":1.5,"method":"ping"}',
                                 '{"jsonrpc":"2.0","id":1e300,"method":"ping"}'])
def test_requests_without_a_usable_id_are_invalid_request_with_null_id(client, raw):
    r = client.post(None, raw=raw)
    assert r.status_code == 400
    assert r.json()["id"] is None
    assert r.json()["error"]["code"] == -32600


def test_unknown_method_is_method_not_found(client):
    reply = client.request("resources/list")
    assert reply["error"]["code"] == -32601
    assert "resources/list" in reply["error"]["message"]


def test_initialize_without_protocol_version_is_invalid_params(server):
    r = post_mcp(server, rpc("initialize", {"capabilities": {}}))
    assert r.json()["error"]["code"] == -32602
    assert "Mcp-Session-Id" not in r.headers


def test_batches_are_answered_in_protocol_2025_03_26(server):
    c = StreamableClient(server, version="2025-03-26").initialize()
    batch = [rpc("ping", id_=1), rpc("notifications/initialized", notification=True),
             rpc("tools/call", {"name": "hello_mcp"}, id_=2), rpc("nope", id_=3)]
    r = c.post(batch)
    assert r.status_code == 200
    replies = {m["id"]: m for m in r.json()}
    assert set(replies) == {1, 2, 3}
    assert text_of(replies[2]["result"]) == "Hello I am MCPTool!"
    assert replies[3]["error"]["code"] == -32601


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_batches_are_refused_from_protocol_2025_06_18_on(server, version):
    c = StreamableClient(server, version=version).initialize()
    r = c.post([rpc("ping"), rpc("ping")])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32600
    assert "batch" in r.json()["error"]["message"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, content_type):
    h = {"Content-Type": content_type} if content_type else {}
    r = requests.post(client.server.base + "/mcp", data=json.dumps(rpc("ping")).encode(),
                      headers={**{k: v for k, v in client.headers().items() if k != "Content-Type"}, **h},
                      timeout=5)
    assert r.status_code == 415


def test_content_type_with_charset_is_accepted(client):
    assert client.post(rpc("ping"), headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200


def test_oversized_body_is_413(client):
    big = json.dumps(rpc("tools/call", {"name": "save_snippet",
                                        "arguments": {"snippetname": "huge", "snippet": "x" * MAX_BODY}}))
    assert client.post(None, raw=big).status_code == 413
    assert client.request("ping")["result"] == {}  # the server is fine afterwards


def test_oversized_body_is_a_json_rpc_error(client):
    r = client.post(None, raw=b" " * (MAX_BODY + 1))
    assert r.status_code == 413
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"jsonrpc": "2.0", "id": None,
                        "error": {"code": -32600, "message": "request body larger than %d bytes" % MAX_BODY}}
    # A body of exactly --max-body is still read (and here is a ping).
    ping = json.dumps(rpc("ping")).encode()
    assert client.post(None, raw=ping + b" " * (MAX_BODY - len(ping))).json()["result"] == {}


def test_oversized_chunked_body_is_a_json_rpc_error(client):
    def chunks():
        for _ in range(5):
            yield b" " * (MAX_BODY // 4)
    r = client.post(None, raw=chunks())
    assert r.status_code == 413
    assert r.json()["error"]["code"] == -32600


def test_body_far_over_the_limit_is_still_refused(client):
    # Beyond evhttp's hard cap libevent answers 413 itself, before the body is buffered.
    r = client.post(None, raw=b" " * (MAX_BODY * 4))
    assert r.status_code == 413
    assert client.request("ping")["result"] == {}


# --- identity assertions ----------------------------------------------------------------

@pytest.mark.parametrize("make_token, why", [
    (lambda s: "", "missing"),
    (lambda s: "not-a-jwt", "invalid"),
    (lambda s: s.token(sign_key=b"k" * 64), "signature"),
    (lambda s: s.token(lifetime=-120, iat=int(time.time()) - 300), "expired"),
    (lambda s: s.token(lifetime=3600), "too long"),
    (lambda s: s.token(iat=int(time.time()) + 600), "future"),
    (lambda s: s.token(aud="someone-else"), "audience"),
    (lambda s: s.token(aud=["a", "b"]), "audience"),
    (lambda s: s.token(iss="evil"), "issuer"),
    (lambda s: s.token(sub=None), "sub"),
    (lambda s: s.token(exp=None), "exp"),
    (lambda s: s.token(alg="none"), "invalid"),
    (lambda s: s.token(alg="HS384"), "algorithm"),
    (lambda s: s.token(alg="HS512"), "algorithm"),
], ids=["missing", "garbage", "wrong-key", "expired", "lifetime-over-5-min", "issued-in-future",
        "wrong-audience", "audience-list-without-ours", "wrong-issuer", "no-sub", "no-exp", "alg-none",
        "alg-hs384", "alg-hs512"])
def test_bad_identity_assertions_are_401(server, make_token, why):
    token = make_token(server)
    h = dict(JSON_HEADERS)
    if token:
        h["X-MCP-Identity"] = token
    r = requests.post(server.base + "/mcp", headers=h, timeout=5,
                      data=json.dumps(rpc("initialize", {"protocolVersion": "2025-06-18"})))
    assert r.status_code == 401
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == -32001
    assert why in body["error"]["message"]
    assert "Mcp-Session-Id" not in r.headers


def test_an_assertion_like_a_verified_one_is_not_taken_from_the_cache(server):
    """Verified assertions are cached by their exact text: one that differs
    from a cached one in a single byte (its signature's last character, or its
    claims with the signature kept) must be verified afresh and refused."""
    token = server.token(sub="cached-sub")
    h = dict(JSON_HEADERS)
    body = json.dumps(rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "t", "version": "1"}}))
    h["X-MCP-Identity"] = token
    assert requests.post(server.base + "/mcp", headers=h, data=body, timeout=5).status_code == 200
    head, claims, sig = token.split(".")
    last = "A" if sig[-1] != "A" else "B"
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload["sub"] = "cached-suc"
    forged_claims = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    for forged in [head + "." + claims + "." + sig[:-1] + last, head + "." + forged_claims + "." + sig,
                   token[:-1], token + "A"]:
        h["X-MCP-Identity"] = forged
        r = requests.post(server.base + "/mcp", headers=h, data=body, timeout=5)
        assert r.status_code == 401, forged
    h["X-MCP-Identity"] = token
    assert requests.post(server.base + "/mcp", headers=h, data=body, timeout=5).status_code == 200


def test_audience_list_containing_ours_is_accepted(server):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2025-06-18"}),
                 token=server.token(aud=["other", "mcp-tool-server"]))
    assert r.status_code == 200


def test_every_mcp_route_requires_an_assertion(server):
    assert requests.get(server.base + "/sse", timeout=5).status_code == 401
    assert requests.post(server.base + "/message?sessionId=x", timeout=5).status_code == 401
    assert requests.get(server.base + "/mcp", timeout=5).status_code == 401
    assert requests.delete(server.base + "/mcp", timeout=5).status_code == 401


def test_es256_assertions_verify_with_the_gateway_public_key(tmp_path):
    priv, pub = make_ec_key(tmp_path)
    srv = ToolServer(tmp_path, identity_args=["--identity-public-key", pub]).start()
    try:
        init = rpc("initialize", {"protocolVersion": "2025-06-18"})
        assert post_mcp(srv, init, token=mint_es256(priv)).status_code == 200
        other, _ = make_ec_key(tmp_path / "other")
        assert post_mcp(srv, init, token=mint_es256(other)).status_code == 401
        # Algorithm confusion: HS256 "signed" with the public key as the secret.
        confused = mint(pub.read_bytes(), alg="HS256")
        r = post_mcp(srv, init, token=confused)
        assert r.status_code == 401
        assert "algorithm" in r.json()["error"]["message"]
    finally:
        srv.stop()


def test_both_key_flags_at_once_are_refused(tmp_path):
    _, pub = make_ec_key(tmp_path)
    srv = ToolServer(tmp_path, args=["--identity-public-key", pub])
    with pytest.raises(RuntimeError, match="only one of"):
        srv.start()


def test_key_shorter_than_32_bytes_is_refused_at_start(tmp_path):
    srv = ToolServer(tmp_path, key=b"short-key")
    with pytest.raises(RuntimeError, match="32 bytes"):
        srv.start()


def test_insecure_no_auth_warns_loudly_and_uses_anonymous(tmp_path):
    srv = ToolServer(tmp_path, args=["--insecure-no-auth"]).start()
    try:
        assert "WARNING" in srv.proc.log() and "insecure-no-auth" in srv.proc.log()
        r = requests.post(srv.base + "/mcp", headers=JSON_HEADERS, timeout=5,
                          data=json.dumps(rpc("initialize", {"protocolVersion": "2025-06-18"})))
        assert r.status_code == 200
    finally:
        srv.stop()


def test_tokens_and_snippet_contents_never_reach_the_log(server, client):
    token = client.headers()["X-MCP-Identity"]
    client.call("save_snippet", snippetname="logcheck", snippet="TOP-SECRET-CONTENT")
    requests.post(server.base + "/mcp", headers=dict(JSON_HEADERS, **{"X-MCP-Identity": token + "x"}),
                  data="{}", timeout=5)
    log = server.proc.log()
    assert "TOP-SECRET-CONTENT" not in log
    assert token.split(".")[2] not in log


# --- Origin ------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example",
                                    "http://127.0.0.1.evil:80", "null"])
def test_foreign_origin_is_403(server, origin):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2025-06-18"}), headers={"Origin": origin})
    assert r.status_code == 403
    assert requests.get(server.base + "/sse", headers={"Origin": origin, "X-MCP-Identity": server.token()},
                        timeout=5).status_code == 403


@pytest.mark.parametrize("origin", ["http://localhost:6274", "http://127.0.0.1", "http://[::1]:8080"])
def test_loopback_origins_are_allowed_by_default(server, origin):
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2025-06-18"}), headers={"Origin": origin})
    assert r.status_code == 200


def test_allowed_origins_flag_replaces_the_default(tmp_path):
    srv = ToolServer(tmp_path, args=["--allowed-origins", "https://app.example, https://b.example"]).start()
    try:
        init = rpc("initialize", {"protocolVersion": "2025-06-18"})
        assert post_mcp(srv, init, headers={"Origin": "https://b.example"}).status_code == 200
        assert post_mcp(srv, init, headers={"Origin": "http://localhost:3000"}).status_code == 403
    finally:
        srv.stop()


# --- 2026-07-28 (stateless) -------------------------------------------------------------------

def test_2026_07_28_tool_calls_need_no_session(server):
    body = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "stateless", "snippet": "s"},
                              "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}})
    r = stateless(server, body)
    assert r.status_code == 200, r.text
    assert "Mcp-Session-Id" not in r.headers
    assert r.json()["result"]["isError"] is False
    r = stateless(server, rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "stateless"}}))
    assert text_of(r.json()["result"]) == "s"


def test_2026_07_28_server_discover_lists_versions(server):
    r = stateless(server, rpc("server/discover", {}))
    assert "2026-07-28" in r.json()["result"]["supportedVersions"]


@pytest.mark.parametrize("method, name, fragment", [
    ("tools/list", None, "Mcp-Method"),
    ("", None, "Mcp-Method header is required"),
    (None, "get_snippet", "Mcp-Name"),
    (None, "", "Mcp-Name header is required"),
])
def test_2026_07_28_header_that_disagrees_with_the_body_is_400(server, method, name, fragment):
    body = rpc("tools/call", {"name": "hello_mcp", "arguments": {}}, id_=99)
    r = stateless(server, body, method=method, name=name)
    assert r.status_code == 400
    assert r.json()["id"] == 99
    assert r.json()["error"]["code"] == -32020
    assert fragment in r.json()["error"]["message"]


def test_2026_07_28_mcp_name_without_a_named_target_is_400(server):
    r = stateless(server, rpc("tools/list"), name="hello_mcp")
    assert r.status_code == 400


def test_2026_07_28_meta_version_that_disagrees_with_the_header_is_400(server):
    body = rpc("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2025-06-18"}})
    r = stateless(server, body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32020


def test_2026_07_28_has_no_get_stream_and_no_batches(server):
    h = {"X-MCP-Identity": server.token(), "Accept": "text/event-stream", "MCP-Protocol-Version": "2026-07-28"}
    assert requests.get(server.base + "/mcp", headers=h, timeout=5).status_code == 405
    r = post_mcp(server, [rpc("ping")], headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"})
    assert r.status_code == 400


# --- HTTP+SSE (2024-11-05) -----------------------------------------------------------------------

def test_sse_transport_runs_initialize_list_and_call(server):
    c = SseClient(server)
    try:
        assert c.response.headers["Content-Type"] == "text/event-stream"
        assert c.response.headers["Cache-Control"] == "no-cache"
        assert c.response.headers["X-Accel-Buffering"] == "no"
        init = c.request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}})
        assert init["result"]["protocolVersion"] == "2024-11-05"
        assert c.post(rpc("notifications/initialized", notification=True)).status_code == 202
        assert len(c.request("tools/list")["result"]["tools"]) == 3
        c.request("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "sse", "snippet": "v"}})
        got = c.request("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "sse"}})
        assert text_of(got["result"]) == "v"
        assert c.request("nope")["error"]["code"] == -32601
    finally:
        c.close()


def test_sse_endpoint_is_relative_so_a_path_prefix_survives(server):
    c = SseClient(server)
    try:
        assert c.endpoint == "message?sessionId=" + c.session_id
        assert len(c.session_id) >= 32
    finally:
        c.close()


def test_sse_endpoint_honours_x_forwarded_prefix(server):
    c = SseClient(server, headers={"X-Forwarded-Prefix": "/mcp/"})
    try:
        assert c.endpoint == "/mcp/message?sessionId=" + c.session_id
        assert c.request("ping")["result"] == {}
    finally:
        c.close()


def test_sse_ignores_an_unsafe_forwarded_prefix(server):
    c = SseClient(server, headers={"X-Forwarded-Prefix": "https://evil.example/x"})
    try:
        assert c.endpoint.startswith("message?sessionId=")
    finally:
        c.close()


def test_sse_stream_sends_keepalive_comments(server):
    c = SseClient(server)
    try:
        assert c.comments.get(timeout=4) == ": keep-alive"
    finally:
        c.close()


def test_sse_parse_error_is_400_and_other_errors_go_down_the_stream(server):
    c = SseClient(server)
    try:
        r = c.post(None, raw="{oops")
        assert r.status_code == 400
        assert r.json()["error"]["code"] == -32700
        r = c.post([rpc("ping")])
        assert r.status_code == 400
        assert r.json()["error"]["code"] == -32600
        assert c.post(None, raw="{}", headers={"Content-Type": "text/plain"}).status_code == 415
        assert c.request("tools/call", {"name": "nope"})["error"]["code"] == -32602
    finally:
        c.close()


def test_sse_message_for_unknown_missing_or_foreign_session(server):
    c = SseClient(server)
    try:
        assert c.post(rpc("ping"), session_id="0" * 32).status_code == 404
        assert c.post(rpc("ping"), sub="mallory").status_code == 404
        r = requests.post(server.base + "/message", data="{}", timeout=5,
                          headers={"Content-Type": "application/json", "X-MCP-Identity": server.token()})
        assert r.status_code == 400
        assert c.request("ping")["result"] == {}
    finally:
        c.close()


def test_closed_sse_stream_frees_its_session(server):
    c = SseClient(server)
    assert c.request("ping")["result"] == {}
    c.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if c.post(rpc("ping")).status_code == 404:
            return
        time.sleep(0.2)
    pytest.fail("session still alive after its stream closed")


def test_sse_session_is_not_usable_on_the_streamable_endpoint(server):
    c = SseClient(server)
    try:
        r = post_mcp(server, rpc("ping"), headers={"Mcp-Session-Id": c.session_id})
        assert r.status_code == 404
    finally:
        c.close()


# --- load, durability, shutdown ------------------------------------------------------------------

def test_200_concurrent_sessions_each_keep_their_own_snippets(server):
    errors = []
    barrier = threading.Barrier(50)

    def worker(i):
        try:
            http = requests.Session()
            # 20 subjects: 10 sessions each, within the per-subject cap (16 by
            # default; a subject's 17th session ends its least recently used one)
            c = StreamableClient(server, sub="user%d" % (i % 20), http=http).initialize()
            if i < 50:
                barrier.wait(timeout=10)
            name = "load-%d" % i
            assert c.call("save_snippet", snippetname=name, snippet="v%d" % i)["result"]["isError"] is False
            assert text_of(c.call("get_snippet", snippetname=name)["result"]) == "v%d" % i
            assert c.request("tools/list")["result"]["tools"]
            http.close()
        except Exception as e:  # collected and reported below
            errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]


def test_many_idle_sse_streams_are_held_at_once(server):
    clients = [SseClient(server, sub="idle%d" % i) for i in range(50)]
    try:
        assert len({c.session_id for c in clients}) == 50
        assert clients[-1].request("ping")["result"] == {}
        assert clients[0].request("ping")["result"] == {}
    finally:
        for c in clients:
            c.close()


def test_snippets_survive_a_restart(tmp_path):
    srv = ToolServer(tmp_path).start()
    StreamableClient(srv).initialize().call("save_snippet", snippetname="durable", snippet="still here")
    assert srv.stop() == 0
    srv.start()
    try:
        got = StreamableClient(srv).initialize().call("get_snippet", snippetname="durable")
        assert text_of(got["result"]) == "still here"
    finally:
        srv.stop()


def test_every_acknowledged_save_survives_kill_9_during_a_burst(tmp_path):
    srv = ToolServer(tmp_path).start()
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def saver(w):
        c = StreamableClient(srv, sub="burst").initialize()
        n = 0
        while not stop.is_set():
            name, value = "w%d-%d" % (w, n), "value-%d-%d" % (w, n)
            try:
                r = c.call("save_snippet", snippetname=name, snippet=value)
            except Exception:
                return  # the server died mid-request: not acknowledged
            if r.get("result", {}).get("isError") is False:
                with lock:
                    acked[name] = value
            n += 1

    threads = [threading.Thread(target=saver, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 20
    srv.start()
    try:
        c = StreamableClient(srv, sub="burst").initialize()
        missing = [n for n, v in acked.items()
                   if c.call("get_snippet", snippetname=n)["result"]["content"][0]["text"] != v]
        assert not missing, missing[:5]
    finally:
        srv.stop()


def test_sigterm_closes_streams_and_exits_0(tmp_path):
    srv = ToolServer(tmp_path).start()
    c = SseClient(srv)
    s = StreamableClient(srv).initialize()
    assert s.request("ping")["result"] == {}
    proc = srv.proc
    proc.popen.send_signal(signal.SIGTERM)
    assert c.closed.wait(5), "stream not closed on SIGTERM"
    assert proc.popen.wait(5) == 0
    srv.stop()
    assert "event=shutdown" in proc.log()


# --- Mcp-Method / Mcp-Name agree with the body, in every version ---------------------------------

def post_with_header_list(server, path, header_list, body, query=""):
    """POST `body` with headers given as (name, value) pairs, repeats allowed
    (requests folds a dict); returns (status, parsed JSON or None)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data = json.dumps(body).encode()
        conn.putrequest("POST", path + query)
        for name, value in header_list:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        text = r.read()
        return r.status, (json.loads(text) if text.startswith(b"{") or text.startswith(b"[") else None)
    finally:
        conn.close()


def b64_name(text):
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


# What each case sends besides the body (a tools/call of save_snippet), and
# whether the call may run.
MIRROR_CASES = {
    "no-headers": ([], True),
    "honest": ([("Mcp-Method", "tools/call"), ("Mcp-Name", "save_snippet")], True),
    "honest-method-only": ([("Mcp-Method", "tools/call")], True),
    "lying-method": ([("Mcp-Method", "tools/list"), ("Mcp-Name", "save_snippet")], False),
    "lying-method-only": ([("Mcp-Method", "tools/list")], False),
    "lying-name": ([("Mcp-Method", "tools/call"), ("Mcp-Name", "hello_mcp")], False),
    "lying-name-only": ([("Mcp-Name", "get_snippet")], False),
    "duplicate-method": ([("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/call"),
                          ("Mcp-Name", "save_snippet")], False),
    "duplicate-name": ([("Mcp-Method", "tools/call"), ("Mcp-Name", "hello_mcp"),
                        ("Mcp-Name", "save_snippet")], False),
    "base64-honest": ([("Mcp-Method", "tools/call"), ("Mcp-Name", b64_name("save_snippet"))], True),
    "base64-lying": ([("Mcp-Method", "tools/call"), ("Mcp-Name", b64_name("hello_mcp"))], False),
    "base64-malformed": ([("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?c2F2ZV9zbmlwcGV0*?=")], False),
    "invalid-characters": ([("Mcp-Method", "tools/call"), ("Mcp-Name", "save_snippet\x7f")], False),
}
# 2026-07-28 requires both headers for a tools/call
REQUIRED_IN_2026 = {"no-headers", "honest-method-only", "lying-name-only"}


def stored(server, name):
    """The snippet `name` of alice, or None, read with a plain 2025-06-18 request."""
    reply = StreamableClient(server).initialize().call("get_snippet", snippetname=name)["result"]
    return None if reply["isError"] else text_of(reply)


@pytest.mark.parametrize("case", sorted(MIRROR_CASES))
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
def test_mirror_headers_must_agree_with_the_body_on_streamable_http(server, version, case):
    extra, runs = MIRROR_CASES[case]
    if version == "2026-07-28" and case in REQUIRED_IN_2026:
        runs = False
    name = "mirror-mcp-%s-%s" % (version, case)
    body = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": name, "snippet": "ran"}},
               id_=4711)
    headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"),
               ("X-MCP-Identity", server.token()), ("MCP-Protocol-Version", version)]
    if version != "2026-07-28":
        headers.append(("Mcp-Session-Id", StreamableClient(server, version=version).initialize().session_id))
    status, reply = post_with_header_list(server, "/mcp", headers + extra, body)
    if runs:
        assert status == 200, reply
        assert reply["result"]["isError"] is False
        assert stored(server, name) == "ran"
    else:
        assert status == 400, reply
        assert reply["id"] == 4711
        assert reply["error"]["code"] == -32020
        assert reply["error"]["message"].startswith("Header mismatch: ")
        assert stored(server, name) is None


@pytest.mark.parametrize("case", sorted(MIRROR_CASES))
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_mirror_headers_must_agree_with_the_body_on_the_sse_transport(server, version, case):
    extra, runs = MIRROR_CASES[case]
    name = "mirror-sse-%s-%s" % (version, case)
    body = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": name, "snippet": "ran"}},
               id_=4712)
    c = SseClient(server)
    try:
        assert c.request("initialize", {"protocolVersion": version, "capabilities": {}})["result"][
            "protocolVersion"] == version
        headers = [("Content-Type", "application/json"), ("X-MCP-Identity", server.token())]
        status, reply = post_with_header_list(server, "/message", headers + extra, body,
                                              query="?sessionId=" + c.session_id)
        if runs:
            assert status == 202
            kind, data = c.next_event()
            assert kind == "message" and json.loads(data)["result"]["isError"] is False
            assert stored(server, name) == "ran"
        else:
            assert status == 400, reply                 # answered here, not down the stream
            assert reply["id"] == 4712
            assert reply["error"]["code"] == -32020
            assert stored(server, name) is None
            assert c.events.empty()
    finally:
        c.close()


@pytest.mark.parametrize("method, target, header", [
    ("resources/read", {"uri": "file:///x"}, "file:///x"),
    ("prompts/get", {"name": "p"}, "p"),
])
def test_mcp_name_is_params_uri_for_resources_read_and_params_name_for_prompts_get(client, method, target,
                                                                                    header):
    # this server has neither: an honest header gets as far as "method not found"
    honest = client.post(rpc(method, target, id_=5), headers={"Mcp-Method": method, "Mcp-Name": header})
    assert honest.status_code == 200 and honest.json()["error"]["code"] == -32601
    lying = client.post(rpc(method, target, id_=6), headers={"Mcp-Method": method, "Mcp-Name": "other"})
    assert lying.status_code == 400 and lying.json()["error"]["code"] == -32020


def test_mcp_name_on_a_method_without_a_target_is_a_mismatch(client):
    r = client.post(rpc("tools/list", id_=8), headers={"Mcp-Name": "tools"})
    assert r.status_code == 400
    assert r.json() == {"jsonrpc": "2.0", "id": 8, "error": {
        "code": -32020, "message": "Header mismatch: Mcp-Name is given but tools/list names no target"}}


def test_mirror_headers_on_a_batch_are_a_mismatch_and_nothing_runs(server):
    c = StreamableClient(server, version="2025-03-26").initialize()
    batch = [rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "mirror-batch",
                                                                       "snippet": "ran"}})]
    r = c.post(batch, headers={"Mcp-Method": "tools/call"})
    assert r.status_code == 400
    assert r.json()["id"] is None and r.json()["error"]["code"] == -32020
    assert stored(server, "mirror-batch") is None
    assert c.post(batch).status_code == 200          # the same batch without the header runs
    assert stored(server, "mirror-batch") == "ran"


def test_an_encoded_name_that_needs_encoding_is_decoded_before_the_comparison(client):
    # a tool name outside the header-safe characters travels as a sentinel
    r = client.post(rpc("tools/call", {"name": "caf\u00e9 \u2603"}, id_=9),
                    headers={"Mcp-Method": "tools/call", "Mcp-Name": b64_name("caf\u00e9 \u2603")})
    assert r.status_code == 200
    assert r.json()["error"] == {"code": -32602, "message": "Unknown tool: caf\u00e9 \u2603"}


@pytest.mark.parametrize("value, agrees", [
    ("=?base64?aGVsbG8=?=", True),            # "hello"
    ("=?base64?aGVsbG9=?=", False),           # the same bytes, with stray bits: not canonical
    ("=?base64?aGVsbG8?=", False),            # unpadded
    ("=?base64?aGVs bG8=?=", False),          # not the alphabet
    ("=?BASE64?aGVsbG8=?=", False),           # the markers are case-sensitive: a plain value
    ("=?base64??=", False),                   # encodes "", not "hello"
    ("=?base64?=", False),                    # too short to hold both markers
    ("=?base64?/w==?=", False),               # decodes to a byte that is not UTF-8
])
def test_the_base64_sentinel_is_strict(client, value, agrees):
    r = client.post(rpc("tools/call", {"name": "hello"}, id_=10),
                    headers={"Mcp-Method": "tools/call", "Mcp-Name": value})
    if agrees:
        assert r.status_code == 200 and r.json()["error"]["message"] == "Unknown tool: hello"
    else:
        assert r.status_code == 400 and r.json()["error"]["code"] == -32020


# --- per-tool scopes, enforced by the tool server too (--tool-scope) -----------------------------

SCOPE_RULES = ["--tool-scope", "save_snippet=snippets:write", "--tool-scope", "get_snippet=snippets:read"]
READ, WRITE = "snippets:read", "snippets:read snippets:write"


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    srv = ToolServer(tmp_path_factory.mktemp("scoped"), args=SCOPE_RULES).start()
    yield srv
    assert srv.stop() == 0


class ScopedClient(StreamableClient):
    """A Streamable HTTP client whose assertions carry `scope` (and
    `claims`, the member "claims", when given)."""

    def __init__(self, server, scope, claims=None, **kw):
        super().__init__(server, **kw)
        self.scope = scope
        self.claims = claims

    def headers(self, extra=None):
        h = super().headers(extra)
        if "X-MCP-Identity" not in (extra or {}):
            h["X-MCP-Identity"] = self.server.token(self.sub, scope=self.scope, claims=self.claims)
        return h


def listed(client):
    return [t["name"] for t in client.request("tools/list")["result"]["tools"]]


def read_back(server, name):
    reply = ScopedClient(server, WRITE).initialize().call("get_snippet", snippetname=name)["result"]
    return None if reply["isError"] else text_of(reply)


def save(name, id_=None):
    return rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": name, "snippet": "ran"}},
               id_=id_)


def assert_scope_refusal(r, id_, tool="save_snippet", scope="snippets:write"):
    assert r.status_code == 403, r.text
    err = r.json()
    assert err["id"] == id_
    assert err["error"]["code"] == -32001
    assert err["error"]["message"] == ('Forbidden: tool "%s" needs scope%s %s, which the identity assertion '
                                       'does not grant' % (tool, "s" if " " in scope else "", scope))


@pytest.mark.parametrize("version", ["2025-06-18", "2026-07-28"])
def test_an_assertion_without_the_tools_scope_cannot_run_it_on_streamable_http(scoped, version):
    name = "scope-mcp-" + version
    c = ScopedClient(scoped, READ, version=version)
    if version == "2026-07-28":
        c.session_id = None
        r = c.post(save(name, 31), headers={"MCP-Protocol-Version": version, "Mcp-Method": "tools/call",
                                           "Mcp-Name": "save_snippet"})
    else:
        r = c.initialize().post(save(name, 31))
    assert_scope_refusal(r, 31)
    assert read_back(scoped, name) is None
    # what the assertion does grant still works
    c.initialize() if version != "2026-07-28" else None
    assert ScopedClient(scoped, READ).initialize().call("get_snippet", snippetname=name)["result"]["isError"]


def test_an_assertion_with_the_tools_scope_runs_it(scoped):
    c = ScopedClient(scoped, WRITE).initialize()
    assert "saved successfully" in text_of(c.call("save_snippet", snippetname="scope-ok", snippet="ran")["result"])
    assert read_back(scoped, "scope-ok") == "ran"
    # a tool without a rule needs no scope at all
    assert text_of(ScopedClient(scoped, "").initialize().call("hello_mcp")["result"]) == "Hello I am MCPTool!"


def test_the_sse_transport_refuses_a_call_without_its_scope_directly(scoped):
    c = SseClient(scoped)
    try:
        h = {"X-MCP-Identity": scoped.token(scope=READ)}
        r = c.post(save("scope-sse", 32), headers=h)
        assert_scope_refusal(r, 32)                 # answered here, not down the stream
        assert c.events.empty()
        assert read_back(scoped, "scope-sse") is None
        r = c.post(save("scope-sse", 33), headers={"X-MCP-Identity": scoped.token(scope=WRITE)})
        assert r.status_code == 202
        assert json.loads(c.next_event()[1])["result"]["isError"] is False
        assert read_back(scoped, "scope-sse") == "ran"
    finally:
        c.close()


def test_a_batch_with_one_call_lacking_its_scope_is_refused_as_a_whole(scoped):
    c = ScopedClient(scoped, READ, version="2025-03-26").initialize()
    batch = [rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "x"}}, id_=1),
             rpc("tools/call", {"name": "hello_mcp"}, id_=2), save("scope-batch", 3)]
    r = c.post(batch)
    assert_scope_refusal(r, None)
    assert read_back(scoped, "scope-batch") is None
    c.scope = WRITE
    r = c.post(batch)
    assert r.status_code == 200 and len(r.json()) == 3
    assert read_back(scoped, "scope-batch") == "ran"


def test_a_methods_rule_and_a_tools_rule_are_both_needed(tmp_path):
    srv = ToolServer(tmp_path, args=["--tool-scope", "tools/call=tools:use", "--tool-scope",
                                     "save_snippet=snippets:write", "--tool-scope", "tools/list=catalog,tools:use",
                                     "--tool-scope", "tools/call=more"]).start()
    try:
        def call(scope, body):
            return ScopedClient(srv, scope).initialize().post(body)
        assert_scope_refusal(call("tools:use more", save("both", 1)), 1, scope="snippets:write")
        assert_scope_refusal(call("snippets:write", save("both", 2)), 2, scope="tools:use more")
        assert call("snippets:write more tools:use", save("both", 3)).json()["result"]["isError"] is False
        r = call("tools:use more", rpc("tools/call", {"name": "hello_mcp"}, id_=4))
        assert r.status_code == 200 and r.json()["result"]["isError"] is False
        r = call("tools:use", rpc("tools/list", id_=5))
        assert r.status_code == 403
        assert r.json()["error"]["message"].startswith('Forbidden: method "tools/list" needs scope catalog,')
        r = call("catalog tools:use", rpc("tools/list", id_=6))
        assert r.status_code == 200
        # listed: the tools a tools/call of would be allowed; without "more" none is
        assert r.json()["result"]["tools"] == []
        r = call("catalog tools:use more", rpc("tools/list", id_=7))
        assert [t["name"] for t in r.json()["result"]["tools"]] == ["hello_mcp", "get_snippet"]
        r = call("catalog tools:use more snippets:write", rpc("tools/list", id_=8))
        assert [t["name"] for t in r.json()["result"]["tools"]] == ["hello_mcp", "get_snippet", "save_snippet"]
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("scope, tools", [
    ("", ["hello_mcp"]),
    (READ, ["hello_mcp", "get_snippet"]),
    ("snippets:write", ["hello_mcp", "save_snippet"]),
    (WRITE, ["hello_mcp", "get_snippet", "save_snippet"]),
])
def test_tools_list_shows_only_the_tools_the_scopes_allow(scoped, scope, tools):
    assert listed(ScopedClient(scoped, scope).initialize()) == tools


@pytest.mark.parametrize("scope", ["", "mcp"])
def test_without_rules_tools_list_shows_every_tool(server, scope):
    for claims in [None, {}, {"groups": ["viewers"]}]:
        assert listed(ScopedClient(server, scope, claims).initialize()) == ["hello_mcp", "get_snippet",
                                                                            "save_snippet"]


def test_insecure_no_auth_grants_no_scope_but_the_rules_still_apply(tmp_path):
    srv = ToolServer(tmp_path, identity_args=["--insecure-no-auth"], args=SCOPE_RULES).start()
    try:
        r = requests.post(srv.base + "/mcp", data=json.dumps(save("anon", 7)), headers={
            "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call", "Mcp-Name": "save_snippet"}, timeout=10)
        assert_scope_refusal(r, 7)
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("flag, message", [
    ("save_snippet", "--tool-scope save_snippet: expected NAME=SCOPE[,SCOPE...]"),
    ("=snippets:write", '--tool-scope =snippets:write: "" is not a tool or method name'),
    ("save snippet=x", '--tool-scope save snippet=x: "save snippet" is not a tool or method name'),
    ("save_snippet=", '--tool-scope save_snippet=: "" is not a valid scope (RFC 6749 scope-token)'),
    ("save_snippet=a,,b", '--tool-scope save_snippet=a,,b: "" is not a valid scope (RFC 6749 scope-token)'),
    ('save_snippet=a"b', '--tool-scope save_snippet=a"b: "a"b" is not a valid scope (RFC 6749 scope-token)'),
    ("save_snippet=a b", '--tool-scope save_snippet=a b: "a b" is not a valid scope (RFC 6749 scope-token)'),
])
def test_a_bad_tool_scope_flag_refuses_to_start(flag, message):
    import subprocess
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--listen", "127.0.0.1:0", "--tool-scope", flag],
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert out.stderr == "mcp-tool-server: %s (see --help)\n" % message


# --- per-tool claims, enforced by the tool server too (--tool-claim) -----------------------------

# save_snippet needs both: one of two groups, and a role named by a nested path
CLAIM_RULES = ["--tool-claim", "save_snippet:groups=editors,admins",
               "--tool-claim=save_snippet:realm_access.roles=mcp-writer"]
EDITOR = {"groups": ["editors"], "realm_access.roles": ["mcp-writer"]}


@pytest.fixture(scope="module")
def claimed(tmp_path_factory):
    srv = ToolServer(tmp_path_factory.mktemp("claimed"), args=SCOPE_RULES + CLAIM_RULES).start()
    yield srv
    assert srv.stop() == 0


def assert_claim_refusal(r, id_, condition):
    assert r.status_code == 403, r.text
    err = r.json()
    assert err["id"] == id_
    assert err["error"]["code"] == -32001
    assert err["error"]["message"] == ("Forbidden: save_snippet requires %s, which the identity assertion's "
                                       "claims do not show" % condition)


@pytest.mark.parametrize("claims, tools", [
    (None, ["hello_mcp", "get_snippet"]),
    ({}, ["hello_mcp", "get_snippet"]),
    ({"groups": ["editors"]}, ["hello_mcp", "get_snippet"]),
    ({"groups": ["viewers"], "realm_access.roles": ["mcp-writer"]}, ["hello_mcp", "get_snippet"]),
    (EDITOR, ["hello_mcp", "get_snippet", "save_snippet"]),
    ({"groups": ["viewers", "admins"], "realm_access.roles": ["mcp-writer"]},
     ["hello_mcp", "get_snippet", "save_snippet"]),
])
def test_tools_list_shows_only_the_tools_the_claims_allow(claimed, claims, tools):
    assert listed(ScopedClient(claimed, WRITE, claims).initialize()) == tools


def test_tools_list_needs_both_the_scopes_and_the_claims(claimed):
    assert listed(ScopedClient(claimed, READ, EDITOR).initialize()) == ["hello_mcp", "get_snippet"]


@pytest.mark.parametrize("version", ["2025-06-18", "2026-07-28"])
def test_a_call_the_claims_do_not_allow_is_refused_with_the_condition(claimed, version):
    name = "claim-refused-" + version
    cases = [({"groups": ["viewers"], "realm_access.roles": ["mcp-writer"]}, "groups = editors or admins"),
             ({"groups": ["editors"]}, "realm_access.roles = mcp-writer"),
             (None, "groups = editors or admins")]
    for i, (claims, condition) in enumerate(cases):
        c = ScopedClient(claimed, WRITE, claims, version=version)
        if version == "2026-07-28":
            r = c.post(save(name, 40 + i), headers={"MCP-Protocol-Version": version, "Mcp-Method": "tools/call",
                                                    "Mcp-Name": "save_snippet"})
        else:
            r = c.initialize().post(save(name, 40 + i))
        assert_claim_refusal(r, 40 + i, condition)
    assert read_back(claimed, name) is None


def test_a_call_with_the_claims_runs(claimed):
    c = ScopedClient(claimed, WRITE, EDITOR).initialize()
    assert "saved successfully" in text_of(c.call("save_snippet", snippetname="claim-ok", snippet="ran")["result"])
    assert read_back(claimed, "claim-ok") == "ran"
    # a tool without a claim rule needs no claims
    assert text_of(ScopedClient(claimed, "").initialize().call("hello_mcp")["result"]) == "Hello I am MCPTool!"


def test_the_scope_is_checked_before_the_claims(claimed):
    c = ScopedClient(claimed, READ, {"groups": ["viewers"]}).initialize()
    assert_scope_refusal(c.post(save("claim-scope", 45)), 45)


def test_a_batch_with_one_call_lacking_its_claims_is_refused_as_a_whole(claimed):
    c = ScopedClient(claimed, WRITE, {"groups": ["editors"]}, version="2025-03-26").initialize()
    batch = [rpc("tools/call", {"name": "hello_mcp"}, id_=1), save("claim-batch", 2)]
    assert_claim_refusal(c.post(batch), None, "realm_access.roles = mcp-writer")
    assert read_back(claimed, "claim-batch") is None
    c.claims = EDITOR
    r = c.post(batch)
    assert r.status_code == 200 and len(r.json()) == 2
    assert read_back(claimed, "claim-batch") == "ran"


def test_the_sse_transport_filters_the_list_and_refuses_by_claims_alike(claimed):
    c = SseClient(claimed)
    try:
        def post(body, claims):
            return c.post(body, headers={"X-MCP-Identity": claimed.token(scope=WRITE, claims=claims)})

        def listed_over_sse(claims, id_):
            assert post(rpc("tools/list", id_=id_), claims).status_code == 202
            reply = json.loads(c.next_event()[1])
            assert reply["id"] == id_
            return [t["name"] for t in reply["result"]["tools"]]

        assert listed_over_sse({"groups": ["editors"]}, 50) == ["hello_mcp", "get_snippet"]
        assert listed_over_sse(EDITOR, 51) == ["hello_mcp", "get_snippet", "save_snippet"]
        r = post(save("claim-sse", 52), {"groups": ["viewers"], "realm_access.roles": ["mcp-writer"]})
        assert_claim_refusal(r, 52, "groups = editors or admins")  # answered here, not down the stream
        assert c.events.empty()
        assert read_back(claimed, "claim-sse") is None
        assert post(save("claim-sse", 53), EDITOR).status_code == 202
        assert json.loads(c.next_event()[1])["result"]["isError"] is False
        assert read_back(claimed, "claim-sse") == "ran"
    finally:
        c.close()


def test_the_sse_transport_lists_every_tool_without_rules(server):
    c = SseClient(server)
    try:
        r = c.post(rpc("tools/list", id_=54), headers={"X-MCP-Identity": server.token(scope="", claims={})})
        assert r.status_code == 202
        reply = json.loads(c.next_event()[1])
        assert [t["name"] for t in reply["result"]["tools"]] == ["hello_mcp", "get_snippet", "save_snippet"]
    finally:
        c.close()


MALFORMED_CLAIMS = ["editors", ["editors"], 7, True, {"groups": "editors"}, {"groups": [1]}, {"groups": [None]},
                    {"groups": [["editors"]]}, {"groups": {"a": ["b"]}}, {"groups": ["editors"], "roles": None}]


@pytest.mark.parametrize("claims", MALFORMED_CLAIMS, ids=[json.dumps(c) for c in MALFORMED_CLAIMS])
def test_an_assertion_with_a_malformed_claims_member_is_refused(server, claimed, claims):
    for srv in (server, claimed):  # with claim rules or without
        r = post_mcp(srv, rpc("initialize", {"protocolVersion": "2025-06-18"}), token=srv.token(claims=claims))
        assert r.status_code == 401, r.text
        assert r.json()["error"] == {"code": -32001, "message": "Unauthorized: identity assertion has a "
                                                               "malformed claims member"}
        assert "Mcp-Session-Id" not in r.headers
    c = SseClient(claimed, headers={"X-MCP-Identity": claimed.token(claims=claims)})
    assert c.response.status_code == 401
    c.response.close()


def test_a_claims_member_that_is_null_is_refused(server):
    """JSON null is not "absent" (mint drops a None member, so this one is signed by hand)."""
    import hashlib
    import hmac
    from toolserver_util import b64url
    now = int(time.time())
    body = {"iss": "ngx_mcp_auth", "aud": "mcp-tool-server", "sub": "alice", "iat": now, "exp": now + 60,
            "claims": None}
    signing_input = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(body).encode())
    token = signing_input + "." + b64url(hmac.new(server.key, signing_input.encode(), hashlib.sha256).digest())
    r = post_mcp(server, rpc("initialize", {"protocolVersion": "2025-06-18"}), token=token)
    assert r.status_code == 401 and "malformed claims member" in r.json()["error"]["message"]


@pytest.mark.parametrize("flag, message", [
    ("save_snippet", "--tool-claim save_snippet: expected NAME:PATH=VALUE[,VALUE...]"),
    ("save_snippet=groups=editors", "--tool-claim save_snippet=groups=editors: expected NAME:PATH=VALUE[,VALUE...]"),
    ("save_snippet:groups", "--tool-claim save_snippet:groups: expected NAME:PATH=VALUE[,VALUE...]"),
    (":groups=editors", '--tool-claim :groups=editors: "" is not a tool name'),
    ("tools/call:groups=editors", '--tool-claim tools/call:groups=editors: "tools/call" is not a tool name'),
    ("save_snippet:=editors", '--tool-claim save_snippet:=editors: "" is not a claim path'),
    ("save_snippet:a..b=editors", '--tool-claim save_snippet:a..b=editors: "a..b" is not a claim path'),
    ("save_snippet:groups=", '--tool-claim save_snippet:groups=: "" is not a claim value (1 to 256 printable '
                             'bytes)'),
    ("save_snippet:groups=a,,b", '--tool-claim save_snippet:groups=a,,b: "" is not a claim value (1 to 256 '
                                 'printable bytes)'),
    ("save_snippet:groups=a\tb", "--tool-claim save_snippet:groups=a\tb: has a control character"),
])
def test_a_bad_tool_claim_flag_refuses_to_start(flag, message):
    import subprocess
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--listen", "127.0.0.1:0", "--tool-claim", flag],
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert out.stderr == "mcp-tool-server: %s (see --help)\n" % message


def test_insecure_no_auth_holds_no_claims_but_the_rules_still_apply(tmp_path):
    srv = ToolServer(tmp_path, identity_args=["--insecure-no-auth"], args=CLAIM_RULES).start()
    try:
        r = requests.post(srv.base + "/mcp", data=json.dumps(save("anon", 8)), headers={
            "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call", "Mcp-Name": "save_snippet"}, timeout=10)
        assert_claim_refusal(r, 8, "groups = editors or admins")
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("name", ["MCP-Protocol-Version", "Mcp-Session-Id", "X-MCP-Identity", "Content-Type",
                                  "Origin"])
def test_a_header_sent_twice_with_different_values_is_refused(server, name):
    c = StreamableClient(server).initialize()
    base = dict(c.headers())
    base["Origin"] = "http://localhost"
    other = {"MCP-Protocol-Version": "2025-03-26", "Mcp-Session-Id": "0" * 32,
             "X-MCP-Identity": server.token("mallory"), "Content-Type": "text/plain",
             "Origin": "http://127.0.0.1"}[name]
    headers = [(k, v) for k, v in base.items()]
    body = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "twice-" + name.lower(),
                                                                     "snippet": "ran"}}, id_=41)
    status, reply = post_with_header_list(server, "/mcp", headers + [(name, other)], body)
    assert status == 400, reply
    assert reply["error"] == {"code": -32600, "message": "Bad Request: %s is sent twice with different values"
                              % name}
    assert stored(server, "twice-" + name.lower()) is None
    # the same value twice says one thing
    status, reply = post_with_header_list(server, "/mcp", headers + [(name, base[name])], body)
    assert status == 200, reply


# --- the rules are written once, in nginx's configuration ----------------------------------------

def test_the_tool_scope_flags_are_read_from_the_nginx_configuration(tmp_path):
    import sys
    from harness import ROOT
    sys.path.insert(0, str(ROOT / "scripts"))
    render_config = __import__("render-config")
    for example in ("nginx.conf.example", "nginx-cluster.conf.example"):
        assert render_config.tool_scope_args(ROOT / example) == [
            "--tool-scope=save_snippet=snippets:write", "--tool-scope=get_snippet=snippets:read",
            "--tool-claim=save_snippet:groups=editors"]

    def args_of(text, **files):
        for name, content in files.items():
            (tmp_path / name).write_text(content)
        (tmp_path / "nginx.conf").write_text(text)
        return render_config.tool_scope_args(tmp_path / "nginx.conf")

    guarded = "location /mcp { mcp_auth_protect on; }\n"
    # inherited from http{}; a level with rules of its own replaces them (as in the module)
    assert args_of("http { mcp_auth_tool_scope a x; mcp_auth_tool_scope a y x; server { %s } }" % guarded) \
        == ["--tool-scope=a=x,y"]
    assert args_of("http { mcp_auth_tool_scope a x; server { location /mcp { mcp_auth_protect on;"
                   " mcp_auth_tool_scope tools/list 'l:r'; } } }") == ["--tool-scope=tools/list=l:r"]
    # unguarded locations do not count; includes are followed
    assert args_of("http { server { location /x { mcp_auth_tool_scope b z; } include part; } }",
                   part="mcp_auth_tool_scope c w; # a comment\n" + guarded) == ["--tool-scope=c=w"]
    assert args_of("http { server { location /x { } } }") == []
    with pytest.raises(ValueError, match="different mcp_auth_tool_scope rules"):
        args_of("http { server { %s location /y { mcp_auth_protect on; mcp_auth_tool_scope a b; } } }"
                % guarded)
    with pytest.raises(ValueError, match="cannot be passed as --tool-scope"):
        args_of("http { mcp_auth_tool_scope a b,c; server { %s } }" % guarded)


# --- session caps: what one subject, and everyone together, can hold ------------------------------

def status_of(server):
    r = requests.get(server.base + "/status", timeout=5)
    assert r.status_code == 200
    return r.json()


def test_looping_initialize_keeps_a_subject_at_its_cap_and_ends_its_least_recently_used_session(tmp_path):
    srv = ToolServer(tmp_path).start()          # the default cap: 16 per subject
    try:
        assert status_of(srv) == {"sessions": 0, "streams": 0, "subjects": 0}
        clients = [StreamableClient(srv, sub="looper").initialize() for _ in range(40)]
        assert status_of(srv) == {"sessions": 16, "streams": 0, "subjects": 1}
        # the 24 least recently used are gone: a clear 404, as for any unknown session
        for c in clients[:24]:
            r = c.post(rpc("ping", id_=1))
            assert r.status_code == 404 and r.json()["error"]["message"] == "Session not found"
        for c in clients[24:]:
            assert c.request("ping")["result"] == {}
        # use the oldest survivor: the next initialize ends the one used least recently instead
        assert clients[24].request("ping")["result"] == {}
        StreamableClient(srv, sub="looper").initialize()
        assert clients[24].request("ping")["result"] == {}
        assert clients[25].post(rpc("ping")).status_code == 404
        # another subject is not affected
        other = StreamableClient(srv, sub="other").initialize()
        assert status_of(srv) == {"sessions": 17, "streams": 0, "subjects": 2}
        assert other.request("ping")["result"] == {}
        assert "event=session_evicted" in srv.proc.log()
    finally:
        assert srv.stop() == 0


def test_a_subject_whose_sessions_all_have_streams_is_refused_with_429(tmp_path):
    srv = ToolServer(tmp_path, args=["--max-sessions-per-subject", "3"]).start()
    streams = []
    try:
        streams = [SseClient(srv, sub="streamer") for _ in range(2)]
        held = StreamableClient(srv, sub="streamer").initialize()
        get = requests.get(srv.base + "/mcp", stream=True, timeout=10, headers=held.headers(
            {"Accept": "text/event-stream"}))
        assert get.status_code == 200
        assert status_of(srv) == {"sessions": 3, "streams": 3, "subjects": 1}
        r = post_mcp(srv, rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}, id_=77),
                     sub="streamer")
        assert r.status_code == 429
        assert r.json() == {"jsonrpc": "2.0", "id": 77, "error": {"code": -32000, "message": (
            "Too many sessions: this subject already holds 3 sessions (--max-sessions-per-subject), "
            "each with an open stream; close one and retry")}}
        assert "Mcp-Session-Id" not in r.headers
        extra = SseClient(srv, sub="streamer")             # legacy SSE sessions count too
        assert extra.response.status_code == 429
        assert extra.response.json()["error"]["code"] == -32000
        assert held.request("ping")["result"] == {}        # nothing was ended to make room
        assert status_of(srv)["sessions"] == 3
        get.close()
        deadline = time.monotonic() + 5
        while status_of(srv)["streams"] == 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the GET stream closed: its session is idle again, and can go
        assert StreamableClient(srv, sub="streamer").initialize().request("ping")["result"] == {}
        assert held.post(rpc("ping")).status_code == 404
    finally:
        for s in streams:
            s.close()
        assert srv.stop() == 0


def test_the_total_cap_ends_the_least_recently_used_idle_session_then_refuses_with_503(tmp_path):
    srv = ToolServer(tmp_path, args=["--max-sessions", "5", "--max-sessions-per-subject", "3"]).start()
    streams = []
    try:
        idle = [StreamableClient(srv, sub="user%d" % i).initialize() for i in range(5)]
        assert status_of(srv) == {"sessions": 5, "streams": 0, "subjects": 5}
        # full: a new session ends the one used least recently, whoever's it was
        idle[0].request("ping")
        newcomer = StreamableClient(srv, sub="user9").initialize()
        assert idle[1].post(rpc("ping")).status_code == 404
        assert idle[0].request("ping")["result"] == {} and newcomer.request("ping")["result"] == {}
        assert status_of(srv)["sessions"] == 5
        # five streams take the five places (each ending an idle session); then nothing can go
        streams = [SseClient(srv, sub="streamer%d" % i) for i in range(5)]
        assert status_of(srv) == {"sessions": 5, "streams": 5, "subjects": 5}
        r = post_mcp(srv, rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}, id_=78),
                     sub="late")
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "10"
        assert r.json() == {"jsonrpc": "2.0", "id": 78, "error": {"code": -32000, "message": (
            "Service unavailable: the server holds its maximum of 5 sessions (--max-sessions), "
            "each with an open stream; retry later")}}
        late = SseClient(srv, sub="late")
        assert late.response.status_code == 503 and late.response.headers["Retry-After"] == "10"
        assert all(s.request("ping")["result"] == {} for s in streams)
    finally:
        for s in streams:
            s.close()
        assert srv.stop() == 0


def test_a_stateless_or_failed_initialize_takes_no_session_slot(tmp_path):
    srv = ToolServer(tmp_path, args=["--max-sessions-per-subject", "2"]).start()
    try:
        kept = [StreamableClient(srv, sub="s").initialize() for _ in range(2)]
        for body in (rpc("initialize", {"protocolVersion": "2026-07-28", "capabilities": {}}),
                     rpc("initialize", {"capabilities": {}})):
            post_mcp(srv, body, sub="s")
        assert all(c.request("ping")["result"] == {} for c in kept)
        assert status_of(srv)["sessions"] == 2
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("flag", ["--max-sessions", "--max-sessions-per-subject"])
@pytest.mark.parametrize("value", ["0", "-1", "x", ""])
def test_bad_session_caps_refuse_to_start(flag, value):
    import subprocess
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", flag, value], capture_output=True, text=True,
                         timeout=5)
    assert out.returncode == 2
    assert out.stderr == "mcp-tool-server: bad value for %s (see --help)\n" % flag


def test_a_pipelined_reply_is_not_held_back_until_the_client_acknowledges_the_one_before(server):
    """Found by fuzz/tool_server_http: two replies written back to back on one
    connection, the second waited for the client's delayed ACK of the first
    (Nagle's algorithm; about 40 ms on Linux). Each pair is timed on a
    connection warmed past TCP's quick-ACK start; the median must be far
    below the 40 ms."""
    import socket
    import statistics
    c = StreamableClient(server).initialize()

    def request(msg):
        body = json.dumps(msg).encode()
        head = "".join("%s: %s\r\n" % kv for kv in c.headers().items())
        return ("POST /mcp HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (head, len(body))).encode() + body

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        def pair(first, second):
            t0 = time.monotonic()
            s.sendall(first + second)
            buf = b""
            while buf.count(b"HTTP/1.1 ") < 2 or not buf.endswith(b"}"):
                buf += s.recv(65536)
            return time.monotonic() - t0
        for i in range(30):
            s.sendall(request(rpc("ping", id_=i)))
            while not s.recv(65536).endswith(b"}"):
                pass
        times = [pair(request(rpc("notifications/initialized", notification=True)), request(rpc("ping", id_=99)))
                 for _ in range(20)]
    assert statistics.median(times) < 0.015, ["%.1f ms" % (t * 1000) for t in times]


# --- token exchange (RFC 8693) and the sample tool whoami_downstream ---------------------------------
#
# The gateway's token endpoint and the downstream API are small real HTTP
# servers on loopback (t/exchange_util.py): the test sees every byte the
# tool server sends them and says what they answer.

from exchange_util import FakeHttp, json_answer  # noqa: E402

CLIENT_ID = "tool server/1"           # needs form-urlencoding: space and slash
SECRET = "s3cr3t:with&odd=chars+%"    # likewise, and a colon
AUDIENCE = "https://api.example/"
DOWNSTREAM_SCOPE = "profile:read email"
ISSUED = "issued-access-token-0123456789"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def token_ok(req, token=ISSUED):
    return json_answer(200, {"access_token": token,
                             "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                             "token_type": "Bearer", "expires_in": 300, "scope": DOWNSTREAM_SCOPE})


def echo_me(req):
    """The downstream API: who it thinks is calling, echoing the credential it got."""
    return json_answer(200, {"sub": "alice", "authorization": req.header("Authorization")})


def exchange_args(workdir, token_url, downstream_url, timeout_ms=1000, secret=SECRET, whoami=True):
    secret_file = workdir / "exchange.secret"
    secret_file.write_text(secret + "\n")
    args = ["--exchange-token-url", token_url, "--exchange-client-id", CLIENT_ID,
            "--exchange-client-secret-file", str(secret_file), "--exchange-timeout-ms", str(timeout_ms)]
    if whoami:
        args += ["--whoami-downstream-url", downstream_url, "--whoami-downstream-audience", AUDIENCE,
                 "--whoami-downstream-scope", DOWNSTREAM_SCOPE]
    return args


@pytest.fixture(scope="module")
def fakes():
    token, api = FakeHttp(token_ok), FakeHttp(echo_me)
    yield token, api
    token.close()
    api.close()


@pytest.fixture(scope="module")
def exchanging(tmp_path_factory, fakes):
    token, api = fakes
    workdir = tmp_path_factory.mktemp("exchanging")
    srv = ToolServer(workdir, args=exchange_args(workdir, token.url("/token"), api.url("/me?fields=sub"))).start()
    yield srv
    log = srv.proc.log()
    assert srv.stop() == 0
    # never the secret, an issued token or an assertion's signature
    assert SECRET not in log and ISSUED not in log
    assert ".ey" not in log and "Basic " not in log and "Bearer " not in log


@pytest.fixture
def endpoints(fakes):
    token, api = fakes
    token.reset(token_ok)
    api.reset(echo_me)
    return token, api


def call_whoami(server, token=None, sse=None):
    """tools/call whoami_downstream with the assertion `token` on this very
    POST (Streamable HTTP, or down the SseClient `sse`); the result."""
    token = token or server.token()
    msg = rpc("tools/call", {"name": "whoami_downstream", "arguments": {}})
    if sse is not None:
        r = sse.post(msg, headers={"X-MCP-Identity": token})
        assert r.status_code == 202, r.text
        kind, data = sse.next_event(timeout=10)
        reply = json.loads(data)
    else:
        c = StreamableClient(server).initialize()
        r = c.post(msg, headers={"X-MCP-Identity": token})
        assert r.status_code == 200, r.text
        reply = r.json()
    assert reply["id"] == msg["id"]
    assert "error" not in reply, reply  # refusals are tool results, never protocol errors
    return reply["result"]


def assert_contract(req, assertion):
    """The token exchange request exactly as the gateway's /token expects it."""
    assert req.method == "POST" and req.path == "/token"
    assert req.header("Content-Type") == "application/x-www-form-urlencoded"
    assert req.header("Accept") == "application/json"
    scheme, _, credentials = req.header("Authorization").partition(" ")
    assert scheme == "Basic"
    from urllib.parse import quote, unquote
    user, _, password = base64.b64decode(credentials).decode().partition(":")
    assert (unquote(user), unquote(password)) == (CLIENT_ID, SECRET)  # RFC 6749 §2.3.1
    assert (user, password) == (quote(CLIENT_ID, safe=""), quote(SECRET, safe=""))
    assert req.form() == {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": assertion,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "audience": AUDIENCE,
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "scope": DOWNSTREAM_SCOPE,
    }
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&" in req.body.decode()


def test_whoami_downstream_is_listed_only_with_its_flags(server, exchanging, tmp_path, fakes):
    plain = {t["name"] for t in StreamableClient(server).initialize().request("tools/list")["result"]["tools"]}
    assert "whoami_downstream" not in plain
    tools = {t["name"]: t for t in StreamableClient(exchanging).initialize().request("tools/list")["result"]["tools"]}
    assert set(tools) == {"hello_mcp", "get_snippet", "save_snippet", "whoami_downstream"}
    assert tools["whoami_downstream"]["inputSchema"] == {"type": "object", "properties": {}, "required": [],
                                                         "additionalProperties": False}
    # the exchange flags alone offer no tool
    srv = ToolServer(tmp_path, args=exchange_args(tmp_path, fakes[0].url("/token"), None, whoami=False)).start()
    try:
        names = {t["name"] for t in StreamableClient(srv).initialize().request("tools/list")["result"]["tools"]}
        assert names == {"hello_mcp", "get_snippet", "save_snippet"}
    finally:
        assert srv.stop() == 0


def test_whoami_downstream_exchanges_the_calls_own_assertion_and_returns_the_apis_answer(exchanging, endpoints):
    token_ep, api = endpoints
    assertion = exchanging.token(jti="the-calling-post")
    result = call_whoami(exchanging, assertion)
    assert result["isError"] is False
    assert len(token_ep.requests) == 1
    assert_contract(token_ep.requests[0], assertion)
    # the downstream API was called with the issued token, as a GET of the configured URL
    assert len(api.requests) == 1
    got = api.requests[0]
    assert (got.method, got.path) == ("GET", "/me?fields=sub")
    assert got.header("Authorization") == "Bearer " + ISSUED
    assert got.header("Accept") == "application/json"
    assert got.body == b""
    # its JSON body is the result; the token it echoes is blotted out
    assert json.loads(text_of(result)) == {"sub": "alice", "authorization": "Bearer [access token]"}
    assert ISSUED not in json.dumps(result)


def test_on_the_sse_transport_the_assertion_is_that_of_the_post_not_of_the_stream(exchanging, endpoints):
    token_ep, _ = endpoints
    stream_assertion = exchanging.token(jti="opened-the-stream")
    c = SseClient(exchanging, headers={"X-MCP-Identity": stream_assertion})
    try:
        post_assertion = exchanging.token(jti="sse-post")
        result = call_whoami(exchanging, post_assertion, sse=c)
        assert result["isError"] is False
        assert_contract(token_ep.requests[0], post_assertion)
        assert token_ep.requests[0].form()["subject_token"] != stream_assertion
    finally:
        c.close()


def test_2026_07_28_stateless_calls_exchange_their_assertion_too(exchanging, endpoints):
    token_ep, _ = endpoints
    assertion = exchanging.token(jti="stateless")
    r = stateless(exchanging, rpc("tools/call", {"name": "whoami_downstream", "arguments": {}}),
                  headers={"X-MCP-Identity": assertion})
    assert r.status_code == 200 and r.json()["result"]["isError"] is False
    assert token_ep.requests[0].form()["subject_token"] == assertion


def test_a_chunked_token_answer_is_read(exchanging, endpoints):
    token_ep, _ = endpoints
    body = token_ok(None)["body"]
    token_ep.reset(lambda req: {"chunks": [body[:10], body[10:]]})
    result = call_whoami(exchanging)
    assert result["isError"] is False
    assert json.loads(text_of(result))["authorization"] == "Bearer [access token]"


@pytest.mark.parametrize("status, error, headers, text", [
    (400, {"error": "invalid_target", "error_description": "unknown audience"}, {},
     "token exchange refused: invalid_target: unknown audience (HTTP 400)"),
    (400, {"error": "invalid_grant", "error_description": "assertion expired"}, {},
     "token exchange refused: invalid_grant: assertion expired (HTTP 400)"),
    (400, {"error": "invalid_scope"}, {}, "token exchange refused: invalid_scope (HTTP 400)"),
    (401, {"error": "invalid_client", "error_description": "bad credentials"}, {"WWW-Authenticate": "Basic"},
     "token exchange refused: invalid_client: bad credentials (HTTP 401)"),
    (503, {"error": "temporarily_unavailable", "error_description": "try again"}, {"Retry-After": "7"},
     "token exchange refused: temporarily_unavailable: try again (HTTP 503, retry after 7 s)"),
])
def test_a_refused_exchange_is_a_tool_error_naming_the_oauth_error(exchanging, endpoints, status, error, headers,
                                                                    text):
    token_ep, api = endpoints
    token_ep.reset(lambda req: json_answer(status, error, headers))
    result = call_whoami(exchanging)
    assert result["isError"] is True
    assert text_of(result) == text
    assert api.requests == []  # nothing is called without a token


@pytest.mark.parametrize("answer, fragment", [
    ({"raw": b"this is not HTTP at all\r\n\r\n"}, "token exchange failed: token endpoint: malformed HTTP answer"),
    ({"raw": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"access"},
     "token exchange failed: token endpoint: the connection closed before a complete answer"),
    ({"status": 200, "body": b"<html>hello</html>", "headers": {"Content-Type": "text/html"}},
     "token exchange failed: token endpoint answered 200 without a JSON object"),
    (json_answer(200, {"token_type": "Bearer"}),
     "token exchange failed: token endpoint answered 200 without a usable access_token"),
    (json_answer(200, {"access_token": "a\r\nX-Injected: 1", "token_type": "Bearer"}),
     "token exchange failed: token endpoint answered 200 without a usable access_token"),
    (json_answer(200, {"access_token": "abc", "token_type": "mac"}),
     "token exchange failed: token endpoint answered 200 with a token_type other than Bearer"),
    (json_answer(502, {"detail": "bad gateway"}),
     "token exchange failed: token endpoint answered 502 without an OAuth error"),
    (json_answer(200, {"access_token": "x" * (70 * 1024), "token_type": "Bearer"}),
     "token exchange failed: token endpoint: answer larger than 64 KiB"),
])
def test_an_unusable_token_answer_is_a_tool_error(exchanging, endpoints, answer, fragment):
    token_ep, api = endpoints
    token_ep.reset(lambda req: answer)
    result = call_whoami(exchanging)
    assert result["isError"] is True
    assert text_of(result) == fragment
    assert api.requests == []


def test_a_downstream_refusal_is_a_tool_error_with_its_status_and_body(exchanging, endpoints):
    _, api = endpoints
    api.reset(lambda req: json_answer(401, {"error": "invalid_token", "seen": req.header("Authorization")}))
    result = call_whoami(exchanging)
    assert result["isError"] is True
    assert text_of(result) == ('downstream API answered 401: {"error": "invalid_token", '
                               '"seen": "Bearer [access token]"}')
    api.reset(lambda req: {"status": 200, "body": b"plain text", "headers": {}})
    result = call_whoami(exchanging)
    assert result["isError"] is True
    assert text_of(result) == "downstream API answered 200 but not with JSON: plain text"


def test_a_token_endpoint_that_is_too_slow_times_out_while_other_calls_are_served(exchanging, endpoints):
    token_ep, api = endpoints
    token_ep.reset(lambda req: dict(token_ok(req), delay=3))
    done = {}

    def slow():
        t0 = time.monotonic()
        done["result"] = call_whoami(exchanging)
        done["took"] = time.monotonic() - t0

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    # the loop is not held up meanwhile
    t0 = time.monotonic()
    assert text_of(StreamableClient(exchanging).initialize().call("hello_mcp")["result"]) == "Hello I am MCPTool!"
    assert time.monotonic() - t0 < 0.5
    t.join(10)
    assert done["result"]["isError"] is True
    assert text_of(done["result"]) == "token exchange failed: token endpoint: timed out"
    assert 0.9 < done["took"] < 2.5  # --exchange-timeout-ms 1000
    assert api.requests == []


def test_a_downstream_api_that_is_too_slow_times_out(exchanging, endpoints):
    _, api = endpoints
    api.reset(lambda req: dict(echo_me(req), delay=3))
    t0 = time.monotonic()
    result = call_whoami(exchanging)
    assert time.monotonic() - t0 < 2.5
    assert result["isError"] is True
    assert text_of(result) == "downstream API call failed: timed out"


def test_unreachable_token_endpoint_or_downstream_api_is_a_tool_error(tmp_path, fakes):
    from harness import free_port
    closed = "http://127.0.0.1:%d/token" % free_port()
    srv = ToolServer(tmp_path, args=exchange_args(tmp_path, closed, fakes[1].url("/me"))).start()
    try:
        result = call_whoami(srv)
        assert result["isError"] is True
        assert text_of(result) == "token exchange failed: token endpoint: cannot connect"
    finally:
        assert srv.stop() == 0
    fakes[0].reset(token_ok)
    srv = ToolServer(tmp_path, name="second", args=exchange_args(tmp_path, fakes[0].url("/token"),
                                                                 "http://127.0.0.1:%d/me" % free_port())).start()
    try:
        result = call_whoami(srv)
        assert result["isError"] is True
        assert text_of(result) == "downstream API call failed: cannot connect"
    finally:
        assert srv.stop() == 0


def test_exchanges_and_whoami_calls_are_counted(exchanging, endpoints):
    token_ep, _ = endpoints

    def counts():
        text = requests.get(exchanging.base + "/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if line.startswith(("mcp_tool_server_token_exchanges_total{",
                                'mcp_tool_server_tool_calls_total{tool="whoami')):
                name, value = line.rsplit(" ", 1)
                out[name] = int(value)
        return out

    before = counts()
    call_whoami(exchanging)
    token_ep.reset(lambda req: json_answer(400, {"error": "invalid_target"}))
    call_whoami(exchanging)
    after = counts()

    def delta(name):
        return after[name] - before[name]

    assert delta('mcp_tool_server_token_exchanges_total{result="ok"}') == 1
    assert delta('mcp_tool_server_token_exchanges_total{result="refused"}') == 1
    assert delta('mcp_tool_server_tool_calls_total{tool="whoami_downstream",result="ok"}') == 1
    assert delta('mcp_tool_server_tool_calls_total{tool="whoami_downstream",result="error"}') == 1
    assert {'mcp_tool_server_token_exchanges_total{result="timeout"}',
            'mcp_tool_server_token_exchanges_total{result="error"}'} <= set(after)


def test_whoami_downstream_takes_no_arguments(exchanging, endpoints):
    c = StreamableClient(exchanging).initialize()
    error = c.request("tools/call", {"name": "whoami_downstream", "arguments": {"audience": "other"}})["error"]
    assert error["code"] == -32602 and "unknown argument 'audience'" in error["message"]
    assert endpoints[0].requests == []


def test_whoami_downstream_follows_the_tool_scope_rules(tmp_path, fakes):
    srv = ToolServer(tmp_path, args=exchange_args(tmp_path, fakes[0].url("/token"), fakes[1].url("/me")) +
                     ["--tool-scope", "whoami_downstream=api:read"]).start()
    try:
        def names(scope):
            c = StreamableClient(srv)
            c.headers = lambda extra=None, c=c: dict(StreamableClient.headers(c, extra),
                                                     **{"X-MCP-Identity": srv.token(scope=scope)})
            return {t["name"] for t in c.initialize().request("tools/list")["result"]["tools"]}
        assert "whoami_downstream" not in names("mcp")
        assert "whoami_downstream" in names("mcp api:read")
        r = post_mcp(srv, rpc("tools/call", {"name": "whoami_downstream", "arguments": {}}),
                     headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                              "Mcp-Name": "whoami_downstream"})
        assert r.status_code == 403 and "api:read" in r.json()["error"]["message"]
    finally:
        assert srv.stop() == 0


def test_without_an_assertion_whoami_downstream_explains_it_needs_the_gateway(tmp_path, fakes):
    fakes[0].reset(token_ok)
    srv = ToolServer(tmp_path, identity_args=["--insecure-no-auth"],
                     args=exchange_args(tmp_path, fakes[0].url("/token"), fakes[1].url("/me"))).start()
    try:
        r = stateless(srv, rpc("tools/call", {"name": "whoami_downstream", "arguments": {}}),
                      headers={"X-MCP-Identity": "not-checked-so-never-forwarded"})
        result = r.json()["result"]
        assert result["isError"] is True
        assert "needs the identity assertion" in text_of(result) and "--insecure-no-auth" in text_of(result)
        assert fakes[0].requests == []
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("drop, message", [
    (["--exchange-token-url"], "go together; missing: --exchange-token-url"),
    (["--exchange-client-id"], "go together; missing: --exchange-client-id"),
    (["--exchange-client-secret-file", "--exchange-client-id"],
     "go together; missing: --exchange-client-id --exchange-client-secret-file"),
    (["--exchange-token-url", "--exchange-client-id", "--exchange-client-secret-file"],
     "whoami_downstream gets its token by token exchange"),
    (["--whoami-downstream-audience"], "needs both --whoami-downstream-url and --whoami-downstream-audience"),
    (["--whoami-downstream-url"], "needs both --whoami-downstream-url and --whoami-downstream-audience"),
])
def test_incomplete_exchange_or_whoami_flags_refuse_to_start(tmp_path, drop, message):
    import subprocess
    args = exchange_args(tmp_path, "http://127.0.0.1:9/token", "http://127.0.0.1:9/me")
    for flag in drop + (["--exchange-timeout-ms"] if "--exchange-token-url" in drop else []):
        i = args.index(flag)
        del args[i:i + 2]
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--listen", "127.0.0.1:0"] + args,
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert message in out.stderr
    assert SECRET not in out.stderr + out.stdout


@pytest.mark.parametrize("flag, value, message", [
    ("--exchange-token-url", "https://127.0.0.1/token", "only http:// URLs (TLS is not spoken"),
    ("--exchange-token-url", "http://user:pw@127.0.0.1/token", "user info"),
    ("--whoami-downstream-url", "ftp://127.0.0.1/x", "only http:// URLs"),
    ("--whoami-downstream-scope", "a  b", "bad value for --whoami-downstream-scope"),
])
def test_bad_exchange_urls_refuse_to_start(tmp_path, flag, value, message):
    import subprocess
    args = exchange_args(tmp_path, "http://127.0.0.1:9/token", "http://127.0.0.1:9/me")
    args[args.index(flag) + 1] = value
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--listen", "127.0.0.1:0"] + args,
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert message in out.stderr


@pytest.mark.parametrize("secret, message", [(None, "cannot read --exchange-client-secret-file"),
                                             ("", "is empty"), ("\n", "is empty")])
def test_a_missing_or_empty_client_secret_refuses_to_start(tmp_path, secret, message):
    args = exchange_args(tmp_path, "http://127.0.0.1:9/token", "http://127.0.0.1:9/me")
    path = tmp_path / "exchange.secret"
    if secret is None:
        path.unlink()
    else:
        path.write_text(secret)
    srv = ToolServer(tmp_path, args=args)
    with pytest.raises(RuntimeError, match=message):
        srv.start()


def test_help_lists_the_exchange_flags():
    import subprocess
    out = subprocess.run([str(TOOL_SERVER), "--help"], capture_output=True, text=True, timeout=5).stdout
    for flag in ["--exchange-token-url", "--exchange-client-id", "--exchange-client-secret-file",
                 "--exchange-timeout-ms", "--whoami-downstream-url", "--whoami-downstream-audience",
                 "--whoami-downstream-scope"]:
        assert flag in out


def test_sigterm_while_an_exchange_waits_exits_0(tmp_path, fakes):
    """The client's connections go with the server, without running the
    callbacks of the calls still waiting (the sanitized build checks for
    leaks and use after free)."""
    fakes[0].reset(lambda req: dict(token_ok(req), delay=2))
    srv = ToolServer(tmp_path, args=exchange_args(tmp_path, fakes[0].url("/token"), fakes[1].url("/me"),
                                                  timeout_ms=5000)).start()
    c = StreamableClient(srv).initialize()
    msg = rpc("tools/call", {"name": "whoami_downstream", "arguments": {}})
    def waiting_call():
        try:
            c.post(msg)
        except requests.RequestException:  # the server went away under it
            pass

    t = threading.Thread(target=waiting_call, daemon=True)
    t.start()
    assert wait_for_requests(fakes[0], 1)
    assert srv.stop() == 0
    t.join(5)


def wait_for_requests(fake, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(fake.requests) >= n:
            return True
        time.sleep(0.02)
    return False
