"""Process helpers for the integration suite.

Every server a test needs is a real process started on a free loopback port
inside a per-module temporary folder, waited for until it answers, and always
stopped at teardown.  Logs are kept in that folder and printed when a test
fails (see conftest.py).
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("MCP_BUILD_DIR", ROOT / "build"))
MODULE_SO = BUILD / "ngx_http_mcp_auth_module.so"
TOOL_SERVER = BUILD / "mcp-tool-server"
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
NODE = os.environ.get("NODE_BIN", "node")

# every live Proc, so a failing test can show all logs
LIVE = []


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, host="127.0.0.1", timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nothing listening on %s:%d after %.1fs" % (host, port, timeout))


class Proc:
    """A child process whose stdout+stderr go to a log file."""

    def __init__(self, name, argv, workdir, env=None, ready_line=None, port=None,
                 timeout=20.0):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / ("%s.log" % name)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.ready_line = re.compile(ready_line) if ready_line else None
        self.port = port
        self.timeout = timeout
        self.match = None
        self.popen = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=self.env,
                                      cwd=str(self.workdir), start_new_session=True)
        LIVE.append(self)
        deadline = time.monotonic() + self.timeout
        if self.ready_line is not None:
            while time.monotonic() < deadline:
                m = self.ready_line.search(self.log())
                if m:
                    self.match = m
                    break
                if self.popen.poll() is not None:
                    raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.popen.returncode,
                                                                  self.log()[-4000:]))
                time.sleep(0.05)
            else:
                raise TimeoutError("%s not ready:\n%s" % (self.name, self.log()[-4000:]))
        if self.port is not None:
            wait_for_port(self.port, timeout=max(0.5, deadline - time.monotonic()), proc=self.popen)
        return self

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the process (and its group); returns its exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        if self in LIVE:
            LIVE.remove(self)
        self._log.close()
        return self.popen.returncode

    def kill9(self):
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)
        if self in LIVE:
            LIVE.remove(self)
