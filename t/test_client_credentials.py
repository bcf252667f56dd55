"""Services without a browser (grant_type=client_credentials at /token, the
MCP OAuth Client Credentials extension): the example's demo service client
mcp-service (a secret) and two more added here (one with a JWKS for
private_key_jwt, one with a scope a claim rule guards) get tokens of their
own and call tools through the guard; the assertions the gateway signs for
them are captured by a guarded location that proxies to a small nginx
server answering with the X-MCP-Identity it received.  The official
TypeScript SDK's ClientCredentialsProvider and PrivateKeyJwtProvider do the
same (t/clients/service_client.mjs)."""

import json
import os
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness import NODE, ROOT, free_port, wait_for
from idp_util import jwt_unverified
from mcp_gateway import Streamable, rpc, text_of
from metrics_util import metric, scrape
from toolserver_util import b64url

SERVICE = "mcp-service"           # the example's demo service client
CLIENT = ROOT / "t" / "clients" / "service_client.mjs"
ADMIN = "/_mcp_auth/admin"


@pytest.fixture(scope="module")
def cc(stack_factory, tmp_path_factory):
    keys = tmp_path_factory.mktemp("service-keys")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    as_b64 = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    (keys / "service.jwks").write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "s1", "use": "sig", "alg": "RS256",
                                                            "n": as_b64(numbers.n), "e": as_b64(numbers.e)}]}))
    (keys / "service.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (keys / "writer.secret").write_text("w" * 40 + "\n")
    echo_port = free_port()
    http_extra = ("server { listen 127.0.0.1:%d; location / { default_type text/plain; "
                  "return 200 $http_x_mcp_identity; } "
                  "location = /keys { default_type application/json; return 200 '%s'; } }\n"
                  "mcp_auth_service_client jwt-service jwks_file=%s scope=snippets:read;\n"
                  "mcp_auth_service_client keyed-service jwks_location=/_mcp_auth/client/keyed-service "
                  "scope=snippets:read;\n"
                  "mcp_auth_service_client writer secret_file=%s \"scope=snippets:read snippets:write\";\n"
                  % (echo_port, (keys / "service.jwks").read_text(), keys / "service.jwks", keys / "writer.secret"))
    replace = [("location = /mcp {",
                "location = /echo-identity { mcp_auth_protect on; proxy_pass http://127.0.0.1:%d/; "
                "include mcp_proxy_params; }\n"
                "location = /_mcp_auth/client/keyed-service { internal; proxy_pass http://127.0.0.1:%d/keys; }\n"
                "location = /mcp {" % (echo_port, echo_port))]
    st = stack_factory("client-credentials", http_extra=http_extra, replace=replace)
    st.service_secret = (st.workdir / "service-client.secret").read_text().strip()
    st.key = key
    st.key_file = keys / "service.pem"
    st.admin_key = (st.workdir / "admin.key").read_text().strip()
    return st


def token(st, client=SERVICE, secret=None, **form):
    data = {"grant_type": "client_credentials"}
    data.update(form)
    return requests.post(st.url + "/token", data=data, timeout=10,
                         auth=(client, secret if secret is not None else st.service_secret))


def identity_of(st, access_token):
    r = requests.get(st.url + "/echo-identity", timeout=5, headers={"Authorization": "Bearer " + access_token})
    assert r.status_code == 200 and r.text.count(".") == 2, r.text
    return jwt_unverified(r.text)[1]


def mcp_status(st, access_token):
    r = requests.post(st.url + "/mcp", timeout=10, json=rpc("initialize", {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pytest", "version": "1"}}),
        headers={"Authorization": "Bearer " + access_token, "Accept": "application/json, text/event-stream"})
    return r.status_code


def signed(st, **over):
    now = int(time.time())
    claims = {"iss": "jwt-service", "sub": "jwt-service", "aud": st.url + "/token",
              "iat": now, "exp": now + 60, "jti": b64url(os.urandom(12))}
    claims.update(over)
    head = b64url(json.dumps({"alg": "RS256", "kid": "s1"}).encode())
    body = b64url(json.dumps({k: v for k, v in claims.items() if v is not None}).encode())
    sig = st.key.sign((head + "." + body).encode(), padding.PKCS1v15(), hashes.SHA256())
    return head + "." + body + "." + b64url(sig)


def by_assertion(st, assertion, **form):
    data = {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    data.update(form)
    return requests.post(st.url + "/token", data=data, timeout=10)


def audit_lines(st, event, pred=lambda e: True):
    path = st.workdir / "audit.log"
    found = []

    def scan():
        found[:] = [e for e in (json.loads(line) for line in path.read_text().splitlines()
                                if '"%s"' % event in line) if pred(e)] if path.exists() else []
        return found
    wait_for(scan, timeout=5)
    return found


def error_of(r):
    return r.status_code, r.json().get("error")


# --- the demo service client -----------------------------------------------------------

def test_the_demo_service_gets_a_token_of_its_own_and_calls_tools_through_the_guard(cc):
    r = token(cc)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "snippets:read"
    assert 3500 < body["expires_in"] <= 3600
    assert "refresh_token" not in body

    mcp = Streamable(cc.url, body["access_token"]).initialize()
    assert text_of(mcp.call("hello_mcp")) == "Hello I am MCPTool!"
    got = mcp.call("get_snippet", snippetname="nothing-here")          # allowed: snippets:read
    assert "not found" in text_of(got), got
    denied = mcp.post(rpc("tools/call", {"name": "save_snippet",
                                         "arguments": {"snippetname": "x", "snippet": "y"}}))
    # the example's claim rule on save_snippet (groups editors) decides
    # first: a client has no claims, and no scope would help it
    assert denied.status_code == 403, denied.text
    assert "may not call save_snippet" in denied.text and "WWW-Authenticate" not in denied.headers

    # what the tool server is told: a client, not a user
    claims = identity_of(cc, body["access_token"])
    assert claims["sub"] == "client:" + SERVICE and claims["client_id"] == SERVICE
    assert claims["subject_type"] == "client" and claims["scope"] == "snippets:read"
    assert "claims" not in claims

    line = audit_lines(cc, "token.issued", lambda e: e.get("grant_type") == "client_credentials")[-1]
    assert line["subject"] == "client:" + SERVICE and line["client_id"] == SERVICE
    assert body["access_token"] not in (cc.workdir / "audit.log").read_text()
    samples = scrape(cc)
    assert metric(samples, "mcp_auth_token_requests_total", grant_type="client_credentials", result="ok") >= 1


def test_the_secret_may_come_in_the_form_and_the_scope_may_be_narrower(cc):
    r = requests.post(cc.url + "/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": "writer", "client_secret": "w" * 40,
        "scope": "snippets:read", "resource": cc.url + "/mcp"})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "snippets:read"


def test_refusals(cc):
    r = token(cc, secret="not-the-secret-not-the-secret-not-the-secret")
    assert error_of(r) == (401, "invalid_client"), r.text
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert error_of(token(cc, client="nobody")) == (401, "invalid_client")
    assert error_of(token(cc, scope="snippets:write")) == (400, "invalid_scope")        # not allowed to it
    assert error_of(token(cc, scope="snippets:read admin")) == (400, "invalid_scope")
    assert error_of(token(cc, resource="https://elsewhere.example/mcp")) == (400, "invalid_target")
    # a registered client may not use the grant
    reg = requests.post(cc.url + "/register", timeout=10, json={
        "client_name": "registered", "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "client_secret_basic"})
    assert reg.status_code == 201, reg.text
    registered = reg.json()
    r = token(cc, client=registered["client_id"], secret=registered["client_secret"])
    assert error_of(r) == (400, "unauthorized_client"), r.text

    refused = audit_lines(cc, "token.refused", lambda e: e.get("grant_type") == "client_credentials"
                          and e.get("client_id") == SERVICE)
    assert {e["outcome"] for e in refused} >= {"invalid_client", "invalid_scope", "invalid_target"}
    samples = scrape(cc)
    for result in ("invalid_client", "invalid_scope", "invalid_target", "unauthorized_client"):
        assert metric(samples, "mcp_auth_token_requests_total", grant_type="client_credentials",
                      result=result) >= 1, result


def test_scopes_and_claim_rules_apply_to_a_client_unchanged(cc):
    r = token(cc, client="writer", secret="w" * 40, scope="snippets:write")
    assert r.status_code == 200 and r.json()["scope"] == "snippets:write", r.text
    mcp = Streamable(cc.url, r.json()["access_token"]).initialize()
    # get_snippet needs snippets:read, which this token lacks
    lacking = mcp.post(rpc("tools/call", {"name": "get_snippet", "arguments": {"snippetname": "x"}}))
    assert lacking.status_code == 403, lacking.text
    assert 'error="insufficient_scope"' in lacking.headers["WWW-Authenticate"]
    # save_snippet has the scope, but a claim rule: a client has no claims
    denied = mcp.post(rpc("tools/call", {"name": "save_snippet", "arguments": {"snippetname": "x", "snippet": "y"}}))
    assert denied.status_code == 403, denied.text
    assert "may not call save_snippet" in denied.text
    assert "WWW-Authenticate" not in denied.headers         # nothing to step up to
    assert text_of(mcp.call("hello_mcp")) == "Hello I am MCPTool!"


# --- private_key_jwt (RFC 7523) --------------------------------------------------------

def test_a_signed_client_assertion_is_checked_and_good_for_one_request(cc):
    good = signed(cc)
    r = by_assertion(cc, good)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "snippets:read"
    assert identity_of(cc, r.json()["access_token"])["sub"] == "client:jwt-service"
    assert error_of(by_assertion(cc, good)) == (401, "invalid_client")                  # replayed
    for bad in [signed(cc, aud="https://elsewhere.example/token"), signed(cc, exp=int(time.time()) - 1),
                signed(cc, exp=int(time.time()) + 3600), signed(cc, iss=SERVICE, sub=SERVICE),
                signed(cc, jti=None), good[:-8] + ("AAAA" if good[-8:-4] != "AAAA" else "BBBB") + good[-4:]]:
        assert error_of(by_assertion(cc, bad)) == (401, "invalid_client"), jwt_unverified(bad)[1]
    assert by_assertion(cc, signed(cc, aud=cc.url)).status_code == 200                  # the issuer will do
    assert error_of(by_assertion(cc, signed(cc), scope="snippets:write")) == (400, "invalid_scope")


def test_the_metadata_advertises_the_grant_and_the_assertions_it_takes(cc):
    meta = requests.get(cc.url + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert "client_credentials" in meta["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= \
        set(meta["token_endpoint_auth_methods_supported"])
    assert "RS256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert meta["issuer"] == cc.url


def test_without_service_clients_nothing_is_advertised(built, tmp_path):
    from conftest import NginxInstance
    workdir = tmp_path / "nx"
    example = (ROOT / "nginx.conf.example").read_text()
    start = example.index("    mcp_auth_service_client")
    block = example[start:example.index(";\n", start) + 2]
    # as render-config writes it: the runtime folder for /etc/nginx/mcp-auth/
    block = block.replace("/etc/nginx/mcp-auth/", str(workdir.resolve()) + "/")
    nx = NginxInstance(workdir, replace=[(block, "")])
    assert "mcp_auth_service_client" not in nx.conf.read_text()
    nx.start()
    try:
        meta = requests.get(nx.url + "/.well-known/oauth-authorization-server", timeout=5).json()
        assert "client_credentials" not in meta["grant_types_supported"]
        assert "token_endpoint_auth_signing_alg_values_supported" not in meta
    finally:
        nx.stop()
    nx.assert_clean_log()


# --- the admin API ---------------------------------------------------------------------

def test_the_admin_api_lists_and_ends_a_services_session(cc):
    access = token(cc).json()["access_token"]
    assert mcp_status(cc, access) == 200
    h = {"Authorization": "Bearer " + cc.admin_key}
    listed = requests.get(cc.url + ADMIN + "/sessions", params={"subject": "client:" + SERVICE}, headers=h,
                          timeout=5)
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert sessions and all(s["subject_type"] == "client" and s["client_id"] == SERVICE for s in sessions)
    assert {s["client_name"] for s in sessions} == {"Demo service"}
    by_client = requests.get(cc.url + ADMIN + "/sessions", params={"client_id": SERVICE}, headers=h, timeout=5)
    assert {s["id"] for s in by_client.json()["sessions"]} == {s["id"] for s in sessions}
    for s in sessions:
        r = requests.delete(cc.url + ADMIN + "/sessions/" + s["id"], headers=h, timeout=5)
        assert r.status_code == 200, r.text
    wait_for(lambda: mcp_status(cc, access) == 401, timeout=5)
    # the service simply asks again
    assert mcp_status(cc, token(cc).json()["access_token"]) == 200


# --- the official TypeScript SDK -------------------------------------------------------

def run_client(cc, *extra):
    p = subprocess.run([NODE, str(CLIENT), "--gateway", cc.url, "--issuer", cc.url] + list(extra),
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0 and lines and lines[-1] == {"step": "done"}, (p.returncode, lines, p.stderr)
    return lines


@pytest.mark.parametrize("how", ["secret", "private_key_jwt"])
def test_the_typescript_sdks_providers_get_a_token_and_call_hello_mcp(cc, how):
    if how == "secret":
        lines = run_client(cc, "--client-id", SERVICE, "--secret-file", str(cc.workdir / "service-client.secret"))
    else:
        lines = run_client(cc, "--client-id", "jwt-service", "--key-file", str(cc.key_file), "--alg", "RS256")
    tokens = [x for x in lines if x.get("grant_type")]
    assert [(x["http"], x["status"], x["grant_type"]) for x in tokens] == \
        [("POST /token", 200, "client_credentials")], lines
    assert tokens[0]["client_assertion"] is (how == "private_key_jwt")
    call = next(x for x in lines if "tool" in x)
    assert call["text"] == "Hello I am MCPTool!" and not call["is_error"], lines
    assert call["scope"] == "snippets:read" and call["refresh_token"] is False


# --- configuration ---------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ("mcp_auth_service_client s2 secret_file=/nonexistent scope=snippets:read;", "cannot open \"/nonexistent\""),
    ("mcp_auth_service_client s2 secret_file=%(short)s scope=snippets:read;", "at least 32"),
    ("mcp_auth_service_client s2 secret_file=%(secret)s scope=admin;", "not among mcp_auth_scopes"),
    ("mcp_auth_service_client s2 secret_file=%(secret)s;", "scope= is required"),
    ("mcp_auth_service_client s2 scope=snippets:read;", "exactly one of secret_file=, jwks_file= and jwks_location="),
    ("mcp_auth_service_client mcp-service secret_file=%(secret)s scope=snippets:read;", "is repeated"),
])
def test_nginx_t_refuses_a_broken_service_client(built, extra, message, tmp_path):
    from conftest import nginx_t_with
    r = nginx_t_with(tmp_path, extra)
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_a_client_whose_keys_come_from_a_location_fetches_them_once(cc):
    """jwks_location=: the keys are fetched through an internal location (here
    proxied to a server holding the JWKS) when an assertion first needs
    them, and cached."""
    fetched = lambda: metric(scrape(cc), "mcp_auth_fetches_total", target="issuer_jwks", outcome="ok")
    before = fetched()
    for _ in range(3):
        r = by_assertion(cc, signed(cc, iss="keyed-service", sub="keyed-service"))
        assert r.status_code == 200, r.text
        assert identity_of(cc, r.json()["access_token"])["sub"] == "client:keyed-service"
    assert fetched() == before + 1
    # the keys are the client's: a jwt-service assertion does not pass as keyed-service
    r = by_assertion(cc, signed(cc, iss="keyed-service", sub="keyed-service", aud="https://elsewhere.example"))
    assert error_of(r) == (401, "invalid_client")
