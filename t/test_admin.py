"""The admin API (mcp_auth_endpoint admin, mcp_auth_admin_key_file) and its
command line, scripts/mcp-auth-admin: an operator lists a user's or a
client's sessions, ends them (the kill switch: tokens refused, refresh
tokens refused, open streams closed within mcp_auth_stream_check, on every
node of a Redis cluster within the session cache bound), and disables and
enables a client -- through real nginx, the real tool server, the real
provider and a real Redis.

The example mounts the API at /_mcp_auth/admin/ for loopback only; the key
is a file of one line (32 characters or more).
"""

import http.client
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from harness import ROOT, wait_for
from idp_util import DEMO_TENANT_ID
from mcp_gateway import REDIRECT, GetStream, Sse, Streamable
from oauth_client import Browser, McpOAuthClient

ADMIN_PATH = "/_mcp_auth/admin"
CLI = ROOT / "scripts" / "mcp-auth-admin"
STREAM_CHECK = 1            # s (mcp_auth_stream_check)
CACHE = 2                   # s a cluster worker trusts a session it read (cache=)
SESSION_FIELDS = {"id", "log_tag", "subject", "subject_type", "name", "email", "client_id", "client_name",
                  "redirect_uri", "scope", "created", "expires", "last_refresh"}
# users of the provider for this file only, so that no test ends another's
# sessions (all in the tenant the example admits)
USERS = ("kim", "lee", "max", "ned", "ola", "pat", "ron")

# --- the configuration ------------------------------------------------------------
# The examples mount the API (mcp_locations: location /_mcp_auth/admin/, for
# loopback only) and read the key from /etc/nginx/mcp-auth/admin.key, the
# runtime folder in the tests (conftest.write_secrets makes one unless a test
# wrote its own there first).

KEY_DIRECTIVE = re.compile(r"(?m)^[ \t]*mcp_auth_admin_key_file[ \t]+/etc/nginx/mcp-auth/admin\.key;")
ADMIN_LOCATION = re.compile(r"(?m)^location /_mcp_auth/admin/ \{\n    allow 127\.0\.0\.1;\n"
                            r"    allow ::1;\n    deny all;\n    mcp_auth_endpoint admin;\n\}")
NO_KEY_FILE = [("mcp_auth_admin_key_file", "# mcp_auth_admin_key_file")]


def write_key(workdir, key):
    path = Path(workdir) / "admin.key"
    path.write_text(key + "\n")
    os.chmod(path, 0o600)


def users_file(workdir):
    users = [{"login": u, "password": "pw-%s-%s" % (u, secrets.token_hex(4)), "sub": "user-" + u,
              "name": u.capitalize() + " Example", "email": "%s@example.test" % u,
              "groups": ["editors"], "tid": DEMO_TENANT_ID} for u in USERS]
    path = Path(workdir) / "users.json"
    path.write_text(json.dumps(users))
    return path, {u["login"]: u["password"] for u in users}


@pytest.fixture(scope="module")
def st(tmp_path_factory, built):
    from conftest import Stack
    workdir = tmp_path_factory.mktemp("admin")
    key = secrets.token_urlsafe(36)           # 48 characters
    write_key(workdir, key)
    path, passwords = users_file(workdir)
    # the audit log's lines a tenth of a second late at most; one worker, so
    # that they are in the order of the requests
    stack = Stack(workdir, idp_options={"users_file": str(path)},
                  http_extra="    mcp_auth_stream_check %ds;\n" % STREAM_CHECK,
                  replace=[("flush=1s", "flush=100ms")])
    stack.admin_key = key
    stack.passwords = passwords
    stack.admin = Admin(stack.url, key)
    yield stack
    stack.stop()
    stack.nginx.assert_clean_log()
    # the key is in no log
    for log in workdir.glob("*.log"):
        assert key not in log.read_text(errors="replace"), log


# --- helpers --------------------------------------------------------------------------

