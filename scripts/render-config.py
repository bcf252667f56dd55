#!/usr/bin/env python3
"""Renders nginx.conf.example for a local instance (make run, tests).

The example is the single source of truth; this script only moves it to
other addresses and folders:

  * the module path -> the freshly built module,
  * 127.0.0.1:8080 (the gateway), 127.0.0.1:8443 (its https server) and
    127.0.0.1:8808 (the tool server) -> the ports given,
  * /etc/nginx/mcp-auth/ -> the runtime folder,
  * adds pid, error_log and *_temp_path lines so that nginx writes nothing
    outside the runtime folder (nginx -p does not move compiled-in paths),
  * copies mcp_locations and mcp_proxy_params next to the rendered file.

Extra directives for the http{} block can be given with --http-extra.
"""

import argparse
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render(example, module, rundir, port, tool_port, idp=None, workers=None,
           http_extra="", replace=(), tls_port=8443):
    text = Path(example).read_text()
    rundir = Path(rundir).resolve()
    text = text.replace("/usr/lib/nginx/modules/ngx_http_mcp_auth_module.so", str(module))
    text = text.replace("127.0.0.1:8080", "127.0.0.1:%d" % port)
    text = text.replace("127.0.0.1:8808", "127.0.0.1:%d" % tool_port)
    text = text.replace("127.0.0.1:8443", "127.0.0.1:%d" % tls_port)
    text = text.replace("/etc/nginx/mcp-auth/", str(rundir) + "/")
    text = text.replace("/var/log/nginx/", str(rundir) + "/")
    text = text.replace("/var/lib/nginx/", str(rundir / "state") + "/")
    if idp:
        text = text.replace("http://127.0.0.1:9400", idp)
    for old, new in replace:
        text = text.replace(old, new)
    if workers is not None:
        text = re.sub(r"(?m)^worker_processes .*;$", "worker_processes %s;" % workers, text)
    main_extra = ("pid %s/nginx.pid;\nerror_log %s/error.log info;\n" % (rundir, rundir))
    text = re.sub(r"(?m)^(load_module .*;\n)", lambda m: m.group(1) + main_extra, text, count=1)
    temp = "".join("    %s_temp_path %s/tmp/%s;\n" % (k, rundir, k) for k in TEMP_KINDS)
    text = re.sub(r"(?m)^http \{\n", lambda m: m.group(0) + temp + http_extra, text, count=1)
    (rundir / "tmp").mkdir(parents=True, exist_ok=True)
    # The state file is written by worker processes, which run as "nobody"
    # when nginx starts as root (as /var/lib/nginx belongs to www-data).
    state = rundir / "state"
    state.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        import pwd
        nobody = pwd.getpwnam("nobody")
        # workers must be able to reach the folder (not read it)
        d = rundir
        while d != d.parent:
            mode = d.stat().st_mode
            if not mode & 0o001:
                os.chmod(d, (mode & 0o7777) | 0o001)
            d = d.parent
        for d in [state, rundir / "tmp"] + [rundir / "tmp" / k for k in TEMP_KINDS]:
            d.mkdir(exist_ok=True)
            os.chown(d, nobody.pw_uid, nobody.pw_gid)
    out = rundir / "nginx.conf"
    out.write_text(text)
    for name in ("mcp_proxy_params", "mcp_locations"):
        part = (ROOT / name).read_text()
        if idp:
            part = part.replace("http://127.0.0.1:9400", idp)
        for old, new in replace:
            part = part.replace(old, new)
        (rundir / name).write_text(part)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", default=str(ROOT / "nginx.conf.example"))
    ap.add_argument("--module", required=True)
    ap.add_argument("--rundir", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--tool-port", type=int, default=8808)
    ap.add_argument("--tls-port", type=int, default=8443)
    ap.add_argument("--idp")
    ap.add_argument("--workers")
    ap.add_argument("--http-extra", default="")
    ap.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                    help="a further literal replacement (repeatable)")
    a = ap.parse_args()
    replace = [tuple(r.split("=", 1)) for r in a.replace]
    print(render(a.example, a.module, a.rundir, a.port, a.tool_port, a.idp, a.workers,
                 a.http_extra, replace=replace, tls_port=a.tls_port))


if __name__ == "__main__":
    main()
