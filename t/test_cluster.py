"""Scale-out: two nginx edges and two tool servers sharing one Redis
(nginx-cluster.conf.example).  A login on one edge works on the other, a
revocation on one holds on both within the documented bound, a code is
redeemed once across edges, a refresh token rotates once, and a Redis outage
gives 503s and heals by itself without losing what was acknowledged."""

import re
import threading
import time

import pytest
import requests

from cluster_util import Cluster
from harness import wait_for
from mcp_gateway import REDIRECT, Sse, Streamable, text_of
from oauth_client import Browser, McpOAuthClient

CACHE = 2      # seconds a worker trusts a session it read (cache=)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, built):
    # node B runs two workers: each has its own connection and cache
    c = Cluster(tmp_path_factory.mktemp("cluster"), cache="%ds" % CACHE, stream_check="1s")
    yield c
    c.stop()
    for nx in c.nodes:
        nx.assert_clean_log()


def login(cluster, user="demo", scope=None):
    c = McpOAuthClient(cluster.url, redirect_uri=REDIRECT, scope=scope)
    c.login(Browser(user, cluster.demo_password if user == "demo" else cluster.alice_password))
    return c



def mcp_status(node, token):
    r = requests.post(node.url + "/mcp", timeout=10, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "pytest", "version": "1"}}},
        headers={"Authorization": "Bearer " + token,
                 "Accept": "application/json, text/event-stream"})
    return r.status_code


INDEX_KEYS = (b"mcp_auth:unauthenticated:order", b"mcp_auth:unauthenticated:expiry",
              b"mcp_auth:unauthenticated:sizes")


def test_the_state_lives_in_redis_not_in_nginx(cluster):
    c = login(cluster)
    keys = cluster.redis.command("KEYS", "mcp_auth:*")
    assert any(k.startswith(b"mcp_auth:session:") for k in keys), keys
    assert any(k == b"mcp_auth:client:" + c.client_id.encode() for k in keys), keys
    # every key carries an expiry, none lives forever; registrations and
    # sessions live exactly their configured lifetimes (90 d and 30 d)
    for k in keys:
        assert cluster.redis.command("TTL", k) > 0, k
    client_ttl = cluster.redis.command("TTL", b"mcp_auth:client:" + c.client_id.encode())
    assert 90 * 86400 - 60 <= client_ttl <= 90 * 86400, client_ttl
    session_ttls = [cluster.redis.command("TTL", k) for k in keys if k.startswith(b"mcp_auth:session:")]
    assert any(30 * 86400 - 60 <= t <= 30 * 86400 for t in session_ttls), session_ttls
    # and every value is sealed (AES-256-GCM, bound to its key): nothing of
    # the user, the client or the provider's tokens is readable in Redis
    for k in keys:
        if k in INDEX_KEYS:
            continue
        value = cluster.redis.command("GET", k)
        assert re.fullmatch(rb"k1\.[A-Za-z0-9_-]+", value), (k, value[:80])
    # but for the index of the budget of unauthenticated entries (the
    # registration was one until the login): key names and byte counts
    order, expiry, sizes = INDEX_KEYS
    assert set(keys) & set(INDEX_KEYS) == set(INDEX_KEYS), keys
    assert cluster.redis.command("TYPE", order) == "zset"
    assert cluster.redis.command("TYPE", expiry) == "zset"
    assert cluster.redis.command("TYPE", sizes) == "hash"
    members = cluster.redis.command("ZRANGE", order, 0, -1)
    assert cluster.redis.command("ZRANGE", expiry, 0, -1) == members
    assert b"mcp_auth:newclient:" + c.client_id.encode() in members
    assert all(re.fullmatch(rb"mcp_auth:(newclient|cimd):.+", m) for m in members), members
    fields = cluster.redis.command("HGETALL", sizes)
    for name, value in zip(fields[::2], fields[1::2]):
        assert name in members or name in (b"total", b"evicted"), name
        assert value.isdigit(), (name, value)


