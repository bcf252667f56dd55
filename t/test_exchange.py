"""Token exchange for backends at /token (RFC 8693): a backend presents the
identity assertion it received with an MCP request and gets a token for one
downstream audience, which the gateway asks the real development provider
for (its own RFC 8693 grant); a real downstream API on loopback checks the
token.  The assertions come from the gateway itself: a guarded location
proxies to a small nginx server that answers with the X-MCP-Identity it
received."""

import json
import threading
import time
from pathlib import Path

import pytest
import requests

from downstream_util import start_downstream_api
from harness import free_port, wait_for
from idp_util import exchange_stats, jwt_unverified, set_exchange_faults
from mcp_gateway import login
from metrics_util import metric, scrape
from toolserver_util import b64url, mint

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"
BACKEND = "mcp-tool-server"
TTL = 8  # the provider's exchanged tokens: the cache keeps one 6 s


def echo_setup():
    echo_port = free_port()
    http_extra = ("server { listen 127.0.0.1:%d; location / { default_type text/plain; "
                  "return 200 $http_x_mcp_identity; } }\n"
                  # an audience the backend may not ask for
                  "mcp_auth_exchange_audience reports-api method=token_exchange;\n" % echo_port)
    replace = [("location = /mcp {",
                "location = /echo-identity { mcp_auth_protect on; proxy_pass http://127.0.0.1:%d/; "
                "include mcp_proxy_params; }\nlocation = /mcp {" % echo_port)]
    return http_extra, replace


@pytest.fixture(scope="module")
def ex(stack_factory, tmp_path_factory):
    http_extra, replace = echo_setup()
    st = stack_factory("exchange", idp_options={"exchange_ttl": TTL}, http_extra=http_extra, replace=replace)
    st.backend_secret = (st.workdir / "exchange-client.secret").read_text().strip()
    st.api = start_downstream_api(tmp_path_factory.mktemp("downstream"), st.issuer, "downstream-api",
                                  require_scope="downstream:read")
    yield st
    st.api.stop()


def assertion_of(st, client):
    r = requests.get(st.url + "/echo-identity", timeout=5,
                     headers={"Authorization": "Bearer " + client.tokens["access_token"]})
    assert r.status_code == 200 and r.text.count(".") == 2, r.text
    return r.text


def exchange(st, subject_token, audience="downstream-api", scope=None, auth=None, **extra):
    form = {"grant_type": GRANT, "subject_token": subject_token, "subject_token_type": JWT_TYPE,
            "audience": audience}
    if scope is not None:
        form["scope"] = scope
    form.update(extra)
    form = {k: v for k, v in form.items() if v is not None}
    return requests.post(st.url + "/token", data=form, timeout=20,
                         auth=auth if auth is not None else (BACKEND, st.backend_secret))


def at_once(issuer, n, ask):
    """ask(i) from n threads at once while the provider takes 1.5 s to
    answer an exchange; their answers."""
    results = [None] * n
    def call(i):
        results[i] = ask(i)
    set_exchange_faults(issuer, delay_ms=1500)
    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        set_exchange_faults(issuer, delay_ms=0)
    return results


def audit_lines(st, event, count=1, **fields):
    """The audit lines of `event` with those fields, once at least `count`
    of them are written (workers write theirs at most a second late)."""
    path = st.workdir / "audit.log"

    def lines():
        if not path.exists():
            return []
        found = [json.loads(line) for line in path.read_text().splitlines() if '"%s"' % event in line]
        return [x for x in found if all(x.get(k) == v for k, v in fields.items())]
    wait_for(lambda: len(lines()) >= count, timeout=5)
    return lines()


# --- the happy path ----------------------------------------------------------------

