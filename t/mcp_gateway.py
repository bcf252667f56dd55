"""MCP clients for talking to the tool server THROUGH the gateway, with a
bearer token obtained by the real login flow (oauth_client.py)."""

import itertools
import json
import queue
import socket
import threading
from urllib.parse import urljoin

import requests

from oauth_client import Browser, McpOAuthClient

_ids = itertools.count(1)
REDIRECT = "http://127.0.0.1:33418/callback"


def login(stack, user="demo", scope=None, client=None):
    """A fresh client (unless given) logged in as `user`; returns the client."""
    c = client or McpOAuthClient(stack.url, redirect_uri=REDIRECT, scope=scope)
    password = getattr(stack, "%s_password" % user, None) or stack.alice_password
    c.login(Browser(user, password))
    return c


def rpc(method, params=None, notification=False):
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if not notification:
        msg["id"] = next(_ids)
    return msg


def text_of(reply):
    return reply["result"]["content"][0]["text"]


class Streamable:
    def __init__(self, base, token, version="2025-06-18"):
        self.url = base + "/mcp"
        self.token = token
        self.version = version
        self.session_id = None
        self.http = requests.Session()

    def headers(self, extra=None):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
            h["MCP-Protocol-Version"] = self.version
        h.update(extra or {})
        return h

    def post(self, body, headers=None):
        return self.http.post(self.url, data=json.dumps(body), headers=self.headers(headers),
                              timeout=15)

    def initialize(self):
        r = self.post(rpc("initialize", {"protocolVersion": self.version, "capabilities": {},
                                         "clientInfo": {"name": "pytest", "version": "1"}}))
        assert r.status_code == 200, (r.status_code, r.headers, r.text)
        self.session_id = r.headers["Mcp-Session-Id"]
        r = self.post(rpc("notifications/initialized", notification=True))
        assert r.status_code == 202, r.text
        return self

    def request(self, method, params=None):
        r = self.post(rpc(method, params))
        assert r.status_code == 200, (r.status_code, r.headers, r.text)
        return r.json()

    def call(self, tool, **arguments):
        return self.request("tools/call", {"name": tool, "arguments": arguments})


class Sse:
    """The 2024-11-05 transport through the gateway: GET /mcp/sse, then POST
    to the endpoint it names (relative to the stream's URL)."""

    def __init__(self, base, token, timeout=10):
        self.base = base
        self.token = token
        self.events = queue.Queue()
        self.closed = threading.Event()
        self.response = requests.get(base + "/mcp/sse", stream=True, timeout=timeout,
                                     headers={"Accept": "text/event-stream",
                                              "Authorization": "Bearer " + token})
        self.status = self.response.status_code
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event, data = "message", []
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line is None or line.startswith(":"):
                    continue
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "":
                    if data:
                        self.events.put((event, "\n".join(data)))
                    event, data = "message", []
        except Exception:
            pass
        self.closed.set()

    def endpoint(self, timeout=5):
        kind, data = self.events.get(timeout=timeout)
        assert kind == "endpoint", (kind, data)
        self.post_url = urljoin(self.base + "/mcp/sse", data)
        return self.post_url

    def post(self, body, token=None, headers=None):
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + (token or self.token)}
        h.update(headers or {})
        return requests.post(self.post_url, data=json.dumps(body), timeout=10, headers=h)

    def request(self, method, params=None, timeout=10):
        msg = rpc(method, params)
        r = self.post(msg)
        assert r.status_code == 202, (r.status_code, r.text)
        while True:
            kind, data = self.events.get(timeout=timeout)
            reply = json.loads(data)
            if reply.get("id") == msg["id"]:
                return reply

    def initialize(self, version="2024-11-05"):
        self.endpoint()
        reply = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                            "clientInfo": {"name": "pytest", "version": "1"}})
        assert "result" in reply, reply
        assert self.post(rpc("notifications/initialized", notification=True)).status_code == 202
        return self

    def close(self):
        try:
            self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.response.close()


class GetStream:
    """A Streamable HTTP GET stream (the server's own messages) of session s,
    read in a thread until it ends (closed is set then)."""

    def __init__(self, s):
        self.closed = threading.Event()
        self.r = s.http.get(s.url, stream=True, timeout=(5, 30),
                            headers=s.headers({"Accept": "text/event-stream"}))
        self.status = self.r.status_code
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for _ in self.r.iter_content(chunk_size=None):
                pass
        except Exception:  # noqa: BLE001 -- any end is an end
            pass
        self.closed.set()

    def close(self):
        self.r.close()
