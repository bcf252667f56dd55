"""The Prometheus alerting rules (prometheus/), and t/prometheus_util.py.

promtool checks the rules and the example configuration and runs the rules'
unit tests (prometheus/mcp-auth-alerts.test.yml: every alert firing, and not
firing for what is near it).  Then a real Prometheus, started by
prometheus_util, scrapes a tiny exposition served on loopback from this
process: a counter bumped between two scrapes must read exactly the bump,
and the rules file loads and evaluates in it; scripts/prometheus_screenshot.mjs
draws its graph in headless chromium.  No gateway needed.
"""

import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import ROOT
from prometheus_util import PROMETHEUS, PROMTOOL, Prometheus, parse_rfc3339

RULES = ROOT / "prometheus" / "mcp-auth-alerts.yml"
RULE_TESTS = ROOT / "prometheus" / "mcp-auth-alerts.test.yml"
EXAMPLE = ROOT / "prometheus" / "prometheus.yml.example"
ALERTS = {"MCPAuthRefreshTokenReuse", "MCPAuthProviderFailures", "MCPAuthZoneNearlyFull",
          "MCPAuthRedisDown", "MCPAuthHigh5xxRate", "MCPToolServerDown"}

pytestmark = pytest.mark.skipif(not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()),
                                reason="prometheus is not installed (scripts/deps.sh installs it)")


def promtool(*args, cwd=None):
    r = subprocess.run([PROMTOOL] + [str(a) for a in args], capture_output=True, text=True,
                       cwd=cwd, timeout=60, env={"PATH": "/usr/bin:/bin", "GOMAXPROCS": "1"})
    return r.returncode, r.stdout + r.stderr


def test_promtool_checks_the_rules():
    code, out = promtool("check", "rules", RULES)
    assert code == 0, out
    assert "SUCCESS: %d rules found" % len(ALERTS) in out, out


def test_the_rules_unit_tests_pass():
    code, out = promtool("test", "rules", RULE_TESTS)
    assert code == 0, out
    assert "SUCCESS" in out and "FAILED" not in out, out


def test_every_alert_is_unit_tested_firing_and_not_firing():
    # (no YAML parser needed: the test file's layout is "alertname: X" then
    # "exp_alerts: []" or "exp_alerts:" and the expected alerts)
    firing, quiet, name = set(), set(), None
    for line in RULE_TESTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("alertname:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("exp_alerts:"):
            (quiet if line.endswith("[]") else firing).add(name)
    assert firing == ALERTS and quiet == ALERTS


def test_the_example_configuration_is_valid(tmp_path):
    # as documented: copied next to the rules file
    shutil.copy(EXAMPLE, tmp_path / "prometheus.yml")
    shutil.copy(RULES, tmp_path / RULES.name)
    code, out = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert code == 0, out
    assert "is valid prometheus config file syntax" in out, out


def test_rfc3339_times_of_the_targets_page():
    assert parse_rfc3339("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_rfc3339("1970-01-01T01:00:02.123456789+01:00") == pytest.approx(2.123456789)
    assert parse_rfc3339("0001-01-01T00:00:00Z") is None


class Exposition:
    """/metrics in the text format, from a thread on 127.0.0.1."""

    def __init__(self):
        self.count = 5
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                with outer.lock:
                    n = outer.count
                body = ("# HELP mcp_auth_step_ups_total Step-ups.\n"
                        "# TYPE mcp_auth_step_ups_total counter\n"
                        "mcp_auth_step_ups_total %d\n"
                        "# TYPE mcp_auth_refresh_reuse_total counter\n"
                        "mcp_auth_refresh_reuse_total 0\n"
                        "# TYPE mcp_auth_zone_used_bytes gauge\n"
                        "mcp_auth_zone_used_bytes 100\n"
                        "# TYPE mcp_auth_zone_size_bytes gauge\n"
                        "mcp_auth_zone_size_bytes 1000\n" % n).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bump(self, n):
        with self.lock:
            self.count += n

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exposition():
    e = Exposition()
    yield e
    e.close()


@pytest.fixture(scope="module")
def prom(tmp_path_factory, exposition):
    """Prometheus scraping the exposition every second, with the rules."""
    target = "127.0.0.1:%d" % exposition.port
    with Prometheus(tmp_path_factory.mktemp("prometheus"),
                    scrape=[("fake-gateway", target, "/metrics")], rule_files=[RULES]) as p:
        yield p


def test_prometheus_util_sees_exactly_the_bump(prom, exposition):
    assert prom.url.startswith("http://127.0.0.1:")
    prom.wait_for_scrape("fake-gateway", after=time.time())
    start = prom.query("mcp_auth_step_ups_total")
    assert start is not None
    assert prom.query('up{job="fake-gateway"}') == 1
    assert prom.query("mcp_auth_no_such_metric") is None

    before = time.time()
    exposition.bump(7)
    [t] = prom.wait_for_scrape("fake-gateway", after=before)
    assert t["scrapeUrl"] == "http://127.0.0.1:%d/metrics" % exposition.port
    assert prom.query("mcp_auth_step_ups_total") == start + 7
    assert prom.value('mcp_auth_step_ups_total{job="fake-gateway"}') == start + 7
    assert prom.value('mcp_auth_step_ups_total{job="elsewhere"}') is None
    with pytest.raises(ValueError):
        prom.query('{job="fake-gateway"}')           # several series


def test_the_rules_load_and_evaluate_without_alerts(prom):
    prom.wait_for_scrape("fake-gateway")
    groups = prom.api("rules")["groups"]
    assert [g["name"] for g in groups] == ["mcp-auth"]
    assert {r["name"] for r in groups[0]["rules"]} == ALERTS
    for rule in groups[0]["rules"]:
        assert rule["health"] == "ok", rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
    assert prom.alerts() == []


SCREENSHOT = ROOT / "scripts" / "prometheus_screenshot.mjs"


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists()
                    or not (ROOT / "node_modules" / "playwright-core").exists(),
                    reason="chromium or playwright-core is not installed")
def test_the_screenshot_script_draws_the_graph(prom, exposition, tmp_path):
    from harness import NODE
    prom.wait_for_scrape("fake-gateway")
    out = tmp_path / "graph.png"
    r = subprocess.run([NODE, str(SCREENSHOT), "--url", prom.url, "--expr",
                        "mcp_auth_step_ups_total", "--out", str(out)],
                       capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["series"] == 1 and "/graph" in info["url"], info
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an expression with no data is an error, not an empty picture
    r = subprocess.run([NODE, str(SCREENSHOT), "--url", prom.url, "--expr",
                        "mcp_auth_no_such_metric", "--out", str(tmp_path / "empty.png"),
                        "--timeout", "10000"],
                       capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert r.returncode == 1 and "No datapoints found" in r.stderr, r.stdout + r.stderr


def test_stop_leaves_nothing_running(tmp_path):
    p = Prometheus(scrape=[("nothing", "127.0.0.1:9", "/metrics")]).start()
    proc, workdir, port = p.proc.popen, p.workdir, p.port
    assert p.session.get(p.url + "/-/healthy", timeout=5).status_code == 200
    p.stop()
    assert proc.poll() is not None
    assert not workdir.exists()                   # its own temporary folder is gone
    import socket
    with pytest.raises(ConnectionRefusedError):   # nothing listens on its port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
