#!/usr/bin/env python3
"""make soak: the whole stack (dev provider, tool server, nginx with the
module, 2 workers) under mixed traffic at a steady rate, then checks.

Every RATE-th of a second a "user" starts: registers a client, logs in
through the provider, calls tools on Streamable HTTP and on HTTP+SSE,
refreshes, sends bad tokens (tampered, garbage, a refresh token as a bearer,
a bogus refresh), and then revokes (every other user) or walks away.  Every
answer is checked against the exact status it must have.  Meanwhile one
more client, user "looper", loops `initialize` without ever ending a
session: the tool server must hold it at its per-subject session cap (its
oldest sessions answer 404, its newest work).

Before the traffic, the bounded caches that a soak would otherwise watch
fill for most of an hour are filled (fill_caches): the gateway workers'
TokenCache (10,000 access tokens each) and the tool server's assertion
cache (10,000 assertions).  Their memory then stays allocated, reused as
they empty and refill, so that what the soak measures afterwards is growth
that has no bound.

Pass criteria (exit status 0):
  * zero unexpected answers, no [alert]/[crit]/[emerg] in nginx's error log;
  * the steady rate was held (cycles started on time, none left running);
  * private memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup:
    the nginx workers summed, and the tool server) sampled every few
    seconds; after a warm-up (the first third of the traffic) the
    least-squares slope of its high-water mark (the largest value sampled
    since the caches were filled) must not project more than
    MAX_GROWTH_PER_HOUR of growth per hour: a leak raises the mark without
    end and fails, a plateau passes, and so does memory that glibc hands
    back to the system and takes again (that moves the samples by a MiB or
    so, not the mark).  Reported: the slope of the mark and of the samples
    themselves, and the memory at the start, after the warm-up and at the
    end; every sample is written to memory.csv in the work folder (kept
    when the soak fails);
  * the tool server's MCP sessions (GET /status) never above the caps:
    16 per subject, for the three subjects of the soak;
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
# Projected growth of private memory per hour, after the warm-up, above
# which the soak fails (nginx workers together; the tool server).  A leak
# of 80 bytes per request at the soak's ~60 requests/s grows 16.5 MiB/h;
# what the time-bounded caches still add after the warm-up (the workers'
# IdentityCache holds the assertions of the sessions of the last 5-6
# minutes, ~1 KiB each, so it settles 6 minutes into the traffic) stays
# below it.
MAX_GROWTH_PER_HOUR = 12 * 1024 * 1024
SAMPLE_SECONDS = 5.0
SESSIONS_PER_SUBJECT = 16      # the tool server's default --max-sessions-per-subject
SUBJECTS = 3                   # demo, alice, looper
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


def private_of(pid):
    """(Private_Clean, Private_Dirty) of a process, in bytes: its own memory,
    not the shared zone, libraries or page cache that RSS also counts."""
    clean = dirty = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Private_Clean:"):
                    clean += int(line.split()[1]) * 1024
                elif line.startswith("Private_Dirty:"):
                    dirty += int(line.split()[1]) * 1024
    except OSError:
        pass
    return clean, dirty


def nginx_workers(master):
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def slope_per_hour(points):
    """Least-squares slope of [(seconds, bytes)], in bytes per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 3600.0 * sum((t - mt) * (m - mm) for t, m in points) / var


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


