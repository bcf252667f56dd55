"""What operators see: the gateway's Prometheus metrics (mcp_auth_endpoint
metrics), its audit log (mcp_auth_audit_log) and the W3C trace context it
passes on -- through real nginx, the real tool server, the real provider,
and a real Prometheus (Debian's) scraping both."""

import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import time

import pytest
import requests

import harness
from conftest import nginx_env
from idp_util import stats as idp_stats
from mcp_gateway import Sse, Streamable, login, rpc
from metrics_util import metric, parse_exposition, scrape
from oauth_client import McpOAuthClient
from prometheus_util import PROMTOOL, Prometheus

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def audit_lines(st, at_least=0, timeout=5.0):
    """The audit log's lines, once it has at_least of them (the example's
    workers write theirs at most a second late: buffer=, flush=1s)."""
    path = st.workdir / "audit.log"
    end = time.time() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= at_least or time.time() > end:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def wait_for(predicate, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def st(stack_factory):
    # one worker, so that the audit log's lines are in the order of the
    # requests (each worker writes its own buffer); a tenth of a second late
    # at most (the example's buffer, flushed sooner)
    return stack_factory("observability", http_extra="    mcp_auth_stream_check 1s;\n",
                         replace=[("flush=1s", "flush=100ms")])


def settled(st):
    """How many lines the audit log has once the workers' buffers are out."""
    time.sleep(0.3)
    return len(audit_lines(st, timeout=0))


def test_the_exposition_passes_promtool_and_is_not_cached(st):
    r = requests.get(st.url + "/_mcp_auth/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=r.text, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stdout + check.stderr
    samples = parse_exposition(r.text)
    # the zone's gauges; no Redis here, so no redis_up
    assert metric(samples, "mcp_auth_zone_size_bytes") == 16 * 1024 * 1024
    assert 0 < metric(samples, "mcp_auth_zone_used_bytes") < 16 * 1024 * 1024
    assert not any(name == "mcp_auth_redis_up" for name, _ in samples)
    # the tools of the configuration, and other
    tools = {dict(labels)["tool"] for name, labels in samples if name == "mcp_auth_tool_calls_total"}
    assert tools == {"hello_mcp", "get_snippet", "save_snippet", "other"}


def test_the_metrics_endpoint_takes_only_get(st):
    assert requests.post(st.url + "/_mcp_auth/metrics", data="x", timeout=5).status_code == 405


def test_a_whole_session_in_a_real_prometheus_and_the_audit_log(st, tmp_path):
    """Login, tool calls allowed and refused, a request without a token, a
    refresh and a revocation: Prometheus's query API shows each counter moved
    by exactly what the test did, and the audit log has one line per event."""
    gateway = ("mcp-auth-gateway", "127.0.0.1:%d" % st.port, "/_mcp_auth/metrics")
    tool = ("mcp-tool-server", "127.0.0.1:%d" % st.tool_port, "/metrics")
    with Prometheus(tmp_path / "prom", scrape=[gateway, tool]) as prom:
        t0 = time.time()
        prom.wait_for_scrape("mcp-auth-gateway", after=t0)
        prom.wait_for_scrape("mcp-tool-server", after=t0)

        watched = {
            "registered": 'mcp_auth_registrations_total{result="ok"}',
            "started": "mcp_auth_logins_started_total",
            "consented": 'mcp_auth_consents_total{outcome="allowed"}',
            "completed": 'mcp_auth_logins_total{outcome="completed"}',
            "code": 'mcp_auth_token_requests_total{grant_type="authorization_code",result="ok"}',
            "refresh": 'mcp_auth_token_requests_total{grant_type="refresh_token",result="ok"}',
            "hello": 'mcp_auth_tool_calls_total{tool="hello_mcp",outcome="allowed"}',
            "get": 'mcp_auth_tool_calls_total{tool="get_snippet",outcome="allowed"}',
            "save_denied": 'mcp_auth_tool_calls_total{tool="save_snippet",outcome="denied"}',
            "forbidden": 'mcp_auth_guard_decisions_total{outcome="forbidden",reason="insufficient_scope"}',
            "no_token": 'mcp_auth_guard_decisions_total{outcome="unauthorized",reason="missing_token"}',
            "step_ups": "mcp_auth_step_ups_total",
            "revoked": 'mcp_auth_revocations_total{result="revoked"}',
            "provider_token": 'mcp_auth_fetches_total{target="provider_token",outcome="ok"}',
            "fetch_count": 'mcp_auth_fetch_duration_seconds_count{target="provider_token"}',
            "ts_hello": 'mcp_tool_server_tool_calls_total{tool="hello_mcp",result="ok"}',
            # no such snippet: a tool error at the tool server
            "ts_get": 'mcp_tool_server_tool_calls_total{tool="get_snippet",result="error"}',
        }
        before = {k: prom.value(q) for k, q in watched.items()}
        assert all(v is not None for v in before.values()), before
        lines_before = settled(st)

        client = login(st, "demo", scope="snippets:read")
        token = client.tokens["access_token"]
        mcp = Streamable(st.url, token)
        mcp.initialize()
        trace = secrets.token_hex(16)
        traceparent = "00-%s-%s-01" % (trace, secrets.token_hex(8))
        r = mcp.post(rpc("tools/call", {"name": "hello_mcp", "arguments": {}}),
                     headers={"traceparent": traceparent})
        assert r.status_code == 200, r.text
        mcp.call("get_snippet", name="nothing-here")
        denied = mcp.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"name": "a", "text": "b"}}))
        assert denied.status_code == 403
        assert requests.post(st.url + "/mcp", json=rpc("ping"), timeout=5).status_code == 401
        refreshed = client.refresh()
        assert refreshed.status_code == 400  # the step-up: sign in again for snippets:write
        client2 = login(st, "demo", scope="snippets:read", client=client)
        assert client2.refresh().status_code == 200
        assert client.revoke(client.tokens["refresh_token"]).status_code == 200

        t1 = time.time()
        prom.wait_for_scrape("mcp-auth-gateway", after=t1)
        prom.wait_for_scrape("mcp-tool-server", after=t1)
        after = {k: prom.value(q) for k, q in watched.items()}
        delta = {k: after[k] - before[k] for k in watched}
        assert delta == {
            "registered": 1, "started": 2, "consented": 2, "completed": 2, "code": 2, "refresh": 1,
            "hello": 1, "get": 1, "save_denied": 1, "forbidden": 1, "no_token": 1, "step_ups": 1,
            "revoked": 1, "provider_token": 2, "fetch_count": 2, "ts_hello": 1, "ts_get": 1,
        }, delta
        refused = prom.value('mcp_auth_token_requests_total{grant_type="refresh_token",result="invalid_grant"}')
        assert refused >= 1

    lines = audit_lines(st, lines_before + 16)[lines_before:]
    events = [(e["event"], e["outcome"]) for e in lines]
    assert events == [
        ("client.registered", "ok"),
        ("consent.allowed", "allowed"),
        ("login.started", "ok"),
        ("login.completed", "completed"),
        ("token.issued", "ok"),
        ("tool.call", "allowed"),
        ("tool.call", "allowed"),
        ("tool.call", "forbidden"),
        ("guard.denied", "unauthorized"),
        ("token.refused", "invalid_grant"),
        ("consent.allowed", "allowed"),
        ("login.started", "ok"),
        ("login.completed", "completed"),
        ("token.issued", "ok"),
        ("token.issued", "ok"),
        ("token.revoked", "revoked"),
    ], events
    fields = {"time", "event", "outcome", "reason", "subject", "client_id", "session", "tool",
              "grant_type", "remote_addr", "request_id", "trace_id"}
    always = {"time", "event", "outcome", "remote_addr", "request_id", "trace_id"}
    for e in lines:
        assert always <= set(e) <= fields, e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), e
        assert e["remote_addr"] == "127.0.0.1"
        assert HEX32.match(e["request_id"]) and HEX32.match(e["trace_id"]), e
        if e["event"] != "guard.denied":   # no token, no client
            assert e["client_id"] == client.client_id, e
        else:
            assert "client_id" not in e and "subject" not in e
    by_event = [e for e in lines if e["event"] in ("login.completed", "token.issued", "tool.call",
                                                     "token.revoked")]
    assert {e["subject"] for e in by_event} == {"user-demo"}
    calls = [e for e in lines if e["event"] == "tool.call"]
    assert [(c["tool"], c.get("reason")) for c in calls] == [("hello_mcp", None), ("get_snippet", None),
                                                             ("save_snippet", "insufficient_scope")]
    # the client's trace goes on: in the audit line, and at the tool server
    assert calls[0]["trace_id"] == trace
    assert calls[1]["trace_id"] != trace
    assert ("trace_id=" + trace) in (st.workdir / "tool-server.log").read_text()
    grants = [e["grant_type"] for e in lines if e["event"].startswith("token.") and "grant_type" in e]
    assert grants == ["authorization_code", "refresh_token", "authorization_code", "refresh_token"]
    # one session per login, the same tag in every line about it
    first = lines[3]["session"]
    assert first and all(e["session"] == first for e in lines[4:8])
    # never a token, a code or a secret
    text = (st.workdir / "audit.log").read_text()
    for secret in (token, client.tokens["access_token"], client.tokens["refresh_token"], st.idp_secret,
                   st.identity_key, st.demo_password):
        assert secret not in text


