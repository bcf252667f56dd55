#!/usr/bin/python3
"""Opens N idle HTTP+SSE streams (GET /sse) on a running mcp-tool-server as
raw sockets, waits until every one has received its `endpoint` event, and
reports how much the server's resident memory (VmRSS) grew per stream.

Standard library only. Prints one line: RESULT streams=.. rss_before_kib=..
rss_after_kib=.. kib_per_stream=.. seconds=..
"""

import argparse
import selectors
import socket
import sys
import time

BATCH = 100  # connections in flight at once: stays under the listen backlog


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def open_batch(host, port, request, count, timeout):
    """Opens `count` streams; returns their sockets once each has its endpoint event."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(request)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
        socks.append(s)
    pending = len(socks)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError("%d streams got no endpoint event within %ss" % (pending, timeout))
        for key, _ in sel.select(timeout=1.0):
            buf = key.data
            chunk = key.fileobj.recv(4096)
            if not chunk:
                raise RuntimeError("stream closed before its endpoint event: %r" % bytes(buf[:300]))
            buf += chunk
            if not buf.startswith(b"HTTP/1.1 200"):
                if b"\r\n" in buf:
                    raise RuntimeError("GET /sse refused: %r" % bytes(buf[:300]))
                continue
            # The stream is chunked: the event sits inside a chunk, so look
            # for its end rather than for the end of the buffer.
            at = buf.find(b"event: endpoint\ndata: ")
            if at >= 0 and buf.find(b"\n\n", at) >= 0:
                sel.unregister(key.fileobj)
                pending -= 1
    sel.close()
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the tool server's process id")
    ap.add_argument("--identity", required=True, help="X-MCP-Identity assertion")
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    request = ("GET /sse HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
               "X-MCP-Identity: %s\r\n\r\n" % (args.host, args.port, args.identity)).encode()

    # Warm-up: a few streams opened and closed, so one-off allocations (tables,
    # buffers that evhttp keeps) are not charged to the measured streams.
    for s in open_batch(args.host, args.port, request, min(10, args.streams), args.timeout):
        s.close()
    time.sleep(0.5)

    before = vm_rss_kib(args.pid)
    start = time.monotonic()
    streams = []
    try:
        while len(streams) < args.streams:
            n = min(BATCH, args.streams - len(streams))
            streams += open_batch(args.host, args.port, request, n, args.timeout)
        elapsed = time.monotonic() - start
        time.sleep(0.2)
        after = vm_rss_kib(args.pid)
    finally:
        for s in streams:
            s.close()
    per_stream = (after - before) / float(args.streams)
    print("RESULT streams=%d rss_before_kib=%d rss_after_kib=%d kib_per_stream=%.2f seconds=%.2f"
          % (args.streams, before, after, per_stream, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
