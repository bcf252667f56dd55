"""The Debian packages (`make deb`, debian/): built, installed, run and purged.

dpkg installs them into a copy-on-write view of this very machine: an
overlayfs whose lower layer is / and whose upper layer is a tmpfs, mounted in
a mount namespace of its own (unshare) and entered with nsenter.  Everything
in it is real -- dpkg and the packages' maintainer scripts, adduser, the
packaged nginx, the installed tool server, the README's steps -- and nothing
of it reaches the machine: its nginx configuration, dpkg database and users
stay as they were, and the tmpfs goes with the namespace, also when the run
is killed (the process holding the namespace dies with pytest).  A
policy-rc.d in the view keeps dpkg from starting, stopping or reloading any
service.  The network is the machine's: the provider (started here as
everywhere in the suite) and the gateway and tool server (in the view) meet
on loopback.

systemd is not PID 1 here: the unit is checked with `systemd-analyze
verify`, and the tool server is started as the unit says (its user and
group, umask, state directory, credential, and ExecStart with the variables
of /etc/default/mcp-tool-server).

The packages are built once per session by `make deb`: nothing is rebuilt
when build/deb/ is up to date, else it takes about a minute on two cores (the
objects of the C++ core and the tool server that `make` built are reused;
the module's glue is compiled again).  The tests themselves take about 20 s.
"""

import ctypes
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import ROOT, Proc, free_port

render_config = __import__("render-config")

PACKAGES = ("libnginx-mod-http-mcp-auth", "mcp-tool-server", "mcp-auth-tools")
DEB_DIR = ROOT / "build" / "deb"
EXAMPLES = "/usr/share/doc/libnginx-mod-http-mcp-auth/examples"
MODULE = "/usr/lib/nginx/modules/ngx_http_mcp_auth_module.so"
LOAD_FILE = "/usr/share/nginx/modules-available/mod-http-mcp-auth.conf"
ENABLED = "/etc/nginx/modules-enabled/50-mod-http-mcp-auth.conf"
UNIT = "/lib/systemd/system/mcp-tool-server.service"
DEFAULTS = "/etc/default/mcp-tool-server"

if os.geteuid() != 0:
    pytestmark = pytest.mark.skip(
        reason="needs root: installs the packages with dpkg in a mount namespace of its own")


# ------------------------------------------------------------------ the view


def _die_with_parent():
    # PR_SET_PDEATHSIG: unshare (and, through --kill-child, the namespace's
    # holder) is killed when pytest dies, however it dies
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class InstallRoot:
    """A copy-on-write view of / in a mount namespace: overlayfs, lower
    layer /, upper layer a tmpfs.  `shared` folders of the machine are bound
    into it as they are."""

    HOLD = r"""
set -e
base=$1; shift
mount -t tmpfs -o mode=0700 mcp-packages-test "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
for d in /proc /sys /dev "$@"; do mount --rbind "$d" "$base/root$d"; done
echo $$
exec chroot "$base/root" sleep infinity
"""

    def __init__(self, base, shared=()):
        self.base = Path(base)
        self.base.mkdir(parents=True)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child",
             "sh", "-c", self.HOLD, "sh", str(self.base)] + [str(d) for d in shared],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_die_with_parent)
        line = self.holder.stdout.readline()
        if not line.strip().isdigit():
            err = self.holder.stderr.read() if self.holder.wait(10) is not None else ""
            if "permission denied" in err.lower() or "operation not permitted" in err.lower():
                pytest.skip("this machine does not let root mount an overlay in a mount "
                            "namespace (%s)" % err.strip())
            raise RuntimeError("the view did not start: %s" % err)
        self.pid = int(line)
        # dpkg in the view must not touch a service: invoke-rc.d asks policy-rc.d
        self.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", mode=0o755)

    def argv(self, *argv):
        """argv run inside the view (its mounts, its root)."""
        return ["nsenter", "-t", str(self.pid), "-m", "-r", "-w", "--"] + [str(a) for a in argv]

    def run(self, *argv, check=True, timeout=180, **kw):
        r = subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=timeout, **kw)
        if check:
            assert r.returncode == 0, "%s: exit %d\n%s%s" % (argv, r.returncode, r.stdout, r.stderr)
        return r

    def path(self, p):
        """A path of the view, as this process sees it."""
        return Path("/proc/%d/root" % self.pid) / str(p).lstrip("/")

    def write(self, p, text, mode=0o644):
        self.path(p).write_text(text)
        os.chmod(self.path(p), mode)

    def upper(self):
        """What differs from the machine: the overlay's upper layer, as
        {path: kind} (kind 'c' is a whiteout, a file of the machine removed)."""
        r = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "--", "find",
                            str(self.base / "upper"), "-mindepth", "1", "-printf", "%y %P\\n"],
                           capture_output=True, text=True, check=True, timeout=60)
        return dict(reversed(line.split(" ", 1)) for line in r.stdout.splitlines())

    def close(self):
        if self.holder.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.holder.wait(10)
        self.holder.stdout.close()
        self.holder.stderr.close()
        try:
            self.base.rmdir()
        except OSError:
            pass


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def debs():
    """The .debs of `make deb` (built now unless build/deb/ is up to date)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SANITIZE")}
    started = time.monotonic()
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "deb"],
                       capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, "make deb failed:\n%s\n%s" % (r.stdout[-6000:], r.stderr[-6000:])
    print("make deb: %.0f s" % (time.monotonic() - started))
    found = {}
    for pkg in PACKAGES:
        files = sorted(DEB_DIR.glob("%s_*.deb" % pkg))
        assert len(files) == 1, (pkg, files)
        found[pkg] = files[0]
    return found


def install(root, debs):
    r = root.run("dpkg", "-i", *debs.values())
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def view(debs, tmp_path_factory):
    """A view of the machine with the three packages installed."""
    root = InstallRoot(tmp_path_factory.mktemp("view") / "mnt", shared=[DEB_DIR])
    try:
        root.install_log = install(root, debs)
        yield root
    finally:
        for proc in list(harness.LIVE):
            if proc.argv[:1] == ["nsenter"] and ("-t", str(root.pid)) == tuple(proc.argv[1:3]):
                proc.stop()
        root.close()


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


def env_file(text):
    """The NAME=value lines of an EnvironmentFile= (quotes removed)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[name.strip()] = value
    return out