class Admin:
    def __init__(self, base, key):
        self.url = base + ADMIN_PATH
        self.key = key

    def request(self, method, path, key=None, headers=None, **params):
        h = {"Authorization": "Bearer " + (key or self.key)}
        if key == "":
            h = {}
        h.update(headers or {})
        return requests.request(method, self.url + path, params=params or None, headers=h,
                                timeout=10, allow_redirects=False)

    def ok(self, method, path, **params):
        r = self.request(method, path, **params)
        assert r.status_code == 200, (method, path, params, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        assert r.headers.get("Cache-Control") == "no-store", r.headers
        return r.json()

    def sessions(self, **params):
        return self.ok("GET", "/sessions", **params)

    def all_sessions(self, **params):
        doc = self.sessions(**params)
        out = list(doc["sessions"])
        while "next_cursor" in doc:
            doc = self.sessions(cursor=doc["next_cursor"], **params)
            out += doc["sessions"]
        return out

    def clients(self):
        out, doc = [], self.ok("GET", "/clients")
        out += doc["clients"]
        while "next_cursor" in doc:
            doc = self.ok("GET", "/clients", cursor=doc["next_cursor"])
            out += doc["clients"]
        return {c["client_id"]: c for c in out}


def api_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Cache-Control") == "no-store", r.headers
    doc = r.json()
    assert doc["error"] == code and isinstance(doc.get("error_description"), str) \
        and doc["error_description"], doc
    return doc


def sign_in(base, user, password, client=None):
    """A fresh registration (unless client is given) with a session of user;
    returns (client, its tokens)."""
    c = client or McpOAuthClient(base, redirect_uri=REDIRECT, client_name="admin test %s" % user)
    c.login(Browser(user, password))
    return c, dict(c.tokens)


def mcp_status(base, token):
    r = requests.post(base + "/mcp", timeout=10, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "pytest", "version": "1"}}},
        headers={"Authorization": "Bearer " + token,
                 "Accept": "application/json, text/event-stream"})
    return r.status_code


def refresh_error(client, tokens):
    r = client.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code in (400, 401), (r.status_code, r.text)
    return r.json()["error"]


def open_streams(base, token_http, token_sse):
    """A Streamable HTTP GET stream with one token, a legacy /mcp/sse stream
    with the other; both open and initialized."""
    s = Streamable(base, token_http).initialize()
    get = GetStream(s)
    assert get.status == 200, get.status
    sse = Sse(base, token_sse, timeout=30)
    assert sse.status == 200
    sse.initialize()
    assert not get.closed.is_set() and not sse.closed.is_set()
    return get, sse


def audit_lines(st):
    path = st.workdir / "audit.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def audit_events(st, event, predicate=lambda e: True, at_least=1, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        found = [e for e in audit_lines(st) if e["event"] == event and predicate(e)]
        if len(found) >= at_least or time.monotonic() > end:
            return found
        time.sleep(0.05)


def no_token_in(doc, tokens):
    text = json.dumps(doc)
    for t in tokens:
        for name in ("access_token", "refresh_token", "id_token"):
            if t.get(name):
                assert t[name] not in text, "a %s in the admin API's answer" % name
    for s in doc.get("sessions", []):
        assert not any("token" in k or "secret" in k for k in s), s


# --- who may ask --------------------------------------------------------------------

def test_no_key_a_wrong_key_and_a_key_of_another_length_get_401(st):
    key = st.admin_key
    for k in ("", key[:-1] + ("A" if key[-1] != "A" else "B"), key[:-1], key + "x", key[:31],
              key * 2, "x"):
        for method, path in (("GET", "/sessions?subject=user-kim"), ("GET", "/clients"),
                             ("DELETE", "/sessions?subject=user-kim"),
                             ("POST", "/clients/disable?client_id=nobody")):
            r = st.admin.request(method, path, key=k)
            doc = api_error(r, 401, "unauthorized")
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="mcp_auth admin"', r.headers
            assert key not in r.text and key not in json.dumps(dict(r.headers))
            del doc
    # the key in another scheme, or in another case, is no key
    for h in ({"Authorization": "Basic " + key}, {"Authorization": "bearer"},
              {"Authorization": "Bearer " + key.swapcase()}):
        r = requests.get(st.admin.url + "/clients", headers=h, timeout=10)
        api_error(r, 401, "unauthorized")
    # each refusal is audited, without the key
    refused = audit_events(st, "admin.refused", at_least=20)
    assert len(refused) >= 20, refused[-3:]
    assert all(e["remote_addr"] == "127.0.0.1" for e in refused)
    # nor any of the wrong ones (each begins with the key's first 31 characters)
    assert key[:31] not in (st.workdir / "audit.log").read_text()
    assert {e.get("reason") for e in refused} >= {"no_key", "wrong_key"}, refused[-3:]


def test_a_request_from_an_address_the_location_does_not_allow_gets_403(st):
    """nginx's allow/deny at the location: only 127.0.0.1 and ::1 -- a
    client on 127.0.0.2 (bound there) is refused even with the right key."""
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10,
                                      source_address=("127.0.0.2", 0))
    try:
        conn.request("GET", ADMIN_PATH + "/clients",
                     headers={"Authorization": "Bearer " + st.admin_key})
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        assert r.status == 403, (r.status, body)
        assert st.admin_key not in body
    finally:
        conn.close()
    # and from 127.0.0.1 the same request is answered
    assert st.admin.request("GET", "/clients").status_code == 200