def test_a_backend_gets_a_token_for_the_user_that_the_downstream_api_accepts(ex):
    c = login(ex)
    subject = assertion_of(ex, c)
    _, claims = jwt_unverified(subject)
    assert claims["sid"] and claims["sub"]
    before = exchange_stats(ex.issuer)["issued"]
    r = exchange(ex, subject)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["issued_token_type"] == ACCESS_TYPE and body["token_type"] == "Bearer"
    assert body["scope"] == "downstream:read"            # the backend's allowance, not the audience's all
    assert 0 < body["expires_in"] <= TTL
    assert exchange_stats(ex.issuer)["issued"] == before + 1

    seen = ex.api.whoami(body["access_token"])
    assert seen.status_code == 200, seen.text
    seen = seen.json()
    assert seen["sub"] == claims["sub"]                  # the user, as the provider knows them
    assert seen["aud"] in ("downstream-api", ["downstream-api"])
    assert seen["scope"] == "downstream:read"
    assert seen["azp"] == "mcp-gateway" and seen["act"] == {"sub": "mcp-gateway"}

    line = audit_lines(ex, "token.exchanged")[-1]
    assert line["outcome"] == "issued" and line["client_id"] == BACKEND
    assert line["subject"] == claims["sub"] and line["audience"] == "downstream-api"
    assert line["scope"] == "downstream:read" and line["grant_type"] == "token_exchange"
    assert body["access_token"] not in (ex.workdir / "audit.log").read_text()
    samples = scrape(ex)
    assert metric(samples, "mcp_auth_token_exchanges_total", method="token_exchange", outcome="issued") >= 1
    assert metric(samples, "mcp_auth_token_requests_total", grant_type="token_exchange", result="ok") >= 1
    meta = requests.get(ex.url + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert GRANT in meta["grant_types_supported"]
    assert "private_key_jwt" not in meta["token_endpoint_auth_methods_supported"]


def test_the_token_is_cached_per_session_and_audience_until_shortly_before_it_expires(ex):
    c = login(ex)
    subject = assertion_of(ex, c)
    before = exchange_stats(ex.issuer)["issued"]
    first = exchange(ex, subject).json()
    again = exchange(ex, subject).json()
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] <= first["expires_in"]
    assert exchange_stats(ex.issuer)["issued"] == before + 1
    # another session of the same user has its own
    other = exchange(ex, assertion_of(ex, login(ex))).json()
    assert other["access_token"] != first["access_token"]
    assert exchange_stats(ex.issuer)["issued"] == before + 2
    # kept until a quarter of its life before expiry (8 s: 6 s), then asked anew
    time.sleep(TTL - TTL // 4 + 0.5)
    renewed = exchange(ex, subject).json()
    assert renewed["access_token"] != first["access_token"]
    assert exchange_stats(ex.issuer)["issued"] == before + 3
    samples = scrape(ex)
    assert metric(samples, "mcp_auth_token_exchanges_total", method="token_exchange", outcome="cached") >= 1


def test_many_simultaneous_calls_make_one_exchange_at_the_provider(ex):
    c = login(ex)
    subject = assertion_of(ex, c)
    before = exchange_stats(ex.issuer)
    results = at_once(ex.issuer, 12, lambda i: exchange(ex, subject))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    assert len({r.json()["access_token"] for r in results}) == 1
    after = exchange_stats(ex.issuer)
    assert after["issued"] == before["issued"] + 1
    assert after["max_in_flight"] == 1


# --- through the tool server -----------------------------------------------------------

def test_whoami_downstream_calls_the_api_as_the_user_through_the_official_sdk(ex):
    """The real tool server exchanges the assertion of the request that called
    the tool, calls the downstream API with the token and returns what it saw;
    the official SDK drives both transports."""
    import subprocess
    from harness import NODE, ROOT
    ex.tool.stop()
    ex.tool_args = ["--exchange-token-url", ex.url + "/token", "--exchange-client-id", BACKEND,
                    "--exchange-client-secret-file", str(ex.workdir / "exchange-client.secret"),
                    "--whoami-downstream-url", ex.api.url + "/whoami",
                    "--whoami-downstream-audience", "downstream-api",
                    "--whoami-downstream-scope", "downstream:read"]
    ex.start_tool_server(ex.tool_port)
    before = exchange_stats(ex.issuer)["issued"]
    procs = {t: subprocess.Popen([NODE, str(ROOT / "t" / "clients" / "sdk_client.mjs"), "--gateway", ex.url,
                                  "--transport", t, "--scenario", "downstream", "--user", "demo",
                                  "--password", ex.demo_password],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for t in ("http", "sse")}
    for transport, p in procs.items():
        out, err = p.communicate(timeout=90)
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert p.returncode == 0, (transport, out, err)
        listed = [x for x in lines if x.get("step") == "tools_list"][0]["tools"]
        assert "whoami_downstream" in listed
        call = [x for x in lines if x.get("step") == "tool_call"][0]
        assert call["tool"] == "whoami_downstream" and not call["is_error"], call
        seen = json.loads(call["text"])
        assert seen["sub"] == "user-demo"
        assert seen["scope"] == "downstream:read" and seen["act"] == {"sub": "mcp-gateway"}
    # one exchange per session (two SDK sessions), each the user's
    assert exchange_stats(ex.issuer)["issued"] == before + 2
    # every exchange the provider issued is a line, these two the last
    lines = audit_lines(ex, "token.exchanged", count=int(exchange_stats(ex.issuer)["issued"]), outcome="issued")
    assert {l["subject"] for l in lines[-2:]} == {"user-demo"}
    assert {l["client_id"] for l in lines[-2:]} == {BACKEND}
    log = (ex.workdir / "tool-server.log").read_text() if (ex.workdir / "tool-server.log").exists() else ""
    assert ex.backend_secret not in log


# --- refusals ------------------------------------------------------------------------

def test_client_authentication_is_required_and_checked(ex):
    subject = assertion_of(ex, login(ex))
    for auth in [(BACKEND, "wrong" * 8), ("someone-else", ex.backend_secret), ("", "")]:
        r = exchange(ex, subject, auth=auth)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    # a registered MCP client's credentials do not make it a backend
    mcp_client = login(ex)
    r = exchange(ex, subject, auth=(mcp_client.client_id, "x"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # the secret in the form works like Basic; both at once are refused
    r = requests.post(ex.url + "/token", timeout=10, data={
        "grant_type": GRANT, "subject_token": subject, "subject_token_type": JWT_TYPE,
        "audience": "downstream-api", "client_id": BACKEND, "client_secret": ex.backend_secret})
    assert r.status_code == 200, r.text
    r = exchange(ex, subject, client_secret=ex.backend_secret)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_an_audience_the_backend_may_not_ask_for_is_invalid_target(ex):
    subject = assertion_of(ex, login(ex))
    for audience in ["reports-api", "no-such-api"]:
        r = exchange(ex, subject, audience=audience)
        assert r.status_code == 400 and r.json()["error"] == "invalid_target", r.text
    r = exchange(ex, subject, resource="https://downstream.example/")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    r = exchange(ex, subject, audience=None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    line = audit_lines(ex, "token.exchange_refused", audience="no-such-api")[-1]
    assert line["client_id"] == BACKEND and line["outcome"] == "invalid_target"


def test_a_wider_scope_than_allowed_is_invalid_scope(ex):
    subject = assertion_of(ex, login(ex))
    before = exchange_stats(ex.issuer)["issued"]
    for scope in ["downstream:write", "downstream:read downstream:write", "admin"]:
        r = exchange(ex, subject, scope=scope)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
    assert exchange_stats(ex.issuer)["issued"] == before     # the provider was never asked
    r = exchange(ex, subject, scope="downstream:read")
    assert r.status_code == 200 and r.json()["scope"] == "downstream:read"


def test_an_assertion_the_gateway_did_not_make_is_invalid_grant(ex):
    c = login(ex)
    real = assertion_of(ex, c)
    _, claims = jwt_unverified(real)
    key = ex.identity_key.encode()
    forged = {
        # another gateway's key
        "another key": mint(b"k" * 64, sub=claims["sub"], client_id=claims["client_id"], sid=claims["sid"]),
        # the right key (a tool server holds it) but a session reference it made up
        "made-up session": mint(key, sub=claims["sub"], client_id=claims["client_id"], sid="k1.AAAA"),
        # the right key and a real session reference, for another user
        "another user": mint(key, sub="alice-x", client_id=claims["client_id"], sid=claims["sid"]),
        # expired
        "expired": mint(key, sub=claims["sub"], client_id=claims["client_id"], sid=claims["sid"], lifetime=-5),
        # no signature, and a header that names another algorithm
        "alg none": mint(key, alg="none", sub=claims["sub"], client_id=claims["client_id"], sid=claims["sid"]),
        "no session": mint(key, sub=claims["sub"], client_id=claims["client_id"]),
        "another audience": mint(key, sub=claims["sub"], client_id=claims["client_id"], sid=claims["sid"],
                                 aud="someone-else"),
    }
    for what, token in forged.items():
        r = exchange(ex, token)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (what, r.text)
    # the same claims with the right key work: the reference is what binds
    good = mint(key, sub=claims["sub"], client_id=claims["client_id"], sid=claims["sid"])
    assert exchange(ex, good).status_code == 200
    r = exchange(ex, real, subject_token_type=ACCESS_TYPE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = exchange(ex, c.tokens["access_token"])           # the client's own token is not an assertion
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_revoked_session_can_no_longer_be_exchanged_and_its_tokens_are_dropped(ex):
    c = login(ex)
    subject = assertion_of(ex, c)
    assert exchange(ex, subject).status_code == 200
    c.revoke(c.tokens["refresh_token"])
    r = exchange(ex, subject)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "ended" in r.json()["error_description"]


def test_the_provider_refusing_is_invalid_target_and_is_not_asked_again_at_once(ex):
    subject = assertion_of(ex, login(ex))
    set_exchange_faults(ex.issuer, refuse="access_denied")
    try:
        before = exchange_stats(ex.issuer)
        r = exchange(ex, subject)
        assert r.status_code == 400 and r.json()["error"] == "invalid_target", r.text
        assert "access_denied" in r.json()["error_description"]
        r = exchange(ex, subject)                         # within 10 s: the same answer, not asked
        assert r.status_code == 400 and r.json()["error"] == "invalid_target"
        after = exchange_stats(ex.issuer)
        assert after["refused"].get("access_denied", 0) == before["refused"].get("access_denied", 0) + 1
    finally:
        set_exchange_faults(ex.issuer, refuse=False)
    samples = scrape(ex)
    assert metric(samples, "mcp_auth_token_exchanges_total", method="token_exchange",
                  outcome="provider_refused") >= 2


def test_the_provider_out_of_reach_is_a_503_and_is_asked_again(ex):
    subject = assertion_of(ex, login(ex))
    set_exchange_faults(ex.issuer, status=503)
    try:
        r = exchange(ex, subject)
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable", r.text
        assert r.headers.get("Retry-After")
    finally:
        set_exchange_faults(ex.issuer, status=0)
    assert exchange(ex, subject).status_code == 200


# --- private_key_jwt backends --------------------------------------------------------

def test_a_backend_with_a_signed_client_assertion(stack_factory, tmp_path_factory):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    work = tmp_path_factory.mktemp("pkjwt-keys")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    as_b64 = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    jwks = {"keys": [{"kty": "RSA", "kid": "b1", "use": "sig", "alg": "RS256",
                      "n": as_b64(numbers.n), "e": as_b64(numbers.e)}]}
    (work / "backend.jwks").write_text(json.dumps(jwks))
    http_extra, replace = echo_setup()
    http_extra += ("mcp_auth_exchange_client jwt-backend jwks_file=%s audience=downstream-api;\n"
                   % (work / "backend.jwks"))
    st = stack_factory("exchange-pkjwt", http_extra=http_extra, replace=replace)
    subject = assertion_of(st, login(st))

    def signed(**over):
        now = int(time.time())
        claims = {"iss": "jwt-backend", "sub": "jwt-backend", "aud": st.url + "/token",
                  "iat": now, "exp": now + 60, "jti": b64url(__import__("os").urandom(12))}
        claims.update(over)
        head = b64url(json.dumps({"alg": "RS256", "kid": "b1"}).encode())
        body = b64url(json.dumps({k: v for k, v in claims.items() if v is not None}).encode())
        sig = key.sign((head + "." + body).encode(), padding.PKCS1v15(), hashes.SHA256())
        return head + "." + body + "." + b64url(sig)

    def ask(assertion):
        return requests.post(st.url + "/token", timeout=10, data={
            "grant_type": GRANT, "subject_token": subject, "subject_token_type": JWT_TYPE,
            "audience": "downstream-api", "client_assertion_type":
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion})

    meta = requests.get(st.url + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" not in meta["revocation_endpoint_auth_methods_supported"]
    good = signed()
    r = ask(good)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "downstream:read downstream:write"   # no scope=: all of the audience's
    r = ask(good)                                                    # the jti is spent
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    for bad in [signed(aud="https://elsewhere.example/token"), signed(exp=int(time.time()) - 1),
                signed(exp=int(time.time()) + 3600), signed(iss="mcp-tool-server", sub="mcp-tool-server"),
                signed(jti=None), good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")]:
        r = ask(bad)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    # the issuer is an audience RFC 7523 allows too
    assert ask(signed(aud=st.url)).status_code == 200


# --- configuration -------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ("mcp_auth_exchange_client b2 secret_file=/nonexistent audience=downstream-api;", "cannot open \"/nonexistent\""),
    ("mcp_auth_exchange_client b2 secret_file=%(short)s audience=downstream-api;", "at least 32"),
    ("mcp_auth_exchange_client b2 secret_file=%(secret)s audience=elsewhere;", "has no mcp_auth_exchange_audience"),
    ("mcp_auth_exchange_client b2 secret_file=%(secret)s audience=downstream-api scope=admin;",
     "is not among audience"),
    ("mcp_auth_exchange_client b2 audience=downstream-api;", "exactly one of secret_file=, jwks_file= and jwks_location="),
    ("mcp_auth_exchange_audience graph method=on_behalf_of;", "needs scope="),
    ("mcp_auth_exchange_audience graph method=magic scope=x;", "method must be"),
])
def test_nginx_t_refuses_a_broken_exchange_configuration(nginx_factory, extra, message, tmp_path):
    from conftest import nginx_t_with
    r = nginx_t_with(tmp_path, extra)
    assert r.returncode != 0 and message in r.stderr, r.stderr


# --- two nodes on Redis --------------------------------------------------------------

def test_two_nodes_share_one_exchange_its_cache_and_its_end(tmp_path_factory):
    from cluster_util import Cluster

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        # both edges proxy here: one upstream that shows what they send
        def do_GET(self):
            body = (self.headers.get("X-MCP-Identity") or "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    echo_server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo_server.serve_forever, daemon=True).start()
    echo = [("location = /mcp {",
             "location = /echo-identity { mcp_auth_protect on; proxy_pass http://127.0.0.1:%d/; "
             "include mcp_proxy_params; }\nlocation = /mcp {" % echo_server.server_address[1])]
    cluster = Cluster(tmp_path_factory.mktemp("exchange-cluster"), replace=echo)
    try:
        a, b = cluster.a, cluster.b
        secret = (cluster.workdir / "exchange-client.secret").read_text().strip()
        c = login(cluster)
        subject = assertion_of(cluster, c)

        def ask(node):
            return requests.post(node.url + "/token", timeout=20, auth=(BACKEND, secret), data={
                "grant_type": GRANT, "subject_token": subject, "subject_token_type": JWT_TYPE,
                "audience": "downstream-api"})

        before = exchange_stats(cluster.issuer)
        results = at_once(cluster.issuer, 10, lambda i: ask(a if i % 2 else b))
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        assert len({r.json()["access_token"] for r in results}) == 1
        after = exchange_stats(cluster.issuer)
        assert after["issued"] == before["issued"] + 1 and after["max_in_flight"] == 1

        cached = [k for k in cluster.redis.command("KEYS", "*") if b"exchange:" in k]
        assert len(cached) == 1, cached                      # the token; the lock is gone
        assert b"exchanging:" not in cached[0]
        # ending the session at the other node deletes the cached token
        r = requests.post(b.url + "/revoke", data={"token": c.tokens["refresh_token"], "client_id": c.client_id},
                          timeout=5)
        assert r.status_code == 200
        assert [k for k in cluster.redis.command("KEYS", "*") if b"exchange:" in k] == []
        r = ask(a)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    finally:
        cluster.stop()
        echo_server.shutdown()
    for nx in cluster.nodes:
        nx.assert_clean_log()
