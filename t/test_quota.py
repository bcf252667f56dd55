"""Quotas (mcp_auth_limit) through real nginx, the real tool server and the
real provider: a bucket per user or per client, for every request or for
the calls of one tool, shared by the workers (two here) and, with Redis, by
the nodes; over it a 429 with Retry-After and a JSON-RPC error, counted and
audited.  And nginx's own limit_req keyed by $mcp_auth_subject, which works
since the guard runs before it (preaccess phase)."""

import json
import subprocess
import time

import pytest
import requests

from cluster_util import Cluster
from harness import NODE, ROOT
from mcp_gateway import REDIRECT, Streamable, login, rpc
from metrics_util import metric, scrape
from oauth_client import Browser, McpOAuthClient

FAMILY = "mcp_auth_rate_limited_total"


def audit_lines(st, at_least=0, timeout=5.0):
    """The audit log's lines, once it has at_least of them."""
    path = st.workdir / "audit.log"
    end = time.time() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= at_least or time.time() > end:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def location(path, extra, to="http://mcp_tool_server/mcp"):
    return ("location = %s {\n    mcp_auth_protect on;\n%s    proxy_pass %s;\n"
            "    include mcp_proxy_params;\n}\n\n" % (path, extra, to))


LOCATIONS = (
    # slow rates: nothing refills while a test runs (a token every 10 s)
    location("/mcp-user", "    mcp_auth_limit rate=6r/m per=subject burst=2;\n")
    + location("/mcp-client", "    mcp_auth_limit rate=6r/m per=client burst=1;\n")
    + location("/mcp-tool", "    mcp_auth_limit rate=6r/m per=subject burst=1 tool=save_snippet;\n")
    + location("/mcp-batch", "    mcp_auth_limit rate=6r/m per=subject burst=2 tool=save_snippet;\n")
    # two rules: both must pass
    + location("/mcp-two", "    mcp_auth_limit rate=6r/m per=client burst=5;\n"
                           "    mcp_auth_limit rate=6r/m per=subject burst=1;\n")
    # a fast one, to see a bucket refill
    + location("/mcp-fast", "    mcp_auth_limit rate=1r/s per=subject;\n")
    # nginx's limit_req, per user
    + ("location = /mcp-lr {\n    limit_req zone=mcp_per_user burst=1 nodelay;\n"
       "    mcp_auth_protect on;\n    proxy_pass http://mcp_tool_server/mcp;\n"
       "    include mcp_proxy_params;\n}\n\n"))

MARKER = "# legacy HTTP+SSE (2024-11-05): the stream ..."
# /mcp itself: one call of get_snippet an hour, for the official SDK's run
MCP = "location = /mcp {\n    mcp_auth_protect on;\n"
# the legacy transport's POSTs: a save_snippet quota of its own
MESSAGE = "location = /mcp/message {\n    mcp_auth_protect on;\n"


@pytest.fixture(scope="module")
def gw(stack_factory):
    return stack_factory("quota", workers=2,
                         http_extra="    limit_req_zone $mcp_auth_subject zone=mcp_per_user:1m rate=1r/m;\n",
                         replace=[(MARKER, LOCATIONS + MARKER), ("flush=1s", "flush=100ms"),
                                  (MCP, MCP + "    mcp_auth_limit rate=1r/h per=subject tool=get_snippet;\n"),
                                  (MESSAGE, MESSAGE + "    mcp_auth_limit rate=1r/h per=subject tool=save_snippet;\n")])


def token(gw, user="demo", client=None):
    return login(gw, user, client=client).tokens["access_token"]


def ping(gw, path, tok, body=None):
    """A POST the guard decides on; the tool server may refuse it (no MCP
    session), which does not matter here: only a 429 is the quota's."""
    return requests.post(gw.url + path, data=json.dumps(body or rpc("ping")), timeout=10,
                         headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json",
                                  "Accept": "application/json, text/event-stream"})


def allowed(r):
    return r.status_code not in (401, 403, 429, 503)


def assert_limited(r, retry_max, id_=0):
    assert r.status_code == 429, (r.status_code, r.text)
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= retry_max, retry
    assert "WWW-Authenticate" not in r.headers
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["jsonrpc"] == "2.0"
    if id_ != 0:
        assert body["id"] == id_
    assert body["error"]["code"] == -32029
    assert body["error"]["data"] == {"retry_after": retry}
    assert body["error"]["message"].startswith("Rate limit exceeded: ")
    assert body["error"]["message"].endswith("; retry after %d s" % retry)
    return body


def session(gw, tok, path):
    s = Streamable(gw.url, tok)
    s.url = gw.url + path
    return s.initialize()