def test_a_method_the_path_does_not_take_is_405_method_not_allowed_with_allow(st):
    a = st.admin
    for method, path, allowed in (("PUT", "/sessions", {"GET", "DELETE"}),
                                  ("POST", "/sessions", {"GET", "DELETE"}),
                                  ("GET", "/sessions/some-id", {"DELETE"}),
                                  ("DELETE", "/clients", {"GET"}),
                                  ("GET", "/clients/disable", {"POST"}),
                                  ("DELETE", "/clients/enable", {"POST"})):
        r = a.request(method, path, subject="user-kim", client_id="x")
        assert r.status_code == 405, (method, path, r.status_code, r.text)
        assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed, (method, path, r.headers)
        api_error(r, 405, "method_not_allowed")


def test_paths_and_parameters_the_api_does_not_take(st):
    a = st.admin
    api_error(a.request("GET", "/nothing-here"), 404, "not_found")
    # exactly one of subject and client_id
    api_error(a.request("GET", "/sessions"), 400, "invalid_request")
    api_error(a.request("GET", "/sessions", subject="user-kim", client_id="x"), 400, "invalid_request")
    api_error(a.request("DELETE", "/sessions"), 400, "invalid_request")
    api_error(a.request("DELETE", "/sessions", subject="user-kim", client_id="x"), 400, "invalid_request")
    for limit in ("0", "26", "-1", "ten", "1000", ""):
        api_error(a.request("GET", "/sessions", subject="user-kim", limit=limit), 400, "invalid_request")
    api_error(a.request("GET", "/sessions", subject="user-kim", cursor="not a cursor"), 400,
              "invalid_request")
    api_error(a.request("POST", "/clients/disable"), 400, "invalid_request")
    # a subject nobody has: an empty list, no cursor
    assert a.sessions(subject="user-nobody") == {"sessions": []}


def test_nginx_t_refuses_the_admin_endpoint_without_a_key_file_or_with_a_short_key(tmp_path, built):
    from conftest import NginxInstance

    from cluster_util import CLUSTER_EXAMPLE
    # what the examples say
    assert ADMIN_LOCATION.search((ROOT / "mcp_locations").read_text())
    assert KEY_DIRECTIVE.search((ROOT / "nginx.conf.example").read_text())
    assert KEY_DIRECTIVE.search(CLUSTER_EXAMPLE.read_text())

    def check(name, with_key, key_text):
        work = tmp_path / name
        work.mkdir()
        nx = NginxInstance(work, replace=[] if with_key else NO_KEY_FILE)   # writes a key file
        key_file = work / "admin.key"
        if key_text is None:
            if key_file.exists():
                key_file.unlink()
        else:
            key_file.write_text(key_text)
        return nx.test_config()

    good = check("good", True, "k" * 32 + "\n")
    assert good.returncode == 0, good.stderr
    no_file_directive = check("no-directive", False, None)
    assert no_file_directive.returncode != 0
    assert "mcp_auth_admin_key_file" in no_file_directive.stderr, no_file_directive.stderr
    missing = check("missing", True, None)
    assert missing.returncode != 0 and "admin" in missing.stderr, missing.stderr
    for name, text in (("short", "k" * 31 + "\n"), ("empty", ""), ("blank", "\n"),
                       ("spaced", "k" * 16 + " " + "k" * 16 + "\n")):
        r = check(name, True, text)
        assert r.returncode != 0, (name, r.stderr)
        assert "admin" in r.stderr and "k" * 31 not in r.stderr, (name, r.stderr)


# --- the kill switch ------------------------------------------------------------------