def test_what_a_client_chose_is_escaped_in_the_audit_log(st):
    client = login(st, "demo")
    mcp = Streamable(st.url, client.tokens["access_token"])
    mcp.initialize()
    names = ['a"b\\c\nd\x01e\x7f', "quote\"" * 10, "x" * 300, "\u00e9t\u00e9 \U0001f600"]
    for name in names:
        n = settled(st)
        mcp.post(rpc("tools/call", {"name": name, "arguments": {}}))
        line = audit_lines(st, n + 1)[n]      # json.loads: the line is valid JSON
        assert line["event"] == "tool.call"
        assert line["tool"] == (name if len(name.encode()) <= 256 else name[:256]), line


def test_refresh_token_reuse_is_counted_and_audited(st):
    before = scrape(st)
    client = login(st, "demo")
    old = client.tokens["refresh_token"]
    assert client.refresh().status_code == 200
    time.sleep(0.1)
    # a replay after the grace period is theft: the refresh's grace lasts
    # 30 s unless the winner's tokens are older; replaying the generation
    # before the last one is reuse at once
    assert client.refresh().status_code == 200
    reuse = client.refresh(old)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    after = scrape(st)
    assert metric(after, "mcp_auth_refresh_reuse_total") - metric(before, "mcp_auth_refresh_reuse_total") == 1
    line = wait_for(lambda: [e for e in audit_lines(st, timeout=0) if e["event"] == "refresh.reuse_detected"])[-1]
    assert line["outcome"] == "revoked" and line["client_id"] == client.client_id
    assert line["subject"] == "user-demo" and line["session"]


