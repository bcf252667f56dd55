"""Fixtures shared by the integration suite.

Real processes only: nginx loading the freshly built module, the tool
server, the OpenID provider.  Each module gets its own temporary folder and
free ports; every process is stopped at teardown, and nginx's error log is
checked for [alert]/[emerg] lines (and sanitizer reports) at the end.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import harness  # noqa: E402
from harness import MODULE_SO, NGINX, ROOT, Proc, free_port  # noqa: E402
from harness import nginx_env, sanitizer_reports  # noqa: E402

render_config = __import__("render-config")


# A run stopped with SIGTERM (a CI timeout, `timeout`) unwinds like Ctrl-C,
# so fixtures and harness.stop_all_live() still stop every child process.
signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


def pytest_runtest_makereport(item, call):
    """On failure, attach the logs of every process still running."""
    if call.when == "call" and call.excinfo is not None:
        for proc in list(harness.LIVE):
            text = proc.log()[-3000:]
            item.add_report_section("call", "log of %s" % proc.name, text)
        for nx in list(NginxInstance.LIVE):
            item.add_report_section("call", "nginx error.log",
                                    nx.error_log()[-3000:])


def write_secrets(workdir):
    """The files nginx.conf.example reads, made once per workdir."""
    import secrets as _secrets
    workdir = Path(workdir)
    keys = workdir / "keys"
    if not keys.exists():
        keys.write_text(subprocess.run([str(ROOT / "scripts" / "mcp-auth-keygen"), "k1"],
                                       capture_output=True, text=True, check=True).stdout)
    for name, nbytes in (("identity.key", 32), ("idp-client-secret", 16), ("admin.key", 32),
                         ("exchange-client.secret", 24),
                         ("service-client.secret", 24), ("enterprise-app.secret", 24)):
        p = workdir / name
        if not p.exists():
            p.write_text(_secrets.token_hex(nbytes) + "\n")
    if not (workdir / "tls.crt").exists():
        # a self-signed certificate for the example's https server
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(workdir / "tls.key"), "-out", str(workdir / "tls.crt")],
                       check=True, capture_output=True)


class NginxInstance:
    """The packaged nginx binary running our module from a rendered config."""

    LIVE = []

    def __init__(self, workdir, port=None, tool_port=None, idp=None, workers=1,
                 http_extra="", replace=(), example=None, tls_port=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_secrets(self.workdir)
        self.port = port or free_port()
        self.tls_port = tls_port or free_port()
        self.tool_port = tool_port or free_port()
        self.conf = render_config.render(example or ROOT / "nginx.conf.example", MODULE_SO,
                                         self.workdir, self.port, self.tool_port, idp=idp,
                                         workers=workers, http_extra=http_extra,
                                         replace=replace, tls_port=self.tls_port)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def tls_url(self):
        return "https://127.0.0.1:%d" % self.tls_port

    def test_config(self):
        return subprocess.run([NGINX, "-t", "-p", str(self.workdir), "-c", str(self.conf)],
                              capture_output=True, text=True,
                              env=dict(os.environ, **nginx_env(self.workdir)))

    def start(self):
        self.proc = Proc("nginx", [NGINX, "-p", self.workdir, "-c", self.conf,
                                   "-g", "daemon off;"],
                         self.workdir, port=self.port, env=nginx_env(self.workdir)).start()
        NginxInstance.LIVE.append(self)
        return self

    def workers(self):
        """The pids of the master's children (its workers)."""
        return subprocess.run(["pgrep", "-P", str(self.proc.popen.pid)], capture_output=True,
                              text=True).stdout.split()

    def reload(self, wait=False):
        """nginx -s reload; with wait, until every worker from before has
        exited (none may be holding a stream) and new ones serve."""
        old = set(self.workers()) if wait else set()
        subprocess.run([NGINX, "-p", str(self.workdir), "-c", str(self.conf), "-s", "reload"],
                       check=True, capture_output=True,
                       env=dict(os.environ, **nginx_env(self.workdir)))
        if wait:
            from harness import wait_for
            wait_for(lambda: self.workers() and not old & set(self.workers()), 10)

    def error_log(self):
        p = self.workdir / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self):
        if self.proc is not None:
            self.proc.stop(sig=__import__("signal").SIGQUIT)
            self.proc = None
        if self in NginxInstance.LIVE:
            NginxInstance.LIVE.remove(self)

    def assert_clean_log(self):
        bad = [line for line in self.error_log().splitlines()
               if "[alert]" in line or "[emerg]" in line or "[crit]" in line
               or "AddressSanitizer" in line or "runtime error:" in line]
        assert not bad, "nginx error log has problems:\n" + "\n".join(bad[:20])
        # make test SANITIZE=1: reports of nginx and of the tool server (same workdir)
        reports = sanitizer_reports(self.workdir)
        assert not reports, "sanitizer reports:\n" + reports
        for log in [self.workdir / "nginx.log"] + list(self.workdir.glob("tool-server*.log")):
            if not log.exists():
                continue
            bad = [line for line in log.read_text(errors="replace").splitlines()
                   if "Sanitizer" in line or "runtime error:" in line]
            assert not bad, "%s has sanitizer reports:\n%s" % (log, "\n".join(bad[:20]))


