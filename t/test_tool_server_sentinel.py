"""mcp-tool-server with --store redis through Redis Sentinel: the primary is
discovered through the Sentinels (only a server whose ROLE is master is
used), a killed primary costs storage errors during the switch and nothing
after it (no restart of the tool server, no acknowledged save lost), a
"+switch-master" notice moves a connection away from a stalled primary, a
READONLY reply makes it look again, WAIT refuses a save no replica has
confirmed, Sentinel's own credentials, and the flag combinations refused.

Real processes only: redis-server primaries and replicas and redis-sentinel
(t/sentinel_util.py), the tool server called over MCP."""

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import TOOL_SERVER, free_port
from redis_util import REDIS_SERVER, RedisServer
from sentinel_util import REDIS_SENTINEL, SentinelSet, _info
from toolserver_util import ToolServer, call, eventually_saves, get, save, saved, text_of

pytestmark = [
    pytest.mark.skipif(not TOOL_SERVER.exists(), reason="build/mcp-tool-server not built"),
    pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server not installed"),
    pytest.mark.skipif(not Path(REDIS_SENTINEL).exists(), reason="redis-sentinel not installed"),
]

PASSWORD = "redis-data-pass"
SENTINEL_PASSWORD = "sentinel-watch-pass"
TIMEOUT_MS = 1000
WAIT_MS = 300
NOT_SAVED = "Storage error: the snippet was not saved"
NOT_READ = "Storage error: the snippet could not be read"
NOT_CONFIRMED = ("Storage error: the save was not confirmed by the replicas; "
                 "the snippet may or may not be stored")


def sentinel_args(sset, *extra):
    args = ["--store", "redis", "--redis-master", sset.master_name, "--redis-timeout-ms", str(TIMEOUT_MS)]
    for host, port in sset.sentinel_addrs:
        args += ["--redis-sentinel", "%s:%d" % (host, port)]
    return args + list(extra)


def log_since(srv, start):
    """What the tool server logged after the first `start` characters: the
    module's server keeps one log, and an earlier test's line must not pass
    for this one's."""
    return srv.proc.log()[start:]


def hget(server, name, sub="alice"):
    return server.command("HGET", "mcp:snippet:" + sub, name)


@pytest.fixture(scope="module")
def sset(tmp_path_factory):
    """A primary, two replicas and three Sentinels, all with passwords."""
    s = SentinelSet(tmp_path_factory.mktemp("sentinel-set"), password=PASSWORD,
                    sentinel_password=SENTINEL_PASSWORD, replicas=2).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets")
    (d / "redis.pw").write_text(PASSWORD + "\n")
    (d / "sentinel.pw").write_text(SENTINEL_PASSWORD + "\n")
    return d


@pytest.fixture(scope="module")
def ts(tmp_path_factory, sset, secrets):
    """The tool server through the Sentinels; a save waits for one replica."""
    srv = ToolServer(tmp_path_factory.mktemp("ts"), args=sentinel_args(
        sset, "--redis-password-file", str(secrets / "redis.pw"),
        "--redis-sentinel-password-file", str(secrets / "sentinel.pw"),
        "--redis-wait-replicas", "1", "--redis-wait-timeout-ms", str(WAIT_MS))).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def replicas_in_sync(sset):
    """Every replica online and caught up before a test that fails the
    primary over: what a save's WAIT counts on, whatever the test before
    left (a restarted server may still be in its full sync)."""
    sset.wait_replicas_in_sync(30)


# --- through the Sentinels ---------------------------------------------------------

def test_saves_and_reads_on_the_primary_the_sentinels_name(ts, sset):
    assert saved(save(ts, "first", "via sentinel"))
    assert text_of(get(ts, "first")) == "via sentinel"
    assert hget(sset.primary(), "first") == b"via sentinel"
    # WAIT 1 answered: a replica has it too
    assert any(hget(r, "first") == b"via sentinel" for r in sset.replicas())
    log = ts.proc.log()
    assert "event=redis_connected redis=127.0.0.1:%d" % sset.primary().port in log
    assert "master=mcp" in log
    assert PASSWORD not in log and SENTINEL_PASSWORD not in log


