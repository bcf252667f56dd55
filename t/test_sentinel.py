"""The gateway on Redis through Sentinel (mcp_auth_redis sentinel=… master=…):
it finds the primary by asking the Sentinels, checks it with ROLE, follows a
failover by itself (a killed primary, a demoted one) with 503s in between and
never a wrong answer, and with wait_replicas= acknowledges a change only once
a replica has it.  The two-edge failover under steady traffic is
t/test_failover.py."""

import os
import signal
import time

import pytest
import requests

from cluster_util import CLUSTER_EXAMPLE
from harness import free_port, wait_for
from mcp_gateway import REDIRECT
from sentinel_util import SentinelSet

REDIS_LINE = "127.0.0.1:6379 prefix=mcp_auth: cache=5s"


def sentinel_line(s, extra=""):
    return " ".join(["sentinel=%s:%d" % a for a in s.sentinel_addrs]
                    + ["master=%s" % s.master_name, "cache=1s"]) + extra


def gateway(nginx_factory, s, extra="", name="edge"):
    return nginx_factory(name, example=CLUSTER_EXAMPLE,
                         replace=[(REDIS_LINE, sentinel_line(s, extra))]).start()


def register(nx, timeout=10):
    return requests.post(nx.url + "/register", timeout=timeout, json={
        "client_name": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})


def known(nx, client_id):
    """Whether the gateway still knows a registration: /authorize shows the
    consent page (or sends on to the provider) for a known client, and an
    error page for an unknown one."""
    r = requests.get(nx.url + "/authorize", timeout=10, allow_redirects=False, params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "s"})
    assert r.status_code != 503, r.text
    return r.status_code in (200, 302, 303)


def status(nx):
    return requests.get(nx.url + "/_mcp_auth/status", timeout=10).json()


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory):
    s = SentinelSet(tmp_path_factory.mktemp("sentinel")).start()
    yield s
    s.stop()


@pytest.fixture
def replicas_in_sync(sentinels):
    """The replica online and caught up before a test that fails the primary
    over, whatever the test before left (a restarted server may still be in
    its full sync)."""
    sentinels.wait_replicas_in_sync(30)


def test_the_gateway_finds_the_primary_through_the_sentinels(nginx_factory, sentinels):
    nx = gateway(nginx_factory, sentinels, " wait_replicas=1")
    r = register(nx)
    assert r.status_code == 201, (r.text, nx.error_log()[-2000:])
    cid = r.json()["client_id"]
    primary = sentinels.primary()
    assert primary.command("EXISTS", "mcp_auth:newclient:" + cid) == 1
    # acknowledged with wait_replicas=1: the replica has it already
    for replica in sentinels.replicas():
        assert replica.command("EXISTS", "mcp_auth:newclient:" + cid) == 1
    st = status(nx)
    assert st["store"] == "redis" and st["connected"] is True
    assert st["address"] == "127.0.0.1:%d" % primary.port
    assert known(nx, cid)


def test_a_sentinel_that_does_not_answer_is_passed_over(nginx_factory, sentinels):
    dead = free_port()      # nothing listens there
    line = " ".join(["sentinel=127.0.0.1:%d" % dead]
                    + ["sentinel=%s:%d" % a for a in sentinels.sentinel_addrs]
                    + ["master=%s" % sentinels.master_name])
    nx = nginx_factory("dead-sentinel", example=CLUSTER_EXAMPLE, replace=[(REDIS_LINE, line)]).start()
    for _ in range(3):
        r = register(nx)
        assert r.status_code == 201, (r.text, nx.error_log()[-2000:])
    assert "cannot connect to redis sentinel" in nx.error_log() or \
        "127.0.0.1:%d" % dead in nx.error_log()


def test_a_master_the_sentinels_do_not_know_is_a_503_never_a_guess(nginx_factory, sentinels):
    line = " ".join(["sentinel=%s:%d" % a for a in sentinels.sentinel_addrs] + ["master=nobody"])
    nx = nginx_factory("unknown-master", example=CLUSTER_EXAMPLE, replace=[(REDIS_LINE, line)]).start()
    r = register(nx)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "temporarily_unavailable"
    assert r.headers.get("Retry-After")
    assert 'knows no master "nobody"' in nx.error_log()


def test_a_change_no_replica_confirms_in_time_is_a_503_and_reads_go_on(nginx_factory, sentinels):
    nx = gateway(nginx_factory, sentinels, " wait_replicas=1 wait_timeout=300ms")
    r = register(nx)
    assert r.status_code == 201, r.text
    before = r.json()["client_id"]
    replica = sentinels.replicas()[0]
    replica.proc.popen.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = register(nx)
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "temporarily_unavailable"
        assert r.headers.get("Retry-After")
        assert 0.25 < took < 3, took          # the wait_timeout, not the 1 s timeout
        assert "changes not confirmed: 0 of 1 replicas" in nx.error_log()
        # what needs no confirmation is answered meanwhile
        assert known(nx, before)
        assert requests.get(nx.url + "/.well-known/oauth-authorization-server",
                            timeout=10).status_code == 200
    finally:
        replica.proc.popen.send_signal(signal.SIGCONT)
    wait_for(lambda: register(nx).status_code == 201, timeout=10)