class Soak:
    def __init__(self, args):
        self.args = args
        self.errors = Errors()
        self.workdir = Path(tempfile.mkdtemp(prefix="mcp-soak-"))
        extra = "".join("    mcp_auth_%s %ds;\n" % kv for kv in TTLS.items())
        extra += "    mcp_auth_stream_check 2s;\n"
        users = self.workdir / "users.json"
        self.looper_password = secrets.token_urlsafe(12)
        users.write_text(json.dumps([{"login": "looper", "password": self.looper_password}]))
        self.st = Stack(self.workdir, http_extra=extra, workers=args.workers,
                        idp_options={"users_file": str(users)})
        self.counts = {"cycles": 0, "revoked": 0, "requests": 0, "initializes": 0, "evicted_seen": 0}
        self.lag = []
        self.samples = []
        self.memory = []        # (t, nginx workers' private bytes, tool server's, its sessions)
        self.memory_parts = []  # (t, workers' Private_Clean, Private_Dirty, tool server's the same)
        self.stop_sampling = threading.Event()

    # --- measurements --------------------------------------------------------------
    def status(self):
        return requests.get(self.st.url + "/_mcp_auth/status", timeout=5).json()

    def tool_sessions(self):
        return requests.get("http://127.0.0.1:%d/status" % self.st.tool_port, timeout=5).json()["sessions"]

    def memory_sample(self):
        workers = [private_of(p) for p in nginx_workers(self.st.nginx.proc.popen.pid)]
        tool = private_of(self.st.tool.popen.pid)
        m = (time.monotonic() - self.t0, sum(sum(w) for w in workers), sum(tool), self.tool_sessions())
        self.memory.append(m)
        self.memory_parts.append((m[0], sum(w[0] for w in workers), sum(w[1] for w in workers)) + tool)
        return m

    def sampler(self):
        while not self.stop_sampling.wait(SAMPLE_SECONDS):
            try:
                self.memory_sample()
            except Exception as ex:   # noqa: BLE001 -- a failed sample is an error
                self.errors.check(False, "memory sample", repr(ex))

    def sample(self, label):
        _, nginx, tool, sessions = self.memory_sample()
        s = {"t": round(time.monotonic() - self.t0, 1), "label": label,
             "nginx_private": nginx, "tool_private": tool, "tool_sessions": sessions}
        s.update({k: v for k, v in self.status().items() if k != "zone"})
        self.samples.append(s)
        print("[%6.1fs] %-9s nginx workers %s  tool server %s (%d MCP sessions)  "
              "entries %d (+%d expired)  zone %s used"
              % (s["t"], label, mib(nginx), mib(tool), sessions, s["entries"],
                 s["expired"], mib(s["bytes_used"])), flush=True)
        return s

    # --- the bounded caches, filled before the traffic ------------------------------
    def fill_caches(self):
        """Each gateway worker's TokenCache keeps up to 10,000 access tokens,
        the tool server's assertion cache up to 10,000 assertions; at the
        soak's rate they would fill for most of an hour.  Filled here, their
        memory is allocated before the measurement starts."""
        from toolserver_util import mint
        t = time.monotonic()
        key = self.st.identity_key.encode()
        tool = "http://127.0.0.1:%d/mcp" % self.st.tool_port
        ping = json.dumps(rpc("ping"))
        lock = threading.Lock()
        state = {"client": None, "done": 0, "since": 0.0}

        def next_token():
            # refresh tokens rotate: one refresh at a time; the soak's
            # sessions last 30 s, so a new login when one has ended
            with lock:
                if state["done"] >= self.args.fill_tokens:
                    return None, None
                i = state["done"]
                state["done"] += 1
                c = state["client"]
                # (well within the 30 s session: a token refreshed at its end would die unused)
                if c is None or time.monotonic() - state["since"] > 20 or c.refresh().status_code != 200:
                    c = McpOAuthClient(self.st.url, redirect_uri=REDIRECT, client_name="soak cache filler")
                    c.register()
                    c.login(Browser("demo", self.st.demo_password))
                    state["client"], state["since"] = c, time.monotonic()
                return i, c.tokens["access_token"]

        def worker(_):
            while True:
                i, token = next_token()
                if token is None:
                    return
                # a new connection per request: whichever worker takes it caches the token
                for _ in range(2):
                    r = requests.post(self.st.url + "/mcp", data=ping, timeout=10, headers={
                        "Authorization": "Bearer " + token, "Accept": ACCEPT,
                        "Content-Type": "application/json", "Connection": "close"})
                    self.errors.check(r.status_code != 401, "cache fill (gateway)", r.status_code)
                # a distinct assertion straight to the tool server (2026-07-28: no session)
                r = requests.post(tool, data=ping, timeout=10, headers={
                    "X-MCP-Identity": mint(key, sub="filler%d" % i), "Accept": ACCEPT,
                    "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "ping", "Connection": "close"})
                self.errors.check(r.status_code == 200, "cache fill (tool server)", r.text)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(worker, range(4)))
        print("soak: %d access tokens and %d assertions used to fill the caches in %.0fs"
              % (self.args.fill_tokens, self.args.fill_tokens, time.monotonic() - t), flush=True)

    # --- a client that loops initialize ---------------------------------------------
    def looper(self, stop):
        """User "looper" opens MCP sessions and never ends them: the tool server
        must keep it at its cap, ending its least recently used ones."""
        e = self.errors
        while not stop.is_set():
            try:
                c = McpOAuthClient(self.st.url, redirect_uri=REDIRECT, client_name="soak looper")
                c.register()
                c.login(Browser("looper", self.looper_password))
                token = c.tokens["access_token"]
                sessions = []
                started = time.monotonic()
                # the soak's access tokens live 20 s: a new login after 15
                while not stop.is_set() and time.monotonic() - started < 15:
                    s = Streamable(self.st.url, token)
                    r = s.post(rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                  "clientInfo": {"name": "looper", "version": "1"}}))
                    if not e.check(r.status_code == 200, "looper initialize", r.status_code):
                        break
                    s.session_id = r.headers["Mcp-Session-Id"]
                    sessions.append(s)
                    with e.lock:
                        self.counts["initializes"] += 1
                    if len(sessions) > SESSIONS_PER_SUBJECT:
                        # the newest works; the one a cap's worth older is gone
                        e.check(s.post(rpc("ping")).status_code == 200, "looper newest session")
                        old = sessions[-SESSIONS_PER_SUBJECT - 1].post(rpc("ping"))
                        if e.check(old.status_code == 404, "looper evicted session", old.status_code):
                            with e.lock:
                                self.counts["evicted_seen"] += 1
                        sessions = sessions[-SESSIONS_PER_SUBJECT:]
                    stop.wait(0.2)
            except Exception as ex:   # noqa: BLE001 -- every failure is an error
                e.check(False, "looper exception", "".join(traceback.format_exception_only(type(ex), ex)))
                stop.wait(1)

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
        if a.fill_tokens:
            self.fill_caches()
            self.sample("filled")
        self.filled_at = time.monotonic() - self.t0
        warmup = a.seconds / 3.0
        total = int(a.seconds * a.rate)
        ref = None
        next_sample = 30.0
        futures = []
        sampler = threading.Thread(target=self.sampler, daemon=True)
        stop_looper = threading.Event()
        looper = threading.Thread(target=self.looper, args=(stop_looper,), daemon=True)
        with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
            start = time.monotonic()
            self.traffic = (start - self.t0, None)
            sampler.start()
            looper.start()
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
        stop_looper.set()
        looper.join(60)
        if ref is None:
            ref = self.sample("warmed-up")
        last = self.sample("traffic end")
        self.stop_sampling.set()
        sampler.join(30)
        self.traffic = (self.traffic[0], last["t"])
        self.warmup_end = self.traffic[0] + warmup

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
        with open(self.workdir / "memory.csv", "w") as f:
            f.write("seconds,nginx_workers_private,tool_server_private,tool_server_sessions,"
                    "nginx_private_clean,nginx_private_dirty,tool_private_clean,tool_private_dirty\n")
            for m, parts in zip(self.memory, self.memory_parts):
                f.write("%.1f,%d,%d,%d,%d,%d,%d,%d\n" % (m + parts[1:]))
        t_begin, t_end = self.traffic
        measured = [m for m in self.memory if self.warmup_end <= m[0] <= t_end]
        print("private memory, %d samples every %.0fs after the warm-up (%.0fs to %.0fs): least-squares "
              "growth per hour of the high-water mark (of the samples), limit %s"
              % (len(measured), SAMPLE_SECONDS, self.warmup_end, t_end, mib(MAX_GROWTH_PER_HOUR)))
        ok &= len(measured) >= 10
        for i, name in ((1, "nginx workers"), (2, "tool server")):
            # the mark starts from the largest value since the caches were filled
            mark = max([m[i] for m in self.memory if self.filled_at <= m[0] < self.warmup_end] or [0])
            marks = []
            for m in measured:
                mark = max(mark, m[i])
                marks.append((m[0], mark))
            per_hour = slope_per_hour(marks)
            raw = slope_per_hour([(m[0], m[i]) for m in measured])
            flat = per_hour <= MAX_GROWTH_PER_HOUR
            ok &= flat
            values = [m[i] for m in measured] or [0]
            print("  %-14s start %s, after warm-up %s, end %s, range after warm-up %s..%s: "
                  "%+.2f MiB/h (%+.2f): %s"
                  % (name, mib(first[key_of(i)]), mib(values[0]), mib(values[-1]), mib(min(values)),
                     mib(max(values)), per_hour / 1048576.0, raw / 1048576.0, "flat" if flat else "GREW"))
        peak = max(m[3] for m in self.memory)
        capped = peak <= SESSIONS_PER_SUBJECT * SUBJECTS
        ok &= capped
        print("tool server MCP sessions: peak %d (cap %d per subject, %d subjects); looper: %d "
              "initializes, %d sessions seen ended by the cap: %s"
              % (peak, SESSIONS_PER_SUBJECT, SUBJECTS, self.counts["initializes"],
                 self.counts["evicted_seen"], "capped" if capped else "OVER THE CAP"))
        ok &= self.counts["evicted_seen"] > 0
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


def key_of(i):
    return {1: "nginx_private", 2: "tool_private"}[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int,
                    default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--rate", type=float, default=2.0, help="users started per second")
    ap.add_argument("--concurrency", type=int, default=24, help="users running at once, at most")
    ap.add_argument("--workers", type=int, default=2, help="nginx worker processes")
    ap.add_argument("--fill-tokens", type=int, default=22000,
                    help="access tokens (and tool server assertions) used to fill the caches "
                         "before the traffic; 0: none")
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
