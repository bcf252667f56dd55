"""mcp-tool-server with --store redis: several tool servers on one private
redis-server share snippets; Redis going down, stalling and coming back (a
stalled Redis holds up only the calls that wait for it, on every transport);
the start-up checks (durability, credentials)."""

import json
import signal
import socket
import struct
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from harness import TOOL_SERVER
from redis_util import REDIS_SERVER, RedisServer
from toolserver_util import (SseClient, StreamableClient, ToolServer, call, eventually_saves, get, rpc, save,
                             saved, text_of)

pytestmark = [
    pytest.mark.skipif(not TOOL_SERVER.exists(), reason="build/mcp-tool-server not built"),
    pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server not installed"),
]

TIMEOUT_MS = 300
NOT_SAVED = "Storage error: the snippet was not saved"
NOT_READ = "Storage error: the snippet could not be read"


def redis_tool_server(workdir, redis, *extra, key=None, name="tool-server"):
    args = ["--store", "redis", "--redis-port", str(redis.port), "--redis-timeout-ms", str(TIMEOUT_MS)]
    return ToolServer(workdir, name=name, key=key, args=args + list(extra))


def eventually_reads(server, name, within=5.0):
    """Reads until the read works: a server whose last reconnect failed waits
    a second before the next, whatever another server has done meanwhile."""
    deadline = time.monotonic() + within
    while True:
        r = get(server, name)
        if not r["isError"] or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield r
    assert r.stop() == 0


@pytest.fixture(scope="module")
def pair(tmp_path_factory, redis):
    """Two tool servers on one Redis, trusting the same gateway key."""
    base = tmp_path_factory.mktemp("tool-servers")
    a = redis_tool_server(base / "a", redis, name="a").start()
    b = redis_tool_server(base / "b", redis, key=a.key, name="b").start()
    yield a, b
    assert a.stop() == 0
    assert b.stop() == 0


# --- sharing --------------------------------------------------------------------

def test_snippet_saved_through_one_server_is_read_through_the_other(pair):
    a, b = pair
    assert saved(save(a, "shared-one", "written via a"))
    r = get(b, "shared-one")
    assert r["isError"] is False
    assert text_of(r) == "written via a"


def test_overwrite_through_either_server_is_seen_by_the_other(pair):
    a, b = pair
    assert saved(save(a, "over", "first"))
    assert text_of(get(b, "over")) == "first"
    assert saved(save(b, "over", "second"))
    assert text_of(get(a, "over")) == "second"


def test_snippets_stay_private_to_their_user_across_servers(pair):
    a, b = pair
    assert saved(save(a, "diary", "alice's", sub="alice"))
    r = get(b, "diary", sub="bob")
    assert r["isError"] is True and text_of(r) == "Snippet 'diary' not found"
    assert saved(save(b, "diary", "bob's", sub="bob"))
    assert text_of(get(a, "diary", sub="alice")) == "alice's"
    assert text_of(get(a, "diary", sub="bob")) == "bob's"


def test_owner_and_name_cannot_run_into_each_other(pair):
    # With a key like owner + "." + name these two would be one key.
    a, b = pair
    assert saved(save(a, "n", "owner u.x", sub="u.x"))
    assert saved(save(a, "x.n", "owner u", sub="u"))
    assert text_of(get(b, "n", sub="u.x")) == "owner u.x"
    assert text_of(get(b, "x.n", sub="u")) == "owner u"
    assert get(b, "n", sub="u")["isError"] is True


def test_keys_are_one_hash_per_owner_under_the_prefix(pair, redis):
    a, _ = pair
    sub = "carol with spaces:\u00fc"
    assert saved(save(a, "layout", "in a hash", sub=sub))
    key = ("mcp:snippet:" + sub).encode()
    assert redis.command("TYPE", key) == "hash"
    assert redis.command("HGET", key, "layout") == b"in a hash"


