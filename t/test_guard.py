"""The guard on /mcp, /mcp/sse and /mcp/message: the session-to-token check
through real nginx, the real tool server and the real provider (RFC 6750,
MCP authorization spec), and what reaches the tool server."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mcp_gateway import Sse, Streamable, login, rpc, text_of
from metrics_util import metric, scrape
from oauth_client import Browser, McpOAuthClient


@pytest.fixture(scope="module")
def gw(stack_factory):
    # a short stream check so that revocation is seen quickly; room for the
    # 200 streams one user holds at once in
    # test_200_concurrent_sse_streams_all_get_their_answers (the tool server
    # allows 16 sessions per subject by default)
    return stack_factory("guard", http_extra="    mcp_auth_stream_check 1s;\n",
                         tool_args=["--max-sessions-per-subject", "256"])


@pytest.fixture(scope="module")
def demo(gw):
    return login(gw, "demo")


@pytest.fixture(scope="module")
def alice(gw):
    return login(gw, "alice")


def prm_url(gw):
    return gw.url + "/.well-known/oauth-protected-resource/mcp"


def challenge_of(r):
    return r.headers["WWW-Authenticate"]


# --- refusals --------------------------------------------------------------------

def test_no_token_gets_401_with_the_resource_metadata_url(gw):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5)
    assert r.status_code == 401
    www = challenge_of(r)
    assert www.startswith("Bearer ")
    assert 'realm="%s"' % gw.url in www
    assert 'resource_metadata="%s"' % prm_url(gw) in www
    assert "error=" not in www          # RFC 6750 §3.1: no error code without a token
    assert r.headers["Content-Type"] == "application/json"


def test_the_resource_metadata_url_in_the_challenge_works(gw):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5)
    url = challenge_of(r).split('resource_metadata="')[1].split('"')[0]
    doc = requests.get(url, timeout=5).json()
    assert doc["resource"] == gw.url + "/mcp"


def test_browsers_can_read_the_challenge(gw):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5,
                      headers={"Origin": "http://localhost:6274"})
    assert r.status_code == 401
    assert "WWW-Authenticate" in r.headers["Access-Control-Expose-Headers"]
    assert "Mcp-Session-Id" in r.headers["Access-Control-Expose-Headers"]


def test_a_cors_preflight_is_answered_by_the_gateway(gw):
    r = requests.options(gw.url + "/mcp", timeout=5, headers={
        "Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version"})
    assert r.status_code == 204
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


def test_a_token_in_the_query_string_is_refused(gw, demo):
    r = requests.post(gw.url + "/mcp?access_token=" + demo.tokens["access_token"],
                      json=rpc("ping"), timeout=5)
    assert r.status_code == 400
    assert 'error="invalid_request"' in challenge_of(r)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "bearer"])
def test_no_usable_bearer_token_is_a_plain_401(gw, header):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5,
                      headers={"Authorization": header})
    assert r.status_code == 401


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
    lambda t: "k9" + t[2:],
    lambda t: t + "x",
    lambda t: "not a token",
    lambda t: t.split(".")[0] + ".",
])
def test_a_tampered_token_is_invalid_token(gw, demo, mangle):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5,
                      headers={"Authorization": "Bearer " + mangle(demo.tokens["access_token"])})
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge_of(r)


def test_a_refresh_token_is_not_an_access_token(gw, demo):
    r = requests.post(gw.url + "/mcp", json=rpc("ping"), timeout=5,
                      headers={"Authorization": "Bearer " + demo.tokens["refresh_token"]})
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge_of(r)


def test_a_revoked_token_is_invalid_token(gw):
    c = login(gw)
    token = c.tokens["access_token"]
    assert Streamable(gw.url, token).initialize()
    assert c.revoke(token).status_code == 200
    r = Streamable(gw.url, token).post(rpc("ping"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge_of(r)


# --- end to end ------------------------------------------------------------------

def test_streamable_http_end_to_end_through_the_gateway(gw, demo):
    s = Streamable(gw.url, demo.tokens["access_token"]).initialize()
    tools = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert tools == {"hello_mcp", "get_snippet", "save_snippet"}
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    assert "saved successfully" in text_of(s.call("save_snippet", snippetname="greeting",
                                                  snippet="hi from demo"))
    assert text_of(s.call("get_snippet", snippetname="greeting")) == "hi from demo"


def test_sse_end_to_end_through_the_gateway(gw, demo):
    sse = Sse(gw.url, demo.tokens["access_token"])
    assert sse.status == 200
    try:
        started = time.monotonic()
        url = sse.endpoint(timeout=1.0)   # nothing buffered on the way
        assert time.monotonic() - started < 1.0
        assert url.startswith(gw.url + "/mcp/message?sessionId=")
        sse.initialize() if False else None
        reply = sse.request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                           "clientInfo": {"name": "pytest", "version": "1"}})
        assert reply["result"]["serverInfo"]
        assert text_of(sse.request("tools/call", {"name": "hello_mcp", "arguments": {}})) \
            == "Hello I am MCPTool!"
    finally:
        sse.close()


def test_two_users_snippets_stay_apart(gw, demo, alice):
    d = Streamable(gw.url, demo.tokens["access_token"]).initialize()
    a = Streamable(gw.url, alice.tokens["access_token"]).initialize()
    d.call("save_snippet", snippetname="private", snippet="demo's secret")
    reply = a.call("get_snippet", snippetname="private")
    assert reply["result"].get("isError") is True
    a.call("save_snippet", snippetname="private", snippet="alice's own")
    assert text_of(d.call("get_snippet", snippetname="private")) == "demo's secret"


def test_a_session_id_of_another_user_is_useless(gw, demo, alice):
    d = Streamable(gw.url, demo.tokens["access_token"]).initialize()
    a = Streamable(gw.url, alice.tokens["access_token"])
    a.session_id = d.session_id
    r = a.post(rpc("tools/list"))
    assert r.status_code == 404


def test_a_client_forged_identity_header_is_replaced(gw, demo, alice):
    """No spoofing: X-MCP-Identity from the client never reaches the tool server."""
    a = Streamable(gw.url, alice.tokens["access_token"]).initialize()
    a.call("save_snippet", snippetname="forge", snippet="alice wrote this")
    # demo tries to pass as alice with an identity header of her own making
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLWFsaWNlIn0."
    d = Streamable(gw.url, demo.tokens["access_token"]).initialize()
    reply = d.request.__self__.post(rpc("tools/call", {"name": "get_snippet",
                                                       "arguments": {"snippetname": "forge"}}),
                                    headers={"X-MCP-Identity": forged}).json()
    assert reply["result"].get("isError") is True


def test_the_tool_server_refuses_requests_that_bypass_the_gateway(gw):
    r = requests.post("http://127.0.0.1:%d/mcp" % gw.tool_port, json=rpc("ping"), timeout=5,
                      headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 401


# --- per-tool scopes ----------------------------------------------------------------

def test_the_tool_server_behind_the_gateway_enforces_the_same_tool_scopes(gw):
    """The rules (scopes and claims) are written once, in nginx.conf; the tool
    server is started with them (render-config.tool_scope_args) and refuses
    on its own."""
    from toolserver_util import mint
    assert gw.tool_scope_args == ["--tool-scope=save_snippet=snippets:write",
                                  "--tool-scope=get_snippet=snippets:read",
                                  "--tool-claim=save_snippet:groups=editors"]
    body = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "direct", "snippet": "y"}})
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "save_snippet"}
    url = "http://127.0.0.1:%d/mcp" % gw.tool_port
    key = gw.identity_key.encode()
    r = requests.post(url, json=body, timeout=5,
                      headers=dict(h, **{"X-MCP-Identity": mint(key, sub="direct", scope="snippets:read")}))
    assert r.status_code == 403 and r.json()["error"]["code"] == -32001, r.text
    r = requests.post(url, json=body, timeout=5,
                      headers=dict(h, **{"X-MCP-Identity": mint(key, sub="direct", scope="snippets:write")}))
    assert r.status_code == 403 and "requires groups = editors" in r.json()["error"]["message"], r.text
    r = requests.post(url, json=body, timeout=5,
                      headers=dict(h, **{"X-MCP-Identity": mint(key, sub="direct", scope="snippets:write",
                                                              claims={"groups": ["editors"]})}))
    assert r.status_code == 200 and r.json()["result"]["isError"] is False, r.text


def test_a_tool_call_without_its_scope_gets_a_403_scope_challenge(gw):
    c = login(gw, scope="snippets:read")
    s = Streamable(gw.url, c.tokens["access_token"]).initialize()
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    s.call("get_snippet", snippetname="x")           # allowed with snippets:read
    r = s.post(rpc("tools/call", {"name": "save_snippet",
                                  "arguments": {"snippetname": "x", "snippet": "y"}}))
    assert r.status_code == 403
    www = challenge_of(r)
    assert 'error="insufficient_scope"' in www
    # what the token has plus what the call needs, so a client that asks for
    # exactly the challenged scope keeps what it had
    assert 'scope="snippets:read snippets:write"' in www
    assert 'resource_metadata="%s"' % prm_url(gw) in www


def test_step_up_refuses_the_refresh_then_succeeds_after_a_new_login(gw):
    c = McpOAuthClient(gw.url, redirect_uri="http://127.0.0.1:33418/callback",
                       scope="snippets:read")
    login(gw, client=c)
    s = Streamable(gw.url, c.tokens["access_token"]).initialize()
    r = s.post(rpc("tools/call", {"name": "save_snippet",
                                  "arguments": {"snippetname": "x", "snippet": "y"}}))
    assert r.status_code == 403
    # the official TypeScript client refreshes first: that must not paper over it
    r = c.refresh()
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # then it sends the user back to /authorize with the wider scope
    c.scope = "snippets:read snippets:write"
    login(gw, client=c)
    s = Streamable(gw.url, c.tokens["access_token"]).initialize()
    assert "saved successfully" in text_of(s.call("save_snippet", snippetname="x", snippet="y"))


# --- Mcp-Method / Mcp-Name: the body decides, lying headers are refused ----------

MIRRORS = {
    "no headers": {},
    "honest headers": {"Mcp-Method": "tools/call", "Mcp-Name": "save_snippet"},
    "lying Mcp-Method": {"Mcp-Method": "tools/list"},
    "lying Mcp-Name": {"Mcp-Method": "tools/call", "Mcp-Name": "hello_mcp"},
}


@pytest.fixture(scope="module")
def read_only(gw):
    return login(gw, "alice", scope="snippets:read")


def save_body(name):
    return rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": name, "snippet": "pwned"}})


def post_with_mirrors(gw, token, transport, version, body, mirror):
    headers = dict(mirror)
    if transport == "streamable":
        if version == "2026-07-28":   # stateless: no session, every request self-contained
            return requests.post(gw.url + "/mcp", data=json.dumps(body), timeout=10, headers={
                "Authorization": "Bearer " + token, "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": version,
                **headers})
        s = Streamable(gw.url, token, version=version).initialize()
        return s.post(body, headers=headers)
    sse = Sse(gw.url, token)
    try:
        sse.initialize(version)
        return sse.post(body, headers={"MCP-Protocol-Version": version, **headers})
    finally:
        sse.close()


@pytest.mark.parametrize("transport", ["streamable", "sse"])
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
@pytest.mark.parametrize("mirror", list(MIRRORS))
def test_a_read_only_token_never_saves_whatever_mcp_method_and_mcp_name_say(gw, read_only, transport,
                                                                           version, mirror):
    name = "mirror-%s-%s-%s" % (transport, version, mirror.replace(" ", "-"))
    r = post_with_mirrors(gw, read_only.tokens["access_token"], transport, version, save_body(name),
                          MIRRORS[mirror])
    assert "saved successfully" not in r.text
    if mirror.startswith("lying"):
        # refused at the edge as the 2026-07-28 revision says, whatever the version
        assert r.status_code == 400, (r.status_code, r.text)
        assert r.json()["error"]["code"] == -32020
        assert "Header mismatch" in r.json()["error"]["message"]
    else:
        assert r.status_code == 403, (r.status_code, r.text)
        assert 'error="insufficient_scope"' in challenge_of(r)
    # and nothing was written
    s = Streamable(gw.url, read_only.tokens["access_token"]).initialize()
    assert text_of(s.call("get_snippet", snippetname=name)) == "Snippet '%s' not found" % name


@pytest.mark.parametrize("transport", ["streamable", "sse"])
def test_honest_mirror_headers_with_the_scope_save(gw, transport):
    # the other side of the matrix above: the same requests do write when allowed
    c = login(gw, "alice", scope="snippets:read snippets:write")
    name = "mirror-allowed-" + transport
    r = post_with_mirrors(gw, c.tokens["access_token"], transport, "2025-11-25", save_body(name),
                          MIRRORS["honest headers"])
    assert r.status_code in (200, 202), (r.status_code, r.text)
    s = Streamable(gw.url, c.tokens["access_token"]).initialize()
    assert text_of(s.call("get_snippet", snippetname=name)) == "pwned"


def test_a_repeated_or_base64_mcp_name_is_held_to_the_body(gw, read_only):
    token = read_only.tokens["access_token"]
    get = rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "none"}})
    # the spec's Base64 sentinel is decoded before comparing: "get_snippet"
    s = Streamable(gw.url, token).initialize()
    r = s.post(get, headers={"Mcp-Method": "tools/call", "Mcp-Name": "=?base64?Z2V0X3NuaXBwZXQ=?="})
    assert r.status_code == 200, r.text
    r = s.post(save_body("b64"), headers={"Mcp-Method": "tools/call",
                                          "Mcp-Name": "=?base64?Z2V0X3NuaXBwZXQ=?="})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32020
    # two Mcp-Method headers (requests cannot send a header twice: raw socket)
    body = json.dumps(get)
    raw = ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
           "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-06-18\r\n"
           "Mcp-Method: tools/call\r\nMcp-Method: tools/call\r\n"
           "Content-Length: %d\r\nConnection: close\r\n\r\n%s") % (token, s.session_id, len(body), body)
    import socket
    host, port = gw.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw.encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"-32020" in reply


def test_a_batch_cannot_hide_a_tool_call_behind_an_element_that_is_not_a_call(gw):
    # 2025-03-26 allows batches; the tool server answers a non-object element
    # with an error and still runs the others, so the guard must too.
    c = login(gw, scope="snippets:read")
    s = Streamable(gw.url, c.tokens["access_token"], version="2025-03-26").initialize()
    save = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "hidden", "snippet": "y"}})
    for batch in ([save, 1], [1, save], [save, "x", None, []]):
        r = s.post(batch)
        assert r.status_code == 403, (batch, r.status_code, r.text)
    # and nothing was saved
    assert text_of(s.call("get_snippet", snippetname="hidden")) == "Snippet 'hidden' not found"


def raw_post(s, text):
    return s.http.post(s.url, data=text.encode(), headers=s.headers(), timeout=15)


@pytest.mark.parametrize("body", [
    # a repeated name: the tool server (cJSON) takes the first one
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"save_snippet","name":"hello_mcp",'
    '"arguments":{"snippetname":"dup","snippet":"y"}}}',
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","method":"ping",'
    '"params":{"name":"save_snippet","arguments":{"snippetname":"dup","snippet":"y"}}}',
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"save_snippet",'
    '"arguments":{"snippetname":"dup","snippet":"y"}},"params":{"name":"hello_mcp"}}',
    # an escape cJSON decodes to a NUL that cuts the name short
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"save_snippet\\uzzzz",'
    '"arguments":{"snippetname":"dup","snippet":"y"}}}',
    # keys written with escapes are the same keys
    '{"jsonrpc":"2.0","id":7,"\\u006dethod":"tools/call","params":{"n\\u0061me":"save_snippet",'
    '"arguments":{"snippetname":"dup","snippet":"y"}}}',
])
def test_a_body_the_guard_cannot_read_exactly_is_not_passed_on(gw, body):
    c = login(gw, scope="snippets:read")
    s = Streamable(gw.url, c.tokens["access_token"]).initialize()
    r = raw_post(s, body)
    assert r.status_code in (400, 403), (r.status_code, r.text)
    assert "saved successfully" not in r.text


def test_invalid_json_is_answered_by_the_gateway_as_a_json_rpc_parse_error(gw, demo):
    s = Streamable(gw.url, demo.tokens["access_token"]).initialize()
    r = raw_post(s, '{"jsonrpc":"2.0","id":1,"method":"tools/call"')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32700

# --- streams end with their session --------------------------------------------------

def test_a_revoked_sessions_open_stream_is_closed(gw):
    c = login(gw)
    sse = Sse(gw.url, c.tokens["access_token"], timeout=30)
    assert sse.status == 200
    sse.endpoint()
    assert c.revoke(c.tokens["access_token"]).status_code == 200
    assert sse.closed.wait(5), "the stream outlived its session"


def test_200_concurrent_sse_streams_all_get_their_answers(gw, demo):
    token = demo.tokens["access_token"]

    def one(i):
        sse = Sse(gw.url, token, timeout=30)
        try:
            assert sse.status == 200
            sse.endpoint(timeout=20)
            reply = sse.request("ping", timeout=20)
            return "result" in reply
        finally:
            sse.close()

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    assert all(results)


# --- what goes upstream ---------------------------------------------------------------

class _Echo(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Echo.seen.append(dict(self.headers))
        body = b'{"jsonrpc":"2.0","id":1,"result":{}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_client_token_never_reaches_the_upstream_and_the_identity_is_ours(stack_factory):
    st = stack_factory("echo")
    c = login(st)
    st.tool.stop()
    echo = ThreadingHTTPServer(("127.0.0.1", st.tool_port), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        r = requests.post(st.url + "/mcp", json=rpc("ping"), timeout=5, headers={
            "Authorization": "Bearer " + c.tokens["access_token"],
            "X-MCP-Identity": "forged", "Accept": "application/json"})
        assert r.status_code == 200
    finally:
        echo.shutdown()
        echo.server_close()
    headers = {k.lower(): v for k, v in _Echo.seen[-1].items()}
    assert "authorization" not in headers
    assert "x-mcp-provider-token" not in headers   # off unless configured
    identity = headers["x-mcp-identity"]
    assert identity != "forged" and identity.count(".") == 2
    import base64
    payload = json.loads(base64.urlsafe_b64decode(identity.split(".")[1] + "=="))
    assert payload["sub"] == "user-demo"
    assert payload["client_id"] == c.client_id
    assert payload["aud"] == "mcp-tool-server"
    assert payload["exp"] - payload["iat"] <= 300


def test_the_tool_server_down_is_a_502_while_oauth_keeps_working(stack_factory):
    st = stack_factory("down")
    c = login(st)
    st.tool.stop()
    r = Streamable(st.url, c.tokens["access_token"]).post(rpc("ping"))
    assert r.status_code == 502
    assert requests.get(st.url + "/.well-known/oauth-authorization-server",
                        timeout=5).status_code == 200
    assert c.refresh().status_code == 200


# --- the provider's token, kept fresh from the guard ------------------------------------

@pytest.fixture(scope="module")
def short_provider(stack_factory):
    # the provider's access tokens live 4 s; ours an hour
    return stack_factory("renew", idp_options={"access_token_ttl": 4})


def test_an_expired_provider_token_is_renewed_without_the_client_noticing(short_provider):
    from idp_util import stats
    st = short_provider
    c = login(st)
    s = Streamable(st.url, c.tokens["access_token"]).initialize()
    before = stats(st.issuer)["token"].get("refresh_token", 0)
    counted = scrape(st)
    time.sleep(4.5)
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    assert stats(st.issuer)["token"].get("refresh_token", 0) == before + 1
    # renewed once: the next calls need no provider
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    assert stats(st.issuer)["token"].get("refresh_token", 0) == before + 1
    # and the operator sees the one renewal, and its call to the provider
    now = scrape(st)
    for name, labels in (("mcp_auth_provider_renewals_total", {"outcome": "renewed"}),
                         ("mcp_auth_fetches_total", {"target": "provider_token", "outcome": "ok"})):
        assert metric(now, name, **labels) - metric(counted, name, **labels) == 1, name


def test_a_session_ended_at_the_provider_ends_here_too(short_provider):
    from idp_util import revoke_all_grants
    st = short_provider
    c = login(st)
    s = Streamable(st.url, c.tokens["access_token"]).initialize()
    revoke_all_grants(st.issuer)
    time.sleep(4.5)
    before = scrape(st)
    r = s.post(rpc("ping"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge_of(r)
    after = scrape(st)
    for name, labels in (("mcp_auth_provider_renewals_total", {"outcome": "ended"}),
                         ("mcp_auth_guard_decisions_total",
                          {"outcome": "unauthorized", "reason": "provider_session_ended"})):
        assert metric(after, name, **labels) - metric(before, name, **labels) == 1, name
    assert c.refresh().status_code == 400


# --- key rotation ---------------------------------------------------------------

def test_rotation_keeps_old_tokens_working_and_a_retired_key_ends_them(stack_factory):
    import subprocess
    from harness import ROOT
    st = stack_factory("keys")
    c = login(st)
    token = c.tokens["access_token"]
    old = (st.workdir / "keys").read_text()
    new = subprocess.run([str(ROOT / "scripts" / "mcp-auth-keygen"), "k2"], capture_output=True,
                         text=True, check=True).stdout
    # rotate: the new key seals, the old one still opens
    (st.workdir / "keys").write_text(new + old)
    st.nginx.reload(wait=True)
    assert Streamable(st.url, token).post(rpc("ping")).status_code != 401
    fresh = c.refresh().json()
    assert fresh["access_token"].startswith("k2.")
    # retire the old key: tokens it sealed are refused (once the old
    # workers, which still hold it, have exited)
    (st.workdir / "keys").write_text(new)
    st.nginx.reload(wait=True)
    r = Streamable(st.url, token).post(rpc("ping"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in challenge_of(r)
    assert Streamable(st.url, fresh["access_token"]).post(rpc("ping")).status_code != 401