@pytest.mark.usefixtures("replicas_in_sync")
def test_killed_primary_fails_calls_during_the_switch_and_none_after(ts, sset):
    """Saves run on while the primary is killed; every acknowledged one is
    there afterwards, every other one got the storage error, and the server
    recovers by itself."""
    start = len(ts.proc.log())
    assert saved(save(ts, "before-kill", "acknowledged before"))
    acked, refused, other = {}, [], []
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            name, content = "w%d" % n, "content %d" % n
            try:
                r = save(ts, name, content)
            except Exception as e:  # noqa: BLE001 -- a test failure below
                other.append(repr(e))
                continue
            if saved(r):
                acked[name] = content
            elif r["isError"] and text_of(r) in (NOT_SAVED, NOT_CONFIRMED):
                refused.append(name)
            else:
                other.append(text_of(r))
            time.sleep(0.02)

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        old = sset.kill_primary()
        killed = time.monotonic()
        switch = sset.wait_failover(old)
        # after the switch, calls succeed again without anything done to the tool server
        deadline = time.monotonic() + 5
        while not saved(save(ts, "after-switch", "on the new primary")):
            assert time.monotonic() < deadline, "no save within 5 s of the switch"
            time.sleep(0.1)
        recovered = time.monotonic() - killed
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(15)
    assert not other, other
    assert refused, "no call failed during the switch (%.1f s)" % switch
    assert len(acked) > 5
    assert recovered < switch + 5
    for name, content in acked.items():
        assert text_of(get(ts, name)) == content
    assert text_of(get(ts, "before-kill")) == "acknowledged before"
    assert sset.primary() is not old and hget(sset.primary(), "after-switch") == b"on the new primary"
    assert ts.proc.alive()
    assert "event=redis_switch_master" in log_since(ts, start)
    sset.restart(old)
    sset.wait_replicas_in_sync(30)


@pytest.mark.usefixtures("replicas_in_sync")
def test_switch_master_moves_the_connection_off_a_stalled_primary(ts, sset):
    """SIGSTOP keeps the connection open: only the Sentinels' notice tells
    the tool server to leave it; the first call after the switch works."""
    start = len(ts.proc.log())
    assert saved(save(ts, "before-stall", "on the old primary"))
    old = sset.kill_primary(signal.SIGSTOP)
    try:
        sset.wait_failover(old)
        # the notice naming the new primary reaches the tool server from the
        # Sentinel it listens to (the leader sends it only once the failover
        # ends, up to a second after the others answer with the new address)
        notice = "event=redis_switch_master master=mcp redis=127.0.0.1:%d" % sset.primary().port
        deadline = time.monotonic() + 10
        while notice not in log_since(ts, start):
            assert time.monotonic() < deadline, "no +switch-master notice reached the tool server"
            time.sleep(0.05)
        t0 = time.monotonic()
        r = save(ts, "after-stall", "straight to the new primary")
        took = time.monotonic() - t0
        assert saved(r), text_of(r)
        assert took < TIMEOUT_MS / 1000.0, took
        assert text_of(get(ts, "before-stall")) == "on the old primary"
    finally:
        sset.restart(old)
    sset.wait_replicas_in_sync(30)
    assert "moved master mcp" in log_since(ts, start)


@pytest.mark.usefixtures("replicas_in_sync")
def test_wait_refuses_a_save_no_replica_confirmed(ts, sset):
    replicas = sset.replicas()
    for r in replicas:
        r.proc.send_signal(signal.SIGSTOP)
    try:
        result = {}

        def slow_save():
            t0 = time.monotonic()
            result["r"] = save(ts, "unconfirmed", "maybe kept")
            result["took"] = time.monotonic() - t0

        start = len(ts.proc.log())
        t = threading.Thread(target=slow_save)
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        assert text_of(call(ts, "hello_mcp")) == "Hello I am MCPTool!"
        assert time.monotonic() - t0 < 0.25  # not held up by the save's WAIT
        t.join(10)
        r = result["r"]
        assert r["isError"] is True and text_of(r) == NOT_CONFIRMED
        assert WAIT_MS / 1000.0 <= result["took"] < TIMEOUT_MS / 1000.0 + 0.5
        assert "WAIT counted 0 of 1 replicas within 300 ms" in log_since(ts, start)
        # the primary has it: "may or may not be stored"
        assert hget(sset.primary(), "unconfirmed") == b"maybe kept"
    finally:
        for r in replicas:
            r.proc.send_signal(signal.SIGCONT)
    sset.wait_replicas_in_sync(30)
    assert saved(save(ts, "confirmed", "again"))