def test_per_subject_the_users_clients_share_one_bucket(gw):
    a, b = token(gw), token(gw)          # two clients, one user
    other = token(gw, "alice")
    assert allowed(ping(gw, "/mcp-user", a))
    assert allowed(ping(gw, "/mcp-user", b))
    assert allowed(ping(gw, "/mcp-user", a))
    msg = rpc("ping")    # the example's tool rules have the body read: its id comes back
    body = assert_limited(ping(gw, "/mcp-user", b, msg), 10, id_=msg["id"])
    assert "6 requests per minute per user (burst 2)" in body["error"]["message"]
    assert_limited(ping(gw, "/mcp-user", a), 10)
    assert allowed(ping(gw, "/mcp-user", other))    # another user
    assert allowed(ping(gw, "/mcp", a))             # another location, no quota


def test_per_client_the_clients_users_share_one_bucket(gw):
    c = McpOAuthClient(gw.url, redirect_uri=REDIRECT)
    demo = token(gw, "demo", client=c)
    alice = token(gw, "alice", client=c)
    assert allowed(ping(gw, "/mcp-client", demo))
    assert allowed(ping(gw, "/mcp-client", alice))
    assert "per client" in assert_limited(ping(gw, "/mcp-client", alice), 10)["error"]["message"]
    assert_limited(ping(gw, "/mcp-client", demo), 10)
    assert allowed(ping(gw, "/mcp-client", token(gw, "demo")))   # another client


def test_per_tool_only_that_tools_calls_count_and_the_429_is_exact(gw):
    c = login(gw, "demo")
    tok = c.tokens["access_token"]
    s = session(gw, tok, "/mcp-tool")      # initialize: not a call of the tool
    before = scrape(gw)
    lines_before = len(audit_lines(gw, timeout=0))
    for i in range(2):
        assert "saved" in s.call("save_snippet", snippetname="q%d" % i, snippet="x")["result"]["content"][0]["text"]
    msg = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "q9", "snippet": "x"}})
    r = s.post(msg)
    body = assert_limited(r, 10, id_=msg["id"])
    assert body["error"]["message"].startswith(
        "Rate limit exceeded: 6 calls of save_snippet per minute per user (burst 1); retry after ")
    # Retry-After agrees with the rate: the bucket gives a call every 10 s
    assert int(r.headers["Retry-After"]) >= 8
    # other tools and methods are not counted
    for _ in range(3):
        assert s.call("hello_mcp")["result"]
    assert s.request("tools/list")["result"]

    after = scrape(gw)
    assert metric(after, FAMILY, per="subject", counts="tool_calls") == \
        metric(before, FAMILY, per="subject", counts="tool_calls") + 1
    assert metric(after, "mcp_auth_guard_decisions_total", outcome="too_many_requests", reason="rate_limited") >= 1
    assert metric(after, "mcp_auth_tool_calls_total", tool="save_snippet", outcome="denied") >= 1

    time.sleep(0.3)
    lines = audit_lines(gw, lines_before + 1)[lines_before:]
    # this client's: an earlier test's line may reach the log (written at most
    # a second late) after lines_before was counted
    limited = [l for l in lines if l.get("event") == "guard.rate_limited" and l.get("client_id") == c.client_id]
    assert len(limited) == 1, lines
    assert limited[0]["tool"] == "save_snippet"
    assert limited[0]["reason"] == "rate_limited"
    assert limited[0]["subject"] and limited[0]["client_id"]


def test_the_legacy_transport_counts_the_same_calls(gw):
    """/mcp/message (HTTP+SSE) is decided on its body as /mcp is: the
    second save_snippet of the hour is refused, hello_mcp is not counted."""
    from mcp_gateway import Sse
    s = Sse(gw.url, token(gw, "alice"), timeout=30)
    try:
        s.initialize()
        save = lambda n: rpc("tools/call", {"name": "save_snippet",
                                            "arguments": {"snippetname": n, "snippet": "x"}})
        assert s.post(save("sse1")).status_code == 202
        assert s.post(rpc("tools/call", {"name": "hello_mcp", "arguments": {}})).status_code == 202
        msg = save("sse2")
        assert_limited(s.post(msg), 3600, id_=msg["id"])
    finally:
        s.close()


def test_a_lying_mcp_name_header_neither_hides_a_call_nor_spends_another_tools_quota(gw):
    """The body decides what a request costs: a save_snippet call that says
    Mcp-Name: hello_mcp is refused before the quota is looked at, and the
    honest call after it still has its token."""
    tok = token(gw, "alice")
    s = session(gw, tok, "/mcp-tool")
    msg = rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "lie", "snippet": "x"}})
    r = s.post(msg, headers={"Mcp-Method": "tools/call", "Mcp-Name": "hello_mcp"})
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"]["code"] == -32020
    for i in range(2):  # rate=6r/m burst=1: two at once, then refused
        assert "saved" in s.call("save_snippet", snippetname="h%d" % i, snippet="x")["result"]["content"][0]["text"]
    assert_limited(s.post(rpc("tools/call", {"name": "save_snippet",
                                            "arguments": {"snippetname": "h9", "snippet": "x"}})), 10)


