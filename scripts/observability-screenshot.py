#!/usr/bin/python3
"""The README's picture of the metrics: the whole stack on loopback (as the
tests start it), a real Prometheus scraping the gateway every second, some
minutes of logins and tool calls (allowed and refused), then Prometheus's
graph page of the tool calls, in headless Chromium.

    /usr/bin/python3 scripts/observability-screenshot.py [--out docs/prometheus-tool-calls.png]
                                                         [--seconds 150]

Needs `make` first.  Everything it starts is stopped at the end.
"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "t"))

import harness  # noqa: E402
from conftest import Stack  # noqa: E402
from mcp_gateway import Streamable, login, rpc  # noqa: E402
from prometheus_util import Prometheus  # noqa: E402

EXPR = "sum by (tool, outcome) (rate(mcp_auth_tool_calls_total[30s]))"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "prometheus-tool-calls.png"))
    ap.add_argument("--seconds", type=int, default=150)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcp-observability."))
    (work / "stack").mkdir()
    stack = Stack(work / "stack", workers=2)
    try:
        with Prometheus(work / "prom", scrape=[
                ("mcp-auth-gateway", "127.0.0.1:%d" % stack.port, "/_mcp_auth/metrics"),
                ("mcp-tool-server", "127.0.0.1:%d" % stack.tool_port, "/metrics")]) as prom:
            rng = random.Random(1)
            readers = [login(stack, "demo", scope="snippets:read") for _ in range(2)]
            writers = [login(stack, "alice") for _ in range(2)]
            sessions = [Streamable(stack.url, c.tokens["access_token"]).initialize()
                        for c in readers + writers]
            end = time.time() + args.seconds
            while time.time() < end:
                # a changing mix, so the graph has a shape
                phase = (end - time.time()) / args.seconds
                s = rng.choice(sessions)
                tool = rng.choices(["hello_mcp", "get_snippet", "save_snippet"],
                                   weights=[1 + 3 * phase, 2, 1 + 3 * (1 - phase)])[0]
                arguments = {"name": "note"} if tool == "get_snippet" else {}
                if tool == "save_snippet":
                    arguments = {"name": "note", "text": "hello"}
                s.post(rpc("tools/call", {"name": tool, "arguments": arguments}))
                time.sleep(rng.uniform(0.01, 0.06))
            prom.wait_for_scrape("mcp-auth-gateway", after=time.time())
            subprocess.run(["node", str(ROOT / "scripts" / "prometheus_screenshot.mjs"),
                            "--url", prom.url, "--expr", EXPR, "--out", args.out,
                            "--range", "%ds" % (args.seconds + 30)], check=True)
    finally:
        stack.stop()
        harness.stop_all_live()
    print(args.out)


if __name__ == "__main__":
    main()