def test_counts_are_exact_across_workers_and_survive_a_reload(stack_factory):
    st = stack_factory("two-workers", workers=2)
    client = login(st, "demo")
    before = metric(scrape(st), "mcp_auth_guard_decisions_total", outcome="allowed", reason="none")
    n = 40
    for _ in range(n):
        # a new connection each time: the two workers share the requests
        r = requests.post(st.url + "/mcp", json=rpc("ping"), timeout=5,
                          headers={"Authorization": "Bearer " + client.tokens["access_token"],
                                   "Accept": "application/json, text/event-stream",
                                   "Connection": "close"})
        assert r.status_code != 401
    mid = metric(scrape(st), "mcp_auth_guard_decisions_total", outcome="allowed", reason="none")
    assert mid - before == n
    st.nginx.reload()
    time.sleep(1.0)
    after = metric(scrape(st), "mcp_auth_guard_decisions_total", outcome="allowed", reason="none")
    assert after == mid


def test_no_client_can_add_a_series(st):
    client = login(st, "demo")
    mcp = Streamable(st.url, client.tokens["access_token"])
    mcp.initialize()
    before = scrape(st)
    for _ in range(25):
        mcp.post(rpc("tools/call", {"name": "x" + secrets.token_hex(6), "arguments": {}}))
    after = scrape(st)
    assert set(after) == set(before)
    assert (metric(after, "mcp_auth_tool_calls_total", tool="other", outcome="allowed")
            - metric(before, "mcp_auth_tool_calls_total", tool="other", outcome="allowed")) == 25


def test_a_stream_closed_because_its_session_ended_is_counted_and_audited(st):
    client = login(st, "demo")
    before = scrape(st)
    sse = Sse(st.url, client.tokens["access_token"])
    try:
        sse.endpoint()
        assert wait_for(lambda: metric(scrape(st), "mcp_auth_guarded_streams") >= 1)
        assert client.revoke(client.tokens["access_token"]).status_code == 200
        closed = wait_for(lambda: metric(scrape(st), "mcp_auth_streams_closed_total", reason="session_ended")
                          - metric(before, "mcp_auth_streams_closed_total", reason="session_ended") == 1, 10)
        assert closed
    finally:
        sse.close()
    line = wait_for(lambda: [e for e in audit_lines(st, timeout=0) if e["event"] == "session.ended"])[-1]
    assert line["reason"] == "session_ended" and line["client_id"] == client.client_id
    assert line["subject"] == "user-demo"
    assert wait_for(lambda: metric(scrape(st), "mcp_auth_guarded_streams") == 0)


