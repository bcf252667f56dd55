"""A private Redis primary, its replicas and Sentinels, for the failover tests.

    from sentinel_util import SentinelSet

    s = SentinelSet(workdir, password="s3cret", sentinel_password="watch",
                    replicas=1, sentinels=3).start()
    s.sentinel_addrs          # [("127.0.0.1", port), ...]
    s.master_name             # "mcp"
    s.primary()               # the RedisServer the Sentinels name now
    s.replicas()              # the other started servers
    s.sentinel_command(i, "SENTINEL", "masters")   # one command to Sentinel i
    old = s.kill_primary()    # SIGKILL (or sig=...); returns that RedisServer
    s.wait_failover(old)      # seconds until a new primary answers ROLE master
    s.restart(old)            # same port and dir, a replica of the primary again
    s.wait_replicas_in_sync(10)
    s.stop()

The Redis servers are redis_util.RedisServer processes (appendonly yes,
appendfsync always, loopback, a free port each, data in workdir/redis-N/),
each with `masterauth` when there is a password, since any of them may be
made a replica of another; the replicas start with `replicaof` the first
one, the primary.  The Sentinels are /usr/bin/redis-sentinel
(REDIS_SENTINEL_BIN overrides) from configuration files (0600) in
workdir/sentinel-N/, which they rewrite as they learn (the folder is
theirs); `sentinel resolve-hostnames no`: every address is an IP.  With
sentinel_password the Sentinels require it of clients (`requirepass`) and
of each other.  Each process is a harness.Proc: its log sits in its folder,
a failing test shows it, and harness.stop_all_live() stops it at exit at
the latest.  start() returns once every Sentinel knows the primary, every
replica and the other Sentinels, and the replicas are in sync: a failover
can happen from then on.
"""

import os
import signal
import socket
import time
from pathlib import Path

from harness import Proc, free_port
from redis_util import HOST, RedisError, RedisServer, _encode, _read

REDIS_SENTINEL = os.environ.get("REDIS_SENTINEL_BIN", "/usr/bin/redis-sentinel")


def command(host, port, *args, password=None, user=None, timeout=5.0):
    """One command on a new connection (AUTH first when a password is given);
    the decoded reply, as RedisServer.command."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        f = s.makefile("rb")
        if password:
            s.sendall(_encode(["AUTH"] + ([user] if user else []) + [password]))
            _read(f)
        s.sendall(_encode(list(args)))
        return _read(f)


def _info(text):
    """INFO's answer as a dict (bytes or str in)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


class Sentinel:
    """One redis-sentinel process."""

    def __init__(self, workdir, index, master_name, primary_port, quorum, password, sentinel_password,
                 down_after_ms, failover_timeout_ms):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port()
        self.index = index
        self.password = sentinel_password
        self.conf = self.workdir / "sentinel.conf"
        lines = ["bind %s" % HOST, "port %d" % self.port, "daemonize no", 'logfile ""',
                 'dir "%s"' % self.workdir, "sentinel resolve-hostnames no",
                 "sentinel monitor %s %s %d %d" % (master_name, HOST, primary_port, quorum),
                 "sentinel down-after-milliseconds %s %d" % (master_name, down_after_ms),
                 "sentinel failover-timeout %s %d" % (master_name, failover_timeout_ms),
                 "sentinel parallel-syncs %s 1" % master_name]
        if password:
            lines.append('sentinel auth-pass %s "%s"' % (master_name, password))
        if sentinel_password:
            lines.append('requirepass "%s"' % sentinel_password)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.proc = Proc("sentinel-%d-%d" % (self.index, self.starts), [REDIS_SENTINEL, self.conf], self.workdir,
                         ready_line=r"Sentinel ID is", port=self.port).start()
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        rc = self.proc.stop(sig)
        self.proc = None
        return rc

    def command(self, *args, timeout=5.0):
        return command(self.host, self.port, *args, password=self.password, timeout=timeout)