def test_a_session_altered_in_redis_is_no_session(cluster):
    before = set(cluster.redis.command("KEYS", "mcp_auth:session:*"))
    c = login(cluster)
    token = c.tokens["access_token"]
    (key,) = set(cluster.redis.command("KEYS", "mcp_auth:session:*")) - before
    assert mcp_status(cluster.a, token) == 200

    # someone with write access to Redis flips one character of the record
    value = cluster.redis.command("GET", key)
    flipped = value[:-2] + (b"A" if value[-2:-1] != b"A" else b"B") + value[-1:]
    assert cluster.redis.command("SET", key, flipped, "KEEPTTL") == "OK"
    time.sleep(CACHE + 1)
    assert mcp_status(cluster.a, token) == 401
    assert mcp_status(cluster.b, token) == 401


def test_a_login_on_node_a_calls_tools_through_node_b_on_both_transports(cluster):
    c = login(cluster)
    token = c.tokens["access_token"]

    s = Streamable(cluster.b.url, token).initialize()
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    assert "saved successfully" in text_of(
        s.call("save_snippet", snippetname="across", snippet="saved through B"))

    # the same session, the other edge: the same tool server (affinity)
    s2 = Streamable(cluster.a.url, token)
    s2.session_id = s.session_id
    assert text_of(s2.call("get_snippet", snippetname="across")) == "saved through B"

    sse = Sse(cluster.b.url, token)
    try:
        assert sse.status == 200
        sse.initialize()
        assert text_of(sse.request("tools/call", {"name": "get_snippet",
                                                  "arguments": {"snippetname": "across"}})) \
            == "saved through B"
    finally:
        sse.close()


def test_a_snippet_saved_through_one_tool_server_is_read_through_the_other(cluster):
    c = login(cluster)
    token = c.tokens["access_token"]
    s = Streamable(cluster.a.url, token).initialize()
    s.call("save_snippet", snippetname="shared", snippet="from one tool server")

    # which tool server holds this client's MCP session
    logs = [p.log_path.read_text(errors="replace") for p, _ in cluster.tools]
    holders = [i for i, log in enumerate(logs) if "shared" in log]
    assert len(holders) == 1, holders
    holder = holders[0]
    proc, port = cluster.tools[holder]
    proc.stop()
    try:
        # nginx moves the client to the other tool server; a new MCP session
        # there reads what the first one saved
        def read():
            try:
                s2 = Streamable(cluster.b.url, token).initialize()
                return text_of(s2.call("get_snippet", snippetname="shared")) \
                    == "from one tool server"
            except AssertionError:
                return False
        wait_for(read, 10, 0.3)
    finally:
        cluster.tools[holder] = cluster._tool_server(holder, port)


def test_a_revocation_on_b_holds_on_a_within_the_cache_bound(cluster):
    c = login(cluster)
    token = c.tokens["access_token"]
    assert mcp_status(cluster.a, token) == 200      # A has read (and cached) it
    for _ in range(4):
        assert mcp_status(cluster.b, token) == 200  # and B's workers

    r = requests.post(cluster.b.url + "/revoke", timeout=10, data={   # B's own /revoke
        "token": c.tokens["refresh_token"], "client_id": c.client_id})
    assert r.status_code == 200, r.text
    revoked = time.monotonic()

    # Nobody tells A, nor B's other worker; their cached copies last at most
    # CACHE + 1 s
    wait_for(lambda: mcp_status(cluster.a, token) == 401, CACHE + 3)
    wait_for(lambda: all(mcp_status(cluster.b, token) == 401 for _ in range(4)), CACHE + 3)
    assert time.monotonic() - revoked <= CACHE + 1.5


def test_the_worker_that_revokes_refuses_at_once(cluster):
    c = login(cluster)
    token = c.tokens["access_token"]
    assert mcp_status(cluster.a, token) == 200      # A's only worker caches it
    r = requests.post(cluster.a.url + "/revoke", timeout=10, data={
        "token": token, "client_id": c.client_id})
    assert r.status_code == 200, r.text
    assert mcp_status(cluster.a, token) == 401