def test_the_gateway_starts_a_trace_and_ignores_a_malformed_one(st):
    client = login(st, "demo")
    mcp = Streamable(st.url, client.tokens["access_token"])
    mcp.initialize()
    for bad in ("00-" + "0" * 32 + "-" + "1" * 16 + "-01",       # all-zero trace id
                "00-" + "A" * 32 + "-" + "1" * 16 + "-01",       # upper case
                "01-" + "a" * 32 + "-" + "1" * 16 + "-01",       # another version
                "garbage"):
        n = settled(st)
        r = mcp.post(rpc("tools/call", {"name": "hello_mcp", "arguments": {}}), headers={"traceparent": bad})
        assert r.status_code == 200
        line = audit_lines(st, n + 1)[n]
        assert line["event"] == "tool.call" and HEX32.match(line["trace_id"])
        assert line["trace_id"] not in bad
        # a trace the gateway starts is named after the request
        assert line["trace_id"] == line["request_id"]
    # two traceparent headers are no valid one
    n = settled(st)
    good = "00-%s-%s-01" % (secrets.token_hex(16), secrets.token_hex(8))
    body = json.dumps(rpc("tools/call", {"name": "hello_mcp", "arguments": {}})).encode()
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=5)
    conn.putrequest("POST", "/mcp")
    for name, value in [("Authorization", "Bearer " + client.tokens["access_token"]),
                        ("Content-Type", "application/json"),
                        ("Accept", "application/json, text/event-stream"),
                        ("Mcp-Session-Id", mcp.session_id), ("MCP-Protocol-Version", mcp.version),
                        ("traceparent", good), ("traceparent", good),
                        ("Content-Length", str(len(body)))]:
        conn.putheader(name, value)
    conn.endheaders(body)
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 200
    line = audit_lines(st, n + 1)[n]
    assert line["trace_id"] == line["request_id"] != good[3:35]


def test_the_calls_to_the_provider_carry_the_trace_of_the_login(stack_factory):
    """The callback's trace goes on to the provider: the code's exchange at
    its token endpoint and the JWKS fetched to verify the ID token."""
    sp = stack_factory("trace-provider")
    client = login(sp, "demo")
    completed = [e for e in audit_lines(sp, 4) if e["event"] == "login.completed"]
    assert len(completed) == 1 and completed[0]["client_id"] == client.client_id
    trace = completed[0]["trace_id"]
    seen = idp_stats(sp.issuer)["traceparent"]
    for call in ("token", "jwks"):
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", seen[call] or "")
        assert m, (call, seen)
        assert m.group(1) == trace and m.group(2) != "0" * 16


def test_buffered_lines_are_written_before_a_reopen_and_at_exit(stack_factory):
    """buffer= gathers a worker's lines; USR1 (log rotation) and a graceful
    stop write them out, whatever flush= says."""
    sb = stack_factory("audit-buffer", replace=[("flush=1s", "flush=1h")])
    McpOAuthClient(sb.url).register()
    time.sleep(0.5)
    assert audit_lines(sb, timeout=0) == []          # still in the worker's buffer
    (sb.workdir / "audit.log").rename(sb.workdir / "audit.log.1")
    subprocess.run([harness.NGINX, "-p", str(sb.workdir), "-c", str(sb.nginx.conf), "-s", "reopen"],
                   check=True, capture_output=True, env=dict(os.environ, **nginx_env(sb.workdir)))
    rotated = wait_for(lambda: (sb.workdir / "audit.log.1").read_text().splitlines())
    assert [json.loads(x)["event"] for x in rotated] == ["client.registered"]
    McpOAuthClient(sb.url).register()
    sb.nginx.stop()                                  # SIGQUIT: a graceful stop
    assert [e["event"] for e in audit_lines(sb)] == ["client.registered"]


def test_the_audit_log_goes_to_syslog(stack_factory):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    port = udp.getsockname()[1]
    try:
        # (the rest of the example's line becomes a comment)
        sg = stack_factory("audit-syslog", replace=[(
            "mcp_auth_audit_log   ", "mcp_auth_audit_log syslog:server=127.0.0.1:%d,tag=mcp_audit; #" % port)])
        McpOAuthClient(sg.url).register()
        datagram = udp.recv(65536).decode()
    finally:
        udp.close()
    m = re.match(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ mcp_audit: (\{.*\})$", datagram)
    assert m, datagram
    assert json.loads(m.group(1))["event"] == "client.registered"
    assert not (sg.workdir / "audit.log").exists()
