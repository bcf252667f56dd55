"""mcp-remote (npm, pinned in package.json), the stdio bridge desktop apps use
to reach remote MCP servers, against the whole stack: it is driven over stdio
(JSON-RPC lines) at /mcp, logs in through OAuth by "opening a browser" --
t/clients/fake-browser.mjs, reached through $BROWSER (and as xdg-open on PATH),
approves our consent page, logs in at the provider and calls mcp-remote's
local callback -- and then proxies tool calls."""

import json
import os
import queue
import subprocess
import threading
import time

import pytest

from harness import NODE, ROOT, free_port

MCP_REMOTE = ROOT / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
FAKE_BROWSER = ROOT / "t" / "clients" / "fake-browser.mjs"


class McpRemote:
    """mcp-remote as a child process, spoken to in JSON-RPC over stdio."""

    def __init__(self, st, home, browser_log, decision="allow"):
        bindir = home.parent / "bin"
        bindir.mkdir(exist_ok=True)
        if not (bindir / "xdg-open").exists():
            (bindir / "xdg-open").symlink_to(FAKE_BROWSER)
        env = dict(os.environ, HOME=str(home), BROWSER=str(FAKE_BROWSER),
                   PATH="%s:%s" % (bindir, os.environ.get("PATH", "")),
                   FAKE_BROWSER_LOGIN="demo", FAKE_BROWSER_PASSWORD=st.demo_password,
                   FAKE_BROWSER_LOG=str(browser_log), FAKE_BROWSER_DECISION=decision)
        for var in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "MCP_REMOTE_CONFIG_DIR"):
            env.pop(var, None)
        self.stderr_path = home.parent / ("mcp-remote-%d.stderr" % free_port())
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([NODE, str(MCP_REMOTE), st.url + "/mcp", str(free_port()),
                                      "--allow-http"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params=None, timeout=60):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no answer to %s from mcp-remote; its log:\n%s"
                                     % (method, self.log()[-3000:]))
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                return reply

    def initialize(self):
        reply = self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                            "clientInfo": {"name": "pytest", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def log(self):
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.stderr.close()


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory("mcp-remote")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp-remote") / "home"


@pytest.fixture(scope="module")
def browser_log(home):
    return home.parent / "browser.log"


def browser_events(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def text_of(reply):
    return reply["result"]["content"][0]["text"]


def test_mcp_remote_logs_in_through_the_browser_and_calls_hello_mcp(st, home, browser_log):
    home.mkdir(parents=True, exist_ok=True)
    remote = McpRemote(st, home, browser_log)
    try:
        init = remote.initialize()
        assert init["result"]["serverInfo"]["name"] == "mcp-tool-server", init
        tools = {t["name"] for t in remote.request("tools/list")["result"]["tools"]}
        assert tools == {"hello_mcp", "get_snippet", "save_snippet"}
        reply = remote.request("tools/call", {"name": "hello_mcp", "arguments": {}})
        assert text_of(reply) == "Hello I am MCPTool!"
        saved = remote.request("tools/call", {"name": "save_snippet", "arguments": {
            "snippetname": "via-mcp-remote", "snippet": "bridged"}})
        assert "saved successfully" in text_of(saved)
        log = remote.log()
    finally:
        remote.close()
    events = browser_events(browser_log)
    steps = [e["browser"] for e in events]
    assert steps == ["open", "consent", "login", "callback", "callback_answered"], events
    opened = events[0]
    assert opened["path"] == "/authorize"
    assert opened["redirect_uri"].startswith("http://localhost:")
    assert events[3]["has_code"] and events[4]["status"] == 200
    assert "Connected to remote server using StreamableHTTPClientTransport" in log
    # its token cache went to the temporary HOME, nowhere else
    cached = list((home / ".mcp-auth").rglob("*_tokens.json"))
    assert cached, list((home / ".mcp-auth").rglob("*"))


def test_mcp_remote_reuses_its_cached_tokens_without_opening_the_browser(st, home, browser_log):
    before = len(browser_events(browser_log))
    assert before, "the first test logs in"
    remote = McpRemote(st, home, browser_log)
    try:
        remote.initialize()
        reply = remote.request("tools/call", {"name": "get_snippet", "arguments": {
            "snippetname": "via-mcp-remote"}})
        assert text_of(reply) == "bridged"
    finally:
        remote.close()
    assert len(browser_events(browser_log)) == before


def test_mcp_remote_learns_of_a_deny_through_the_pages_link(st, tmp_path):
    """Deny shows a page (no automatic redirect to an unapproved client,
    RFC 9700 §4.11.2); the user follows its link, mcp-remote's callback gets
    access_denied, and no connection is made."""
    home = tmp_path / "home"
    home.mkdir()
    log_path = tmp_path / "browser.log"
    remote = McpRemote(st, home, log_path, decision="deny")
    try:
        remote.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "pytest", "version": "1"}}})
        deadline = time.time() + 30
        while time.time() < deadline and not any(
                e["browser"] == "callback_answered" for e in browser_events(log_path)):
            time.sleep(0.2)
        time.sleep(1)
        log = remote.log()
    finally:
        remote.close()
    events = browser_events(log_path)
    steps = [e["browser"] for e in events]
    assert steps == ["open", "consent", "return_link", "callback", "callback_answered"], events
    assert events[3]["error"] == "access_denied" and not events[3]["has_code"]
    assert "Connected to remote server" not in log
    assert "Authorization failed: access_denied" in log, log[-2000:]
    assert not list((home / ".mcp-auth").rglob("*_tokens.json"))