def test_shared_scope_prefix_and_db_flags(tmp_path, redis, stop_later):
    extra = ["--snippet-scope", "shared", "--redis-prefix", "team:", "--redis-db", "3"]
    a = redis_tool_server(tmp_path / "a", redis, *extra, name="a").start()
    stop_later(a)
    b = redis_tool_server(tmp_path / "b", redis, *extra, key=a.key, name="b").start()
    stop_later(b)
    assert saved(save(a, "notice", "for everyone", sub="alice"))
    assert text_of(get(b, "notice", sub="bob")) == "for everyone"
    # the shared space is the prefix itself, in database 3 (db 0 has no such key)
    assert redis.command("EXISTS", "team:") == 0
    assert "db3:keys=1," in redis.command("INFO", "keyspace").decode()


# --- Redis down, stalled, back -----------------------------------------------------

def test_redis_down_is_a_storage_error_and_the_server_recovers_with_the_data(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis, name="a").start()
    stop_later(a)
    b = redis_tool_server(tmp_path / "b", redis, key=a.key, name="b").start()
    stop_later(b)
    assert saved(save(a, "kept", "acknowledged before the crash"))

    redis.stop(signal.SIGKILL)
    r = save(a, "during", "nowhere to go")
    assert r["isError"] is True and text_of(r) == NOT_SAVED
    r = get(b, "kept")
    assert r["isError"] is True and text_of(r) == NOT_READ
    assert text_of(call(a, "hello_mcp")) == "Hello I am MCPTool!"
    assert a.proc.alive() and b.proc.alive()

    redis.start()
    assert saved(eventually_saves(a, "after", "back again"))
    assert text_of(eventually_reads(b, "after")) == "back again"
    assert text_of(get(b, "kept")) == "acknowledged before the crash"
    assert "redis_connected" in a.proc.log()


def test_redis_restarted_between_two_calls_goes_unnoticed(tmp_path, stop_later):
    # The kept connection is dead; the call retries once on a fresh one.
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis).start()
    stop_later(a)
    assert saved(save(a, "one", "before the restart"))
    redis.stop()
    redis.start()
    assert saved(save(a, "two", "right after the restart"))
    assert text_of(get(a, "one")) == "before the restart"


def test_stalled_redis_costs_a_request_no_more_than_the_timeout(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis).start()
    stop_later(a)
    assert saved(save(a, "before", "stall"))
    client = StreamableClient(a).initialize()
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            t0 = time.monotonic()
            r = client.call("get_snippet", snippetname="before")["result"]
            assert time.monotonic() - t0 < 3 * TIMEOUT_MS / 1000.0 + 1.0
            assert r["isError"] is True and text_of(r) == NOT_READ
        assert text_of(client.call("hello_mcp")["result"]) == "Hello I am MCPTool!"
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert saved(eventually_saves(a, "after-stall", "resumed"))
    assert text_of(get(a, "before")) == "stall"


def test_each_new_connection_checks_durability_again(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis).start()
    stop_later(a)
    assert saved(save(a, "first", "ok"))
    redis.command("CONFIG", "SET", "appendfsync", "everysec")
    redis.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    r = save(a, "second", "refused")
    assert r["isError"] is True and text_of(r) == NOT_SAVED
    assert "appendfsync everysec" in a.proc.log()
    redis.command("CONFIG", "SET", "appendfsync", "always")
    assert saved(eventually_saves(a, "third", "accepted again"))


# --- start-up checks -----------------------------------------------------------------

@pytest.mark.parametrize("setting", ["appendfsync everysec", "appendonly no"])
def test_refuses_to_start_on_a_redis_that_does_not_fsync_every_write(tmp_path, stop_later, setting):
    redis = RedisServer(tmp_path / "redis",
                        appendfsync="everysec" if "everysec" in setting else "always").start()
    stop_later(redis)
    if setting == "appendonly no":
        redis.command("CONFIG", "SET", "appendonly", "no")
    srv = redis_tool_server(tmp_path / "ts", redis)
    with pytest.raises(RuntimeError) as err:
        srv.start()
    assert "exited with 1" in str(err.value)
    assert setting in str(err.value)
    assert "--redis-allow-async-durability" in str(err.value)