def test_ending_a_users_sessions_closes_both_transports_streams_and_refuses_the_tokens(st):
    pw = st.passwords
    c1, t1 = sign_in(st.url, "kim", pw["kim"])
    c2, t2 = sign_in(st.url, "kim", pw["kim"])
    assert c1.client_id != c2.client_id
    other_client, other = sign_in(st.url, "lee", pw["lee"])

    listed = st.admin.sessions(subject="user-kim")
    assert set(listed) == {"sessions"}, listed          # no next_cursor: one page
    sessions = listed["sessions"]
    assert len(sessions) == 2
    for s in sessions:
        assert set(s) == SESSION_FIELDS, s
        assert s["subject"] == "user-kim" and s["email"] == "kim@example.test"
        assert s["name"] == "Kim Example" and s["redirect_uri"] == REDIRECT
        assert s["client_name"] == "admin test kim"
        assert s["scope"] == t1["scope"]
        now = time.time()
        assert now - 120 < s["created"] <= now + 1 < s["expires"]
        assert isinstance(s["log_tag"], str) and s["log_tag"] and s["log_tag"] != s["id"]
    assert {s["client_id"] for s in sessions} == {c1.client_id, c2.client_id}
    no_token_in(listed, [t1, t2, other])
    assert [s["client_id"] for s in st.admin.sessions(client_id=c1.client_id)["sessions"]] \
        == [c1.client_id]

    get, sse = open_streams(st.url, t1["access_token"], t2["access_token"])
    lee_sse = Sse(st.url, other["access_token"], timeout=30)
    try:
        lee_sse.initialize()
        assert not get.closed.wait(0.3)

        t0 = time.monotonic()
        doc = st.admin.ok("DELETE", "/sessions", subject="user-kim")
        assert doc == {"ended": 2, "remaining": 0}, doc
        # the worker that ended them refuses at once
        assert mcp_status(st.url, t1["access_token"]) == 401
        assert mcp_status(st.url, t2["access_token"]) == 401
        assert get.closed.wait(STREAM_CHECK + 2), "the Streamable HTTP stream outlived its session"
        assert sse.closed.wait(max(0.1, t0 + STREAM_CHECK + 2 - time.monotonic())), \
            "the /mcp/sse stream outlived its session"
        took = time.monotonic() - t0
        assert took <= STREAM_CHECK + 2, took
        assert refresh_error(c1, t1) == "invalid_grant"
        assert refresh_error(c2, t2) == "invalid_grant"

        # lee's session, and her stream, go on
        assert not lee_sse.closed.is_set()
        assert mcp_status(st.url, other["access_token"]) == 200
        assert lee_sse.request("ping").get("result") == {}
        assert len(st.admin.sessions(subject="user-lee")["sessions"]) == 1
    finally:
        get.close()
        sse.close()
        lee_sse.close()

    assert st.admin.sessions(subject="user-kim") == {"sessions": []}
    assert st.admin.sessions(client_id=c1.client_id) == {"sessions": []}
    # ending again ends nothing
    assert st.admin.ok("DELETE", "/sessions", subject="user-kim") == {"ended": 0, "remaining": 0}

    tags = {s["log_tag"] for s in sessions}
    ended = audit_events(st, "admin.session_ended", lambda e: e.get("session") in tags, at_least=2)
    assert {e["session"] for e in ended} == tags, ended
    assert all(e["subject"] == "user-kim" for e in ended), ended
    assert {e["client_id"] for e in ended} == {c1.client_id, c2.client_id}
    assert all(e["remote_addr"] == "127.0.0.1" for e in ended)