def test_a_batch_counts_each_call(gw):
    tok = token(gw, "demo")
    call = lambda i, name="save_snippet": rpc("tools/call", {"name": name, "arguments": {
        "snippetname": "b%d" % i, "snippet": "x"} if name == "save_snippet" else {}})
    batch = [call(1), call(2, "hello_mcp"), call(3)]
    assert allowed(ping(gw, "/mcp-batch", tok, batch))        # two of three
    assert_limited(ping(gw, "/mcp-batch", tok, [call(4), call(5)]), 20, id_=None)
    assert allowed(ping(gw, "/mcp-batch", tok, call(6)))      # the one left


def test_every_rule_must_pass(gw):
    tok = token(gw)
    assert allowed(ping(gw, "/mcp-two", tok))
    assert allowed(ping(gw, "/mcp-two", tok))
    body = assert_limited(ping(gw, "/mcp-two", tok), 10)
    assert "per user (burst 1)" in body["error"]["message"]


def test_the_bucket_refills_after_retry_after(gw):
    tok = token(gw)
    assert allowed(ping(gw, "/mcp-fast", tok))
    r = ping(gw, "/mcp-fast", tok)
    assert_limited(r, 1)
    time.sleep(int(r.headers["Retry-After"]))
    assert allowed(ping(gw, "/mcp-fast", tok))


def test_limit_req_keyed_by_the_subject_limits_one_user_not_another(gw):
    demo, alice = token(gw, "demo"), token(gw, "alice")
    codes = [ping(gw, "/mcp-lr", demo).status_code for _ in range(3)]
    assert 429 not in codes[:2] and codes[2] == 429, codes     # limit_req_status 429 (the example's)
    assert allowed(ping(gw, "/mcp-lr", alice))
    # the guard still comes first: no token, no limit_req entry, a 401
    r = requests.post(gw.url + "/mcp-lr", json=rpc("ping"), timeout=5)
    assert r.status_code == 401


def test_the_official_sdk_shows_the_refusal(gw):
    p = subprocess.run([NODE, str(ROOT / "t" / "clients" / "sdk_client.mjs"), "--gateway", gw.url,
                        "--scenario", "quota", "--user", "demo", "--password", gw.demo_password],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, (p.stdout, p.stderr)
    calls = [x for x in lines if x.get("tool") == "get_snippet"]
    assert [x["step"] for x in calls] == ["tool_call", "tool_refused"], calls
    refused = calls[1]
    assert refused["code"] == 429
    assert "Rate limit exceeded: 1 call of get_snippet per hour per user; retry after" in refused["error"]


# --- nginx -t ----------------------------------------------------------------------

@pytest.mark.parametrize("directive, words", [
    ("mcp_auth_limit rate=10r/m;", "needs per=subject or per=client"),
    ("mcp_auth_limit per=subject;", "needs rate="),
    ("mcp_auth_limit rate=10r/d per=subject;", "\"rate=10r/d\""),
    ("mcp_auth_limit rate=10r/m per=ip;", "per must be subject or client"),
    ("mcp_auth_limit rate=10r/m per=client burst=-1;", "burst must be"),
    ("mcp_auth_limit rate=10r/m per=client zone=one;", "\"zone=one\""),
])
def test_nginx_t_refuses_a_bad_limit(nginx_factory, directive, words):
    nx = nginx_factory("badlimit", http_extra="    %s\n" % directive)
    result = nx.test_config()
    assert result.returncode != 0
    assert words in result.stderr, result.stderr


# --- two nodes, one Redis ------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory, built):
    c = Cluster(tmp_path_factory.mktemp("quota-cluster"),
                replace=[("location = /mcp {\n    mcp_auth_protect on;\n",
                          "location = /mcp {\n    mcp_auth_protect on;\n"
                          "    mcp_auth_limit rate=6r/m per=subject burst=3;\n")])
    yield c
    c.stop()
    for nx in c.nodes:
        nx.assert_clean_log()


def test_across_nodes_one_bucket_in_redis(cluster):
    c = McpOAuthClient(cluster.url, redirect_uri=REDIRECT)
    c.login(Browser("demo", cluster.demo_password))
    tok = c.tokens["access_token"]
    urls = ["http://127.0.0.1:%d" % p for p in (cluster.port_a, cluster.port_b)]

    def post(i):
        return requests.post(urls[i % 2] + "/mcp", data=json.dumps(rpc("ping")), timeout=10,
                             headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json",
                                      "Accept": "application/json, text/event-stream"})
    codes = [post(i).status_code for i in range(6)]
    assert 429 not in codes[:4] and codes[4:] == [429, 429], codes
