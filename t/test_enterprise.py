"""Enterprise-managed authorization (the MCP extension; ID-JAG, RFC 7523
jwt-bearer grant) end to end: the development provider is the enterprise
IdP; an app (its IdP client chat-idp, at the gateway the example's
enterprise client mcp-enterprise-app) signs the demo user in at the IdP, exchanges the
ID token there for an ID-JAG for this gateway, presents it at /token and
calls tools -- through the official TypeScript SDK's CrossAppAccessProvider
(t/clients/enterprise_client.mjs) on both transports, and by hand for every
refusal an attacker would try: another gateway's or resource's assertion,
another client's, a replay, an untrusted issuer, expired, a bad signature,
algorithm confusion, a wrong typ."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import nginx_t_with
from harness import NODE, ROOT, free_port
from idp_util import client_info, request_id_jag, set_id_jag_policy, start_idp, user_tokens
from mcp_gateway import rpc
from metrics_util import metric, scrape
from toolserver_util import b64url

APP = "mcp-enterprise-app"           # the example's demo app at the gateway
APP_IDP = "chat-idp"                 # the same app at the IdP
APP_IDP_SECRET = "chat-idp-secret-" + "x" * 20
OTHER = "other-app"                  # a second enterprise app at the gateway
CLIENT = ROOT / "t" / "clients" / "enterprise_client.mjs"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEMO_TENANT = "7d8a3c1e-0000-4000-8000-00000000d3e0"   # the example's mcp_auth_require_claim tid


def b64(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def unb64(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


@pytest.fixture(scope="module")
def ent(stack_factory, tmp_path_factory):
    keys = tmp_path_factory.mktemp("enterprise")
    (keys / "other-app.secret").write_text("o" * 40 + "\n")
    idp_port = free_port()
    issuer = "http://127.0.0.1:%d" % idp_port
    # the example trusts the provider and configures the demo enterprise app;
    # a second app is added here
    http_extra = ("mcp_auth_enterprise_client %s secret_file=%s issuer=%s scope=snippets:read;\n"
                  % (OTHER, keys / "other-app.secret", issuer))
    st = stack_factory("enterprise", http_extra=http_extra,
                       idp_options={"port": idp_port, "extra_client": ["%s:%s" % (APP_IDP, APP_IDP_SECRET)],
                                    "keys_file": str(keys / "idp-keys.json")})
    assert st.issuer == issuer
    st.app_secret_file = st.workdir / "enterprise-app.secret"
    st.app_secret = st.app_secret_file.read_text().strip()
    st.keys_dir = keys
    jwk = next(k for k in json.loads((keys / "idp-keys.json").read_text())["keys"] if k["kty"] == "RSA")
    pub = rsa.RSAPublicNumbers(unb64(jwk["e"]), unb64(jwk["n"]))
    st.idp_kid = jwk["kid"]
    st.idp_key = rsa.RSAPrivateNumbers(unb64(jwk["p"]), unb64(jwk["q"]), unb64(jwk["d"]), unb64(jwk["dp"]),
                                       unb64(jwk["dq"]), unb64(jwk["qi"]), pub).private_key()
    st.idp_public_pem = st.idp_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    # the IdP lets chat-idp ask for ID-JAGs for this gateway, as mcp-enterprise-app
    policy = [{"audience": st.url, "resource": st.url + "/mcp", "clients": {APP_IDP: APP},
               "scopes": ["snippets:read", "snippets:write"]},
              # for another gateway: an assertion this one must refuse
              {"audience": "https://elsewhere.example", "resource": "https://elsewhere.example/mcp",
               "clients": {APP_IDP: APP}, "scopes": ["snippets:read"]},
              {"audience": st.url, "resource": "https://elsewhere.example/mcp", "clients": {APP_IDP: APP},
               "scopes": ["snippets:read"]}]
    set_id_jag_policy(st.issuer, policy)
    st.app_info = client_info(st.idp_info, APP_IDP)
    return st


def id_token(st, login="demo"):
    password = st.demo_password if login == "demo" else st.idp_info["passwords"][login]
    return user_tokens(st.issuer, st.app_info, login=login, password=password)["id_token"]


def id_jag(st, audience=None, resource=None, **kw):
    r = request_id_jag(st.issuer, id_token(st), audience or st.url, resource or st.url + "/mcp",
                       client_id=APP_IDP, client_secret=APP_IDP_SECRET, **kw)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def present(st, assertion, client=APP, secret=None, **form):
    data = {"grant_type": JWT_BEARER, "assertion": assertion}
    data.update(form)
    return requests.post(st.url + "/token", data=data, timeout=10,
                         auth=(client, secret if secret is not None else st.app_secret))


def forged(st, claims, alg="RS256", typ="oauth-id-jag+jwt", key=None):
    """An ID-JAG signed here: with the IdP's own key (RS256), or HS256 keyed
    with its public key, or none."""
    now = int(time.time())
    body = {"iss": st.issuer, "sub": "user-demo", "aud": st.url, "resource": st.url + "/mcp", "client_id": APP,
            "jti": b64url(os.urandom(12)), "iat": now, "exp": now + 120, "scope": "snippets:read",
            "tid": DEMO_TENANT}
    body.update(claims)
    head = {"alg": alg, "typ": typ, "kid": st.idp_kid}
    signing_input = (b64url(json.dumps(head).encode()) + "." +
                     b64url(json.dumps({k: v for k, v in body.items() if v is not None}).encode()))
    if alg == "RS256":
        sig = (key or st.idp_key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif alg == "HS256":
        sig = hmac.new(st.idp_public_pem, signing_input.encode(), hashlib.sha256).digest()
    else:
        sig = b""
    return signing_input + "." + b64url(sig)


def mcp_status(st, access_token):
    r = requests.post(st.url + "/mcp", timeout=10, json=rpc("initialize", {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pytest", "version": "1"}}),
        headers={"Authorization": "Bearer " + access_token, "Accept": "application/json, text/event-stream"})
    return r.status_code


def error_of(r):
    return r.status_code, r.json().get("error")


def run_client(st, transport, *extra):
    if transport == "http":
        # the ID token of the app's sign-in, done here
        token_file = st.keys_dir / "id-token"
        token_file.write_text(id_token(st))
        sign_in = ["--id-token-file", str(token_file)]
    else:
        # the client signs the user in at the IdP itself
        sign_in = ["--login", "demo", "--password", st.demo_password, "--redirect-uri", st.app_info["redirect_uris"][0]]
    p = subprocess.run([NODE, str(CLIENT), "--gateway", st.url, "--transport", transport, "--idp", st.issuer,
                        "--idp-client-id", APP_IDP, "--idp-client-secret", APP_IDP_SECRET] + sign_in +
                       ["--client-id", APP, "--client-secret-file", str(st.app_secret_file)] + list(extra),
                       capture_output=True, text=True, timeout=90)
    lines = p.stdout.strip().splitlines()
    assert lines, p.stderr
    return p.returncode, json.loads(lines[-1])


# --- the whole flow ----------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["http", "sse"])
def test_the_official_sdk_gets_a_token_from_an_id_jag_and_calls_tools(ent, transport):
    code, out = run_client(ent, transport)
    assert code == 0 and out["ok"] and out["stage"] == "done", out
    assert "hello_mcp" in out["tools"] and out["text"] == "Hello I am MCPTool!" and not out["is_error"], out
    claims = out["id_jag"]["claims"]
    assert out["id_jag"]["header"]["typ"] == "oauth-id-jag+jwt"
    assert claims["aud"] == ent.url and claims["resource"] == ent.url + "/mcp" and claims["client_id"] == APP
    grants = [q for q in out["requests"] if q["at"] == "gateway" and q.get("grant_type") == JWT_BEARER]
    assert grants and grants[0]["status"] == 200, out["requests"]
    assert "refresh_token" not in json.dumps(out["token"])
    signed_in = [q for q in out["requests"] if q["at"] == "idp" and q.get("grant_type") == "authorization_code"]
    assert bool(signed_in) == (transport == "sse"), out["requests"]   # --login: the client's own sign-in


def test_an_id_jag_is_traded_once_for_a_token_of_the_users_session(ent):
    before = metric(scrape(ent), "mcp_auth_token_requests_total", grant_type="jwt_bearer", result="ok")
    assertion = id_jag(ent)
    r = present(ent, assertion, scope="snippets:read")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "snippets:read" and "refresh_token" not in body
    assert mcp_status(ent, body["access_token"]) == 200
    # single use: the same assertion again is refused, and the first token still works
    assert error_of(present(ent, assertion)) == (400, "invalid_grant")
    assert mcp_status(ent, body["access_token"]) == 200
    after = metric(scrape(ent), "mcp_auth_token_requests_total", grant_type="jwt_bearer", result="ok")
    assert after == before + 1
    # the session is the user's: the admin API lists it under the user, with the app
    admin_key = (ent.workdir / "admin.key").read_text().strip()
    listed = requests.get(ent.url + "/_mcp_auth/admin/sessions", params={"subject": "user-demo"}, timeout=10,
                          headers={"Authorization": "Bearer " + admin_key}).json()["sessions"]
    assert any(s["client_id"] == APP for s in listed), listed
    meta = requests.get(ent.url + "/.well-known/oauth-authorization-server", timeout=10).json()
    assert JWT_BEARER in meta["grant_types_supported"]


def test_assertions_for_another_server_or_resource_or_client_are_refused(ent):
    tok = id_token(ent)
    other_gateway = request_id_jag(ent.issuer, tok, "https://elsewhere.example", "https://elsewhere.example/mcp",
                                   client_id=APP_IDP, client_secret=APP_IDP_SECRET).json()["access_token"]
    assert error_of(present(ent, other_gateway)) == (400, "invalid_grant")
    other_resource = id_jag(ent, resource="https://elsewhere.example/mcp")
    r = present(ent, other_resource)
    assert error_of(r) == (400, "invalid_grant") and "resource" in r.json()["error_description"]
    # the demo app's assertion presented by other-app
    r = present(ent, id_jag(ent), client=OTHER, secret="o" * 40)
    assert error_of(r) == (400, "invalid_grant") and "another client" in r.json()["error_description"]
    # the wrong secret, and a registered client
    assert error_of(present(ent, id_jag(ent), secret="x" * 40)) == (401, "invalid_client")
    # a scope the IdP did not grant
    assert error_of(present(ent, id_jag(ent, scope="snippets:read"), scope="snippets:write")) == (400, "invalid_scope")


def test_untrusted_expired_forged_and_confused_assertions_are_refused(ent):
    # another IdP, with its own keys, signs for the same gateway and client
    stranger, stranger_issuer, info = start_idp(ent.keys_dir / "stranger",
                                                extra_client=["%s:%s" % (APP_IDP, APP_IDP_SECRET)])
    try:
        set_id_jag_policy(stranger_issuer, [{"audience": ent.url, "resource": ent.url + "/mcp",
                                             "clients": {APP_IDP: APP}, "scopes": ["snippets:read"]}])
        tok = user_tokens(stranger_issuer, client_info(info, APP_IDP), login="demo",
                          password=info["demo_password"])["id_token"]
        r = request_id_jag(stranger_issuer, tok, ent.url, ent.url + "/mcp", client_id=APP_IDP,
                           client_secret=APP_IDP_SECRET)
        assert r.status_code == 200, r.text
        r = present(ent, r.json()["access_token"])
        assert error_of(r) == (400, "invalid_grant") and "not trusted" in r.json()["error_description"]
    finally:
        stranger.stop()

    now = int(time.time())
    r = present(ent, forged(ent, {}))
    assert r.status_code == 200, r.text          # the forger's tool works...
    cases = {
        "expired": forged(ent, {"iat": now - 600, "exp": now - 1}),
        "lives too long": forged(ent, {"exp": now + 7200}),
        "claims an untrusted issuer": forged(ent, {"iss": "https://idp.elsewhere.example"}),
        "no jti": forged(ent, {"jti": None}),
        "an ID token's typ": forged(ent, {}, typ="JWT"),
        "an access token's typ": forged(ent, {}, typ="at+jwt"),
        "HS256 keyed with the public key": forged(ent, {}, alg="HS256"),
        "alg none": forged(ent, {}, alg="none"),
        "another key": forged(ent, {}, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }
    good = forged(ent, {})
    head, body, sig = good.split(".")
    cases["a tampered signature"] = head + "." + body + "." + sig[:-6] + ("AAAAAA" if sig[-6:] != "AAAAAA" else "BBBBBB")
    cases["tampered claims"] = head + "." + b64url(json.dumps({**json.loads(base64.urlsafe_b64decode(
        body + "=" * (-len(body) % 4))), "sub": "user-alice"}).encode()) + "." + sig
    for name, assertion in cases.items():
        assert error_of(present(ent, assertion)) == (400, "invalid_grant"), name
    # none of them started a session for user-alice
    admin_key = (ent.workdir / "admin.key").read_text().strip()
    listed = requests.get(ent.url + "/_mcp_auth/admin/sessions", params={"subject": "user-alice"}, timeout=10,
                          headers={"Authorization": "Bearer " + admin_key}).json()["sessions"]
    assert listed == []


def test_the_claim_rules_hold_for_assertions_as_for_browser_sign_ins(ent):
    # the example admits only the demo tenant (mcp_auth_require_claim tid)
    r = present(ent, forged(ent, {"tid": "another-tenant", "sub": "user-outsider"}))
    assert error_of(r) == (400, "invalid_grant") and "tid" in r.json()["error_description"], r.text
    r = present(ent, forged(ent, {"tid": None}))
    assert error_of(r) == (400, "invalid_grant"), r.text
    # the IdP's own ID-JAG for the outsider (another tenant) is refused likewise
    outsider = user_tokens(ent.issuer, ent.app_info, login="outsider",
                           password=ent.idp_info["outsider_password"])["id_token"]
    r = request_id_jag(ent.issuer, outsider, ent.url, ent.url + "/mcp", client_id=APP_IDP,
                       client_secret=APP_IDP_SECRET)
    assert r.status_code == 200, r.text
    assert error_of(present(ent, r.json()["access_token"])) == (400, "invalid_grant")


def test_nginx_t_refuses_enterprise_configurations_that_cannot_work(tmp_path):
    secret = tmp_path / "app.secret"
    secret.write_text("s" * 40 + "\n")
    for extra, complaint in [
        ("mcp_auth_trusted_issuer https://idp.example subject_prefix=acme:;", "jwks_location= is required"),
        ("mcp_auth_trusted_issuer idp.example jwks_location=/j;", "the first word must be the issuer"),
        ("mcp_auth_enterprise_client app secret_file=%s issuer=https://idp.example scope=snippets:read;" % secret,
         "has no mcp_auth_trusted_issuer"),
        ("mcp_auth_trusted_issuer https://idp.example jwks_location=/j;\n"
         "mcp_auth_enterprise_client app secret_file=%s scope=snippets:read;" % secret, "issuer= is required"),
        ("mcp_auth_trusted_issuer https://idp.example jwks_location=/j;\n"
         "mcp_auth_enterprise_client app secret_file=%s issuer=https://idp.example scope=admin;" % secret,
         "not among mcp_auth_scopes"),
    ]:
        p = nginx_t_with(tmp_path, extra)
        assert p.returncode != 0 and complaint in p.stderr, (extra, p.stderr)