def test_the_kill_switch_on_node_b_closes_streams_and_refuses_tokens_on_node_a(tmp_path_factory, built):
    """Two edges on one Redis: the sessions end through node B's admin API;
    node A, whose worker has the sessions cached and holds their streams,
    closes the streams within its stream check (read from Redis itself) and
    refuses the tokens within the cache bound."""
    from cluster_util import CLUSTER_EXAMPLE, Cluster
    workdir = tmp_path_factory.mktemp("admin-cluster")
    key = secrets.token_urlsafe(36)
    write_key(workdir, key)                   # Cluster gives it to both nodes
    cluster = Cluster(workdir, cache="%ds" % CACHE, stream_check="%ds" % STREAM_CHECK)
    try:
        a, b = cluster.a, cluster.b
        admin_a, admin_b = Admin(a.url, key), Admin(b.url, key)
        c1, t1 = sign_in(cluster.url, "demo", cluster.demo_password)
        c2, t2 = sign_in(cluster.url, "demo", cluster.demo_password)
        _, alice = sign_in(cluster.url, "alice", cluster.alice_password)
        tokens = (t1["access_token"], t2["access_token"])
        for t in tokens + (alice["access_token"],):
            assert mcp_status(a.url, t) == 200                       # A caches them
            assert all(mcp_status(b.url, t) == 200 for _ in range(4))  # and B's workers
        listed = admin_b.sessions(subject="user-demo")["sessions"]
        assert {s["client_id"] for s in listed} == {c1.client_id, c2.client_id}
        assert admin_a.sessions(subject="user-demo") == admin_b.sessions(subject="user-demo")

        get, sse = open_streams(a.url, *tokens)
        alice_sse = Sse(a.url, alice["access_token"], timeout=30)
        try:
            alice_sse.initialize()
            t0 = time.monotonic()
            assert admin_b.ok("DELETE", "/sessions", subject="user-demo") == {"ended": 2, "remaining": 0}
            assert get.closed.wait(STREAM_CHECK + 2), "node A's Streamable HTTP stream outlived its session"
            assert sse.closed.wait(max(0.1, t0 + STREAM_CHECK + 2 - time.monotonic())), \
                "node A's /mcp/sse stream outlived its session"
            wait_for(lambda: all(mcp_status(a.url, t) == 401 for t in tokens), CACHE + 3)
            wait_for(lambda: all(mcp_status(b.url, t) == 401 for t in tokens for _ in range(4)), CACHE + 3)
            assert time.monotonic() - t0 <= CACHE + 1.5
            assert refresh_error(c1, t1) == "invalid_grant"
            assert refresh_error(c2, t2) == "invalid_grant"
            # alice's session and stream go on
            assert not alice_sse.closed.is_set()
            assert alice_sse.request("ping").get("result") == {}
            assert mcp_status(b.url, alice["access_token"]) == 200
        finally:
            get.close()
            sse.close()
            alice_sse.close()
        assert admin_a.sessions(subject="user-demo") == {"sessions": []}
        assert len(admin_a.sessions(subject="user-alice")["sessions"]) == 1

        # Many sessions over Redis: a request stays within the store
        # operations one request may make; a bulk end says what is left.
        c_alice = None
        for _ in range(19):
            c_alice, _ = sign_in(cluster.url, "alice", cluster.alice_password, client=c_alice)
        assert len(admin_b.sessions(subject="user-alice")["sessions"]) == 20
        assert len(admin_b.sessions(client_id=c_alice.client_id)["sessions"]) == 19
        assert admin_b.ok("DELETE", "/sessions", client_id=c_alice.client_id) == {"ended": 16, "remaining": 3}
        assert admin_a.ok("DELETE", "/sessions", client_id=c_alice.client_id) == {"ended": 3, "remaining": 0}
        assert len(admin_a.sessions(subject="user-alice")["sessions"]) == 1

        # Redis away: 503 temporarily_unavailable with Retry-After, from the
        # API and through the command line (exit 1, the reason said)
        cluster.redis.stop()
        try:
            for method, path, params in (("GET", "/sessions", {"subject": "user-alice"}),
                                         ("DELETE", "/sessions", {"subject": "user-alice"}),
                                         ("POST", "/clients/disable", {"client_id": c1.client_id})):
                r = admin_b.request(method, path, **params)
                api_error(r, 503, "temporarily_unavailable")
                assert int(r.headers["Retry-After"]) > 0, r.headers
            r = subprocess.run([str(CLI), "--url", admin_a.url, "end-sessions", "--subject", "user-alice"],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, MCP_AUTH_ADMIN_KEY=key))
            assert r.returncode == 1 and "temporarily_unavailable (HTTP 503)" in r.stderr, r.stderr
            assert "retry after" in r.stderr and key not in r.stdout + r.stderr
        finally:
            cluster.redis.start()
        # each worker reconnects when it next needs Redis: ask until one answers
        # with the session that outlived the restart
        def alice_sessions():
            r = admin_b.request("GET", "/sessions", subject="user-alice")
            return len(r.json()["sessions"]) if r.status_code == 200 else -1
        wait_for(lambda: alice_sessions() == 1, 10)
    finally:
        cluster.stop()
    for nx in cluster.nodes:
        nx.assert_clean_log()
        for log in nx.workdir.glob("*.log"):
            assert key not in log.read_text(errors="replace"), log