def test_an_authorization_code_presented_on_both_nodes_at_once_buys_nothing(cluster):
    c = McpOAuthClient(cluster.url, redirect_uri=REDIRECT)
    c.register()
    redirect = Browser("demo", cluster.demo_password).authorize(c.authorize_url(), REDIRECT)
    code = re.search(r"[?&]code=([^&]+)", redirect).group(1)

    def redeem(node):
        return requests.post(node.url + "/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": c.verifier, "client_id": c.client_id})

    # both edges at the same moment: the code is taken once (GETDEL), and
    # a code presented twice is treated as stolen (RFC 9700 §4.5.3.2): the
    # session it created ends, whichever edge got there first
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, redeem(getattr(cluster, n))))
               for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results.values())
    assert statuses in ([200, 400], [400, 400]), {n: (r.status_code, r.text) for n, r in results.items()}
    for r in results.values():
        if r.status_code == 400:
            assert r.json()["error"] == "invalid_grant"
    for r in results.values():
        if r.status_code == 200:
            wait_for(lambda: mcp_status(cluster.b, r.json()["access_token"]) == 401, CACHE + 3)
            wait_for(lambda: mcp_status(cluster.a, r.json()["access_token"]) == 401, CACHE + 3)

    # and a replay later, on either edge, fails too
    assert redeem(cluster.a).status_code == 400
    assert redeem(cluster.b).status_code == 400


def test_a_code_redeemed_on_one_edge_and_replayed_on_the_other_ends_the_session(cluster):
    c = McpOAuthClient(cluster.url, redirect_uri=REDIRECT)
    c.register()
    redirect = Browser("demo", cluster.demo_password).authorize(c.authorize_url(), REDIRECT)
    code = re.search(r"[?&]code=([^&]+)", redirect).group(1)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": c.verifier, "client_id": c.client_id}
    first = requests.post(cluster.b.url + "/token", timeout=10, data=form)
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    assert mcp_status(cluster.a, token) == 200
    replay = requests.post(cluster.a.url + "/token", timeout=10, data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    # the tokens the code bought are dead on both edges (A at once: it
    # ended the session itself)
    assert mcp_status(cluster.a, token) == 401
    wait_for(lambda: mcp_status(cluster.b, token) == 401, CACHE + 3)


def test_a_refresh_token_rotates_once_when_both_nodes_use_it_at_once(cluster):
    c = login(cluster)
    first = c.tokens["refresh_token"]

    def refresh(node):
        return requests.post(node.url + "/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": first, "client_id": c.client_id})

    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(refresh(n)))
               for n in (cluster.a, cluster.b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One rotation wins; the others, within the grace period, get the very
    # pair it returned (the same strings, on either node) instead of
    # revoking a legitimate client or minting more pairs.
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in results}
    assert len(pairs) == 1, pairs

    # Reuse of a token two rotations old is theft: the session ends on every node.
    second = results[0].json()["refresh_token"]
    r = requests.post(cluster.b.url + "/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": second, "client_id": c.client_id})
    assert r.status_code == 200, r.text
    latest = r.json()
    r = requests.post(cluster.a.url + "/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": first, "client_id": c.client_id})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = requests.post(cluster.b.url + "/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": latest["refresh_token"],
        "client_id": c.client_id})
    assert r.status_code == 400, r.text


def metrics_text(node):
    r = requests.get(node.url + "/_mcp_auth/metrics", timeout=5)
    assert r.status_code == 200
    return r.text


