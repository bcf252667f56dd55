"""Helpers for the mcp-tool-server tests: identity assertions, a server
wrapper, and small MCP clients for both transports (stdlib + requests only)."""

import base64
import hashlib
import hmac
import itertools
import json
import os
import queue
import threading
import time
from pathlib import Path

import requests

from harness import SANITIZE, TOOL_SERVER, Proc, sanitizer_reports

# `make valgrind-tool-server`: a command (valgrind and its options) put in
# front of the tool server's; startup then takes seconds, not milliseconds.
WRAPPER = os.environ.get("MCP_TOOL_SERVER_WRAPPER", "").split()
VALGRIND_ERROR = 99  # the wrapper's --error-exitcode

READY = r"mcp-tool-server listening on 127.0.0.1:(\d+)"
ISS = "ngx_mcp_auth"
AUD = "mcp-tool-server"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
_ids = itertools.count(1)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(key, sub="alice", alg="HS256", lifetime=120, sign_key=None, header=None, **claims):
    """An identity assertion like the gateway mints; claims can be overridden
    (value None removes a claim)."""
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "sub": sub, "client_id": "test-client",
            "scope": "mcp", "iat": now, "exp": now + lifetime}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(body).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg)
    if digest is None:  # alg "none" and friends: no signature
        return signing_input + "."
    mac = hmac.new(sign_key if sign_key is not None else key, signing_input.encode(), digest)
    return signing_input + "." + b64url(mac.digest())


class ToolServer:
    """One mcp-tool-server process on a free port, with its own data dir."""

    def __init__(self, workdir, name="tool-server", data_dir=None, key=None, args=(), identity_args=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key_path = self.workdir / "identity.key"
        if key is None:
            if self.key_path.exists():
                key = self.key_path.read_bytes().strip()
            else:
                key = os.urandom(32).hex().encode()
        self.key = key
        self.key_path.write_bytes(key + b"\n")
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.args = list(args)
        self.identity_args = identity_args
        self.name = name
        self.proc = None
        self.port = None
        self.starts = 0

    def start(self):
        # A fresh log per start: Proc appends, and an old "listening" line
        # would otherwise be taken for the new one.
        self.starts += 1
        identity = self.identity_args
        if identity is None:
            identity = ["--identity-key", self.key_path]
        argv = [TOOL_SERVER, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir] + identity + self.args
        self.proc = Proc("%s-%d" % (self.name, self.starts), WRAPPER + argv, self.workdir, ready_line=READY,
                         timeout=120.0 if WRAPPER else 20.0).start()
        self.port = int(self.proc.match.group(1))
        return self

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def token(self, sub="alice", **kw):
        return mint(self.key, sub=sub, **kw)

    def stop(self, sig=None):
        if self.proc is None:
            return None
        wait = 60.0 if WRAPPER else 10.0
        rc = self.proc.stop(timeout=wait) if sig is None else self.proc.stop(sig, timeout=wait)
        self.proc = None
        if WRAPPER and rc == VALGRIND_ERROR:
            logs = "\n".join(p.read_text(errors="replace")[-6000:] for p in self.workdir.glob("*.valgrind"))
            raise AssertionError("valgrind found errors in the tool server:\n" + logs)
        if SANITIZE:
            reports = sanitizer_reports(self.workdir)
            assert not reports, "sanitizer reports from the tool server:\n" + reports
        return rc

    def kill9(self):
        self.proc.kill9()
        self.proc = None


def make_ec_key(workdir):
    """An ES256 key pair made with the openssl CLI: (private PEM path, public PEM path)."""
    import subprocess
    Path(workdir).mkdir(parents=True, exist_ok=True)
    priv, pub = Path(workdir) / "ec.pem", Path(workdir) / "ec.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(priv)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "ec", "-in", str(priv), "-pubout", "-out", str(pub)],
                   check=True, capture_output=True)
    return priv, pub