def test_end_one_session_by_its_id_and_404_for_an_unknown_one(st):
    pw = st.passwords
    c, first = sign_in(st.url, "ned", pw["ned"])
    _, second = sign_in(st.url, "ned", pw["ned"], client=c)
    sessions = st.admin.sessions(subject="user-ned")["sessions"]
    assert len(sessions) == 2 and {s["client_id"] for s in sessions} == {c.client_id}
    # which one is the first login's: end it, the other goes on
    sse = Sse(st.url, first["access_token"], timeout=30)
    try:
        sse.initialize()
        victim = sessions[0]
        doc = st.admin.ok("DELETE", "/sessions/" + victim["id"])
        assert doc == {"ended": 1, "remaining": 0}, doc
        ended_first = mcp_status(st.url, first["access_token"]) == 401
        ended_second = mcp_status(st.url, second["access_token"]) == 401
        assert ended_first != ended_second, "one session, and only one, ended"
        survivor, gone = (second, first) if ended_first else (first, second)
        assert mcp_status(st.url, survivor["access_token"]) == 200
        assert refresh_error(c, gone) == "invalid_grant"
        if ended_first:
            assert sse.closed.wait(STREAM_CHECK + 2), "the stream outlived its session"
        else:
            assert not sse.closed.wait(STREAM_CHECK + 1)
    finally:
        sse.close()
    left = st.admin.sessions(subject="user-ned")["sessions"]
    assert [s["id"] for s in left] == [s["id"] for s in sessions if s["id"] != victim["id"]]
    # again, and an id that never was
    api_error(st.admin.request("DELETE", "/sessions/" + victim["id"]), 404, "not_found")
    api_error(st.admin.request("DELETE", "/sessions/" + "A" * 43), 404, "not_found")
    api_error(st.admin.request("DELETE", "/sessions/no-such-session"), 404, "not_found")
    line = audit_events(st, "admin.session_ended", lambda e: e.get("session") == victim["log_tag"])
    assert line and line[0]["subject"] == "user-ned", line


def test_disabling_a_client_ends_its_sessions_and_refuses_sign_ins_until_enabled(st):
    pw = st.passwords
    x, ola = sign_in(st.url, "ola", pw["ola"])
    _, pat = sign_in(st.url, "pat", pw["pat"], client=x)
    y, ola_y = sign_in(st.url, "ola", pw["ola"])             # another client of hers
    assert len(st.admin.sessions(client_id=x.client_id)["sessions"]) == 2
    clients = st.admin.clients()
    assert clients[x.client_id]["disabled"] is False
    assert clients[x.client_id]["client_name"] == "admin test ola"
    assert clients[x.client_id]["redirect_uris"] == [REDIRECT]

    get, sse = open_streams(st.url, ola["access_token"], pat["access_token"])
    try:
        t0 = time.monotonic()
        doc = st.admin.ok("POST", "/clients/disable", client_id=x.client_id)
        assert doc == {"client_id": x.client_id, "disabled": True, "sessions_ended": 2,
                       "sessions_remaining": 0}, doc
        assert get.closed.wait(STREAM_CHECK + 2) and sse.closed.wait(
            max(0.1, t0 + STREAM_CHECK + 2 - time.monotonic())), "a stream outlived its client"
    finally:
        get.close()
        sse.close()
    assert mcp_status(st.url, ola["access_token"]) == 401
    assert mcp_status(st.url, pat["access_token"]) == 401
    assert refresh_error(x, ola) in ("invalid_grant", "invalid_client")
    # her session through the other client goes on
    assert mcp_status(st.url, ola_y["access_token"]) == 200
    assert st.admin.sessions(client_id=x.client_id) == {"sessions": []}
    assert [s["client_id"] for s in st.admin.sessions(subject="user-ola")["sessions"]] == [y.client_id]

    # no new sign-in through it: its registration is gone
    b = Browser("ola", pw["ola"])
    page = b.get(x.authorize_url())
    assert page.status_code == 400, (page.status_code, page.text[:500])
    # (a registered client's id is unknown now; a client metadata document's
    # would be told it is disabled)
    assert "not registered" in page.text, page.text[:1000]
    assert "Location" not in page.headers
    listed = st.admin.clients()[x.client_id]
    assert listed["disabled"] is True and listed["registered"] is False, listed
    # disabling twice is still disabled, with nothing left to end
    assert st.admin.ok("POST", "/clients/disable", client_id=x.client_id) == \
        {"client_id": x.client_id, "disabled": True, "sessions_ended": 0, "sessions_remaining": 0}

    doc = st.admin.ok("POST", "/clients/enable", client_id=x.client_id)
    assert doc == {"client_id": x.client_id, "disabled": False}, doc
    assert st.admin.clients()[x.client_id]["disabled"] is False
    # the user signs in again (a registered client registers anew)
    again, fresh = sign_in(st.url, "ola", pw["ola"])
    assert mcp_status(st.url, fresh["access_token"]) == 200

    disabled = audit_events(st, "admin.client_disabled", lambda e: e.get("client_id") == x.client_id)
    enabled = audit_events(st, "admin.client_enabled", lambda e: e.get("client_id") == x.client_id)
    assert disabled and enabled
    ended = audit_events(st, "admin.session_ended", lambda e: e.get("client_id") == x.client_id,
                         at_least=2)
    assert {e["subject"] for e in ended} == {"user-ola", "user-pat"}, ended


