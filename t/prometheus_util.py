"""A real Prometheus (Debian's /usr/bin/prometheus) for the tests.

    from prometheus_util import Prometheus

    with Prometheus(tmp_path, scrape=[("mcp-auth-gateway", "127.0.0.1:%d" % port,
                                       "/_mcp_auth/metrics")],
                    rule_files=[ROOT / "prometheus" / "mcp-auth-alerts.yml"]) as prom:
        t0 = time.time()
        ...                                  # make the gateway do something
        prom.wait_for_scrape("mcp-auth-gateway", after=t0)
        assert prom.value('mcp_auth_logins_total{outcome="completed"}') == 1

Prometheus listens on a free 127.0.0.1 port (harness.free_port), scrapes and
evaluates rules every second, keeps its TSDB in the workdir and is started
and stopped through harness.Proc: its own process group, SIGTERM then
SIGKILL, registered in harness.LIVE so its log is attached to a failing test
and nothing outlives the run.  The configuration is written as JSON (YAML's
subset), so nothing but the standard library and requests is needed.
GOMAXPROCS=1 keeps it on one core.
"""

import json
import math
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from harness import Proc, free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def parse_rfc3339(text):
    """Seconds since the epoch of a Go RFC3339Nano time ("2024-01-02T03:04:05.123456789Z",
    or with a +hh:mm offset); None for Go's zero time (never scraped)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text or "")
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % text)
    year, mon, day, hh, mm, ss = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    tz = timezone.utc
    if m.group(8) != "Z":
        sign = 1 if m.group(8)[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(m.group(8)[1:3]), minutes=int(m.group(8)[4:6])))
    base = datetime(year, mon, day, hh, mm, ss, tzinfo=tz).timestamp()
    return base + (float("0." + m.group(7)) if m.group(7) else 0.0)


class Prometheus:
    """Prometheus scraping the given targets.

    scrape: (job, "host:port", metrics_path) triples, one job each.
    rule_files: paths of rule files to load (evaluated every second).
    workdir: where the config, the TSDB (tsdb/) and prometheus.log go; a
    temporary folder (removed by stop()) when None.
    """

    def __init__(self, workdir=None, scrape=(), rule_files=(), interval="1s",
                 extra_args=(), timeout=30.0):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="prometheus-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.scrape = [tuple(s) for s in scrape]
        self.rule_files = [str(Path(r).resolve()) for r in rule_files]
        self.interval = interval
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.port = None
        self.proc = None
        self.session = requests.Session()
        self.session.trust_env = False       # loopback only: no proxy from the environment

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def config_path(self):
        return self.workdir / "prometheus.json"

    def config(self):
        """The configuration as a dict (written as JSON, which is YAML)."""
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval,
                       "scrape_timeout": self.interval},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {"job_name": job, "metrics_path": path or "/metrics", "scheme": "http",
                 "static_configs": [{"targets": [target]}]}
                for job, target, path in self.scrape],
        }

    def start(self):
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        storage = self.workdir / "tsdb"
        last = None
        for _attempt in range(3):           # a free port can be taken before we bind it
            self.port = free_port()
            self.proc = Proc("prometheus", [
                PROMETHEUS,
                "--config.file=%s" % self.config_path,
                "--storage.tsdb.path=%s" % storage,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                # not the packaged instance's: no remote calls, nothing under /etc
                "--web.external-url=http://127.0.0.1:%d/" % self.port,
                "--log.level=info",
            ] + self.extra_args, self.workdir, port=self.port, timeout=self.timeout,
                env={"GOMAXPROCS": "1"})
            try:
                self.proc.start()
                break
            except (RuntimeError, TimeoutError) as e:
                last = e
                self.proc.stop()
                self.proc = None
        else:
            raise RuntimeError("prometheus did not start: %s" % last)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError("prometheus exited:\n" + self.proc.log()[-4000:])
            try:
                if self.session.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError("prometheus not ready:\n" + self.proc.log()[-4000:])

    def stop(self):
        """Stops Prometheus (SIGTERM, SIGKILL after 10 s); returns its exit code."""
        code = None
        if self.proc is not None:
            code = self.proc.stop()
            self.proc = None
        self.session.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code

    def log(self):
        return self.proc.log() if self.proc else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- HTTP API ----------------------------------------------------------

    def api(self, path, **params):
        """GET /api/v1/<path>; the "data" of a successful answer."""
        r = self.session.get(self.url + "/api/v1/" + path, params=params, timeout=10)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise RuntimeError("%s %s: %s %s" % (path, params, r.status_code, body))
        return body["data"]

    def query_vector(self, expr, at=None):
        """Instant query: [(labels dict, float)] (a scalar as [({}, v)])."""
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        data = self.api("query", **params)
        if data["resultType"] in ("scalar", "string"):
            return [({}, float(data["result"][1]))]
        if data["resultType"] == "vector":
            return [(s["metric"], float(s["value"][1])) for s in data["result"]]
        raise ValueError("%s is a %s, not an instant vector" % (expr, data["resultType"]))

    def query(self, expr, at=None):
        """Instant query of an expression with at most one result: its value
        as a float, None when the result is empty.  ValueError if several."""
        result = self.query_vector(expr, at=at)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError("%s has %d series: %s" % (expr, len(result), [m for m, _ in result]))
        return result[0][1]

    def value(self, selector, at=None):
        """Sum of every series the selector matches right now (all labels,
        jobs and instances together); None when none matches."""
        return self.query("sum(%s)" % selector, at=at)

    def targets(self, job=None):
        """The active targets (of one job)."""
        active = self.api("targets", state="active")["activeTargets"]
        return [t for t in active if job is None or t["labels"].get("job") == job]

    def alerts(self, name=None, state=None):
        """Active alerts (pending or firing), by alertname and state."""
        return [a for a in self.api("alerts")["alerts"]
                if (name is None or a["labels"].get("alertname") == name)
                and (state is None or a["state"] == state)]

    # -- waiting -----------------------------------------------------------

    def wait_for_scrape(self, job, after=None, timeout=15.0):
        """Waits until every target of the job has been scraped successfully
        by a scrape that started at or after `after` (time.time() seconds;
        now when None), and that scrape's samples are queryable.  Returns the
        job's targets (dicts from /api/v1/targets)."""
        after = time.time() if after is None else after
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            targets = self.targets(job)
            last = targets
            done = []
            for t in targets:
                scraped = parse_rfc3339(t.get("lastScrape"))
                if t.get("health") == "up" and scraped is not None and scraped >= after:
                    done.append(scraped)
            if targets and len(done) == len(targets):
                # the targets page is updated a moment before the scrape's
                # samples are committed: wait for its `up` sample too
                ts = self.query('min(timestamp(up{job="%s"}))' % job)
                if ts is not None and ts >= min(done) - 0.002:
                    return targets
            time.sleep(0.1)
        raise TimeoutError("job %s not scraped successfully after %.3f; targets: %s\n%s"
                           % (job, after, json.dumps(last, indent=1)[:3000], self.log()[-2000:]))

    def wait_until(self, expr, predicate=lambda v: v is not None and not math.isnan(v),
                   timeout=15.0):
        """Polls query(expr) until predicate(value) holds; returns the value."""
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.query(expr)
            if predicate(v):
                return v
            time.sleep(0.1)
        raise TimeoutError("%s stayed at %r" % (expr, v))

    def wait_for_alert(self, name, state="firing", timeout=15.0):
        """Waits until an alert of that name is in that state; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.alerts(name, state)
            if found:
                return found
            time.sleep(0.1)
        raise TimeoutError("no %s alert %s; alerts: %s" % (state, name, self.alerts()))
