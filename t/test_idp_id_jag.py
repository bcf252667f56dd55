"""ID-JAGs (MCP enterprise-managed authorization) at the development provider
(t/idp/dev-idp.mjs): the token exchange of one of its ID tokens for an
Identity Assertion JWT Authorization Grant, as its policy allows.

Everything is real: the provider, its "enterprise app" static client
(--extra-client) signing users in at the login form, and the ID tokens it
issued.  The ID-JAG's signature is checked here against the provider's JWKS
with python3-cryptography.
"""

import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from harness import NODE, ROOT
from idp_util import (ACCESS_TOKEN_TYPE, ID_JAG_TYPE, ID_TOKEN_TYPE, IDP_SCRIPT, TOKEN_EXCHANGE_GRANT, client_info,
                      discovery, exchange_stats, id_jag_policy, id_jag_stats, jwt_unverified, request_id_jag,
                      reset_stats, set_faults, set_id_jag_faults, set_id_jag_policy, set_user_claims, start_idp,
                      token_exchange, user_tokens)

APP_ID, APP_SECRET = "enterprise-app", "enterprise-app-dev-secret"
AS_ISSUER = "http://127.0.0.1:18443"           # the MCP authorization server (nothing listens: not needed)
RESOURCE = "http://127.0.0.1:18443/mcp"
MCP_CLIENT_ID = "enterprise-app-at-the-gateway"
SCOPES = ["snippets:read", "snippets:write", "tools:call"]
TTL = 240
POLICY = [
    {"audience": AS_ISSUER, "resource": RESOURCE, "clients": {APP_ID: MCP_CLIENT_ID}, "scopes": SCOPES},
    {"audience": AS_ISSUER, "resource": AS_ISSUER + "/admin-mcp", "clients": {APP_ID: MCP_CLIENT_ID},
     "scopes": ["admin"], "users": ["user-alice"]},
    {"audience": "https://other-as.example/", "resource": "https://other-mcp.example/",
     "clients": {"mcp-gateway": "gw-at-other"}, "scopes": ["other:read"]},
]
ENTERPRISE_CLIENT = ROOT / "t" / "clients" / "enterprise_client.mjs"
PROFILE_CLAIMS = ("name", "email", "email_verified", "preferred_username", "tid", "groups", "realm_access")


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """The provider with the enterprise app as a second static client, the
    policy above, ID-JAGs of TTL seconds, and an exchange audience named like
    the app (so an exchanged access token has the app as its audience)."""
    proc, issuer, info = start_idp(tmp_path_factory.mktemp("idp-id-jag"), extra_client=["%s:%s" % (APP_ID, APP_SECRET)],
                                   id_jag_policy=POLICY, id_jag_ttl=TTL,
                                   exchange_audience={APP_ID: ["app:read"], "downstream-api": ["downstream:read"]})
    yield issuer, info, proc
    proc.stop()


@pytest.fixture(scope="module")
def short_idp(tmp_path_factory):
    """ID tokens of 1 s signed ES256, no ID-JAG policy."""
    proc, issuer, info = start_idp(tmp_path_factory.mktemp("idp-id-jag-short"), id_token_ttl=1, id_token_alg="ES256",
                                   extra_client=["%s:%s" % (APP_ID, APP_SECRET)])
    yield issuer, info, proc
    proc.stop()


@pytest.fixture(autouse=True)
def _restore(request):
    yield
    if "idp" in request.fixturenames:
        issuer = request.getfixturevalue("idp")[0]
        set_faults(issuer, reset=True)
        set_id_jag_policy(issuer, POLICY)
        set_user_claims(issuer, "demo", reset=True)


@pytest.fixture(scope="module")
def app_tokens(idp):
    """{login: the app's token response (id_token, access_token)} for demo and alice."""
    issuer, info, _ = idp
    return {login: user_tokens(issuer, client_info(info, APP_ID), login=login) for login in ("demo", "alice")}


