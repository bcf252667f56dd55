#!/usr/bin/python3
"""Instructions per request in the nginx worker, guarded against unguarded
(the guard's whole price in nginx: header parsing, the glue, the C API, the
core), counted by callgrind, so without timing noise.

    /usr/bin/python3 bench/nginx_callgrind.py [--build build]

Starts make bench's stack (bench/run_bench.py), then runs the same nginx
configuration again under `valgrind --tool=callgrind` (one process:
master_process off) and sends `tools/call hello_mcp` with wrk (4 connections,
8 s) first to the guarded location, then to the unguarded one; the counters
are zeroed after a warm-up and dumped after the run.  About two minutes.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "t"))


def total(path):
    out = subprocess.run(["callgrind_annotate", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "PROGRAM TOTALS" in line:
            return int(line.split()[0].replace(",", ""))
    return 0


def inclusive(path, pattern):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if re.search(pattern, line):
            return int(line.split()[0].replace(",", ""))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--seconds", type=int, default=8)
    cli = ap.parse_args()
    os.environ["MCP_BUILD_DIR"] = str(Path(cli.build).resolve())  # read when harness is imported
    import conftest
    import harness
    import run_bench as rb
    args = argparse.Namespace(build=cli.build, runs=1, duration=5, streams=10, workers="1",
                              login_seconds=1, quick=True, only="", no_redis=True)
    out_dir = Path(tempfile.mkdtemp(prefix="mcp-nginx-cg."))
    b = rb.Bench(args)
    rows = {}
    try:
        b.start()
        ng = b.stack.nginx
        targets = {n: (u, t, s) for n, u, t, s in b.targets()}
        ng.proc.stop()
        env = dict(os.environ, **conftest.nginx_env(ng.workdir))
        for name in ("guarded", "open"):
            url, token, session = targets[name]
            out = str(out_dir / ("nginx.%s" % name))
            p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                  harness.NGINX, "-p", str(ng.workdir), "-c", str(ng.conf),
                                  "-g", "daemon off; master_process off;"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                u = urlsplit(url)
                for _ in range(240):
                    try:
                        socket.create_connection((u.hostname, u.port), 1).close()
                        break
                    except OSError:
                        time.sleep(0.5)
                b.wrk(url, 4, 2, token, session)  # warm: the worker's caches, the upstream connections
                subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
                r = b.wrk(url, 4, cli.seconds, token, session)
                subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True)
            finally:
                p.send_signal(signal.SIGQUIT)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            dump = out + ".1"
            n = r["requests"]
            rows[name] = {"requests": n, "total": total(dump) / n,
                          "guard": inclusive(dump, r"ngx_http_mcp_auth_(?:guard|access)_handler \[") / n,
                          "core": inclusive(dump, r"mcpauth::guard_check\(") / n}
            print("%-8s %6d requests  %7.0f instructions per request in nginx (access handler %5.0f, core %5.0f)"
                  % (name, n, rows[name]["total"], rows[name]["guard"], rows[name]["core"]), flush=True)
    finally:
        b.stop()
        import shutil
        shutil.rmtree(b.work, ignore_errors=True)
    if len(rows) == 2:
        print("the guard adds %.0f instructions per request in nginx (%.0f%% of the unguarded path's %.0f); "
              "profiles in %s" % (rows["guarded"]["total"] - rows["open"]["total"],
                                  100 * (rows["guarded"]["total"] / rows["open"]["total"] - 1),
                                  rows["open"]["total"], out_dir))


if __name__ == "__main__":
    main()
