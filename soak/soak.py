#!/usr/bin/env python3
"""make soak: the whole stack (dev provider, tool server, nginx with the
module, 2 workers) under mixed traffic at a steady rate, then checks.

Every RATE-th of a second a "user" starts: registers a client, logs in
through the provider, calls tools on Streamable HTTP and on HTTP+SSE,
refreshes, sends bad tokens (tampered, garbage, a refresh token as a bearer,
a bogus refresh), and then revokes (every other user) or walks away.  Every
answer is checked against the exact status it must have.

Pass criteria (exit status 0):
  * zero unexpected answers, no [alert]/[crit]/[emerg] in nginx's error log;
  * the steady rate was held (cycles started on time, none left running);
  * resident memory (nginx master + workers, tool server) at the end within
    MEM_TOLERANCE of its value after the warm-up (reported: start, after
    warm-up, end);
  * the zone's live entry count (GET /_mcp_auth/status) back to its baseline
    once every session has expired (the soak config uses short TTLs), plus
    the provider's JWKS cache entry, which lives 1 h by design.
"""

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "t"))
sys.path.insert(0, str(ROOT / "scripts"))

import requests  # noqa: E402

from conftest import Stack  # noqa: E402
from mcp_gateway import Sse, Streamable, rpc, text_of  # noqa: E402
from oauth_client import Browser, McpOAuthClient  # noqa: E402

REDIRECT = "http://127.0.0.1:33418/callback"
# short lifetimes, so that the zone empties within a minute of the end
TTLS = {"access_token_ttl": 20, "refresh_token_ttl": 30, "session_ttl": 30,
        "code_ttl": 10, "login_ttl": 30, "client_ttl": 40}
MEM_TOLERANCE = (0.10, 4 * 1024 * 1024)     # +10 % and +4 MiB at most
ACCEPT = "application/json, text/event-stream"


class Errors:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.checks = 0

    def check(self, ok, step, detail=""):
        with self.lock:
            self.checks += 1
            if not ok:
                self.items.append((time.strftime("%H:%M:%S"), step, str(detail)[:300]))
        return ok


def rss_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def nginx_pids(master):
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [master] + [int(p) for p in out.split()]


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