def test_paging_walks_every_session_and_client_exactly_once(st):
    pw = st.passwords
    c = None
    for _ in range(7):
        c, _tokens = sign_in(st.url, "max", pw["max"], client=c)
    whole = st.admin.sessions(subject="user-max")
    assert len(whole["sessions"]) == 7 and "next_cursor" not in whole
    for limit, pages in ((3, [3, 3, 1]), (1, [1] * 7), (7, [7]), (6, [6, 1])):
        doc, seen, sizes = st.admin.sessions(subject="user-max", limit=str(limit)), [], []
        while True:
            sizes.append(len(doc["sessions"]))
            seen += [s["id"] for s in doc["sessions"]]
            if "next_cursor" not in doc:
                break
            assert isinstance(doc["next_cursor"], str) and doc["next_cursor"]
            doc = st.admin.sessions(subject="user-max", limit=str(limit), cursor=doc["next_cursor"])
        assert sizes == pages, (limit, sizes)
        assert sorted(seen) == sorted(s["id"] for s in whole["sessions"]), limit
        assert len(set(seen)) == 7
    # by client, too
    by_client = st.admin.all_sessions(client_id=c.client_id, limit="2")
    assert sorted(s["id"] for s in by_client) == sorted(s["id"] for s in whole["sessions"])
    # the clients, one a page
    everything = st.admin.clients()
    doc, seen = st.admin.ok("GET", "/clients", limit="1"), []
    while True:
        assert len(doc["clients"]) <= 1
        seen += [x["client_id"] for x in doc["clients"]]
        if "next_cursor" not in doc:
            break
        doc = st.admin.ok("GET", "/clients", limit="1", cursor=doc["next_cursor"])
    assert sorted(seen) == sorted(everything) and len(set(seen)) == len(seen) >= 2
    assert c.client_id in seen


def test_a_session_ended_between_pages_costs_no_other_session_its_place(st):
    """An operator pages through a user's sessions and ends one of the first
    page before asking for the next: every other session is still shown."""
    pw = st.passwords
    c = None
    for _ in range(4):
        c, _tokens = sign_in(st.url, "ned", pw["ned"], client=c)
    before = [s["id"] for s in st.admin.all_sessions(subject="user-ned")]
    first = st.admin.sessions(subject="user-ned", limit="2")
    assert "next_cursor" in first
    assert st.admin.ok("DELETE", "/sessions/" + first["sessions"][0]["id"]) == {"ended": 1, "remaining": 0}
    seen = [s["id"] for s in first["sessions"]]
    doc = first
    while "next_cursor" in doc:
        doc = st.admin.sessions(subject="user-ned", limit="2", cursor=doc["next_cursor"])
        seen += [s["id"] for s in doc["sessions"]]
    assert set(before) <= set(seen), sorted(set(before) - set(seen))


# --- the command line ------------------------------------------------------------------

def cli(st, *args, key="env", url=None):
    env = dict(os.environ)
    env.pop("MCP_AUTH_ADMIN_KEY", None)
    env.pop("MCP_AUTH_ADMIN_URL", None)
    if key == "env":
        env["MCP_AUTH_ADMIN_KEY"] = st.admin_key
    elif key is not None:
        env["MCP_AUTH_ADMIN_KEY"] = key
    argv = [str(CLI), "--url", url or st.admin.url] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    assert st.admin_key not in r.stdout + r.stderr, "the CLI printed the key"
    return r