def unit_settings(text):
    """[Service] settings of a unit: {name: [values in order]}."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out.setdefault(name, []).append(value)
    return out


# ------------------------------------------------------------------ the packages


def test_lintian_finds_nothing_to_fix(debs):
    """make deb fails on a lintian error; warnings are fixed or overridden
    with a reason in debian/*.lintian-overrides."""
    report = (DEB_DIR / "lintian.txt").read_text()
    assert not re.search(r"(?m)^[EW]: ", report), report


def test_the_module_package_is_laid_out_as_debians_own(debs):
    deb = debs["libnginx-mod-http-mcp-auth"]
    abi = subprocess.run(["dpkg-query", "-W", "-f", "${Provides}", "nginx"], capture_output=True,
                         text=True, check=True).stdout
    nginx_abi = re.search(r"nginx-abi-[0-9.]+-[0-9]+", abi).group(0)
    depends = [d.strip() for d in deb_field(deb, "Depends").split(",")]
    assert nginx_abi in depends, depends
    assert deb_field(deb, "Section") == "httpd"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    for path in (MODULE, LOAD_FILE, EXAMPLES + "/nginx.conf.example",
                 EXAMPLES + "/mcp_locations", EXAMPLES + "/mcp_proxy_params"):
        assert "." + path in listing, path
    tools = deb_field(debs["mcp-auth-tools"], "Architecture")
    assert tools == "all"


def test_install_enables_the_module_the_debian_way(view):
    link = view.path(ENABLED)
    assert link.is_symlink() and os.readlink(link) == LOAD_FILE
    assert view.path(LOAD_FILE).read_text() == \
        "load_module modules/ngx_http_mcp_auth_module.so;\n"
    # the machine's own configuration (Debian's nginx.conf reads
    # modules-enabled) still passes, the module loaded into it
    r = view.run("nginx", "-t", check=False)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
    # the tool server's user, and the folder the workers keep the zones' state in
    user = view.run("getent", "passwd", "mcp-tool-server").stdout.split(":")
    assert int(user[2]) < 1000 and user[6].strip() == "/usr/sbin/nologin", user
    st = view.path("/var/lib/nginx/mcp-auth").stat()
    assert (st.st_mode & 0o777, view.run("stat", "-c", "%U", "/var/lib/nginx/mcp-auth")
            .stdout.strip()) == (0o700, "www-data")
    # and no service was started by the install
    assert "/usr/sbin/mcp-tool-server" not in subprocess.run(["ps", "-eo", "cmd"], capture_output=True,
                                                   text=True).stdout


def test_the_unit_passes_systemd_analyze_verify(view):
    text = view.path(UNIT).read_text()
    r = view.run("systemd-analyze", "verify", UNIT, check=False)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    s = unit_settings(text)
    for name, value in (("User", "mcp-tool-server"), ("StateDirectory", "mcp-tool-server"),
                        ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                        ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                        ("PrivateDevices", "yes"), ("SystemCallFilter", "@system-service"),
                        ("EnvironmentFile", "-" + DEFAULTS)):
        assert value in s.get(name, []), (name, s.get(name))
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    # its store is the state directory
    assert "--data-dir /var/lib/mcp-tool-server " in s["ExecStart"][0]
    # the tool rules it is given are those of the example configuration
    defaults = env_file(view.path(DEFAULTS).read_text())
    example = view.path(EXAMPLES + "/nginx.conf.example")
    assert shlex.split(defaults["MCP_TOOL_SERVER_RULES"]) == render_config.tool_scope_args(example)


def tool_server_as_the_unit_runs_it(view, workdir):
    """The installed tool server started the way mcp-tool-server.service
    would: a process as the unit's user, in its umask, with its state
    directory and credential made, and its ExecStart with the variables of
    /etc/default/mcp-tool-server."""
    s = unit_settings(view.path(UNIT).read_text())
    user, group = s["User"][0], s["Group"][0]
    state = "/var/lib/" + s["StateDirectory"][0]
    view.run("install", "-d", "-o", user, "-g", group, "-m", s["StateDirectoryMode"][0], state)
    creds = "/run/credentials/mcp-tool-server.service"
    view.run("install", "-d", "-o", user, "-g", group, "-m", "0500", creds)
    for cred in s.get("LoadCredential", []):
        name, _, source = cred.partition(":")
        view.run("install", "-o", user, "-g", group, "-m", "0400", source, creds + "/" + name)
    env = env_file(view.path(DEFAULTS).read_text())
    argv = []
    for word in shlex.split(s["ExecStart"][0].replace("%d", creds)):
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda v: env.get(v.group(1), ""), word))
    runner = ["setpriv", "--reuid", user, "--regid", group, "--clear-groups", "--no-new-privs",
              "sh", "-c", 'umask %s && exec "$@"' % s["UMask"][0], "sh"]
    return Proc("tool-server", view.argv(*(runner + argv)), workdir,
                ready_line=r"listening on 127\.0\.0\.1:(\d+)").start()


def test_a_gateway_from_the_readme_steps_signs_in_and_calls_a_tool(view, tmp_path):
    """The README's steps in the view: the examples as /etc/nginx's
    configuration (only addresses changed), the keys made with
    mcp-auth-keygen and openssl, nginx -t, the tool server as its unit runs
    it; then a real login at the development provider and tool calls."""
    from idp_util import start_idp
    from mcp_gateway import Streamable, login, text_of

    port, tls_port, tool_port = free_port(), free_port(), free_port()
    url = "http://127.0.0.1:%d" % port
    idp_secret = secrets.token_hex(16)
    idp, issuer, info = start_idp(tmp_path / "idp", client_id="mcp-gateway",
                                  client_secret=idp_secret,
                                  redirect_uri=[url + "/oauth-callback",
                                                "https://127.0.0.1:%d/oauth-callback" % tls_port])
    procs = [idp]
    try:
        # the configuration: the examples, with this test's addresses
        for name in ("mcp_locations", "mcp_proxy_params"):
            view.run("cp", EXAMPLES + "/" + name, "/etc/nginx/" + name)
        view.run("cp", EXAMPLES + "/nginx.conf.example", "/etc/nginx/nginx.conf")
        for name in ("nginx.conf", "mcp_locations"):
            p = view.path("/etc/nginx/" + name)
            text = p.read_text()
            for old, new in (("127.0.0.1:8080", "127.0.0.1:%d" % port),
                             ("127.0.0.1:8443", "127.0.0.1:%d" % tls_port),
                             ("127.0.0.1:8808", "127.0.0.1:%d" % tool_port),
                             ("http://127.0.0.1:9400", issuer)):
                text = text.replace(old, new)
            p.write_text(text)
        view.write(DEFAULTS, view.path(DEFAULTS).read_text().replace(
            '#MCP_TOOL_SERVER_LISTEN="--listen 127.0.0.1:8808"',
            'MCP_TOOL_SERVER_LISTEN="--listen 127.0.0.1:%d"' % tool_port))
        # the keys and secrets (README "Keys and secrets")
        view.run("sh", "-ec", """
            mkdir -p /etc/nginx/mcp-auth && cd /etc/nginx/mcp-auth
            mcp-auth-keygen > keys
            for f in identity.key admin.key exchange-client.secret service-client.secret enterprise-app.secret; do
                openssl rand -hex 32 > $f
            done
            printf '%s\\n' "$1" > idp-client-secret
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
                -keyout tls.key -out tls.crt 2>/dev/null
            chmod 600 *
        """, "sh", idp_secret)

        r = view.run("nginx", "-t", check=False)
        assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
        # the module came from modules-enabled: the configuration has no load_module
        assert "load_module" not in view.path("/etc/nginx/nginx.conf").read_text()

        procs.append(tool_server_as_the_unit_runs_it(view, tmp_path))
        nginx = Proc("nginx", view.argv("nginx", "-g", "daemon off;"), tmp_path, port=port).start()
        procs.append(nginx)

        class Site:
            pass
        site = Site()
        site.url, site.demo_password = url, info["demo_password"]
        client = login(site)
        mcp = Streamable(url, client.tokens["access_token"]).initialize()
        assert text_of(mcp.call("hello_mcp")) == "Hello I am MCPTool!"
        assert "saved successfully" in text_of(mcp.call("save_snippet", snippetname="deb",
                                                        snippet="from the package"))
        assert text_of(mcp.call("get_snippet", snippetname="deb")) == "from the package"
        # the packaged admin tool sees the client that signed in
        r = view.run("mcp-auth-admin", "--url", url + "/_mcp_auth/admin",
                     "--key-file", "/etc/nginx/mcp-auth/admin.key", "--json", "clients")
        assert client.client_id in r.stdout, r.stdout

        # the snippet is in the state directory, the service user's alone
        r = view.run("stat", "-c", "%U %a", "/var/lib/mcp-tool-server",
                     "/var/lib/mcp-tool-server/snippets.db")
        assert r.stdout.split("\n")[:2] == ["mcp-tool-server 700", "mcp-tool-server 600"], r.stdout
        # the workers (www-data) save the zone's state in the package's folder
        nginx.send_signal(signal.SIGQUIT)
        nginx.popen.wait(15)
        assert view.path("/var/lib/nginx/mcp-auth/mcp_auth.state").exists()
        bad = [line for line in nginx.log().splitlines()
               if "[alert]" in line or "[crit]" in line or "[emerg]" in line]
        assert not bad, nginx.log()[-3000:]
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_purge_leaves_nothing_of_the_packages(debs, tmp_path):
    """In a view of its own: install, then dpkg --purge.  No file the
    packages listed remains (but the machine's own folders), nor the module's link, the tool server's state, the gateway's
    state folder; the view differs from the machine only in dpkg's and the
    account databases' bookkeeping.  The system user mcp-tool-server stays,
    as Debian's packages leave theirs."""
    root = InstallRoot(tmp_path / "mnt", shared=[DEB_DIR])
    try:
        before = root.upper()
        install(root, debs)
        # what a started service would have made
        root.run("install", "-d", "-o", "mcp-tool-server", "-m", "0700", "/var/lib/mcp-tool-server")
        root.run("touch", "/var/lib/mcp-tool-server/snippets.db",
                 "/var/lib/nginx/mcp-auth/mcp_auth.state")
        listed = set()
        for pkg in PACKAGES:
            listed |= set(root.run("dpkg", "-L", pkg).stdout.split("\n")) - {"", "/."}
        assert ENABLED not in listed and root.path(ENABLED).is_symlink()

        root.run("dpkg", "--purge", *PACKAGES)

        for pkg in PACKAGES:
            assert root.run("dpkg-query", "-W", pkg, check=False).returncode != 0, pkg
        left = []
        for path in sorted(listed):
            p = root.path(path)
            if not (p.exists() or p.is_symlink()):
                continue
            if os.path.isdir(path):
                continue            # a folder of the machine's: /usr/share/doc, /lib
            left.append(path)
        assert not left, left
        for path in (ENABLED, ENABLED + ".removed", "/var/lib/mcp-tool-server",
                     "/var/lib/nginx/mcp-auth", "/usr/share/nginx/modules-available"):
            assert not (root.path(path).exists() or root.path(path).is_symlink()), path
        assert root.run("getent", "passwd", "mcp-tool-server").returncode == 0

        # dpkg's database and log, the accounts (the user stays), adduser's
        # lock, man-db's index (its trigger ran for the manual pages)
        bookkeeping = re.compile(r"^(var/lib/dpkg/|var/log/dpkg\.log$|var/cache/debconf/"
                                 r"|etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$"
                                 r"|run/adduser$|var/cache/man/)")
        after = root.upper()
        changed = []
        for path, kind in sorted(after.items()):
            if before.get(path) == kind or bookkeeping.match(path):
                continue
            if kind == "d" and os.path.isdir("/" + path):
                continue            # a folder of the machine, copied up
            changed.append("%s %s" % (kind, path))
        assert not changed, "\n".join(changed)
    finally:
        root.close()