class SentinelSet:
    """A primary, `replicas` replicas and `sentinels` Sentinels watching them
    under `master_name`, all on loopback."""

    def __init__(self, workdir, password=None, sentinel_password=None, master_name="mcp", replicas=1,
                 sentinels=3, down_after_ms=1000, failover_timeout_ms=3000):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.sentinel_password = sentinel_password
        self.master_name = master_name
        self.servers = []
        for i in range(1 + replicas):
            server = RedisServer(self.workdir / ("redis-%d" % i), password=password)
            # No 5 s wait for more replicas before a full sync (restart()).
            extra = ["repl-diskless-sync-delay 0"]
            if password:
                extra.append('masterauth "%s"' % password)
            if i > 0:
                extra.append("replicaof %s %d" % (HOST, self.servers[0].port))
            self._append_conf(server, extra)
            self.servers.append(server)
        quorum = sentinels // 2 + 1
        self.sentinels = [Sentinel(self.workdir / ("sentinel-%d" % i), i, master_name, self.servers[0].port,
                                   quorum, password, sentinel_password, down_after_ms, failover_timeout_ms)
                          for i in range(sentinels)]
        self.sentinel_addrs = [(s.host, s.port) for s in self.sentinels]

    @staticmethod
    def _append_conf(server, lines):
        if lines:
            with open(server.conf, "a") as f:
                f.write("\n".join(lines) + "\n")

    # --- start, stop -------------------------------------------------------------

    def start(self, timeout=30):
        for server in self.servers:
            server.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_replicas_in_sync(timeout)
        self._wait(self._sentinels_settled, timeout, "the Sentinels to know each other and the replicas")
        return self

    def _sentinels_settled(self):
        want_replicas = len(self.servers) - 1
        for s in self.sentinels:
            try:
                m = self._pairs(s.command("SENTINEL", "master", self.master_name))
            except (OSError, ConnectionError, RedisError):
                return False
            if int(m.get("num-other-sentinels", 0)) != len(self.sentinels) - 1:
                return False
            if int(m.get("num-slaves", 0)) != want_replicas:
                return False
        return True

    def stop(self):
        """Stops the Sentinels, then the servers (a stopped one is continued
        first, so that SIGTERM ends it at once)."""
        for s in self.sentinels:
            self._cont(s.proc)
            s.stop()
        for server in self.servers:
            self._cont(server.proc)
            server.stop()

    @staticmethod
    def _cont(proc):
        if proc is not None and proc.alive():
            try:
                os.killpg(proc.popen.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    # --- who is who --------------------------------------------------------------

    def sentinel_command(self, i, *args, timeout=5.0):
        return self.sentinels[i].command(*args, timeout=timeout)

    def named_addr(self, i):
        """The (host, port) Sentinel i names for the master, or None."""
        try:
            r = self.sentinel_command(i, "SENTINEL", "get-master-addr-by-name", self.master_name, timeout=2.0)
        except (OSError, ConnectionError, RedisError):
            return None
        if not r:
            return None
        return r[0].decode(), int(r[1])

    def _server_at(self, port):
        for server in self.servers:
            if server.port == port:
                return server
        return None

    def primary(self):
        """The RedisServer the first Sentinel that answers names."""
        for i in range(len(self.sentinels)):
            addr = self.named_addr(i)
            if addr is not None:
                return self._server_at(addr[1])
        raise RuntimeError("no Sentinel names a primary")

    def replicas(self):
        """Every started server but the primary."""
        p = self.primary()
        return [s for s in self.servers if s is not p and s.proc is not None]

    def role(self, server):
        """ROLE's first element ("master", "slave"), or None when it does not answer."""
        try:
            r = server.command("ROLE", timeout=2.0)
        except (OSError, ConnectionError, RedisError):
            return None
        return r[0].decode() if isinstance(r[0], bytes) else r[0]

    # --- failover ----------------------------------------------------------------

    def kill_primary(self, sig=signal.SIGKILL):
        """Sends sig to the primary and returns it.  SIGKILL and SIGTERM wait
        for it to exit; SIGSTOP leaves it stopped (restart() or stop() ends it)."""
        server = self.primary()
        if sig in (signal.SIGSTOP, signal.SIGTSTP):
            os.killpg(server.proc.popen.pid, sig)
        else:
            server.stop(sig)
        return server

    def wait_failover(self, old, timeout=30):
        """Seconds until every Sentinel names a primary other than `old`
        that answers ROLE master."""
        def switched():
            addrs = {self.named_addr(i) for i in range(len(self.sentinels))}
            if len(addrs) != 1:
                return False
            addr = addrs.pop()
            if addr is None or addr[1] == old.port:
                return False
            server = self._server_at(addr[1])
            return server is not None and self.role(server) == "master"
        return self._wait(switched, timeout, "a failover away from port %d" % old.port)

    def restart(self, server, timeout=30):
        """Starts server again (ended first if it still runs) on its port and
        dir, as a replica of the current primary; returns once it is a
        connected replica of it."""
        if server.proc is not None:
            self._cont(server.proc)
            server.stop(signal.SIGKILL)
        primary = self.primary()
        assert primary is not server, "restart() of the primary itself"
        # Started as a replica, so that it never answers as a second primary
        # (Sentinel would convert it, but only seconds later).
        lines = [l for l in server.conf.read_text().splitlines() if not l.startswith(("replicaof", "slaveof"))]
        lines.append("replicaof %s %d" % (HOST, primary.port))
        fd = os.open(server.conf, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        server.start()

        def linked():
            try:
                info = _info(server.command("INFO", "replication", timeout=2.0))
            except (OSError, ConnectionError, RedisError):
                return False
            return (info.get("role") == "slave" and info.get("master_port") == str(primary.port)
                    and info.get("master_link_status") == "up")
        self._wait(linked, timeout, "port %d to be a replica of port %d" % (server.port, primary.port))
        return server

    def wait_replicas_in_sync(self, timeout=10):
        """Seconds until the primary has every other running server as an
        online replica that acknowledged everything the primary had when
        this was called (the Sentinels' hello messages move the primary's
        offset every second or so, so "at the same offset" may never be
        seen on a busy machine)."""
        target = []

        def in_sync():
            try:
                primary = self.primary() if self._sentinels_up() else self.servers[0]
                info = _info(primary.command("INFO", "replication", timeout=2.0))
            except (OSError, ConnectionError, RedisError, RuntimeError):
                return False
            if info.get("role") != "master":
                return False
            want = len([s for s in self.servers if s is not primary and s.proc is not None])
            if int(info.get("connected_slaves", 0)) != want:
                return False
            if not target:
                target.append(int(info.get("master_repl_offset", 0)))
            for k in range(want):
                fields = dict(kv.split("=", 1) for kv in info.get("slave%d" % k, "").split(",") if "=" in kv)
                if fields.get("state") != "online" or int(fields.get("offset", -1)) < target[0]:
                    return False
            return True
        return self._wait(in_sync, timeout, "the replicas to be in sync")

    def _sentinels_up(self):
        return any(s.proc is not None for s in self.sentinels)

    # --- helpers -----------------------------------------------------------------

    @staticmethod
    def _pairs(flat):
        it = iter(flat)
        return {k.decode(): v.decode() for k, v in zip(it, it)}

    def state(self):
        """What each server and Sentinel says now, one line each: the text a
        failed wait ends with, so that a failure can be told from its log."""
        lines = []
        for server in self.servers:
            if server.proc is None:
                lines.append("redis %d: not running" % server.port)
                continue
            try:
                info = _info(server.command("INFO", "replication", timeout=2.0))
            except (OSError, ConnectionError, RedisError) as e:
                lines.append("redis %d: no answer (%s)" % (server.port, e))
                continue
            if info.get("role") == "master":
                replicas = [info.get("slave%d" % k, "") for k in range(int(info.get("connected_slaves", 0)))]
                lines.append("redis %d: master offset %s, replicas [%s]"
                             % (server.port, info.get("master_repl_offset"), "; ".join(replicas)))
            else:
                lines.append("redis %d: %s of %s, link %s, offset %s"
                             % (server.port, info.get("role"), info.get("master_port"),
                                info.get("master_link_status"), info.get("slave_repl_offset")))
        for i, s in enumerate(self.sentinels):
            if s.proc is None:
                lines.append("sentinel %d: not running" % s.port)
                continue
            try:
                m = self._pairs(s.command("SENTINEL", "master", self.master_name, timeout=2.0))
            except (OSError, ConnectionError, RedisError) as e:
                lines.append("sentinel %d: no answer (%s)" % (s.port, e))
                continue
            lines.append("sentinel %d: master %s (%s), epoch %s, %s replicas, %s other sentinels"
                         % (s.port, m.get("port"), m.get("flags"), m.get("config-epoch"),
                            m.get("num-slaves"), m.get("num-other-sentinels")))
        return "\n".join(lines)

    def _wait(self, predicate, timeout, what):
        start = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError("not within %.1f s: %s; now:\n%s" % (timeout, what, self.state()))
            time.sleep(0.1)