@pytest.mark.usefixtures("replicas_in_sync")
def test_a_forced_failover_is_followed_without_a_reload(nginx_factory, sentinels):
    nx = gateway(nginx_factory, sentinels, " wait_replicas=1")
    r = register(nx)
    assert r.status_code == 201, r.text
    acknowledged = [r.json()["client_id"]]
    old = sentinels.primary()
    # the old primary stays up and is demoted to a replica: the gateway's
    # connection to it sees READONLY or is closed, never a stale answer
    sentinels.sentinel_command(0, "SENTINEL", "FAILOVER", sentinels.master_name)
    wait_for(lambda: sentinels.primary() is not old and sentinels.role(old) == "slave",
             timeout=30)
    codes = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = register(nx)
        codes.append(r.status_code)
        assert r.status_code in (201, 503), r.text
        if r.status_code == 503:
            assert r.headers.get("Retry-After")
        else:
            acknowledged.append(r.json()["client_id"])
            if codes[-3:] == [201, 201, 201]:
                break
        time.sleep(0.2)
    assert codes[-3:] == [201, 201, 201], codes
    assert status(nx)["address"] == "127.0.0.1:%d" % sentinels.primary().port
    for cid in acknowledged:
        assert known(nx, cid), cid
    sentinels.wait_replicas_in_sync(30)


@pytest.mark.usefixtures("replicas_in_sync")
def test_a_killed_primary_gives_503s_then_service_resumes_with_nothing_lost(nginx_factory, sentinels):
    nx = gateway(nginx_factory, sentinels, " wait_replicas=1")
    acknowledged = []
    for _ in range(5):
        r = register(nx)
        assert r.status_code == 201, r.text
        acknowledged.append(r.json()["client_id"])
    old = sentinels.kill_primary()
    t0 = time.monotonic()
    seen = set()
    while time.monotonic() - t0 < 30:
        r = register(nx, timeout=10)
        seen.add(r.status_code)
        assert r.status_code in (201, 503), r.text
        if r.status_code == 201:
            acknowledged.append(r.json()["client_id"])
            break
        assert r.json()["error"] == "temporarily_unavailable" and r.headers.get("Retry-After")
        time.sleep(0.2)
    resumed = time.monotonic() - t0
    assert 201 in seen, "no registration went through within 30 s of the kill"
    assert 503 in seen       # the switch took a moment, and said so
    print("service resumed %.1f s after the primary was killed" % resumed)
    for cid in acknowledged:
        assert known(nx, cid), cid
    # the old primary comes back as a replica of the new one, and changes
    # are confirmed by it again (once the gateway's count of replicas, at
    # most a second old, has it)
    sentinels.restart(old)
    sentinels.wait_replicas_in_sync(30)
    time.sleep(1.2)
    r = register(nx)
    assert r.status_code == 201, r.text
    assert old.command("EXISTS", "mcp_auth:newclient:" + r.json()["client_id"]) == 1
    for cid in acknowledged:
        assert old.command("EXISTS", "mcp_auth:newclient:" + cid) == 1, cid


@pytest.mark.usefixtures("replicas_in_sync")
def test_a_stalled_primary_the_sentinels_replaced_is_left_on_their_notice(nginx_factory, sentinels):
    # a long timeout: only Sentinel's +switch-master can make the gateway
    # leave a primary that holds its connection open without answering
    nx = gateway(nginx_factory, sentinels, " timeout=60s")
    r = register(nx)
    assert r.status_code == 201, r.text
    old = sentinels.kill_primary(signal.SIGSTOP)
    try:
        sentinels.wait_failover(old, timeout=30)
        switched = time.monotonic()
        wait_for(lambda: "switched master" in nx.error_log(), timeout=10)
        r = register(nx, timeout=30)
        assert r.status_code in (201, 503), r.text
        if r.status_code == 503:        # the one that waited on the old primary
            r = register(nx, timeout=30)
        assert r.status_code == 201, r.text
        assert time.monotonic() - switched < 10
        assert status(nx)["address"] == "127.0.0.1:%d" % sentinels.primary().port
    finally:
        sentinels.restart(old)
    sentinels.wait_replicas_in_sync(30)