def test_allow_async_durability_starts_and_warns_once(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis", appendfsync="everysec").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "ts", redis, "--redis-allow-async-durability").start()
    stop_later(a)
    assert saved(save(a, "fast", "maybe lost"))
    redis.stop()
    redis.start()  # a reconnect checks again, but does not warn again
    assert saved(eventually_saves(a, "again", "after restart"))
    assert a.proc.log().count("event=redis_async_durability") == 1


def test_config_get_forbidden_by_acl_needs_the_flag(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    redis.command("ACL", "SETUSER", "limited", "on", ">limited-pass", "~*", "+@all", "-config")
    pw = tmp_path / "limited.pw"
    pw.write_text("limited-pass\n")
    creds = ["--redis-user", "limited", "--redis-password-file", str(pw)]
    with pytest.raises(RuntimeError) as err:
        redis_tool_server(tmp_path / "refused", redis, *creds).start()
    assert "CONFIG GET is not permitted" in str(err.value)
    assert "NOPERM" in str(err.value)
    a = redis_tool_server(tmp_path / "allowed", redis, *creds, "--redis-allow-async-durability").start()
    stop_later(a)
    assert "event=redis_async_durability" in a.proc.log()
    assert saved(save(a, "acl", "works"))
    assert text_of(get(a, "acl")) == "works"


def test_password_from_a_file_works_and_a_wrong_one_fails_at_start(tmp_path, stop_later):
    password = "right-horse-battery"
    redis = RedisServer(tmp_path / "redis", password=password).start()
    stop_later(redis)
    good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
    good.write_text(password + "\n")
    bad.write_text("wrong-staple-guess\n")

    a = redis_tool_server(tmp_path / "good", redis, "--redis-password-file", str(good)).start()
    stop_later(a)
    assert saved(save(a, "locked", "behind a password"))
    assert text_of(get(a, "locked")) == "behind a password"

    with pytest.raises(RuntimeError) as err:
        redis_tool_server(tmp_path / "bad", redis, "--redis-password-file", str(bad)).start()
    assert "exited with 1" in str(err.value)
    assert "refused the credentials" in str(err.value) and "WRONGPASS" in str(err.value)
    assert "wrong-staple-guess" not in str(err.value)

    with pytest.raises(RuntimeError, match="requires a password"):
        redis_tool_server(tmp_path / "none", redis).start()
    assert password not in a.proc.log()


def test_unreachable_redis_fails_at_start(tmp_path):
    from harness import free_port

    class Nowhere:
        port = free_port()

    with pytest.raises(RuntimeError, match="cannot connect to redis at 127.0.0.1:%d" % Nowhere.port):
        redis_tool_server(tmp_path, Nowhere).start()


def test_redis_flags_without_store_redis_are_a_usage_error():
    out = subprocess.run([str(TOOL_SERVER), "--insecure-no-auth", "--redis-port", "6380"],
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert "--store redis" in out.stderr


def test_help_lists_the_redis_flags():
    out = subprocess.run([str(TOOL_SERVER), "--help"], capture_output=True, text=True, timeout=5)
    for flag in ["--store", "--redis-host", "--redis-port", "--redis-user", "--redis-password-file",
                 "--redis-db", "--redis-prefix", "--redis-timeout-ms", "--redis-allow-async-durability"]:
        assert flag in out.stdout


# --- a stalled Redis holds up only the calls that need it ---------------------------

STALL = 3.0     # seconds Redis is stopped
PROMPT = 0.5    # what "at once" means for a call that needs no Redis while it is stopped
SLOW_MS = 10000  # --redis-timeout-ms long enough for a call to outlast the stall


class Background:
    """Runs fn in a thread; result() waits for it and returns what fn
    returned (or raises what it raised), and the seconds it took."""

    def __init__(self, fn, *args, **kwargs):
        self.value = self.error = None
        self.seconds = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kwargs):
        t0 = time.monotonic()
        try:
            self.value = fn(*args, **kwargs)
        except BaseException as e:  # noqa: B902 -- handed to the test thread
            self.error = e
        self.seconds = time.monotonic() - t0

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still waiting after %.0f s" % timeout
        if self.error is not None:
            raise self.error
        return self.value


def timed(fn, *args):
    t0 = time.monotonic()
    value = fn(*args)
    return value, time.monotonic() - t0


def healthz(server):
    r = requests.get(server.base + "/healthz", timeout=10)
    assert r.status_code == 200
    return r.json()


def tools_call(tool, id_, **arguments):
    return rpc("tools/call", {"name": tool, "arguments": arguments}, id_=id_)


def event_stream_call(client, tool, **arguments):
    """A tools/call whose answer comes as one event of a text/event-stream response."""
    msg = tools_call(tool, next_id(), **arguments)
    r = client.post(msg, headers={"Accept": "text/event-stream"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    data = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
    reply = json.loads(data[0])
    assert reply["id"] == msg["id"]
    return reply["result"]


_next = iter(range(1000, 10**9))


def next_id():
    return next(_next)


@contextmanager
def stopped(redis):
    """Redis stopped (SIGSTOP) for the block; continued whatever happens."""
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        redis.proc.send_signal(signal.SIGCONT)


def test_a_stalled_redis_delays_only_the_calls_that_need_it(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis, "--redis-timeout-ms", str(SLOW_MS)).start()
    stop_later(a)
    assert saved(save(a, "before", "saved before the stall"))
    json_client = StreamableClient(a).initialize()
    json_client2 = StreamableClient(a).initialize()
    events_client = StreamableClient(a).initialize()
    batch_client = StreamableClient(a, version="2025-03-26").initialize()
    sse = SseClient(a)
    hello = StreamableClient(a).initialize()
    try:
        with stopped(redis):
            stalled_at = time.monotonic()
            waiting = {
                "json save": Background(json_client.call, "save_snippet", snippetname="during",
                                        snippet="saved during the stall"),
                "json get": Background(json_client2.call, "get_snippet", snippetname="before"),
                "event-stream get": Background(event_stream_call, events_client, "get_snippet",
                                               snippetname="before"),
                "batch": Background(batch_client.post, [tools_call("get_snippet", 1, snippetname="before"),
                                                        tools_call("hello_mcp", 2),
                                                        tools_call("save_snippet", 3, snippetname="batched",
                                                                   snippet="in a batch")]),
            }
            # HTTP+SSE: the POST is accepted at once, the answer comes down the stream later
            sse_get = tools_call("get_snippet", next_id(), snippetname="before")
            r, took = timed(sse.post, sse_get)
            assert r.status_code == 202 and took < PROMPT
            time.sleep(0.3)  # the calls above are all waiting for Redis now

            for _ in range(3):
                result, took = timed(hello.call, "hello_mcp")
                assert text_of(result["result"]) == "Hello I am MCPTool!"
                assert took < PROMPT, "hello_mcp took %.2f s while Redis was stopped" % took
                body, took = timed(healthz, a)
                assert body == {"status": "ok"} and took < PROMPT, "/healthz took %.2f s" % took
                time.sleep(0.2)
            # the SSE session's own hello_mcp overtakes its get_snippet on the stream
            reply = sse.request("tools/call", {"name": "hello_mcp", "arguments": {}})
            assert text_of(reply["result"]) == "Hello I am MCPTool!"
            for name, call_ in waiting.items():
                assert not call_.done(), name + " answered while Redis was stopped"
            assert sse.events.empty()
            time.sleep(max(0.0, STALL - (time.monotonic() - stalled_at)))

        resumed_at = time.monotonic()
        assert text_of(waiting["json save"].result()["result"]) == "Snippet 'saved during the stall' saved successfully"
        assert text_of(waiting["json get"].result()["result"]) == "saved before the stall"
        assert text_of(waiting["event-stream get"].result()) == "saved before the stall"
        batch = waiting["batch"].result()
        assert batch.status_code == 200, batch.text
        assert [m["id"] for m in batch.json()] == [1, 2, 3]
        assert [text_of(m["result"]) for m in batch.json()] == [
            "saved before the stall", "Hello I am MCPTool!", "Snippet 'in a batch' saved successfully"]
        kind, data = sse.next_event(timeout=10)
        assert kind == "message"
        reply = json.loads(data)
        assert reply["id"] == sse_get["id"] and text_of(reply["result"]) == "saved before the stall"
        for name, call_ in waiting.items():
            assert call_.seconds >= STALL - 0.5, name
        assert time.monotonic() - resumed_at < 5.0
    finally:
        sse.close()

    assert text_of(get(a, "before")) == "saved before the stall"
    assert text_of(get(a, "during")) == "saved during the stall"
    assert text_of(get(a, "batched")) == "in a batch"
    assert a.proc.alive()


def test_calls_waiting_on_a_stalled_redis_time_out_while_others_are_answered(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis).start()  # --redis-timeout-ms 300
    stop_later(a)
    assert saved(save(a, "kept", "from before"))
    clients = [StreamableClient(a).initialize() for _ in range(4)]
    hello = StreamableClient(a).initialize()
    with stopped(redis):
        waiting = [Background(c.call, "save_snippet", snippetname="lost", snippet="x") for c in clients[:2]]
        waiting += [Background(c.call, "get_snippet", snippetname="kept") for c in clients[2:]]
        result, took = timed(hello.call, "hello_mcp")
        assert text_of(result["result"]) == "Hello I am MCPTool!" and took < 0.25
        results = [w.result(timeout=10) for w in waiting]
        # each one within a connect, a handshake and its command, each bounded by the timeout
        assert all(w.seconds < 3 * TIMEOUT_MS / 1000.0 + 1.0 for w in waiting)
        assert [text_of(r["result"]) for r in results] == [NOT_SAVED] * 2 + [NOT_READ] * 2
        assert all(r["result"]["isError"] is True for r in results)
        assert text_of(hello.call("hello_mcp")["result"]) == "Hello I am MCPTool!"
    assert "redis_connection_lost" in a.proc.log()
    assert text_of(eventually_reads(a, "kept")) == "from before"


def test_a_client_that_leaves_while_its_call_waits_for_redis(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis, "--redis-timeout-ms", str(SLOW_MS)).start()
    stop_later(a)
    client = StreamableClient(a).initialize()
    body = json.dumps(tools_call("save_snippet", 7, snippetname="orphan", snippet="nobody reads this")).encode()
    head = "".join("%s: %s\r\n" % kv for kv in client.headers().items())
    with stopped(redis):
        conns = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\n" + head.encode() +
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            conns.append(s)
        time.sleep(0.3)
        conns[0].close()                                   # FIN
        conns[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conns[1].close()                                   # RST
        deadline = time.monotonic() + 5
        while a.proc.log().count("event=client_gone") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.proc.log().count("event=client_gone") == 2
        assert text_of(client.call("hello_mcp")["result"]) == "Hello I am MCPTool!"
        assert requests.get(a.base + "/status", timeout=5).status_code == 200
    # the third connection is still there and gets its answer
    conns[2].settimeout(10)
    answer = b""
    while b"saved successfully" not in answer:
        chunk = conns[2].recv(65536)
        assert chunk, answer
        answer += chunk
    conns[2].close()
    assert answer.startswith(b"HTTP/1.1 200")
    # the leavers' saves still ran: their commands had been sent to Redis
    assert text_of(get(a, "orphan")) == "nobody reads this"
    assert a.proc.alive()
    assert text_of(call(a, "hello_mcp")) == "Hello I am MCPTool!"


def test_shutdown_while_calls_wait_for_redis(tmp_path, stop_later):
    redis = RedisServer(tmp_path / "redis").start()
    stop_later(redis)
    a = redis_tool_server(tmp_path / "a", redis, "--redis-timeout-ms", str(SLOW_MS)).start()
    streamable = StreamableClient(a).initialize()
    sse = SseClient(a)
    try:
        with stopped(redis):
            waiting = Background(streamable.call, "save_snippet", snippetname="cut", snippet="short")
            assert sse.post(tools_call("get_snippet", next_id(), snippetname="cut")).status_code == 202
            time.sleep(0.3)
            t0 = time.monotonic()
            assert a.stop() == 0  # SIGTERM; under SANITIZE=1 also: no sanitizer report
            assert time.monotonic() - t0 < 3.0
            with pytest.raises(requests.ConnectionError):
                waiting.result()
    finally:
        sse.close()