def test_wait_without_sentinel(tmp_path, stop_later):
    # a primary named by --redis-port that has no replica: nothing is confirmed
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    srv = ToolServer(tmp_path / "ts", args=["--store", "redis", "--redis-port", str(redis.port),
                                            "--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "100"]).start()
    stop_later(srv)
    r = save(srv, "alone", "no replica")
    assert r["isError"] is True and text_of(r) == NOT_CONFIRMED
    assert redis.command("HGET", "mcp:snippet:alice", "alone") == b"no replica"
    assert text_of(get(srv, "alone")) == "no replica"


def test_a_silent_sentinel_is_left_for_the_next_one(ts, sset):
    """A stopped Sentinel keeps the subscription's connection open and says
    nothing: the tool server notices that its repeated SUBSCRIBE goes
    unconfirmed, and listens on the next Sentinel."""
    def listening():
        return [i for i in range(len(sset.sentinels)) if sset.sentinels[i].proc is not None
                and b"cmd=subscribe" in sset.sentinel_command(i, "CLIENT", "LIST", timeout=2.0)]
    deadline = time.monotonic() + 10
    while not listening():
        assert time.monotonic() < deadline, "no subscription on any Sentinel"
        time.sleep(0.1)
    [i] = listening()
    silent = sset.sentinels[i]
    start = len(ts.proc.log())
    silent.proc.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while "event=redis_sentinel_silent sentinel=127.0.0.1:%d" % silent.port not in log_since(ts, start):
            assert time.monotonic() < deadline, "the silent Sentinel was not noticed"
            time.sleep(0.1)
        others = [j for j in range(len(sset.sentinels)) if j != i]
        deadline = time.monotonic() + 10
        while not any(b"cmd=subscribe" in sset.sentinel_command(j, "CLIENT", "LIST") for j in others):
            assert time.monotonic() < deadline, "no subscription on another Sentinel"
            time.sleep(0.1)
    finally:
        silent.proc.send_signal(signal.SIGCONT)
    assert saved(save(ts, "after-silence", "still saved"))


# --- Sentinel's own credentials ------------------------------------------------------

def test_wrong_or_missing_sentinel_password_stops_the_start(tmp_path, sset, secrets):
    bad = tmp_path / "bad.pw"
    bad.write_text("not-the-watch-pass\n")
    base = sentinel_args(sset, "--redis-password-file", str(secrets / "redis.pw"))
    with pytest.raises(RuntimeError) as err:
        ToolServer(tmp_path / "bad", args=base + ["--redis-sentinel-password-file", str(bad)]).start()
    text = str(err.value)
    assert "exited with 1" in text
    assert "no Sentinel named a usable primary for master mcp" in text
    assert "refused the credentials" in text and "WRONGPASS" in text
    assert "not-the-watch-pass" not in text
    with pytest.raises(RuntimeError) as err:
        ToolServer(tmp_path / "none", args=base).start()
    assert "NOAUTH" in str(err.value)


def test_sentinel_acl_user(tmp_path, sset, secrets, stop_later):
    # a Sentinel ACL user that may ask for the address and hear the switches, nothing else
    for i in range(len(sset.sentinels)):
        sset.sentinel_command(i, "ACL", "SETUSER", "mcp-tool", "reset", "on", ">tool-watch-pass",
                              "+sentinel|get-master-addr-by-name", "+subscribe", "&+switch-master")
    pw = tmp_path / "user.pw"
    pw.write_text("tool-watch-pass\n")
    srv = ToolServer(tmp_path / "acl", args=sentinel_args(
        sset, "--redis-password-file", str(secrets / "redis.pw"), "--redis-sentinel-user", "mcp-tool",
        "--redis-sentinel-password-file", str(pw))).start()
    stop_later(srv)
    assert saved(save(srv, "acl", "through an ACL user"))
    assert text_of(get(srv, "acl")) == "through an ACL user"

    # it listens for "+switch-master" as that user on one Sentinel
    def subscribed():
        for i in range(len(sset.sentinels)):
            clients = sset.sentinel_command(i, "CLIENT", "LIST").decode()
            if any("user=mcp-tool" in c and "cmd=subscribe" in c for c in clients.splitlines()):
                return True
        return False
    deadline = time.monotonic() + 5
    while not subscribed():
        assert time.monotonic() < deadline, "no subscription on any Sentinel"
        time.sleep(0.1)


def test_a_stalled_sentinel_costs_one_timeout_and_the_next_one_answers(tmp_path, sset, secrets, stop_later):
    srv = ToolServer(tmp_path / "ts", args=sentinel_args(
        sset, "--redis-password-file", str(secrets / "redis.pw"),
        "--redis-sentinel-password-file", str(secrets / "sentinel.pw"))).start()
    stop_later(srv)
    assert saved(save(srv, "stalled-sentinel", "first"))  # the first Sentinel answered
    first = sset.sentinels[0]
    first.proc.send_signal(signal.SIGSTOP)
    try:
        sset.primary().command("CLIENT", "KILL", "TYPE", "normal")  # the next call must ask again
        t0 = time.monotonic()
        r = save(srv, "stalled-sentinel", "second")
        took = time.monotonic() - t0
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert saved(r), text_of(r)
    assert TIMEOUT_MS / 1000.0 <= took < 2 * TIMEOUT_MS / 1000.0 + 0.5, took
    assert text_of(get(srv, "stalled-sentinel")) == "second"


# --- READONLY: the primary made a replica behind the Sentinels' back ---------------------

def test_readonly_reply_drops_the_connection_and_a_replica_is_never_used(tmp_path, stop_later):
    s = SentinelSet(tmp_path / "set", replicas=1).start()
    stop_later(s)
    srv = ToolServer(tmp_path / "ts", args=sentinel_args(s)).start()
    stop_later(srv)
    assert saved(save(srv, "before", "on the first primary"))
    old, new = s.primary(), s.replicas()[0]
    new.command("REPLICAOF", "NO", "ONE")
    old.command("REPLICAOF", new.host, str(new.port))
    deadline = time.monotonic() + 10
    while _info(old.command("INFO", "replication")).get("master_link_status") != "up":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # the kept connection now reaches a replica: the write is refused (READONLY) and the connection goes
    r = save(srv, "during", "refused by a replica")
    assert r["isError"] is True and text_of(r) == NOT_SAVED
    assert "READONLY" in srv.proc.log()
    # the Sentinels still name the old server: its ROLE is slave, so it is not used, not even to read
    r = get(srv, "before")
    assert r["isError"] is True and text_of(r) == NOT_READ
    assert "is not the primary (ROLE slave)" in srv.proc.log()

    # once the Sentinels name the new primary, the next calls find it by themselves
    for i in range(len(s.sentinels)):
        s.sentinel_command(i, "SENTINEL", "REMOVE", s.master_name)
        s.sentinel_command(i, "SENTINEL", "MONITOR", s.master_name, new.host, str(new.port), "2")
    assert saved(eventually_saves(srv, "after", "on the new primary", within=10.0))
    assert hget(new, "after") == b"on the new primary"
    assert text_of(get(srv, "before")) == "on the first primary"
    assert srv.proc.alive()


# --- flags ---------------------------------------------------------------------------------

BAD_FLAGS = [
    (["--redis-sentinel", "127.0.0.1:26379"], "--redis-sentinel needs --redis-master"),
    (["--redis-master", "mcp"], "--redis-master needs --redis-sentinel"),
    (["--redis-sentinel", "127.0.0.1:26379", "--redis-master", "mcp", "--redis-host", "127.0.0.1"],
     "--redis-sentinel replaces --redis-host and --redis-port"),
    (["--redis-sentinel", "127.0.0.1:26379", "--redis-master", "mcp", "--redis-port", "6379"],
     "--redis-sentinel replaces --redis-host and --redis-port"),
    (["--redis-sentinel", "127.0.0.1:26379", "--redis-master", "mcp", "--redis-sentinel-user", "u"],
     "--redis-sentinel-user needs --redis-sentinel-password-file"),
    (["--redis-sentinel-password-file", "/dev/null"], "need --redis-sentinel"),
    (["--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "1000"],
     "--redis-wait-timeout-ms (1000) must be below --redis-timeout-ms (1000)"),
    (["--redis-wait-timeout-ms", "100"], "--redis-wait-timeout-ms needs --redis-wait-replicas"),
    (["--redis-sentinel", "::1:26379", "--redis-master", "mcp"], "bad value for --redis-sentinel"),
    (["--redis-sentinel", "127.0.0.1", "--redis-master", "mcp"], "bad value for --redis-sentinel"),
    (["--redis-sentinel", "127.0.0.1:26379", "--redis-master", "two words"], "bad value for --redis-master"),
    (["--redis-sentinel", "127.0.0.1:1"] * 9 + ["--redis-master", "mcp"], "at most 8 --redis-sentinel"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[m for _, m in BAD_FLAGS])
def test_bad_flag_combinations_are_refused(flags, message):
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--store", "redis"] + flags,
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr


def test_sentinel_flags_need_store_redis():
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--redis-sentinel", "127.0.0.1:26379",
                          "--redis-master", "mcp"], capture_output=True, text=True, timeout=5)
    assert out.returncode == 2 and "--store redis" in out.stderr


def test_ipv6_sentinel_address_is_accepted_and_tried(tmp_path):
    # nothing listens there: the start fails naming it, after the flags were accepted
    port = free_port()
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--listen", "127.0.0.1:0", "--store", "redis",
                          "--redis-sentinel", "[::1]:%d" % port, "--redis-master", "mcp",
                          "--redis-timeout-ms", "300"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1, out.stderr
    assert "Sentinel [::1]:%d: cannot connect" % port in out.stderr


def test_help_lists_the_sentinel_flags():
    out = subprocess.run([str(TOOL_SERVER), "--help"], capture_output=True, text=True, timeout=5)
    for flag in ["--redis-sentinel", "--redis-master", "--redis-sentinel-user", "--redis-sentinel-password-file",
                 "--redis-wait-replicas", "--redis-wait-timeout-ms"]:
        assert flag in out.stdout
