"""Client ID Metadata Documents (MCP 2025-11-25; draft-ietf-oauth-client-id-
metadata-document): a client_id that is an https URL is fetched, checked and
cached instead of registered -- and never fetched from a private address
unless the operator allows it."""

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import requests

from oauth_client import Browser, McpOAuthClient, pkce_pair, query_of

REDIRECT = "http://127.0.0.1:33418/callback"


class DocumentServer:
    """An https server on loopback that serves client metadata documents."""

    def __init__(self, workdir, host="127.0.0.1"):
        self.cert = workdir / "doc.crt"
        key = workdir / "doc.key"
        san = ("IP:" if host[0].isdigit() else "DNS:") + host
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=" + host, "-addext", "subjectAltName=" + san,
                        "-keyout", str(key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        self.documents = {}     # path -> (body bytes, headers)
        self.hits = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body, headers = server.documents.get(self.path, (b"not found", {}))
                self.send_response(200 if self.path in server.documents else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def publish(self, path, doc=None, raw=None, headers=None):
        url = self.url(path)
        if raw is None:
            body = {"client_id": url, "client_name": "Document Client",
                    "redirect_uris": [REDIRECT], "grant_types": ["authorization_code",
                                                                 "refresh_token"],
                    "response_types": ["code"], "token_endpoint_auth_method": "none"}
            body.update(doc or {})
            raw = json.dumps(body).encode()
        self.documents[path] = (raw, headers or {"Cache-Control": "max-age=600"})
        return url

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    d = DocumentServer(tmp_path_factory.mktemp("docs"))
    yield d
    d.stop()


def ports(*extra):
    """Documents are fetched from port 443 only unless configured: the test
    server listens on a random port."""
    return "    mcp_auth_client_metadata_ports 443 %s;\n" % " ".join(str(p) for p in extra)


@pytest.fixture(scope="module")
def gw(stack_factory, docs):
    # loopback documents are allowed here (they are refused by default, below)
    return stack_factory("cimd", http_extra="    mcp_auth_client_metadata_allow_private on;\n" + ports(docs.port),
                         replace=[("proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt",
                                   "proxy_ssl_trusted_certificate %s" % docs.cert)])


def document_client(gw, url):
    c = McpOAuthClient(gw.url, redirect_uri=REDIRECT)
    c.client_id = url           # no registration: the URL is the client id
    return c


def browser(gw):
    return Browser("demo", gw.demo_password)


def test_the_server_advertises_client_id_metadata_documents(gw):
    meta = requests.get(gw.url + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert meta["client_id_metadata_document_supported"] is True


def test_a_client_known_by_its_document_logs_in_and_refreshes(gw, docs):
    url = docs.publish("/clients/app.json")
    c = document_client(gw, url)
    tokens = c.login(browser(gw))
    assert tokens["access_token"]
    assert c.refresh().status_code == 200
    assert docs.hits["/clients/app.json"] == 1


def test_the_consent_page_names_the_document_client(gw, docs):
    url = docs.publish("/clients/named.json", {"client_name": "Named <b>Client</b>"})
    c = document_client(gw, url)
    b = browser(gw)
    r = b.get(c.authorize_url())
    assert r.status_code in (302, 303), r.text[:300]
    page = b.get(gw.url + r.headers["Location"] if r.headers["Location"].startswith("/")
                 else r.headers["Location"])
    assert "Named &lt;b&gt;Client&lt;/b&gt;" in page.text


def test_a_cached_document_is_not_fetched_again(gw, docs):
    url = docs.publish("/clients/cached.json")
    for _ in range(3):
        r = browser(gw).get(document_client(gw, url).authorize_url())
        assert r.status_code in (302, 303)
    assert docs.hits["/clients/cached.json"] == 1


def error_page(gw, url, **extra):
    r = browser(gw).get(document_client(gw, url).authorize_url(**extra))
    assert "Location" not in r.headers, r.headers.get("Location")
    assert r.headers["Content-Type"].startswith("text/html")
    return r


def test_a_document_naming_another_client_id_is_refused(gw, docs):
    url = docs.publish("/clients/liar.json", {"client_id": "https://other.example/c.json"})
    r = error_page(gw, url)
    assert r.status_code == 400
    assert "client_id" in r.text


def test_a_redirect_uri_not_in_the_document_is_never_redirected_to(gw, docs):
    url = docs.publish("/clients/strict.json")
    r = error_page(gw, url, redirect_uri="https://evil.example/callback")
    assert r.status_code == 400


def test_a_document_with_a_shared_secret_is_refused(gw, docs):
    url = docs.publish("/clients/secret.json", {"token_endpoint_auth_method": "client_secret_basic"})
    assert error_page(gw, url).status_code == 400


def test_a_document_that_is_not_json_is_refused(gw, docs):
    url = docs.publish("/clients/garbage.json", raw=b"<html>hello</html>")
    assert error_page(gw, url).status_code == 400


def test_a_missing_document_is_refused(gw, docs):
    assert error_page(gw, docs.url("/clients/nowhere.json")).status_code == 400


def test_the_document_servers_status_is_not_shown_to_the_browser(gw, docs):
    """What answers at a URL the gateway fetched is nobody's business but
    the operator's: the page says the document could not be fetched, the
    log (info) has the status."""
    r = error_page(gw, docs.url("/clients/status-probe.json"))
    assert r.status_code == 400
    assert "could not be fetched" in r.text
    assert "404" not in r.text and "HTTP" not in r.text
    assert "answered 404" in gw.nginx.error_log()


def test_a_document_on_a_port_that_is_not_configured_is_refused_without_fetching(stack_factory, docs):
    st = stack_factory("cimd-ports", http_extra="    mcp_auth_client_metadata_allow_private on;\n",
                       replace=[("proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt",
                                 "proxy_ssl_trusted_certificate %s" % docs.cert)])
    url = docs.publish("/clients/other-port.json")
    r = error_page(st, url)
    assert r.status_code == 400
    assert "port" in r.text
    assert "/clients/other-port.json" not in docs.hits      # never contacted


def test_nginx_t_names_a_bad_metadata_port(nginx_factory):
    nx = nginx_factory("cimd-bad-port", http_extra="    mcp_auth_client_metadata_ports 443 70000;\n")
    result = nx.test_config()
    assert result.returncode != 0
    assert "mcp_auth_client_metadata_ports" in result.stderr and "70000" in result.stderr, result.stderr


def test_an_oversized_document_is_refused(gw, docs):
    url = docs.publish("/clients/big.json", {"client_name": "x" * 40000})
    r = error_page(gw, url)
    assert r.status_code == 400
    assert "KiB" in r.text


@pytest.mark.parametrize("client_id", [
    "http://127.0.0.1:1/clients/plain-http.json",
    "https://127.0.0.1:1/",
    "https://127.0.0.1:1/a/../b.json",
])
def test_client_ids_that_are_not_valid_document_urls_are_unknown_clients(gw, client_id):
    assert error_page(gw, client_id).status_code == 400


def test_private_addresses_are_refused_by_default(stack_factory, docs):
    st = stack_factory("cimd-ssrf", http_extra=ports(docs.port), replace=[(
        "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt",
        "proxy_ssl_trusted_certificate %s" % docs.cert)])
    url = docs.publish("/clients/ssrf.json")
    r = error_page(st, url)
    assert r.status_code == 502
    assert "/clients/ssrf.json" not in docs.hits      # never contacted
    assert "not a public address" in st.nginx.error_log()


def test_documents_can_be_switched_off(stack_factory, docs):
    st = stack_factory("cimd-off", http_extra="    mcp_auth_client_metadata_documents off;\n")
    meta = requests.get(st.url + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert "client_id_metadata_document_supported" not in meta
    url = docs.publish("/clients/off.json")
    assert error_page(st, url).status_code == 400
    assert "/clients/off.json" not in docs.hits


# --- host names: resolved by the module, every address checked -----------------

class TinyDns:
    """A UDP DNS server on loopback answering A queries from a table."""

    def __init__(self, table):
        import socket
        self.table = table
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import socket
        import struct
        self.sock.settimeout(0.2)
        while self.running:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            qid, flags, qd = struct.unpack("!HHH", data[:6])
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += 1 + data[i]
            qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
            question = data[12:i + 5]
            name = ".".join(labels).lower()
            answers = [] if qtype != 1 else self.table.get(name, [])
            rcode = 0 if name in self.table else 3
            out = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0) + question
            for ip in answers:
                out += struct.pack("!HHHLH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip)
            self.sock.sendto(out, peer)

    def stop(self):
        self.running = False
        self.sock.close()


@pytest.fixture(scope="module")
def named_docs(tmp_path_factory):
    d = DocumentServer(tmp_path_factory.mktemp("named"), host="docs.test")
    dns = TinyDns({"docs.test": ["127.0.0.1"]})
    yield d, dns
    dns.stop()
    d.stop()


def named_stack(stack_factory, named, name, allow):
    d, dns = named
    extra = "    resolver 127.0.0.1:%d valid=1s ipv6=off;\n" % dns.port + ports(d.port)
    if allow:
        extra += "    mcp_auth_client_metadata_allow_private on;\n"
    return stack_factory(name, http_extra=extra, replace=[(
        "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt",
        "proxy_ssl_trusted_certificate %s" % d.cert)])


def test_a_document_on_a_host_name_is_resolved_and_fetched(stack_factory, named_docs):
    d, dns = named_docs
    st = named_stack(stack_factory, named_docs, "cimd-named", allow=True)
    path = "/clients/named-host.json"
    url = "https://docs.test:%d%s" % (d.port, path)
    d.documents[path] = (json.dumps({"client_id": url, "client_name": "Named",
                                     "redirect_uris": [REDIRECT],
                                     "token_endpoint_auth_method": "none"}).encode(), {})
    tokens = document_client(st, url).login(browser(st))
    assert tokens["access_token"]
    assert d.hits[path] == 1


def test_a_host_name_resolving_to_a_private_address_is_refused(stack_factory, named_docs):
    # (tests send traffic to loopback only, so the case of a name with one
    # public and one private address is covered by the unit tests)
    d, dns = named_docs
    st = named_stack(stack_factory, named_docs, "cimd-named-ssrf", allow=False)
    path = "/clients/private.json"
    url = "https://docs.test:%d%s" % (d.port, path)
    r = error_page(st, url)
    assert r.status_code == 502
    assert path not in d.hits
    assert "resolves to a non-public address" in st.nginx.error_log()