def id_jag(issuer, id_token, audience=AS_ISSUER, resource=RESOURCE, scope=None, **kw):
    kw.setdefault("client_id", APP_ID)
    kw.setdefault("client_secret", APP_SECRET)
    return request_id_jag(issuer, id_token, audience, resource, scope=scope, **kw)


def assert_oauth_error(r, status, error, description=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["error"] == error, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")
    if description is not None:
        assert description in body.get("error_description", ""), r.text
    assert "access_token" not in body
    return body


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jws(token, jwks):
    """Verify a compact JWS (RS256 or ES256) against a JWKS with
    python3-cryptography; returns (header, claims) or raises InvalidSignature."""
    h, p, s = token.split(".")
    header = json.loads(unb64(h))
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    signed, sig = ("%s.%s" % (h, p)).encode(), unb64(s)
    num = lambda v: int.from_bytes(unb64(v), "big")  # noqa: E731
    if header["alg"] == "RS256":
        assert key["kty"] == "RSA"
        rsa.RSAPublicNumbers(num(key["e"]), num(key["n"])).public_key().verify(
            sig, signed, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        pub = ec.EllipticCurvePublicNumbers(num(key["x"]), num(key["y"]), ec.SECP256R1()).public_key()
        pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   signed, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError("unexpected alg %s" % header["alg"])
    return header, json.loads(unb64(p))


def provider_jwks(issuer):
    return requests.get(discovery(issuer)["jwks_uri"], timeout=10).json()


# ------------------------------------------------------------------ issuing


def test_an_id_token_gives_a_signed_id_jag_for_the_mcp_server(idp, app_tokens):
    issuer, _info, _ = idp
    id_token = app_tokens["alice"]["id_token"]
    id_claims = jwt_unverified(id_token)[1]
    assert id_claims["aud"] == APP_ID
    before = id_jag_stats(issuer)["issued"]
    t0 = int(time.time())
    r = id_jag(issuer, id_token)
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["Cache-Control"]
    body = r.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in", "scope"}
    assert body["issued_token_type"] == ID_JAG_TYPE
    assert body["token_type"] == "N_A" and body["expires_in"] == TTL
    assert body["scope"] == " ".join(SCOPES)

    jwks = provider_jwks(issuer)
    header, claims = verify_jws(body["access_token"], jwks)
    assert header == {"alg": "RS256", "typ": "oauth-id-jag+jwt", "kid": header["kid"]}
    assert claims["iss"] == issuer
    assert claims["sub"] == id_claims["sub"] == "user-alice"
    assert claims["aud"] == AS_ISSUER
    assert claims["resource"] == RESOURCE
    assert claims["client_id"] == MCP_CLIENT_ID
    assert claims["scope"] == " ".join(SCOPES)
    assert t0 - 2 <= claims["iat"] <= t0 + 5 and claims["exp"] - claims["iat"] == TTL
    assert len(claims["jti"]) >= 16
    # the user's claims, as in the ID token
    for k in PROFILE_CLAIMS:
        assert claims[k] == id_claims[k], k
    assert claims["groups"] == ["editors"] and claims["email"] == "alice@example.test"
    assert set(claims) == {"iss", "sub", "aud", "resource", "client_id", "jti", "iat", "exp", "scope",
                           *PROFILE_CLAIMS}
    # nothing of the ID token's own (nonce, azp, at_hash...) carries over
    assert "nonce" not in claims and "azp" not in claims

    # a tampered copy does not verify
    h, p, s = body["access_token"].split(".")
    tampered = "%s.%s.%s" % (h, b64(json.dumps(dict(claims, client_id="someone-else")).encode()), s)
    with pytest.raises(InvalidSignature):
        verify_jws(tampered, jwks)

    # another request is another ID-JAG
    again = id_jag(issuer, id_token)
    assert again.status_code == 200, again.text
    assert jwt_unverified(again.json()["access_token"])[1]["jti"] != claims["jti"]
    assert id_jag_stats(issuer)["issued"] == before + 2


def test_the_sdk_way_client_secret_post_works_too(idp, app_tokens):
    # the SDK's requestJwtAuthorizationGrant sends client_id/client_secret in the body
    issuer = idp[0]
    r = requests.post(issuer + "/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE_GRANT, "requested_token_type": ID_JAG_TYPE, "audience": AS_ISSUER,
        "resource": RESOURCE, "scope": "tools:call", "subject_token": app_tokens["demo"]["id_token"],
        "subject_token_type": ID_TOKEN_TYPE, "client_id": APP_ID, "client_secret": APP_SECRET})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "tools:call"
    assert jwt_unverified(r.json()["access_token"])[1]["sub"] == "user-demo"
    r = requests.post(issuer + "/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE_GRANT, "requested_token_type": ID_JAG_TYPE, "audience": AS_ISSUER,
        "resource": RESOURCE, "subject_token": app_tokens["demo"]["id_token"],
        "subject_token_type": ID_TOKEN_TYPE, "client_id": APP_ID, "client_secret": "wrong"})
    assert_oauth_error(r, 401, "invalid_client")


