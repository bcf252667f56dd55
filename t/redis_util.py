"""A private redis-server for the tests.

    from redis_util import RedisServer, RedisError

    redis = RedisServer(workdir, password="s3cret").start()
    redis.host, redis.port       # 127.0.0.1 and a port that was free
    redis.command("HGET", k, f)  # one command: bytes, int, str (status), list or
                                 # None; an error reply raises RedisError
    redis.stop()                 # SIGTERM (or stop(signal.SIGKILL)); data stays in workdir
    redis.start()                # again on the same port and dir: the AOF is reloaded

It runs /usr/bin/redis-server (REDIS_SERVER_BIN overrides) on loopback with
appendonly yes, appendfsync always (appendfsync="everysec" to get a Redis that
does not fsync every write), no RDB snapshots, from a configuration file
(0600) in workdir, so a password is on no command line.  The process is a
harness.Proc: its log is workdir/redis-N.log (N counts starts), a failing
test shows it, and harness.stop_all_live() stops it at exit at the latest.
"""

import os
import signal
import socket
from pathlib import Path

from harness import Proc, free_port

REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "/usr/bin/redis-server")
HOST = "127.0.0.1"


class RedisError(Exception):
    """An error reply from Redis (its text is the message)."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise ConnectionError("unexpected reply from redis: %r" % line)


class RedisServer:
    """One redis-server process on a free loopback port, data in workdir."""

    def __init__(self, workdir, password=None, appendfsync="always", port=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = port or free_port()
        self.password = password
        self.conf = self.workdir / "redis.conf"
        lines = ["bind %s" % HOST, "port %d" % self.port, "daemonize no", 'logfile ""',
                 'dir "%s"' % self.workdir, "appendonly yes", "appendfsync %s" % appendfsync,
                 'save ""']
        if password:
            lines.append('requirepass "%s"' % password)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.starts = 0

    def start(self):
        # A fresh log per start, so the ready line is this start's.
        self.starts += 1
        self.proc = Proc("redis-%d" % self.starts, [REDIS_SERVER, self.conf], self.workdir,
                         ready_line=r"Ready to accept connections", port=self.port).start()
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; its data stays for the next start()."""
        if self.proc is None:
            return None
        rc = self.proc.stop(sig)
        self.proc = None
        return rc

    def command(self, *args, timeout=5.0):
        """Runs one command on a new connection (authenticated when the
        server has a password) and returns the decoded reply."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_encode(["AUTH", self.password]))
                _read(f)
            s.sendall(_encode(list(args)))
            return _read(f)
