"""Stand-ins for the gateway's token endpoint and a downstream API, for the
tool server's token exchange tests: small real HTTP servers on free loopback
ports (http.server in a thread), each recording the requests it gets and
answering as the test says."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # list of (name, value), as sent
        self.body = body

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, "%s sent %d times" % (name, len(values))
        return values[0] if values else None

    def form(self):
        """The form fields; each must be sent once."""
        fields = parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        for name, values in fields.items():
            assert len(values) == 1, "%s sent %d times" % (name, len(values))
        return {name: values[0] for name, values in fields.items()}


def json_answer(status, doc, headers=None):
    headers = dict(headers or {}, **{"Content-Type": "application/json"})
    return {"status": status, "body": json.dumps(doc).encode(), "headers": headers}


class FakeHttp:
    """One HTTP server. `answer` (a function of the Recorded request) says
    what to send: {"status", "headers", "body"} (Content-Length added),
    {"chunks": [...]} for a chunked 200, {"raw": bytes} written as is, and
    optionally "delay" seconds before any of it."""

    def __init__(self, answer=None):
        self.requests = []
        self.answer = answer or (lambda req: json_answer(200, {}))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Recorded(self.command, self.path, list(self.headers.items()), body)
                outer.requests.append(req)
                what = outer.answer(req)
                time.sleep(what.get("delay", 0))
                try:
                    if "raw" in what:
                        self.wfile.write(what["raw"])
                    elif "chunks" in what:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                        for chunk in what["chunks"]:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_response(what["status"])
                        for k, v in what.get("headers", {}).items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(what["body"])))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        self.wfile.write(what["body"])
                    self.wfile.flush()
                except OSError:  # the client gave up (a timeout test)
                    pass
                self.close_connection = True

            do_GET = _handle
            do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def reset(self, answer):
        self.requests = []
        self.answer = answer

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