def test_the_user_claims_are_those_of_now(idp, app_tokens):
    issuer = idp[0]
    set_user_claims(issuer, "demo", groups=["auditors"], tid=None)
    claims = jwt_unverified(id_jag(issuer, app_tokens["demo"]["id_token"]).json()["access_token"])[1]
    assert claims["groups"] == ["auditors"] and "tid" not in claims


def test_scope_narrows_to_what_the_policy_allows(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    cases = [("snippets:read", "snippets:read"),
             ("tools:call snippets:read", "snippets:read tools:call"),        # the policy's order
             ("snippets:read snippets:admin openid", "snippets:read"),         # the rest dropped silently
             ("tools:call tools:call", "tools:call"),
             ("", " ".join(SCOPES))]                                            # empty = not asked
    for asked, granted in cases:
        r = id_jag(issuer, id_token, scope=asked)
        assert r.status_code == 200, (asked, r.text)
        assert r.json()["scope"] == granted, asked
        assert jwt_unverified(r.json()["access_token"])[1]["scope"] == granted, asked


def test_a_scope_with_nothing_left_is_invalid_scope(idp, app_tokens):
    issuer = idp[0]
    for asked in ("snippets:admin", "admin", "openid profile"):
        assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"], scope=asked), 400, "invalid_scope")


def test_an_entry_without_scopes_gives_an_id_jag_without_scope(idp, app_tokens):
    issuer = idp[0]
    set_id_jag_policy(issuer, [dict(POLICY[0], scopes=[])])
    r = id_jag(issuer, app_tokens["demo"]["id_token"])
    assert r.status_code == 200, r.text
    assert "scope" not in r.json() and "scope" not in jwt_unverified(r.json()["access_token"])[1]
    assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"], scope="tools:call"), 400, "invalid_scope")


# ------------------------------------------------------------------ the policy's refusals


def test_an_unknown_audience_is_invalid_target(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    for aud in ("http://127.0.0.1:18444", AS_ISSUER + "/", "https://other-as.example"):
        assert_oauth_error(id_jag(issuer, id_token, audience=aud), 400, "invalid_target", "audience")
    assert id_jag(issuer, id_token).status_code == 200


def test_a_resource_not_in_the_audience_entry_is_invalid_target(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    for res in (RESOURCE + "/", AS_ISSUER, "https://other-mcp.example/", "http://127.0.0.1:18443/MCP"):
        assert_oauth_error(id_jag(issuer, id_token, resource=res), 400, "invalid_target", "resource")


def test_a_client_not_in_the_entry_is_unauthorized_client(idp):
    issuer, info, _ = idp
    # the gateway's client signs the user in and asks with its own ID token
    gw_id_token = user_tokens(issuer, info)["id_token"]
    r = request_id_jag(issuer, gw_id_token, AS_ISSUER, RESOURCE)
    assert_oauth_error(r, 400, "unauthorized_client")
    # where the policy names it, it gets its own mapped client id
    r = request_id_jag(issuer, gw_id_token, "https://other-as.example/", "https://other-mcp.example/")
    assert r.status_code == 200, r.text
    assert jwt_unverified(r.json()["access_token"])[1]["client_id"] == "gw-at-other"


def test_a_user_not_in_the_entry_is_access_denied(idp, app_tokens):
    issuer = idp[0]
    admin_res = AS_ISSUER + "/admin-mcp"
    assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"], resource=admin_res), 400, "access_denied")
    r = id_jag(issuer, app_tokens["alice"]["id_token"], resource=admin_res)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "admin"
    # an empty list admits nobody
    set_id_jag_policy(issuer, [dict(POLICY[0], users=[])])
    assert_oauth_error(id_jag(issuer, app_tokens["alice"]["id_token"]), 400, "access_denied")


def test_without_a_policy_nothing_is_issued(idp, short_idp, app_tokens):
    issuer = idp[0]
    set_id_jag_policy(issuer, [])
    assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"]), 400, "invalid_target")
    s_issuer, s_info, _ = short_idp
    assert id_jag_policy(s_issuer) == []
    # its ID tokens live 1 s: on a busy machine one may expire before use
    for _ in range(5):
        tokens = user_tokens(s_issuer, client_info(s_info, APP_ID))
        r = id_jag(s_issuer, tokens["id_token"])
        if "ERR_JWT_EXPIRED" not in r.text:
            break
    assert_oauth_error(r, 400, "invalid_target")


# ------------------------------------------------------------------ the subject token


def test_an_id_token_of_another_client_is_invalid_grant(idp, app_tokens):
    issuer, info, _ = idp
    gw_id_token = user_tokens(issuer, info)["id_token"]
    # the app presents the gateway client's ID token
    assert_oauth_error(id_jag(issuer, gw_id_token), 400, "invalid_grant", "aud")
    # the gateway client presents the app's ID token (for a target it is allowed)
    r = request_id_jag(issuer, app_tokens["demo"]["id_token"], "https://other-as.example/", "https://other-mcp.example/")
    assert_oauth_error(r, 400, "invalid_grant", "aud")


def test_an_access_token_is_not_an_id_token(idp, app_tokens):
    issuer = idp[0]
    tokens = app_tokens["demo"]
    # the provider's opaque access token
    assert_oauth_error(id_jag(issuer, tokens["access_token"]), 400, "invalid_grant")
    # a JWT access token of this provider (an exchanged one) for the app itself:
    # right signature, issuer, aud and sub, but typ at+jwt
    r = token_exchange(issuer, tokens["access_token"], audience=APP_ID, client_id=APP_ID, client_secret=APP_SECRET)
    assert r.status_code == 200, r.text
    at_jwt = r.json()["access_token"]
    header, claims = jwt_unverified(at_jwt)
    assert header["typ"] == "at+jwt" and claims["aud"] == APP_ID and claims["iss"] == issuer
    assert_oauth_error(id_jag(issuer, at_jwt), 400, "invalid_grant", "typ")
    # an ID-JAG is no subject token either
    jag = id_jag(issuer, tokens["id_token"]).json()["access_token"]
    assert_oauth_error(id_jag(issuer, jag), 400, "invalid_grant")


def test_the_token_types_must_be_id_token_and_id_jag(idp, app_tokens):
    issuer = idp[0]
    tokens = app_tokens["demo"]
    # an access token as the subject of an ID-JAG request
    assert_oauth_error(id_jag(issuer, tokens["access_token"], subject_token_type=ACCESS_TOKEN_TYPE),
                       400, "invalid_request", "subject_token_type")
    assert_oauth_error(id_jag(issuer, tokens["id_token"], subject_token_type="urn:ietf:params:oauth:token-type:saml2"),
                       400, "invalid_request", "subject_token_type")
    # an ID token for anything but an ID-JAG
    for requested in (None, ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt"):
        assert_oauth_error(id_jag(issuer, tokens["id_token"], requested_token_type=requested),
                           400, "invalid_request", "requested_token_type")
    # the access-token exchange is as it was
    r = token_exchange(issuer, tokens["access_token"], client_id=APP_ID, client_secret=APP_SECRET)
    assert r.status_code == 200 and r.json()["issued_token_type"] == ACCESS_TOKEN_TYPE, r.text


def test_an_expired_id_token_is_invalid_grant(short_idp):
    # the provider's own client here: its ID tokens are ES256 (--id-token-alg)
    issuer, info, _ = short_idp
    audience, resource = "https://as.example/", "https://mcp.example/"
    set_id_jag_policy(issuer, [{"audience": audience, "resource": resource, "clients": {info["client_id"]: "m"},
                                "scopes": ["s"]}])
    id_token = user_tokens(issuer, info)["id_token"]
    header, claims = verify_jws(id_token, provider_jwks(issuer))
    assert header["alg"] == "ES256" and claims["exp"] - claims["iat"] == 1
    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.2)
    r = request_id_jag(issuer, id_token, audience, resource)
    assert_oauth_error(r, 400, "invalid_grant", "ERR_JWT_EXPIRED")
    # a fresh one is fine within its one second (a slow machine may need a retry)
    for _ in range(3):
        fresh = user_tokens(issuer, info)["id_token"]
        r = request_id_jag(issuer, fresh, audience, resource)
        if r.status_code == 200:
            break
    assert r.status_code == 200, r.text
    # (an ES256 ID token, verified with the provider's EC key; the ID-JAG is RS256 all the same)
    assert jwt_unverified(r.json()["access_token"])[0]["alg"] == "RS256"


def test_a_forged_id_token_is_invalid_grant(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    h, p, s = id_token.split(".")
    header, claims = jwt_unverified(id_token)
    forged = []
    # another user's sub under demo's signature
    forged.append("%s.%s.%s" % (h, b64(json.dumps(dict(claims, sub="user-alice")).encode()), s))
    # a flipped signature bit
    sig = bytearray(unb64(s))
    sig[10] ^= 1
    forged.append("%s.%s.%s" % (h, p, b64(bytes(sig))))
    # unsigned
    forged.append("%s.%s." % (b64(json.dumps({"alg": "none"}).encode()), p))
    # HMAC with the client secret, same kid
    hh = b64(json.dumps({"alg": "HS256", "kid": header["kid"]}).encode())
    mac = hmac.new(APP_SECRET.encode(), ("%s.%s" % (hh, p)).encode(), hashlib.sha256).digest()
    forged.append("%s.%s.%s" % (hh, p, b64(mac)))
    # a well-formed RS256 JWT signed by a key not the provider's
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = ("%s.%s" % (h, p)).encode()
    forged.append("%s.%s.%s" % (h, p, b64(key.sign(signed, padding.PKCS1v15(), hashes.SHA256()))))
    forged.append("not-a-jwt")
    for token in forged:
        assert_oauth_error(id_jag(issuer, token), 400, "invalid_grant")
    assert id_jag(issuer, id_token).status_code == 200


def test_a_user_the_provider_does_not_know_is_invalid_grant(tmp_path):
    # the same signing keys, one provider with a user the other does not have
    keys = tmp_path / "keys.json"
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"login": "carol", "password": "carol-password-1"}]))
    policy = [{"audience": AS_ISSUER, "resource": RESOURCE, "clients": {APP_ID: "m"}, "scopes": ["s"]}]
    common = dict(extra_client=["%s:%s" % (APP_ID, APP_SECRET)], keys_file=keys, id_jag_policy=policy)
    p1, iss1, info1 = start_idp(tmp_path, name="idp-a", users_file=users, **common)
    try:
        tokens = user_tokens(iss1, client_info(info1, APP_ID), login="carol", password="carol-password-1")
    finally:
        p1.stop()
    # a restart on the same port and keys, without carol
    p2, iss2, _ = start_idp(tmp_path, name="idp-b", port=int(iss1.rsplit(":", 1)[1]), **common)
    try:
        assert iss2 == iss1
        assert_oauth_error(id_jag(iss2, tokens["id_token"]), 400, "invalid_grant", "unknown user")
    finally:
        p2.stop()


