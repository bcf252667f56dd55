"""Process helpers for the integration suite.

Every server a test needs is a real process started on a free loopback port
inside a per-module temporary folder, waited for until it answers, and always
stopped at teardown.  Logs are kept in that folder and printed when a test
fails (see conftest.py).
"""

import atexit
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# a relative MCP_BUILD_DIR is taken from the repository's root: the tests
# start processes in folders of their own
BUILD = ROOT / os.environ.get("MCP_BUILD_DIR", "build")
MODULE_SO = BUILD / "ngx_http_mcp_auth_module.so"
TOOL_SERVER = BUILD / "mcp-tool-server"
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
NODE = os.environ.get("NODE_BIN", "node")

# `make test SANITIZE=1` exports MCP_SANITIZE=1 (and MCP_BUILD_DIR=build-san):
# the module and the tool server are then built with ASan+UBSan.  Our
# processes write sanitizer reports to files "sanitizer.*" in their workdir,
# which the teardown checks (sanitizer_reports()).
SANITIZE = os.environ.get("MCP_SANITIZE") == "1"


def _asan_runtime():
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    return out.stdout.strip()


def _cxx_runtime():
    out = subprocess.run(["gcc", "-print-file-name=libstdc++.so.6"], capture_output=True, text=True)
    return out.stdout.strip()


def sanitizer_env(workdir, preload=False, leaks=True, to_files=True):
    """Environment for a sanitized process (empty unless MCP_SANITIZE=1).

    to_files: reports go to files "sanitizer.<pid>" in workdir; else to
    stderr.  preload: LD_PRELOAD the ASan runtime, for the packaged
    (uninstrumented) /usr/sbin/nginx loading the sanitized module, because
    ASan must be the first library in the process.  leaks=False turns
    LeakSanitizer off."""
    if not SANITIZE:
        return {}
    common = "halt_on_error=1:abort_on_error=0"
    if to_files:
        common += ":log_path=%s" % (Path(workdir) / "sanitizer")
    env = {
        "ASAN_OPTIONS": "%s:detect_leaks=%d" % (common, 1 if leaks else 0),
        "UBSAN_OPTIONS": "%s:print_stacktrace=1" % common,
        "LSAN_OPTIONS": common,
    }
    if preload:
        # and the C++ runtime right after it: ASan finds the real __cxa_throw
        # when it starts, and nginx loads libstdc++ only later, with the
        # module; without it any exception stops the worker on an ASan CHECK.
        # The core throws only when something fails (an allocation, OpenSSL,
        # an internal inconsistency), and its C boundary turns that into a
        # 500 and a log line: with the runtime preloaded it does so here too
        env["LD_PRELOAD"] = "%s %s" % (_asan_runtime(), _cxx_runtime())
    return env


def nginx_env(workdir):
    """Extra environment for any run of NGINX with our module.

    Reports go to stderr, not to files: the workers run as "nobody" and
    cannot write into the test's (root-owned, 0700) workdir, while nginx
    points their stderr at error.log, which the teardown reads (the master's
    stderr before that is nginx.log, read too).  LeakSanitizer is off for
    nginx only: its master and workers exit without freeing their cycle pools
    and OpenSSL/PCRE state, by design; the core's own leaks are caught by the
    sanitized unit tests and the fuzzers, which keep it on."""
    return sanitizer_env(workdir, preload=True, leaks=False, to_files=False)


def sanitizer_reports(workdir):
    """Text of every sanitizer report file under workdir ("" when none)."""
    out = []
    for p in sorted(Path(workdir).rglob("sanitizer.*")):
        out.append("==> %s <==\n%s" % (p, p.read_text(errors="replace")[-6000:]))
    return "\n".join(out)

# every live Proc, so a failing test can show all logs
LIVE = []


def stop_all_live():
    """Stops every process still running; the last line of defence when a
    fixture failed half-way or the run was interrupted."""
    for proc in list(LIVE):
        try:
            proc.stop(timeout=5)
        except Exception:  # noqa: BLE001 -- keep stopping the others
            pass


atexit.register(stop_all_live)


_handed_out = set()


def _ephemeral_floor():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port that was free a moment ago on 127.0.0.1, never the same twice
    in this process.  Taken from below the kernel's ephemeral range: a port
    picked here stays unbound until its server starts, and meanwhile anything
    that listens on port 0 (the provider, a tool server, a client) could
    otherwise be given the very same one."""
    import random
    floor = _ephemeral_floor()
    if floor > 12000:
        for _ in range(500):
            port = random.randint(10000, floor - 1)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for(predicate, timeout, step=0.1):
    """Seconds until predicate() held; fails after timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            import pytest  # only the tests call this
            pytest.fail("not within %.1f s" % timeout)
        time.sleep(step)


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
        self.env.update(sanitizer_env(self.workdir))  # nothing unless MCP_SANITIZE=1
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