def counter(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError("no %s in the metrics" % series)


def test_redis_stopped_mid_run_gives_503_and_service_resumes_with_nothing_lost(cluster):
    c = login(cluster)
    token = c.tokens["access_token"]
    assert mcp_status(cluster.a, token) == 200
    errors = counter(metrics_text(cluster.b), 'mcp_auth_store_errors_total{error="unavailable"}')

    cluster.redis.stop()
    try:
        # what needs Redis gets a clear, retryable error
        r = requests.post(cluster.b.url + "/register", timeout=10, json={
            "client_name": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After")
        assert r.json()["error"] == "temporarily_unavailable"

        r = requests.post(cluster.b.url + "/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": c.tokens["refresh_token"],
            "client_id": c.client_id})
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After")

        # a guarded request whose session this edge has not cached: 503, not 401
        time.sleep(CACHE + 1)
        r = requests.post(cluster.b.url + "/mcp", timeout=10, json={"jsonrpc": "2.0", "id": 1,
                                                                    "method": "ping"},
                          headers={"Authorization": "Bearer " + token,
                                   "Accept": "application/json, text/event-stream"})
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers.get("Retry-After")

        # the operator sees it: Redis down, and the store errors counted
        during = metrics_text(cluster.b)
        assert "\nmcp_auth_redis_up 0\n" in during
        assert counter(during, 'mcp_auth_store_errors_total{error="unavailable"}') - errors >= 3
        assert "mcp_auth_sessions" not in during     # Redis's to count
        assert counter(during, 'mcp_auth_unavailable_total{endpoint="register"}') >= 1
        assert counter(during, 'mcp_auth_unavailable_total{endpoint="mcp"}') >= 1
    finally:
        cluster.redis.start()

    # back by itself: the session acknowledged before the outage is still
    # there, and new logins work
    wait_for(lambda: mcp_status(cluster.b, token) == 200, 10, 0.3)
    assert "\nmcp_auth_redis_up 1\n" in metrics_text(cluster.b)
    r = c.refresh()
    assert r.status_code == 200, r.text
    login(cluster)


def test_the_status_endpoint_reports_the_redis_connection(cluster):
    r = requests.get(cluster.a.url + "/_mcp_auth/status", timeout=5)
    assert r.status_code == 200
    doc = r.json()
    assert doc["store"] == "redis"
    assert doc["connected"] is True
    assert doc["unauthenticated_budget"] == 64 * 1024 * 1024


def test_a_stalled_redis_times_out_and_clients_that_leave_meanwhile_harm_nothing(cluster):
    import signal
    c = login(cluster)
    pid = cluster.redis.proc.popen.pid
    os_kill = __import__("os").kill
    os_kill(pid, signal.SIGSTOP)
    try:
        # clients that give up while their requests wait for Redis
        gave_up = []

        def leave():
            try:
                requests.post(cluster.a.url + "/register", timeout=0.2, json={
                    "client_name": "x", "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none"})
            except requests.exceptions.Timeout:
                gave_up.append(1)
        leaving = [threading.Thread(target=leave) for _ in range(5)]
        for t in leaving:
            t.start()
        for t in leaving:
            t.join()
        assert len(gave_up) == 5
        # one that waits gets the 503 once the timeout (1 s) passes, even
        # while new requests keep arriving (they must not push the deadline)
        stop = threading.Event()

        def steady():
            while not stop.is_set():
                try:
                    requests.get(cluster.a.url + "/.well-known/oauth-authorization-server",
                                 timeout=5)
                    requests.post(cluster.a.url + "/register", timeout=0.1, json={
                        "client_name": "x", "redirect_uris": [REDIRECT],
                        "token_endpoint_auth_method": "none"})
                except requests.exceptions.RequestException:
                    pass
        load = threading.Thread(target=steady)
        load.start()
        try:
            started = time.monotonic()
            r = requests.post(cluster.a.url + "/token", timeout=10, data={
                "grant_type": "refresh_token", "refresh_token": c.tokens["refresh_token"],
                "client_id": c.client_id})
            waited = time.monotonic() - started
        finally:
            stop.set()
            load.join()
        assert r.status_code == 503, r.text
        assert waited < 2.5, waited
    finally:
        os_kill(pid, signal.SIGCONT)
    wait_for(lambda: c.refresh().status_code == 200, 10, 0.3)


def test_an_open_stream_on_a_closes_when_its_session_is_revoked_on_b(cluster):
    c = login(cluster)
    sse = Sse(cluster.a.url, c.tokens["access_token"], timeout=30)
    try:
        assert sse.status == 200
        sse.initialize()
        r = requests.post(cluster.b.url + "/revoke", timeout=10, data={
            "token": c.tokens["refresh_token"], "client_id": c.client_id})
        assert r.status_code == 200
        # checked against Redis itself every second (mcp_auth_stream_check 1s)
        assert sse.closed.wait(5), "the stream outlived its session"
    finally:
        sse.close()


def test_a_stream_stays_open_while_redis_is_away(cluster):
    c = login(cluster)
    sse = Sse(cluster.a.url, c.tokens["access_token"], timeout=30)
    try:
        sse.initialize()
        cluster.redis.stop()
        try:
            # Redis being away is no proof that the session ended
            assert not sse.closed.wait(3)
        finally:
            cluster.redis.start()
        assert not sse.closed.wait(1.5)
        reply = sse.request("ping")
        assert reply.get("result") == {}, reply
    finally:
        sse.close()


def _keys_in_db(redis, db, pattern):
    import socket
    from redis_util import _encode, _read
    with socket.create_connection((redis.host, redis.port), timeout=5) as s:
        f = s.makefile("rb")
        for cmd in (["AUTH", redis.password], ["SELECT", db]):
            s.sendall(_encode(cmd))
            _read(f)
        s.sendall(_encode(["KEYS", pattern]))
        return _read(f)


def test_an_acl_user_a_database_and_a_prefix_and_a_wrong_password(nginx_factory, tmp_path):
    from cluster_util import CLUSTER_EXAMPLE
    from redis_util import RedisServer

    redis = RedisServer(tmp_path / "redis", password="admin-pw-1").start()
    try:
        redis.command("ACL", "SETUSER", "gateway", "on", ">gw-secret-9", "~gw1:*", "+@all")
        (tmp_path / "good").write_text("gw-secret-9\n")
        (tmp_path / "bad").write_text("not-the-password-7\n")

        def node(name, password_file):
            return nginx_factory(name, example=CLUSTER_EXAMPLE, replace=[(
                "127.0.0.1:6379 prefix=mcp_auth: cache=5s",
                "127.0.0.1:%d db=3 prefix=gw1: user=gateway password_file=%s"
                % (redis.port, tmp_path / password_file))]).start()

        def register(nx):
            return requests.post(nx.url + "/register", timeout=10, json={
                "client_name": "x", "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none"})

        good = node("good", "good")
        r = register(good)
        assert r.status_code == 201, r.text
        keys = _keys_in_db(redis, 3, "*")
        # the registration, and the index of unauthenticated entries, all
        # under the prefix, in the database
        assert sorted(keys) == [b"gw1:newclient:" + r.json()["client_id"].encode(),
                                b"gw1:unauthenticated:expiry", b"gw1:unauthenticated:order",
                                b"gw1:unauthenticated:sizes"], keys
        assert _keys_in_db(redis, 0, "*") == []

        bad = node("bad", "bad")
        r = register(bad)
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After")
        log = bad.error_log()
        assert "refused the handshake" in log
        assert "not-the-password-7" not in log and "gw-secret-9" not in log
    finally:
        redis.stop()


def test_nginx_t_names_redis_configuration_mistakes(nginx_factory, tmp_path):
    from cluster_util import CLUSTER_EXAMPLE
    cases = [
        ("127.0.0.1:6379 prefix=mcp_auth: cache=5s", "127.0.0.1:6379 colour=blue",
         'invalid mcp_auth_redis parameter "colour=blue"'),
        ("127.0.0.1:6379 prefix=mcp_auth: cache=5s", "127.0.0.1:6379 user=u",
         '"user=" needs "password_file="'),
        ("127.0.0.1:6379 prefix=mcp_auth: cache=5s",
         "127.0.0.1:6379;\n    mcp_auth_zone z:1m",
         '"mcp_auth_zone" and "mcp_auth_redis" both apply here'),
        ("127.0.0.1:6379 prefix=mcp_auth: cache=5s", "127.0.0.1:6379 unauthenticated=0",
         'invalid mcp_auth_redis parameter "unauthenticated=0"'),
        ("127.0.0.1:6379 prefix=mcp_auth: cache=5s", "127.0.0.1:6379 unauthenticated=lots",
         'invalid mcp_auth_redis parameter "unauthenticated=lots"'),
    ]
    for old, new, message in cases:
        nx = nginx_factory("conf", example=CLUSTER_EXAMPLE, replace=[(old, new)])
        r = nx.test_config()
        assert r.returncode != 0
        assert message in r.stderr, r.stderr


def _tls_material(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    import subprocess

    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d)

    for name in ("ca", "other-ca"):
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=test %s" % name,
            "-keyout", "%s.key" % name, "-out", "%s.crt" % name)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=%s" % name, "-keyout", "%s.key" % name, "-out", "%s.csr" % name)
        (d / ("%s.ext" % name)).write_text(ext + "\n")
        run("openssl", "x509", "-req", "-in", "%s.csr" % name, "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "%s.ext" % name, "-out", "%s.crt" % name)


def test_tls_to_redis_verifies_the_server_and_presents_a_client_certificate(nginx_factory, tmp_path):
    from cluster_util import CLUSTER_EXAMPLE
    from harness import Proc, free_port

    _tls_material(tmp_path)
    port = free_port()
    conf = tmp_path / "redis-tls.conf"
    conf.write_text("\n".join([
        "bind 127.0.0.1", "port 0", "tls-port %d" % port, 'dir "%s"' % tmp_path,
        "tls-cert-file %s/server.crt" % tmp_path, "tls-key-file %s/server.key" % tmp_path,
        "tls-ca-cert-file %s/ca.crt" % tmp_path, "tls-auth-clients yes",
        "appendonly yes", "appendfsync always", 'save ""', 'logfile ""']) + "\n")
    redis = Proc("redis-tls", ["/usr/bin/redis-server", conf], tmp_path,
                 ready_line=r"Ready to accept connections", port=port).start()
    try:
        def node(name, ca, extra=""):
            return nginx_factory(name, example=CLUSTER_EXAMPLE, replace=[(
                "127.0.0.1:6379 prefix=mcp_auth: cache=5s",
                "127.0.0.1:%d tls tls_ca=%s/%s tls_certificate=%s/client.crt "
                "tls_certificate_key=%s/client.key%s"
                % (port, tmp_path, ca, tmp_path, tmp_path, extra))]).start()

        def register(nx):
            return requests.post(nx.url + "/register", timeout=10, json={
                "client_name": "x", "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none"})

        good = node("tls-good", "ca.crt")
        for _ in range(3):          # and the connection is kept and reused
            r = register(good)
            assert r.status_code == 201, (r.text, good.error_log()[-2000:])

        # a server whose certificate this CA did not sign is never talked to
        wrong = node("tls-wrong-ca", "other-ca.crt")
        r = register(wrong)
        assert r.status_code == 503, r.text
        assert "certificate verify failed" in wrong.error_log()

        # nor one whose certificate is for another name
        other = node("tls-wrong-name", "ca.crt", " tls_name=redis.example")
        r = register(other)
        assert r.status_code == 503, r.text
        assert 'certificate is not for "redis.example"' in other.error_log()
    finally:
        redis.stop()


def test_a_reload_keeps_serving_and_old_workers_let_go_of_redis(cluster):
    import subprocess
    c = login(cluster)
    token = c.tokens["access_token"]
    before = cluster.redis.command("CLIENT", "LIST").count(b"\n")
    for _ in range(3):
        cluster.b.reload()
        assert mcp_status(cluster.b, token) == 200
        assert c.refresh().status_code == 200
    # the old workers exit and close their connections: no pile-up
    master = str(cluster.b.proc.popen.pid)

    def workers():
        return subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
    wait_for(lambda: len(workers()) == 2, 10)
    shutting = subprocess.run(["pgrep", "-P", master, "-f", "shutting down"],
                              capture_output=True, text=True).stdout.split()
    assert len(workers()) == 2 and not shutting, (workers(), shutting)
    after = cluster.redis.command("CLIENT", "LIST").count(b"\n")
    assert after <= before + 2, (before, after)


def test_a_worker_shutting_down_while_redis_is_busy_closes_its_connection(nginx_factory, tmp_path):
    """A graceful shutdown closes idle connections once, when it starts: a
    Redis connection busy then must be closed when its answer is in, or the
    old worker exits with it open ("open socket left", an alert)."""
    import signal as sig
    from cluster_util import CLUSTER_EXAMPLE
    from redis_util import RedisServer

    redis = RedisServer(tmp_path / "redis").start()
    try:
        nx = nginx_factory("busy-at-reload", example=CLUSTER_EXAMPLE, replace=[(
            "127.0.0.1:6379 prefix=mcp_auth: cache=5s", "127.0.0.1:%d timeout=5s" % redis.port)]).start()
        r = requests.post(nx.url + "/register", timeout=10, json={
            "client_name": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
        assert r.status_code == 201, r.text
        redis.proc.popen.send_signal(sig.SIGSTOP)
        answers = []
        t = threading.Thread(target=lambda: answers.append(requests.post(nx.url + "/register", timeout=15, json={
            "client_name": "y", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})))
        t.start()
        time.sleep(0.5)                   # its command is sent and waits on the stalled Redis
        nx.reload()                       # the old worker begins to shut down, busy
        time.sleep(0.5)
        redis.proc.popen.send_signal(sig.SIGCONT)
        t.join(15)
        assert answers and answers[0].status_code == 201, answers
        wait_for(lambda: "exit\n" in nx.error_log().split("gracefully shutting down", 1)[-1], 10)
        time.sleep(0.5)
        assert "open socket" not in nx.error_log(), nx.error_log()[-3000:]
    finally:
        redis.proc.popen.send_signal(sig.SIGCONT)
        redis.stop()


# --- anonymous traffic cannot take Redis from users --------------------

def _registration(node):
    r = requests.post(node.url + "/register", timeout=10, json={
        "client_name": "anonymous", "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none"})
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()["client_id"]


def _live_unauthenticated_bytes(redis, prefix=b"mcp_auth:"):
    """What the registrations and documents in Redis take, as the budget
    counts it: each key's name and its (sealed) value."""
    keys = redis.command("KEYS", prefix + b"newclient:*") + redis.command("KEYS", prefix + b"cimd:*")
    return sum(len(k) + redis.command("STRLEN", k) for k in keys), len(keys)


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory, built):
    """Two edges sharing a budget of 24 KiB for unauthenticated entries (some
    60 registrations), with the registration limit out of the way."""
    c = Cluster(tmp_path_factory.mktemp("budget"), cache="%ds" % CACHE,
                redis_params=" unauthenticated=24k",
                replace=[("burst=60 nodelay", "burst=100000 nodelay")])
    yield c
    c.stop()
    for nx in c.nodes:
        nx.assert_clean_log()


def test_registrations_on_both_edges_share_one_budget_the_oldest_evicted(small_budget):
    cl = small_budget
    user = login(cl)
    token = user.tokens["access_token"]
    assert mcp_status(cl.b, token) == 200

    ids = [_registration(cl.a if i % 2 else cl.b) for i in range(200)]
    order, expiry, sizes = (b"mcp_auth:unauthenticated:" + k
                            for k in (b"order", b"expiry", b"sizes"))
    total = int(cl.redis.command("HGET", sizes, "total"))
    evicted = int(cl.redis.command("HGET", sizes, "evicted"))
    live, count = _live_unauthenticated_bytes(cl.redis)
    # the budget held, counted exactly, for both edges together
    assert live == total <= 24 * 1024, (live, total)
    assert count + evicted == 200 and evicted > 100, (count, evicted)
    # the newest are there, the oldest evicted, whichever edge made them
    exists = [cl.redis.command("EXISTS", b"mcp_auth:newclient:" + i.encode()) == 1 for i in ids]
    assert exists == [False] * evicted + [True] * count
    assert cl.redis.command("ZCARD", order) == cl.redis.command("ZCARD", expiry) == count
    # the index expires with the last registration it counts (a day)
    for k in (order, expiry, sizes):
        assert 86400 - 60 < cl.redis.command("TTL", k) <= 86400, k
    # the user logged in before is untouched: refresh on B, tools on A and B
    assert user.refresh().status_code == 200
    token = user.tokens["access_token"]
    s = Streamable(cl.a.url, token).initialize()
    assert text_of(s.call("hello_mcp")) == "Hello I am MCPTool!"
    assert mcp_status(cl.b, token) == 200
    # a newcomer registers and logs in (promoted: no longer counted)
    newcomer = login(cl)
    assert mcp_status(cl.a, newcomer.tokens["access_token"]) == 200
    assert cl.redis.command("EXISTS", b"mcp_auth:client:" + newcomer.client_id.encode()) == 1


def test_phantom_index_entries_and_concurrent_edges_keep_the_budget(small_budget):
    """Registrations promoted (deleted from the index's view) or deleted by
    hand leave index entries whose keys are gone: evicting them only frees
    their count.  Eight writers on both edges at once: every registration
    is accepted and the budget holds."""
    cl = small_budget
    sizes = b"mcp_auth:unauthenticated:sizes"
    before = int(cl.redis.command("HGET", sizes, "evicted"))
    _, count_before = _live_unauthenticated_bytes(cl.redis)
    for k in cl.redis.command("KEYS", b"mcp_auth:newclient:*")[:10]:
        assert cl.redis.command("DEL", k) == 1
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: _registration(cl.a if i % 2 else cl.b), range(240)))
    assert len(set(ids)) == 240
    live, count = _live_unauthenticated_bytes(cl.redis)
    total = int(cl.redis.command("HGET", sizes, "total"))
    assert live <= total <= 24 * 1024, (live, total)
    assert count > 40, count
    # every live registration that is gone was evicted, and counted once;
    # the phantoms' eviction only freed their count
    evicted = int(cl.redis.command("HGET", sizes, "evicted")) - before
    assert evicted == (count_before - 10) + 240 - count, (evicted, count_before, count)
    # and the newest are there
    assert all(cl.redis.command("EXISTS", b"mcp_auth:newclient:" + i.encode()) for i in ids[-20:])