@pytest.mark.usefixtures("replicas_in_sync")
def test_a_silent_sentinel_is_left_so_that_the_next_ones_notice_still_arrives(nginx_factory, sentinels):
    # one worker, so that its subscription is the one on Sentinel 0; a long
    # timeout, so that only +switch-master can move it off the old primary
    nx = nginx_factory("edge", example=CLUSTER_EXAMPLE, replace=[
        (REDIS_LINE, sentinel_line(sentinels, " timeout=60s")),
        ("worker_processes auto;", "worker_processes 1;")]).start()
    assert register(nx).status_code == 201
    silent = sentinels.sentinels[0]
    old = sentinels.primary()
    os.killpg(silent.proc.popen.pid, signal.SIGSTOP)     # its connections stay open
    try:
        wait_for(lambda: "sentinel at 127.0.0.1:%d did not confirm the +switch-master subscription" % silent.port in nx.error_log(),
                 timeout=10)
        # the subscription moves to Sentinel 1
        wait_for(lambda: b"cmd=subscribe" in sentinels.sentinel_command(1, "CLIENT", "LIST"), timeout=10)
        os.killpg(old.proc.popen.pid, signal.SIGSTOP)
        wait_for(lambda: all(sentinels.named_addr(i) not in (None, ("127.0.0.1", old.port)) for i in (1, 2)),
                 timeout=30)
        switched = time.monotonic()
        wait_for(lambda: "switched master" in nx.error_log(), timeout=10)
        r = register(nx, timeout=30)
        if r.status_code == 503:        # the one that waited on the old primary
            r = register(nx, timeout=30)
        assert r.status_code == 201, r.text
        assert time.monotonic() - switched < 10
        assert status(nx)["address"] == "127.0.0.1:%d" % sentinels.named_addr(1)[1]
    finally:
        os.killpg(silent.proc.popen.pid, signal.SIGCONT)
    # Sentinel 0 learns the new primary from the others before the old one
    # comes back as a replica
    new = sentinels.named_addr(1)
    wait_for(lambda: sentinels.named_addr(0) == new, timeout=30)
    sentinels.restart(old)
    sentinels.wait_replicas_in_sync(30)


def test_sentinels_that_require_a_password(nginx_factory, tmp_path):
    s = SentinelSet(tmp_path / "acl", password="data-pw-3", sentinel_password="watch-pw-4",
                    sentinels=1).start()
    try:
        (tmp_path / "data").write_text("data-pw-3\n")
        (tmp_path / "watch").write_text("watch-pw-4\n")
        (tmp_path / "wrong").write_text("not-it-5\n")
        good = gateway(nginx_factory, s, " password_file=%s sentinel_password_file=%s"
                       % (tmp_path / "data", tmp_path / "watch"), name="acl-good")
        r = register(good)
        assert r.status_code == 201, (r.text, good.error_log()[-2000:])

        # ACL users: on the Sentinel, one that may ask for the address and
        # hear the switches, nothing else; on the data node, one for the prefix
        s.sentinel_command(0, "ACL", "SETUSER", "edge", "reset", "on", ">edge-watch-6",
                           "+sentinel|get-master-addr-by-name", "+subscribe", "&+switch-master")
        for server in s.servers:
            server.command("ACL", "SETUSER", "gateway", "on", ">gw-data-8", "~mcp_auth:*", "+@all")
        (tmp_path / "edge").write_text("edge-watch-6\n")
        (tmp_path / "gw").write_text("gw-data-8\n")
        users = gateway(nginx_factory, s, " user=gateway password_file=%s sentinel_user=edge "
                        "sentinel_password_file=%s wait_replicas=1" % (tmp_path / "gw", tmp_path / "edge"),
                        name="acl-users")
        r = register(users)
        assert r.status_code == 201, (r.text, users.error_log()[-2000:])
        wait_for(lambda: any("user=edge" in c and "cmd=subscribe" in c for c in
                             s.sentinel_command(0, "CLIENT", "LIST").decode().splitlines()), timeout=5)

        bad = gateway(nginx_factory, s, " password_file=%s sentinel_password_file=%s"
                      % (tmp_path / "data", tmp_path / "wrong"), name="acl-bad")
        r = register(bad)
        assert r.status_code == 503, r.text
        log = bad.error_log()
        assert "redis sentinel at 127.0.0.1:%d answered WRONGPASS" % s.sentinel_addrs[0][1] in log, log
        for secret in ("not-it-5", "watch-pw-4", "data-pw-3"):
            assert secret not in log
        for secret in ("edge-watch-6", "gw-data-8"):
            assert secret not in users.error_log()
    finally:
        s.stop()