def _der_to_raw(der):
    """ECDSA DER signature (SEQUENCE of two INTEGERs) to JOSE r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def mint_es256(priv_path, sub="alice", lifetime=120, **claims):
    import subprocess
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "sub": sub, "iat": now, "exp": now + lifetime}
    body.update(claims)
    signing_input = (b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "." +
                     b64url(json.dumps(body).encode()))
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(priv_path)], input=signing_input.encode(),
                         check=True, capture_output=True).stdout
    return signing_input + "." + b64url(_der_to_raw(der))


def rpc(method, params=None, id_=None, notification=False):
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if not notification:
        msg["id"] = next(_ids) if id_ is None else id_
    return msg


def text_of(result):
    return result["content"][0]["text"]


class StreamableClient:
    """A Streamable HTTP client for the session-based revisions."""

    def __init__(self, server, sub="alice", version="2025-06-18", http=None):
        self.server = server
        self.sub = sub
        self.version = version
        self.http = http or requests.Session()
        self.session_id = None

    def headers(self, extra=None):
        h = dict(JSON_HEADERS)
        h["X-MCP-Identity"] = self.server.token(self.sub)
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
            h["MCP-Protocol-Version"] = self.version
        h.update(extra or {})
        return h

    def post(self, body, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body)
        return self.http.post(self.server.base + "/mcp", data=data, headers=self.headers(headers), timeout=10)

    def initialize(self):
        r = self.post(rpc("initialize", {"protocolVersion": self.version, "capabilities": {},
                                         "clientInfo": {"name": "pytest", "version": "1"}}))
        assert r.status_code == 200, r.text
        self.session_id = r.headers["Mcp-Session-Id"]
        assert r.json()["result"]["protocolVersion"] == self.version
        assert self.post(rpc("notifications/initialized", notification=True)).status_code == 202
        return self

    def request(self, method, params=None):
        r = self.post(rpc(method, params))
        assert r.status_code == 200, r.text
        return r.json()

    def call(self, tool, **arguments):
        return self.request("tools/call", {"name": tool, "arguments": arguments})


class SseClient:
    """A client of the 2024-11-05 HTTP+SSE transport. Events are read by a
    background thread into a queue."""

    def __init__(self, server, sub="alice", headers=None, path="/sse"):
        self.server = server
        self.sub = sub
        h = {"Accept": "text/event-stream", "X-MCP-Identity": server.token(sub)}
        h.update(headers or {})
        self.response = requests.get(server.base + path, headers=h, stream=True, timeout=10)
        self.events = queue.Queue()
        self.comments = queue.Queue()
        self.closed = threading.Event()
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()
            kind, data = self.next_event()
            assert kind == "endpoint"
            self.endpoint = data
            self.session_id = data.split("sessionId=")[1]

    def _read(self):
        event, data = "message", []
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line.startswith(":"):
                    self.comments.put(line)
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "":
                    if data:
                        self.events.put((event, "\n".join(data)))
                    event, data = "message", []
        except Exception:  # the stream was closed under us
            pass
        self.closed.set()

    def next_event(self, timeout=5):
        return self.events.get(timeout=timeout)

    def post(self, body, sub=None, raw=None, headers=None, session_id=None):
        h = {"Content-Type": "application/json",
             "X-MCP-Identity": self.server.token(sub or self.sub)}
        h.update(headers or {})
        sid = self.session_id if session_id is None else session_id
        data = raw if raw is not None else json.dumps(body)
        return requests.post(self.server.base + "/message", params={"sessionId": sid},
                             data=data, headers=h, timeout=10)

    def request(self, method, params=None):
        msg = rpc(method, params)
        r = self.post(msg)
        assert r.status_code == 202, r.text
        kind, data = self.next_event()
        assert kind == "message"
        reply = json.loads(data)
        assert reply["id"] == msg["id"]
        return reply

    def close(self):
        # Shut the socket first: closing a streamed response otherwise waits
        # for the reader thread's next chunk.
        try:
            import socket
            self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.response.close()


# --- snippet calls, each in a fresh session ---------------------------------

def call(server, tool, sub="alice", **arguments):
    """One tools/call in a fresh session; returns the result object."""
    return StreamableClient(server, sub=sub).initialize().call(tool, **arguments)["result"]


def save(server, name, content, sub="alice"):
    return call(server, "save_snippet", sub=sub, snippetname=name, snippet=content)


def get(server, name, sub="alice"):
    return call(server, "get_snippet", sub=sub, snippetname=name)


def saved(result):
    return result["isError"] is False and text_of(result).endswith("saved successfully")


def eventually_saves(server, name, content, within=5.0):
    """Saves until it works (a failed reconnect waits a second before the
    next); the last result."""
    deadline = time.monotonic() + within
    while True:
        r = save(server, name, content)
        if saved(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.1)