def test_the_command_line_lists_ends_disables_and_enables(st, tmp_path):
    pw = st.passwords
    c1, t1 = sign_in(st.url, "ron", pw["ron"])
    c2, t2 = sign_in(st.url, "ron", pw["ron"])

    r = cli(st, "--help", key=None)
    assert r.returncode == 0 and "end-sessions" in r.stdout and "MCP_AUTH_ADMIN_KEY" in r.stdout

    r = cli(st, "sessions", "--subject", "user-ron")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "SUBJECT"] and len(lines) == 3, r.stdout
    ids = {s["id"] for s in st.admin.sessions(subject="user-ron")["sessions"]}
    assert {line.split()[0] for line in lines[1:]} == ids
    assert c1.client_id in r.stdout and c2.client_id in r.stdout and "ron@example.test" in r.stdout

    # --json, every page (one session a page), the key from a file
    key_file = tmp_path / "admin.key"
    key_file.write_text(st.admin_key + "\n")
    r = cli(st, "--key-file", str(key_file), "sessions", "--subject", "user-ron", "--all",
            "--limit", "1", "--json", key=None)
    assert r.returncode == 0, r.stderr
    assert sorted(s["id"] for s in json.loads(r.stdout)["sessions"]) == sorted(ids)
    # one page of one: the rest is announced on stderr
    r = cli(st, "sessions", "--client-id", c1.client_id, "--limit", "1", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["sessions"]) == 1, r.stderr

    r = cli(st, "end-sessions", "--subject", "user-ron")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ended 2 sessions of subject user-ron", r.stdout
    assert mcp_status(st.url, t1["access_token"]) == 401
    assert mcp_status(st.url, t2["access_token"]) == 401

    r = cli(st, "end-session", "no-such-session")
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stdout)
    assert r.stderr.startswith("mcp-auth-admin: not_found (HTTP 404)"), r.stderr
    # ids are base64url and one in 32 begins with '-': still an id, not an option
    r = cli(st, "end-session", "-" + "A" * 42, "--json")
    assert r.returncode == 1 and r.stderr.startswith("mcp-auth-admin: not_found (HTTP 404)"), r.stderr
    r = cli(st, "sessions", "--client-id", "-" + "B" * 21)
    assert r.returncode == 0 and r.stdout == "no sessions\n", r.stderr
    r = cli(st, "sessions", "--json", "--subject", "-user")
    assert r.returncode == 0 and json.loads(r.stdout) == {"sessions": []}, r.stderr

    # more sessions than one request ends: the command asks until none is left
    c4 = None
    for _ in range(18):
        c4, _ = sign_in(st.url, "ron", pw["ron"], client=c4)
    r = cli(st, "end-sessions", "--subject", "user-ron")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ended 18 sessions of subject user-ron", r.stdout
    assert st.admin.sessions(subject="user-ron") == {"sessions": []}

    c3, t3 = sign_in(st.url, "ron", pw["ron"])
    r = cli(st, "disable-client", c3.client_id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "client %s disabled; ended 1 session" % c3.client_id
    assert mcp_status(st.url, t3["access_token"]) == 401
    r = cli(st, "clients", "--json")
    assert r.returncode == 0
    listed = {x["client_id"]: x for x in json.loads(r.stdout)["clients"]}
    assert listed[c3.client_id]["disabled"] is True
    r = cli(st, "clients")
    assert r.returncode == 0 and r.stdout.startswith("CLIENT_ID")
    row = [line for line in r.stdout.splitlines() if line.startswith(c3.client_id)]
    assert row and " yes " in row[0], r.stdout
    r = cli(st, "enable-client", c3.client_id, "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"client_id": c3.client_id, "disabled": False}
    r = cli(st, "enable-client", c3.client_id)
    assert r.returncode == 0 and r.stdout.strip() == "client %s enabled" % c3.client_id

    # refusals and usage
    r = cli(st, "clients", key="not-the-key-" + "x" * 30)
    assert r.returncode == 1 and "unauthorized (HTTP 401)" in r.stderr, r.stderr
    r = cli(st, "clients", key=None)
    assert r.returncode == 2 and "MCP_AUTH_ADMIN_KEY" in r.stderr, r.stderr
    r = cli(st, "--key-file", str(tmp_path / "missing"), "clients", key=None)
    assert r.returncode == 2 and "key file" in r.stderr, r.stderr
    r = cli(st, "sessions")                     # neither --subject nor --client-id
    assert r.returncode == 2
    r = cli(st, "sessions", "--subject", "a", "--client-id", "b")
    assert r.returncode == 2
    r = cli(st, "frobnicate")
    assert r.returncode == 2
    r = cli(st, "sessions", "--subject", "a", "--limit", "0")
    assert r.returncode == 2
    # nothing listens there: an error, not a traceback
    r = cli(st, "clients", url="http://127.0.0.1:9" + ADMIN_PATH)
    assert r.returncode == 1 and "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_a_new_key_takes_over_at_reload(st):
    """Rotation: the key file is read when nginx (re)loads its configuration."""
    old_key, new_key = st.admin_key, secrets.token_urlsafe(40)
    write_key(st.workdir, new_key)
    try:
        st.nginx.reload()
        wait_for(lambda: st.admin.request("GET", "/clients", key=new_key).status_code == 200, 10)
        wait_for(lambda: st.admin.request("GET", "/clients", key=old_key).status_code == 401, 10)
    finally:
        write_key(st.workdir, old_key)
        st.nginx.reload()
        wait_for(lambda: st.admin.request("GET", "/clients", key=old_key).status_code == 200, 10)
    for log in st.workdir.glob("*.log"):
        assert new_key not in log.read_text(errors="replace"), log