def test_nginx_t_names_sentinel_mistakes(nginx_factory, tmp_path):
    (tmp_path / "pw").write_text("pw\n")
    nine = " ".join("sentinel=127.0.0.1:%d" % (26379 + i) for i in range(9))
    cases = [
        ("sentinel=127.0.0.1:26379", '"sentinel=" needs "master="'),
        ("127.0.0.1:6379 master=mcp", '"master=" and the sentinel_ parameters need "sentinel="'),
        ("127.0.0.1:6379 sentinel=127.0.0.1:26379 master=mcp", 'an address or "sentinel=", not both'),
        ("sentinel=127.0.0.1:26379 master=mcp sentinel_user=u",
         '"sentinel_user=" needs "sentinel_password_file="'),
        ("sentinel=127.0.0.1:26379 master=mcp wait_replicas=1 wait_timeout=2s",
         '"wait_timeout=" must be shorter than "timeout="'),
        ("sentinel=127.0.0.1:26379 master=mcp wait_replicas=-1", 'invalid mcp_auth_redis parameter'),
        (nine + " master=mcp", 'at most 8 "sentinel="'),
        ("cache=1s", 'needs an address, or "sentinel=" and "master="'),
    ]
    for new, message in cases:
        nx = nginx_factory("conf", example=CLUSTER_EXAMPLE, replace=[(REDIS_LINE, new)])
        r = nx.test_config()
        assert r.returncode != 0, new
        assert message in r.stderr, (new, r.stderr)
    ok = nginx_factory("conf-ok", example=CLUSTER_EXAMPLE, replace=[(
        REDIS_LINE, "sentinel=127.0.0.1:26379 sentinel=127.0.0.1:26380 master=mcp "
        "sentinel_user=w sentinel_password_file=%s wait_replicas=1 wait_timeout=250ms" % (tmp_path / "pw"))])
    r = ok.test_config()
    assert r.returncode == 0, r.stderr


def test_tls_to_the_sentinels_and_the_primary_they_name(nginx_factory, tmp_path):
    from harness import Proc
    from test_cluster import _tls_material

    _tls_material(tmp_path)
    tls = ["tls-cert-file %s/server.crt" % tmp_path, "tls-key-file %s/server.key" % tmp_path,
           "tls-ca-cert-file %s/ca.crt" % tmp_path, "tls-auth-clients yes", "tls-replication yes"]
    data_port, sentinel_port = free_port(), free_port()
    (tmp_path / "data").mkdir()
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "data" / "redis.conf").write_text("\n".join([
        "bind 127.0.0.1", "port 0", "tls-port %d" % data_port, 'dir "%s/data"' % tmp_path,
        "appendonly yes", "appendfsync always", 'save ""', 'logfile ""'] + tls) + "\n")
    (tmp_path / "sentinel" / "sentinel.conf").write_text("\n".join([
        "bind 127.0.0.1", "port 0", "tls-port %d" % sentinel_port, 'dir "%s/sentinel"' % tmp_path,
        'logfile ""', "sentinel resolve-hostnames no",
        "sentinel monitor mcp 127.0.0.1 %d 1" % data_port] + tls) + "\n")
    data = Proc("redis-tls", ["/usr/bin/redis-server", tmp_path / "data" / "redis.conf"], tmp_path / "data",
                ready_line=r"Ready to accept connections", port=data_port).start()
    sentinel = Proc("sentinel-tls", ["/usr/bin/redis-sentinel", tmp_path / "sentinel" / "sentinel.conf"],
                    tmp_path / "sentinel", ready_line=r"Sentinel ID is", port=sentinel_port).start()
    try:
        def node(name, ca):
            return nginx_factory(name, example=CLUSTER_EXAMPLE, replace=[(
                REDIS_LINE, "sentinel=127.0.0.1:%d master=mcp tls tls_ca=%s/%s tls_certificate=%s/client.crt "
                "tls_certificate_key=%s/client.key" % (sentinel_port, tmp_path, ca, tmp_path, tmp_path))]).start()

        good = node("sentinel-tls-good", "ca.crt")
        for _ in range(3):
            r = register(good)
            assert r.status_code == 201, (r.text, good.error_log()[-2000:])
        assert status(good)["address"] == "127.0.0.1:%d" % data_port
        # the +switch-master subscription came up over TLS too
        wait_for(lambda: b" sub=1 " in _sentinel_clients(sentinel_port, tmp_path),
                 timeout=10)

        # a Sentinel whose certificate this CA did not sign is never asked
        wrong = node("sentinel-tls-wrong-ca", "other-ca.crt")
        r = register(wrong)
        assert r.status_code == 503, r.text
        assert "redis at 127.0.0.1:%d: certificate verify failed" % sentinel_port in wrong.error_log()
    finally:
        sentinel.stop()
        data.stop()


def _sentinel_clients(port, d):
    """CLIENT LIST of a TLS Sentinel."""
    import socket
    import ssl
    from redis_util import _encode, _read
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    ctx.load_cert_chain(str(d / "client.crt"), str(d / "client.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(_encode(["CLIENT", "LIST"]))
            return _read(s.makefile("rb"))