def nginx_t_with(tmp_path, extra):
    """`nginx -t` of the example with `extra` in http{}; %(short)s and
    %(secret)s in it name a too-short and a good secret file."""
    (tmp_path / "short").write_text("tooshort\n")
    (tmp_path / "secret").write_text("s" * 40 + "\n")
    nx = NginxInstance(tmp_path / "nx", http_extra=extra % {"short": tmp_path / "short",
                                                           "secret": tmp_path / "secret"} + "\n")
    return nx.test_config()


@pytest.fixture(scope="session")
def built():
    """The artefacts `make` produces; `make test` builds them first."""
    missing = [p for p in (MODULE_SO, harness.TOOL_SERVER) if not p.exists()]
    if missing:
        pytest.fail("not built: %s (run `make` first)" % ", ".join(map(str, missing)))
    return True


@pytest.fixture
def stop_later():
    """Collects servers (anything with stop()) to stop after the test."""
    started = []
    yield started.append
    for s in reversed(started):
        s.stop()


@pytest.fixture(scope="module")
def nginx_factory(tmp_path_factory, built):
    """Starts nginx instances for a test module; stops them all afterwards."""
    started = []

    def make(name="nginx", **kw):
        nx = NginxInstance(tmp_path_factory.mktemp(name), **kw)
        started.append(nx)
        return nx

    yield make
    for nx in started:
        nx.stop()
    for nx in started:
        nx.assert_clean_log()


@pytest.fixture(scope="module")
def gateway(nginx_factory):
    """nginx with the example configuration (no tool server behind it)."""
    return nginx_factory("gateway").start()




class Stack:
    """The whole product on loopback: provider, tool server, gateway.

    Secrets are generated into the workdir, where the rendered
    nginx.conf.example expects them (/etc/nginx/mcp-auth/ -> workdir).
    """

    def __init__(self, workdir, idp_options=None, tool_args=(), replace=(), http_extra="",
                 workers=1):
        self.idp = self.tool = self.nginx = None
        try:
            self._start(workdir, idp_options, tool_args, replace, http_extra, workers)
        except BaseException:
            self.stop()           # whatever did start must not outlive the test
            raise

    def _start(self, workdir, idp_options, tool_args, replace, http_extra, workers):
        from idp_util import start_idp

        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tls_port = free_port()
        self.tls_url = "https://127.0.0.1:%d" % self.tls_port
        write_secrets(self.workdir)
        self.identity_key = (self.workdir / "identity.key").read_text().strip()
        self.idp_secret = (self.workdir / "idp-client-secret").read_text().strip()

        opts = dict(client_id="mcp-gateway", client_secret=self.idp_secret,
                    redirect_uri=[self.url + "/oauth-callback", self.tls_url + "/oauth-callback"])
        opts.update(idp_options or {})
        self.idp, self.issuer, self.idp_info = start_idp(self.workdir / "idp", **opts)
        self.demo_password = self.idp_info["demo_password"]
        self.alice_password = self.idp_info["alice_password"]
        self.viewer_password = self.idp_info["viewer_password"]
        self.outsider_password = self.idp_info["outsider_password"]

        # nginx's configuration first: the tool server is given the per-tool
        # scope rules written there (render-config.tool_scope_args)
        self.tool_port = free_port()
        # the suite registers and logs in far more than the example's limits allow
        relaxed = [("rate=60r/m", "rate=60000r/m"), ("rate=20r/s", "rate=20000r/s"),
                   ("rate=5r/s", "rate=5000r/s")]
        self.nginx = NginxInstance(self.workdir, port=self.port, tool_port=self.tool_port,
                                   idp=self.issuer, replace=relaxed + list(replace),
                                   http_extra=http_extra, workers=workers,
                                   tls_port=self.tls_port)
        self.tool_scope_args = render_config.tool_scope_args(self.nginx.conf)

        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.tool_args = list(tool_args)
        self.tool = None
        self.start_tool_server(self.tool_port)
        self.nginx.start()

    def start_tool_server(self, port=0):
        self.tool = Proc("tool-server",
                         [harness.TOOL_SERVER, "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", self.data_dir,
                          "--identity-key", self.workdir / "identity.key"]
                         + self.tool_scope_args + self.tool_args,
                         self.workdir, ready_line=r"listening on 127\.0\.0\.1:(\d+)").start()
        self.tool_port = int(self.tool.match.group(1))
        return self.tool

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        if self.tool:
            self.tool.stop()
        if self.idp:
            self.idp.stop()


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory, built):
    started = []

    def make(name="stack", **kw):
        st = Stack(tmp_path_factory.mktemp(name), **kw)
        started.append(st)
        return st

    yield make
    for st in started:
        st.stop()
    for st in started:
        st.nginx.assert_clean_log()


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory()