# ------------------------------------------------------------------ the request


def test_missing_or_repeated_parameters_are_invalid_request(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    for missing in ("audience", "resource", "subject_token"):
        r = id_jag(issuer, id_token, **{missing: None})
        assert_oauth_error(r, 400, "invalid_request", missing)
    assert_oauth_error(id_jag(issuer, id_token, subject_token_type=None), 400, "invalid_request")
    assert_oauth_error(id_jag(issuer, id_token, actor_token=id_token, actor_token_type=ID_TOKEN_TYPE),
                       400, "invalid_request", "actor_token")
    for twice in ("resource", "audience"):
        data = {"grant_type": TOKEN_EXCHANGE_GRANT, "requested_token_type": ID_JAG_TYPE, "subject_token": id_token,
                "subject_token_type": ID_TOKEN_TYPE, "audience": AS_ISSUER, "resource": RESOURCE}
        data[twice] = [data[twice], "https://other-mcp.example/"]
        r = requests.post(issuer + "/token", data=data, auth=(APP_ID, APP_SECRET), timeout=10)
        assert_oauth_error(r, 400, "invalid_request", twice)


def test_client_authentication_comes_first(idp, app_tokens):
    issuer = idp[0]
    assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"], client_secret="wrong"), 401, "invalid_client")
    assert_oauth_error(id_jag(issuer, app_tokens["demo"]["id_token"], client_id="nobody"), 401, "invalid_client")


# ------------------------------------------------------------------ test controls


def test_the_policy_control_validates_and_replaces_the_policy(idp):
    issuer = idp[0]
    assert id_jag_policy(issuer) == POLICY
    good = dict(POLICY[0])
    bad = [
        ({"not": "a list"}, "list"),
        (["x"], "entry 0: must be an object"),
        ([good, dict(good, audience="not a url")], 'entry 1: "audience"'),
        ([dict(good, audience=None)], '"audience"'),
        ([dict(good, resource="/mcp")], '"resource"'),
        ([dict(good, resource=RESOURCE + "#frag")], '"resource"'),
        ([{k: v for k, v in good.items() if k != "clients"}], '"clients"'),
        ([dict(good, clients={})], '"clients"'),
        ([dict(good, clients=[APP_ID])], '"clients"'),
        ([dict(good, clients={APP_ID: ""})], "client"),
        ([dict(good, clients={APP_ID: 7})], "client"),
        ([{k: v for k, v in good.items() if k != "scopes"}], '"scopes"'),
        ([dict(good, scopes="snippets:read")], '"scopes"'),
        ([dict(good, scopes=["bad scope"])], "bad scope"),
        ([dict(good, scopes=["quote\"d"])], "bad scope"),
        ([dict(good, users="user-demo")], '"users"'),
        ([dict(good, users=[""])], '"users"'),
        ([dict(good, user=["user-demo"])], 'unknown key "user"'),
        ([good, dict(good, scopes=["x"])], "already"),
    ]
    for body, message in bad:
        r = requests.post(issuer + "/__test/id_jag_policy", json=body, timeout=10)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "invalid_request" and message in r.json()["error_description"], (body, r.text)
    r = requests.post(issuer + "/__test/id_jag_policy", data="{not json", timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    assert id_jag_policy(issuer) == POLICY, "a refused policy changes nothing"
    new = [dict(good, scopes=["tools:call"], users=["user-demo"])]
    assert set_id_jag_policy(issuer, new) == new
    assert id_jag_policy(issuer) == new


def test_the_policy_takes_effect_at_once(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    assert id_jag(issuer, id_token).json()["scope"] == " ".join(SCOPES)
    set_id_jag_policy(issuer, [dict(POLICY[0], scopes=["tools:call"], clients={APP_ID: "renamed"})])
    r = id_jag(issuer, id_token)
    assert r.json()["scope"] == "tools:call"
    assert jwt_unverified(r.json()["access_token"])[1]["client_id"] == "renamed"


def test_stats_count_id_jags_apart_from_exchanges(idp, app_tokens):
    issuer = idp[0]
    reset_stats(issuer)
    assert id_jag_stats(issuer) == {"issued": 0, "refused": {}}
    id_token = app_tokens["demo"]["id_token"]
    assert id_jag(issuer, id_token).status_code == 200
    assert id_jag(issuer, id_token, scope="nothing").status_code == 400
    assert id_jag(issuer, id_token, audience="https://nowhere.example/").status_code == 400
    assert id_jag(issuer, id_token, audience="https://nowhere.example/").status_code == 400
    assert id_jag(issuer, id_token, client_secret="wrong").status_code == 401
    assert id_jag_stats(issuer) == {"issued": 1, "refused": {"invalid_scope": 1, "invalid_target": 2,
                                                             "invalid_client": 1}}
    ex = exchange_stats(issuer)
    assert ex["issued"] == 0 and ex["refused"] == {} and ex["requests"] == 5
    reset_stats(issuer)
    assert id_jag_stats(issuer) == {"issued": 0, "refused": {}}


def test_the_refuse_fault(idp, app_tokens):
    issuer = idp[0]
    id_token = app_tokens["demo"]["id_token"]
    assert set_id_jag_faults(issuer, True)["id_jag_refuse"] == "invalid_grant"
    assert_oauth_error(id_jag(issuer, id_token), 400, "invalid_grant", "fault injection")
    # a request that would be refused anyway keeps its own error
    assert_oauth_error(id_jag(issuer, id_token, scope="nothing"), 400, "invalid_scope")
    # access-token exchanges are not affected
    r = token_exchange(issuer, app_tokens["demo"]["access_token"], client_id=APP_ID, client_secret=APP_SECRET)
    assert r.status_code == 200, r.text
    for error in ("access_denied", "unauthorized_client", "invalid_target"):
        set_id_jag_faults(issuer, error)
        assert_oauth_error(id_jag(issuer, id_token), 400, error)
    r = requests.post(issuer + "/__test/faults", json={"id_jag_refuse": "server_error"}, timeout=10)
    assert r.status_code == 400 and "id_jag_refuse" in r.json()["error_description"]
    assert set_id_jag_faults(issuer, False)["id_jag_refuse"] is False
    assert id_jag(issuer, id_token).status_code == 200


# ------------------------------------------------------------------ start-up options


def test_the_config_file_takes_the_policy_and_clients(tmp_path):
    policy = [{"audience": AS_ISSUER, "resource": RESOURCE, "clients": {"cfg-app": "m"}, "scopes": ["s"]}]
    (tmp_path / "idp.json").write_text(json.dumps({"id_jag_policy": policy, "id_jag_ttl": 60,
                                                   "extra_client": ["cfg-app:cfg-secret"]}))
    proc, issuer, info = start_idp(tmp_path, config=tmp_path / "idp.json")
    try:
        assert id_jag_policy(issuer) == policy
        assert info["extra_clients"] == {"cfg-app": "cfg-secret"}
        tokens = user_tokens(issuer, client_info(info, "cfg-app"))
        r = id_jag(issuer, tokens["id_token"], client_id="cfg-app", client_secret="cfg-secret")
        assert r.status_code == 200 and r.json()["expires_in"] == 60, r.text
    finally:
        proc.stop()


@pytest.mark.parametrize("args,message", [
    (["--id-jag-policy", "{policy}"], 'entry 0: "resource"'),
    (["--id-jag-policy", "/nonexistent/policy.json"], "cannot read ID-JAG policy file"),
    (["--id-jag-ttl", "0"], "--id-jag-ttl"),
    (["--extra-client", "no-secret"], "--extra-client"),
    (["--extra-client", ":secret"], "--extra-client"),
    (["--extra-client", "mcp-gateway:s"], "defined twice"),
])
def test_bad_id_jag_options_stop_the_provider(tmp_path, args, message):
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps([{"audience": AS_ISSUER, "clients": {"a": "b"}, "scopes": []}]))
    argv = [NODE, str(IDP_SCRIPT), "--port", "0"] + [a.format(policy=bad) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and message in r.stderr, r.stderr


# ------------------------------------------------------------------ the SDK's side of the IdP leg


def enterprise_client(*args, timeout=60):
    """Run t/clients/enterprise_client.mjs; (exit code, its one JSON line)."""
    p = subprocess.run([NODE, str(ENTERPRISE_CLIENT)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, (p.stdout, p.stderr)
    return p.returncode, json.loads(lines[0])


def test_the_sdk_gets_an_id_jag_from_the_provider(idp, app_tokens, tmp_path):
    """The official SDK v2's discoverAndRequestJwtAuthGrant (discovery, then
    the token exchange with client_secret_post) against the provider."""
    issuer = idp[0]
    (tmp_path / "secret").write_text(APP_SECRET + "\n")
    (tmp_path / "id_token").write_text(app_tokens["alice"]["id_token"])
    common = ["--idp-only", "--idp", issuer, "--idp-client-id", APP_ID, "--audience", AS_ISSUER, "--resource", RESOURCE]
    code, out = enterprise_client(*common, "--idp-client-secret-file", tmp_path / "secret",
                                  "--id-token-file", tmp_path / "id_token", "--scope", "tools:call snippets:admin")
    assert code == 0 and out["ok"] and out["stage"] == "done", out
    assert [r["http"] for r in out["requests"]] == ["GET /.well-known/oauth-authorization-server", "POST /token"]
    assert out["requests"][1] == {"http": "POST /token", "at": "idp", "status": 200,
                                  "grant_type": TOKEN_EXCHANGE_GRANT, "requested_token_type": ID_JAG_TYPE}
    jag = out["id_jag"]
    assert jag["scope"] == "tools:call" and jag["expires_in"] == TTL
    assert jag["header"]["typ"] == "oauth-id-jag+jwt"
    assert jag["claims"]["sub"] == "user-alice" and jag["claims"]["client_id"] == MCP_CLIENT_ID
    assert jag["claims"]["aud"] == AS_ISSUER and jag["claims"]["resource"] == RESOURCE
    # a refusal comes back as the IdP's error, at the idp stage
    code, out = enterprise_client(*common, "--idp-client-secret", APP_SECRET,
                                  "--id-token", app_tokens["demo"]["id_token"], "--scope", "nothing")
    assert code == 1 and not out["ok"] and out["stage"] == "idp", out
    assert "invalid_scope" in out["error"] and "id_jag" not in out
    assert out["requests"][-1]["status"] == 400


def test_the_enterprise_client_says_where_it_stopped(idp, app_tokens, tmp_path):
    issuer = idp[0]
    (tmp_path / "secret").write_text("gateway-secret")
    # nothing listens at the gateway: the first MCP request fails
    code, out = enterprise_client("--gateway", "http://127.0.0.1:18443", "--idp", issuer, "--idp-client-id", APP_ID,
                                  "--idp-client-secret", APP_SECRET, "--id-token", app_tokens["demo"]["id_token"],
                                  "--client-id", MCP_CLIENT_ID, "--client-secret-file", tmp_path / "secret")
    assert code == 1 and out["stage"] == "connect", out
    assert out["requests"][0]["http"] == "POST /mcp" and out["requests"][0]["at"] == "gateway"
    assert out["requests"][0]["status"] is None
    code, out = enterprise_client("--gateway", "http://127.0.0.1:18443", "--bogus", "x")
    assert code == 2 and out["stage"] == "args" and "--bogus" in out["error"], out
    code, out = enterprise_client("--gateway", "http://127.0.0.1:18443")
    assert code == 2 and "required" in out["error"], out