class Soak:
    def __init__(self, args):
        self.args = args
        self.errors = Errors()
        self.workdir = Path(tempfile.mkdtemp(prefix="mcp-soak-"))
        extra = "".join("    mcp_auth_%s %ds;\n" % kv for kv in TTLS.items())
        extra += "    mcp_auth_stream_check 2s;\n"
        self.st = Stack(self.workdir, http_extra=extra, workers=args.workers)
        self.counts = {"cycles": 0, "revoked": 0, "requests": 0}
        self.lag = []
        self.samples = []

    # --- measurements --------------------------------------------------------------
    def status(self):
        return requests.get(self.st.url + "/_mcp_auth/status", timeout=5).json()

    def sample(self, label):
        master = self.st.nginx.proc.popen.pid
        s = {"t": round(time.monotonic() - self.t0, 1), "label": label,
             "nginx_rss": sum(rss_of(p) for p in nginx_pids(master)),
             "tool_rss": rss_of(self.st.tool.popen.pid)}
        s.update({k: v for k, v in self.status().items() if k != "zone"})
        self.samples.append(s)
        print("[%6.1fs] %-9s nginx %s  tool server %s  entries %d (+%d expired)  zone %s used"
              % (s["t"], label, mib(s["nginx_rss"]), mib(s["tool_rss"]), s["entries"],
                 s["expired"], mib(s["bytes_used"])), flush=True)
        return s

    # --- one user's life -------------------------------------------------------------
    def user(self, n):
        e = self.errors
        url = self.st.url
        try:
            c = McpOAuthClient(url, redirect_uri=REDIRECT, client_name="soak %d" % n)
            c.register()
            c.login(Browser("demo" if n % 2 else "alice",
                            self.st.demo_password if n % 2 else self.st.alice_password))
            token = c.tokens["access_token"]

            s = Streamable(url, token).initialize()
            e.check(len(s.request("tools/list")["result"]["tools"]) == 3, "tools/list")
            name, value = "soak%d" % (n % 50), "value %d %s" % (n, secrets.token_hex(8))
            e.check("saved successfully" in text_of(s.call("save_snippet", snippetname=name,
                                                           snippet=value)), "save_snippet")
            e.check(text_of(s.call("get_snippet", snippetname=name)) == value, "get_snippet")

            sse = Sse(url, token, timeout=15)
            if e.check(sse.status == 200, "sse open", sse.status):
                try:
                    sse.initialize()
                    reply = sse.request("tools/call", {"name": "hello_mcp", "arguments": {}})
                    e.check(text_of(reply) == "Hello I am MCPTool!", "sse hello", reply)
                finally:
                    sse.close()

            r = c.refresh()
            e.check(r.status_code == 200, "refresh", r.text)
            token = c.tokens["access_token"]
            s.token = token
            e.check(text_of(s.call("hello_mcp")) == "Hello I am MCPTool!", "call after refresh")

            # bad tokens: each refused exactly as RFC 6750 / 6749 say
            for label, bad in (("tampered", token[:-4] + ("AAAA" if not token.endswith("AAAA")
                                                          else "BBBB")),
                               ("garbage", secrets.token_urlsafe(40)),
                               ("refresh as bearer", c.tokens["refresh_token"])):
                r = requests.post(url + "/mcp", data=json.dumps(rpc("ping")), timeout=10,
                                  headers={"Authorization": "Bearer " + bad,
                                           "Content-Type": "application/json", "Accept": ACCEPT})
                e.check(r.status_code == 401 and 'error="invalid_token"'
                        in r.headers.get("WWW-Authenticate", ""), "bad token: " + label,
                        r.status_code)
            r = c.refresh(refresh_token=secrets.token_urlsafe(40))
            e.check(r.status_code == 400 and r.json().get("error") == "invalid_grant",
                    "bogus refresh", r.text)

            # a well-behaved client ends its MCP session
            r = s.http.delete(s.url, headers=s.headers(), timeout=10)
            e.check(r.status_code in (200, 204), "delete session", r.status_code)

            if n % 2 == 0:
                r = c.revoke(token)
                e.check(r.status_code == 200, "revoke", r.status_code)
                r = Streamable(url, token).post(rpc("ping"))
                e.check(r.status_code == 401, "revoked token refused", r.status_code)
                r = c.refresh()
                e.check(r.status_code == 400, "refresh after revoke", r.text)
                with e.lock:
                    self.counts["revoked"] += 1
            with e.lock:
                self.counts["cycles"] += 1
                self.counts["requests"] += 30
        except Exception as ex:   # noqa: BLE001 -- every failure is an error
            e.check(False, "exception", "".join(traceback.format_exception_only(type(ex), ex)))

    # --- the run -----------------------------------------------------------------------
    def run(self):
        a = self.args
        self.t0 = time.monotonic()
        first = self.sample("start")
        baseline = first["entries"]
        warmup = min(max(60.0, 0.25 * a.seconds), 0.5 * a.seconds)
        total = int(a.seconds * a.rate)
        ref = None
        next_sample = 30.0
        futures = []
        with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
            start = time.monotonic()
            for i in range(total):
                due = start + i / a.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                self.lag.append(time.monotonic() - due)
                futures.append(pool.submit(self.user, i))
                busy = sum(1 for f in futures[-4 * a.concurrency:] if not f.done())
                if busy >= a.concurrency:
                    self.errors.check(False, "rate", "all %d runners busy at %.0fs"
                                      % (a.concurrency, time.monotonic() - start))
                elapsed = time.monotonic() - start
                if ref is None and elapsed >= warmup:
                    ref = self.sample("warmed-up")
                elif elapsed >= next_sample:
                    self.sample("running")
                if elapsed >= next_sample:
                    next_sample += 30.0
            for f in futures:
                f.result(timeout=120)
        if ref is None:
            ref = self.sample("warmed-up")
        self.sample("traffic end")

        # every session expires within the longest TTL; the sweep is lazy, so
        # the status endpoint counts live entries
        deadline = time.monotonic() + max(TTLS.values()) + 30
        while True:
            end = self.sample("drained")
            if end["entries"] <= baseline + 1 or time.monotonic() > deadline:
                break
            time.sleep(10)
        return self.report(first, ref, end, baseline)

    def report(self, first, ref, end, baseline):
        ok = True
        e = self.errors
        log = self.st.nginx.error_log()
        bad_log = [line for line in log.splitlines()
                   if "[alert]" in line or "[crit]" in line or "[emerg]" in line]
        print("\n=== soak: %ds at %.1f users/s, %d workers ===" %
              (self.args.seconds, self.args.rate, self.args.workers))
        print("users: %d (revoked %d), ~%d requests, %d checks" %
              (self.counts["cycles"], self.counts["revoked"], self.counts["requests"], e.checks))
        lag = sorted(self.lag)
        print("start lag: median %.3fs, max %.3fs" % (lag[len(lag) // 2], lag[-1]))
        print("unexpected answers: %d" % len(e.items))
        for item in e.items[:20]:
            print("   ", *item)
        ok &= not e.items
        print("nginx error log alerts: %d" % len(bad_log))
        for line in bad_log[:10]:
            print("   ", line)
        ok &= not bad_log
        frac, slack = MEM_TOLERANCE
        for key, name in (("nginx_rss", "nginx (master+workers)"), ("tool_rss", "tool server")):
            limit = ref[key] * (1 + frac) + slack
            flat = end[key] <= limit
            ok &= flat
            print("RSS %-22s start %s, after warm-up %s, end %s (limit %s): %s"
                  % (name, mib(first[key]), mib(ref[key]), mib(end[key]), mib(limit),
                     "flat" if flat else "GREW"))
        drained = end["entries"] <= baseline + 1
        ok &= drained
        print("zone entries: baseline %d, peak %d, end %d live (+%d expired not yet swept; "
              "baseline + the 1 h JWKS cache entry allowed): %s"
              % (baseline, max(s["entries"] for s in self.samples), end["entries"],
                 end["expired"], "back to baseline" if drained else "NOT DRAINED"))
        print("RESULT: %s" % ("PASS" if ok else "FAIL"))
        return ok

    def stop(self):
        self.st.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int,
                    default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--rate", type=float, default=2.0, help="users started per second")
    ap.add_argument("--concurrency", type=int, default=24, help="users running at once, at most")
    ap.add_argument("--workers", type=int, default=2, help="nginx worker processes")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    random.seed(1)
    soak = Soak(a)
    print("soak: work folder %s, gateway %s" % (soak.workdir, soak.st.url), flush=True)
    try:
        ok = soak.run()
    finally:
        soak.stop()
    if ok and not a.keep:
        import shutil
        shutil.rmtree(soak.workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
