#!/usr/bin/python3
"""Instructions per request in mcp-tool-server, counted by callgrind, so
without timing noise.

    /usr/bin/python3 bench/tool_server_callgrind.py [--bin build/mcp-tool-server]

Starts the tool server under `valgrind --tool=callgrind` and, for each
scenario below, sends a fixed number of requests over keep-alive
connections (each connection has one request in flight at a time), after a
warm-up on the same connections.  The counters are zeroed before the
measured requests and dumped after them; then zeroed again, the server left
idle for as long as the requests took, and dumped: that idle count is
subtracted.  Prints one line per scenario: instructions per request.

Scenarios (every request carries the same HS256 X-MCP-Identity assertion,
as behind the gateway, on one Streamable HTTP 2025-06-18 session):
  call-c1   tools/call hello_mcp, 1 connection
  call-c64  tools/call hello_mcp, 64 connections
  list-c1   tools/list, 1 connection
Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hello_mcp", "arguments": {}}}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
SCENARIOS = [  # name, body, connections, measured requests, what a good answer contains
    ("call-c1", CALL, 1, 2000, b"Hello I am MCPTool!"),
    ("call-c64", CALL, 64, 4000, b"Hello I am MCPTool!"),
    ("list-c1", LIST, 1, 2000, b"hello_mcp"),
]
WARMUP_PER_CONNECTION = 20


def mint(key):
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": "ngx_mcp_auth", "aud": "mcp-tool-server", "sub": "bench-user",
              "client_id": "bench", "scope": "mcp", "iat": now, "exp": now + 240}
    msg = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return msg + "." + b64(hmac.new(key, msg.encode(), hashlib.sha256).digest())


def open_session(base, identity):
    def post(body, sid=None):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "X-MCP-Identity": identity}
        if sid:
            h.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"})
        return urllib.request.urlopen(urllib.request.Request(base + "/mcp", json.dumps(body).encode(), h),
                                      timeout=60)
    r = post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "bench", "version": "1"}}})
    sid = r.headers["Mcp-Session-Id"]
    r.read()
    assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid).status == 202
    return sid


def request_bytes(port, body, sid, identity):
    data = json.dumps(body, separators=(",", ":")).encode()
    head = ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nMcp-Session-Id: %s\r\n"
            "MCP-Protocol-Version: 2025-06-18\r\nX-MCP-Identity: %s\r\nContent-Length: %d\r\n\r\n"
            % (port, sid, identity, len(data)))
    return head.encode() + data


def take_response(buf):
    """(status, body, rest) when buf holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    if len(buf) < end + 4 + length:
        return None
    return int(head[0].split()[1]), bytes(buf[end + 4:end + 4 + length]), buf[end + 4 + length:]


def run(conns, req, total, expect):
    """Sends `total` requests over `conns`, one in flight per connection."""
    sel = selectors.DefaultSelector()
    state = {}
    sent = done = 0
    for s in conns:
        if sent < total:
            s.sendall(req)
            sent += 1
            state[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
    while done < total:
        for key, _ in sel.select(timeout=120):
            s = key.fileobj
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed by the server")
            state[s] += chunk
            while True:
                got = take_response(state[s])
                if got is None:
                    break
                status, body, rest = got
                state[s] = bytearray(rest)
                if status != 200 or expect not in body:
                    raise RuntimeError("bad answer: %d %r" % (status, body[:200]))
                done += 1
                if sent < total:
                    s.sendall(req)
                    sent += 1
    sel.close()


class Callgrind:
    def __init__(self, pid, out):
        self.pid, self.out, self.n = pid, out, 0

    def zero(self):
        subprocess.run(["callgrind_control", "-z", str(self.pid)], check=True, capture_output=True)

    def dump(self):
        before = set(self.out.parent.glob(self.out.name + "*"))
        subprocess.run(["callgrind_control", "-d", str(self.pid)], check=True, capture_output=True)
        for _ in range(600):
            new = set(self.out.parent.glob(self.out.name + "*")) - before
            if new:
                path = max(new, key=lambda p: p.stat().st_mtime)
                time.sleep(0.2)
                for line in path.read_text().splitlines():
                    if line.startswith("summary:") or line.startswith("totals:"):
                        return int(line.split()[1])
            time.sleep(0.1)
        raise RuntimeError("no callgrind dump")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build" / "mcp-tool-server"))
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    cli = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tool-server-cg."))
    key = os.urandom(32).hex().encode()
    (work / "identity.key").write_bytes(key)
    out = work / "callgrind.out"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out,
                             cli.bin, "--listen", "127.0.0.1:0", "--data-dir", str(work / "data"),
                             "--identity-key", str(work / "identity.key")],
                            stdout=subprocess.PIPE, stderr=open(work / "server.log", "w"), text=True)
    try:
        port = None
        for line in proc.stdout:
            if line.startswith("mcp-tool-server listening on 127.0.0.1:"):
                port = int(line.rsplit(":", 1)[1])
                break
        if not port:
            sys.exit("server did not start: see %s" % (work / "server.log"))
        cg = Callgrind(proc.pid, out)
        identity = mint(key)
        sid = open_session("http://127.0.0.1:%d" % port, identity)
        print("identity assertion: %d bytes" % len(identity))
        only = set(filter(None, cli.only.split(",")))
        for name, body, nconn, total, expect in SCENARIOS:
            if only and name not in only:
                continue
            req = request_bytes(port, body, sid, identity)
            conns = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(nconn)]
            run(conns, req, WARMUP_PER_CONNECTION * nconn, expect)
            cg.zero()
            t0 = time.monotonic()
            run(conns, req, total, expect)
            secs = time.monotonic() - t0
            busy = cg.dump()
            cg.zero()
            time.sleep(secs)
            idle = cg.dump()
            for s in conns:
                s.close()
            print("RESULT %s requests=%d instructions=%d idle=%d per_request=%.0f" %
                  (name, total, busy, idle, (busy - idle) / total), flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
