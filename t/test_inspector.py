"""The MCP Inspector (@modelcontextprotocol/inspector, pinned in package.json)
in Debian's headless chromium, driven by playwright-core: the README's
walkthrough, automated.  The Inspector is started against the gateway
(SSE at /mcp/sse, Streamable HTTP at /mcp) on free loopback ports; in the
browser we click Connect, approve our consent page, log in at the provider,
list the tools, run hello_mcp and read its result on the page.  Screenshots
(consent page, provider login, connected, tool result) are kept in the
test's output folder; docs/consent-page.png (the README's) is written when
missing or when MCP_UPDATE_SCREENSHOTS=1."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import NODE, ROOT, Proc, free_port

CHROMIUM = Path("/usr/bin/chromium")
INSPECTOR = ROOT / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / \
    "launcher" / "build" / "index.js"
DRIVER = ROOT / "t" / "clients" / "inspector.mjs"
DOCS_SCREENSHOT = ROOT / "docs" / "consent-page.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed "
                                "(scripts/deps.sh installs it)")


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory("inspector")


def start_inspector(workdir, transport, server_url):
    """The Inspector's web UI on free loopback ports, with its own API token;
    returns (proc, the URL it prints, token included)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    client_port, sandbox_port, app_port = free_port(), free_port(), free_port()
    env = {"HOME": str(home), "HOST": "127.0.0.1", "CLIENT_PORT": str(client_port),
           "MCP_SANDBOX_PORT": str(sandbox_port), "SERVER_PORT": str(sandbox_port),
           "MCP_APP_ORIGIN_PORT": str(app_port), "MCP_AUTO_OPEN_ENABLED": "false",
           "MCP_INSPECTOR_SECRET_STORE": "memory", "MCP_STORAGE_DIR": str(home / "storage")}
    proc = Proc("inspector-" + transport,
                [NODE, INSPECTOR, "--web", "--transport", transport, "--server-url", server_url],
                workdir, env=env, timeout=60,
                ready_line=r"up and running at:\s+(http://127\.0\.0\.1:%d\S*)" % client_port)
    proc.start()
    return proc, proc.match.group(1)


def run_walkthrough(st, tmp_path, transport, path, decision="allow"):
    out = tmp_path / "screenshots"
    out.mkdir()
    inspector, url = start_inspector(tmp_path, transport, st.url + path)
    try:
        r = subprocess.run([NODE, str(DRIVER), "--inspector", url, "--user", "demo",
                            "--password", st.demo_password, "--out", str(out), "--decision", decision],
                           cwd=ROOT, capture_output=True, text=True, timeout=150)
        log = inspector.log()
    finally:
        inspector.stop()
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    failure = (out / "failure.txt").read_text() if (out / "failure.txt").exists() else ""
    assert r.returncode == 0 and lines[-1].get("step") == "done", (
        "inspector walkthrough failed:\n%s\n%s\npage:\n%s\ninspector log:\n%s"
        % (r.stdout, r.stderr[-3000:], failure[:3000], log[-3000:]))
    return {x["step"]: x for x in lines if "step" in x}, out


@pytest.mark.parametrize("transport,path", [("sse", "/mcp/sse"), ("http", "/mcp")])
def test_the_inspector_connects_logs_in_and_runs_hello_mcp(st, tmp_path, transport, path):
    steps, out = run_walkthrough(st, tmp_path, transport, path)
    assert steps["inspector_loaded"]["server"] == st.url + path
    consent = steps["consent_page"]
    assert consent["title"] == "Authorize MCP Inspector"
    assert "snippets:read" in consent["text"] and "snippets:write" in consent["text"]
    # the browser's own POST of our form carried our origin and was accepted
    assert steps["consent_posts"]["posts"] == [{"status": 303, "origin": st.url}]
    assert steps["provider_login_page"]["origin"] == st.issuer
    assert steps["back_at_inspector"]["path"] == "/oauth/callback"
    assert steps["tools_listed"]["tools"] == ["hello_mcp", "get_snippet", "save_snippet"]
    assert steps["tool_result"]["on_page"] is True
    for shot in ("consent.png", "login.png", "connected.png", "result.png"):
        assert (out / shot).stat().st_size > 5000, shot
    if transport == "sse" and (not DOCS_SCREENSHOT.exists()
                               or os.environ.get("MCP_UPDATE_SCREENSHOTS") == "1"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(out / "consent.png", DOCS_SCREENSHOT)


def test_the_inspector_learns_of_a_deny_through_the_pages_link(st, tmp_path):
    """Deny: a page at the gateway (RFC 9700 §4.11.2: no automatic redirect
    to a client the user has not approved) whose link takes the browser back
    to the Inspector with access_denied; the Inspector does not connect."""
    steps, out = run_walkthrough(st, tmp_path, "http", "/mcp", decision="deny")
    page = steps["denied_page"]
    assert page["url_path"] == "/consent" and page["title"] == "Access denied"
    assert page["link"] == "Return to 127.0.0.1"
    assert steps["back_at_inspector"]["path"] == "/oauth/callback"
    assert steps["back_at_inspector"]["error"] == "access_denied"
    assert steps["after_deny"]["connected"] is False, steps["after_deny"]["text"]
    assert "access_denied" in steps["after_deny"]["text"]   # the Inspector tells its user
    assert (out / "denied.png").stat().st_size > 5000
